"""Wall time of the `kerasll project` commands that do not train.

`init`, `add`, `select --picks`, `tasks`, `labels` and `status --no-audit`
import no TensorFlow (tests/test_project_imports.py), so each should take
well under a second on a small project. This benchmark builds one small
digits project with a trained model (untimed: `train` and `kerasll score`),
then runs a round on a fresh copy of it per repetition, timing each command
as a user runs it: the `kerasll` console script in a new process, from start
to exit, with Python's bytecode cache as an install has it. It prints the median (and range) per command against the 1 s target,
with the machine's load average, which the figures depend on.

    python benchmarks/project_commands.py --images 60 --repeats 5
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

COMMANDS = ("init", "add", "select --picks", "tasks", "labels", "status --no-audit")
TARGET_S = 1.0
CLASSES = ",".join(str(digit) for digit in range(10))
# Tiny training: the model only has to exist for `select --picks`.
TRAIN_ARGS = ("--epochs", "1", "--width", "0.25", "--batch-size", "32")


def _kerasll():
    """The `kerasll` console script of this environment."""
    script = Path(sys.executable).with_name("kerasll")
    found = script if script.exists() else shutil.which("kerasll")
    if found is None:
        raise FileNotFoundError(
            "Expected the kerasll console script beside this Python or on PATH "
            f"(pip install -e .). Received: none beside {sys.executable}"
        )
    return str(found)


def _cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(*args):
    """Runs `kerasll ARGS...`; returns its wall and CPU (user + system) seconds.

    Python writes and reads its bytecode cache as in any install
    (PYTHONDONTWRITEBYTECODE is dropped); the untimed set-up warms it. The
    CPU time hardly depends on what else the machine runs; the wall time
    does.
    """
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONDONTWRITEBYTECODE"}
    cpu = _cpu_of_children()
    start = time.perf_counter()
    done = subprocess.run([_kerasll(), *map(str, args)], capture_output=True,
                          text=True, env=env)
    elapsed = time.perf_counter() - start
    cpu = _cpu_of_children() - cpu
    if done.returncode != 0:
        raise RuntimeError(
            f"Expected kerasll {' '.join(map(str, args))} to succeed. Received "
            f"exit code {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return elapsed, cpu


def _write_digits(folder, indices):
    """scikit-learn digits as 8x8 PNGs; returns {file name: label}."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    folder.mkdir(parents=True)
    truth = {}
    for index in indices:
        name = f"digit_{index:04d}.png"
        Image.fromarray(images[index]).save(folder / name)
        truth[name] = str(digits.target[index])
    return truth


def _labels_csv(tasks_csv, out, truth):
    """A filled-in `tasks --format csv` file: every row gets its true label."""
    import csv

    with open(tasks_csv, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row["label"] = truth[Path(row["path"]).name]
    with open(out, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def _base_project(root, images):
    """A project with one labeled round and a trained model, plus device picks."""
    truth = _write_digits(root / "dev1", range(images))
    truth.update(_write_digits(root / "dev2", range(images, 2 * images)))
    project = root / "base"
    _run("project", "init", project, "--classes", CLASSES)
    _run("project", "add", project, root / "dev1")
    _run("project", "select", project, "--k", images // 2, "--random")
    _run("project", "tasks", project, "--format", "csv")
    _run("project", "labels", project,
         _labels_csv(project / "tasks" / "round-1.csv", root / "labels-1.csv", truth))
    _run("project", "train", project, *TRAIN_ARGS)
    model = sorted((project / "models").glob("*/model.onnx"))[0]
    picks = root / "dev1-picks.csv"
    _run("score", model, root / "dev1", "--k", 4, "--audit", 30, "--out", picks,
         "--quiet")
    return project, picks, truth


def measure_project_commands(images=60, repeats=5):
    """Times each command once per repetition, each on a fresh project copy.

    Args:
        images: images per device (two devices; the first is labeled half).
        repeats: repetitions (the median is reported).

    Returns:
        Dict: per command the median, min and max wall seconds, whether the
        median meets the target, and the median CPU seconds; the load
        average before and after.
    """
    load_before = os.getloadavg()
    times = {command: [] for command in COMMANDS}
    cpu = {command: [] for command in COMMANDS}

    def timed(command, *args):
        wall, seconds = _run(*args)
        times[command].append(wall)
        cpu[command].append(seconds)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        base, picks, truth = _base_project(root, images)
        for repeat in range(repeats):
            fresh = root / f"init-{repeat}"
            timed("init", "project", "init", fresh, "--classes", CLASSES)
            project = root / f"round-{repeat}"
            shutil.copytree(base, project)
            timed("add", "project", "add", project, root / "dev2")
            timed("select --picks", "project", "select", project, "--k", 4,
                  "--picks", f"dev1={picks}")
            timed("tasks", "project", "tasks", project, "--format", "csv")
            labels = _labels_csv(project / "tasks" / "round-2.csv",
                                 root / f"labels-2-{repeat}.csv", truth)
            timed("labels", "project", "labels", project, labels)
            timed("status --no-audit", "project", "status", project, "--no-audit")
    rows = {}
    for command, seconds in times.items():
        median = statistics.median(seconds)
        rows[command] = {"median_s": round(median, 3), "min_s": round(min(seconds), 3),
                         "max_s": round(max(seconds), 3),
                         "under_target": median < TARGET_S,
                         "cpu_median_s": round(statistics.median(cpu[command]), 3)}
    return {"images_per_device": images, "repeats": repeats, "commands": rows,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def table(result):
    """The markdown table of `measure_project_commands`'s result."""
    lines = [f"| command | median wall s (of {result['repeats']}) | min | max | "
             f"< {TARGET_S:g} s | median CPU s (user + system) |",
             "|---|---|---|---|---|---|"]
    for command, row in result["commands"].items():
        lines.append(f"| kerasll project {command} | {row['median_s']:.3f} | "
                     f"{row['min_s']:.3f} | {row['max_s']:.3f} | "
                     f"{'yes' if row['under_target'] else 'no'} | "
                     f"{row['cpu_median_s']:.3f} |")
    load = result["loadavg_before"][0]
    cores = result.get("cores", os.cpu_count())  # as recorded by benchmarks/run.py
    lines += ["", f"The wall time follows the machine's load (a 1-minute load average of "
              f"{load:.1f} before the run, on {cores} cores); the CPU time "
              "(user + system) is what the command itself costs."]
    return "\n".join(lines)


def section_figures(data, folder):
    """RESULTS.md §6's figures: `measure_project_commands` at its defaults.

    Args:
        data: the CIFAR-10 npz (unused: the project holds digits).
        folder: the section's folder (unused: nothing but its figures is kept).

    Returns:
        `measure_project_commands`' answer.
    """
    return measure_project_commands()


def section_markdown(figures):
    """RESULTS.md §6 from `section_figures`' answer (`run.Section.markdown`)."""
    return f"""## 6. Wall time of the project commands that do not train

Command: `python benchmarks/project_commands.py --images \
{figures['images_per_device']} --repeats {figures['repeats']}`
— a digits project (two devices of {figures['images_per_device']} 8x8 images, one
labeled round, a trained model and device picks, built untimed), then per
repetition each command on a fresh copy, run as a user runs it: the
`kerasll` console script in a new process, start to exit. None of them imports \
TensorFlow
(tests/test_project_imports.py pins it). Target: under
{TARGET_S:g} s each. 1/5/15-minute load average before
{' / '.join(f'{v:.1f}' for v in figures['loadavg_before'])}, after
{' / '.join(f'{v:.1f}' for v in figures['loadavg_after'])}.

{table(figures)}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = measure_project_commands(args.images, args.repeats)
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
