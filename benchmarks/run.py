"""`make bench`: run every benchmark and write benchmarks/RESULTS.md.

Each section of RESULTS.md is a `Section`: its run, and its Markdown from
what the run recorded (issue 18). What a section records lives in its
committed folder `benchmarks/runs/<section>/`: `figures.json` (its figures,
with when it finished, how long it took and the load) and, for the sections
built on `kerasll simulate` (selection, detection, pose), each run's state
and results.csv, from which an interrupted run resumes and the tables are
built. `benchmarks/runs/machine.json` describes the machine of the last run.
The scoring run's models and pools are too large to commit: they go to the
git-ignored scratch folder `benchmarks/output/`.

    python benchmarks/run.py --out benchmarks/RESULTS.md    # make bench
    python benchmarks/run.py --sections scoring             # one section
    python benchmarks/run.py --report-only                  # render only

`--report-only` runs nothing: it renders RESULTS.md from the committed
folders, byte for byte the committed file (tests/test_benchmarks_report.py).
A section whose raw figures were not kept holds its text as recorded
(`figures.json`: `markdown`, `recorded_from`) until it is run again.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from kerasll_serving.atomic import write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pose  # noqa: E402
import selection  # noqa: E402

RUNS = HERE / "runs"
SCRATCH = HERE / "output"
FIGURES = "figures.json"
MACHINE = RUNS / "machine.json"
DEFAULT_DATA = os.environ.get(
    "KERASLL_DATA", str(HERE.parents[1] / "shared" / "data" / "cifar10.npz")
)


def machine():
    """One paragraph describing this machine and the software stack."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    import keras
    import onnxruntime
    import tensorflow as tf

    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, no GPU; {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}, onnxruntime "
        f"{onnxruntime.__version__}"
    )


def _recorded(out_dir):
    """A regime's description and cycle seconds, from its `state.json`."""
    from kerasll.active.state import ExperimentState

    state = ExperimentState.load(out_dir)
    runs = state.records(state.config["strategies"], state.config["trials"])
    return state.description, sum(record.seconds for record in runs)


def _seconds(folder, regimes):
    """The cycles' wall times recorded in the states of the regimes started."""
    return sum(_recorded(folder / regime.name)[1] for regime in regimes
               if (folder / regime.name / "state.json").is_file())


def _run_selection(data, folder):
    """Runs (or resumes) every regime in `folder/<regime>`; the states are
    the figures."""
    for name, regime in selection.REGIMES.items():
        selection.run_regime(regime, folder / name, data)
    return {}


def _read_selection(folder):
    """The selection section's figures: `figures.json` (if any), the folder
    of the regimes' states and their cycles' wall times."""
    return {**(read_figures(folder) or {}), "folder": str(folder),
            "seconds": _seconds(folder, selection.REGIMES.values())}


def _detection_figures(data, folder):
    """Runs (or resumes) the detection benchmark with its state in `folder`;
    keeps its tables and curves."""
    import detection
    from kerasll.active.curves import plot_curves
    from kerasll.active.summary import format_summary, per_cycle_table

    regime, out_dir = detection.DETECTION, folder
    records = selection.run_regime(regime, out_dir, data)
    metric = selection.regime_metric(regime)
    description, seconds = _recorded(out_dir)
    plot_curves(records, HERE / "curves-detection.png", title=regime.title,
                metric=metric)
    return {
        "seconds": seconds,  # the cycles' wall times, as for selection
        "command": regime.shown_command(),
        "summary": format_summary(records, description, metric),
        "rank": per_cycle_table(
            records, "rank_accuracy", "Loss head's rank accuracy on the test scenes"
        ),
        "spearman": per_cycle_table(
            records, "head_spearman", "Loss head's Spearman with the true loss"
        ),
        "entropy_spearman": per_cycle_table(
            records, "entropy_spearman", "Detection entropy's Spearman with the true loss"
        ),
        "nms": detection.measure_nms(),
        "uncertainty": detection.measure_uncertainty_rankings(data),
    }


def _run_pose(data, folder):
    """Runs (or resumes) the pose benchmark and the weight measurement in
    `folder`; the states are the figures."""
    pose.run(folder, data)
    pose.measure_weights(folder / "weights", data)
    return {}


def _read_pose(folder):
    """The pose section's figures: `figures.json` (if any), the folder of
    its states and their cycles' wall times."""
    return {**(read_figures(folder) or {}), "folder": str(folder),
            "seconds": _seconds(folder, pose.REGIMES)}


def _pose_markdown(figures):
    folder = Path(figures["folder"])
    records, trials = pose.load(folder)
    return pose.markdown(records, trials, pose.read_weights(folder / "weights"))


def _head_cost_figures(data, folder):
    import head_cost

    models = ("small_cnn", "resnet18")
    return {"models": [head_cost.measure_head_cost(model) for model in models]}


def read_figures(folder):
    """A section's saved `figures.json`, or None before its first run."""
    path = Path(folder) / FIGURES
    return json.loads(path.read_text()) if path.is_file() else None


def run_section(section, data):
    """Runs one section and saves its figures in its folder.

    Args:
        section: a `Section`.
        data: the CIFAR-10 npz.

    Returns:
        The figures; `seconds` is the section's wall time unless it counts
        its own.
    """
    folder = RUNS / section.name
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    figures = section.run(data, folder)
    figures.setdefault("seconds", time.perf_counter() - start)
    figures["load_average"] = os.getloadavg()[1]  # 5-minute, at the end
    figures["cores"] = os.cpu_count()
    figures["finished"] = datetime.datetime.now().isoformat(timespec="minutes")
    write_text(folder / FIGURES, json.dumps(figures, indent=1) + "\n")
    return figures


def _summary_sections(summary):
    """summary.md of a regime without its title, headings two levels down."""
    lines = summary.splitlines()
    body = lines[lines.index("") + 1:] if lines and lines[0].startswith("# ") else lines
    return "\n".join("##" + line if line.startswith("## ") else line for line in body)


DETECTION_READING = """### What the detection run says

- **No strategy separates from random at these budgets.** From 500 to 1,250
  labeled scenes (mAP 0.13 -> 0.21, against the paper's 0.71 at 10,000 VOC
  images) every strategy ends within 0.006 mAP of `random` on average, with
  every Wilcoxon p at 0.31 or above (5 trials; the floor is 0.0625).
- **Joint training costs the detector what it cost the classifier.** On the
  same 500 random scenes and seed, the paper's joint schedule gives mAP 0.087
  against 0.132 without a head, and `learning_loss` has the lowest area under
  the curve (-0.020 against random, lower in all 5 trials, p = 0.062); it
  catches up by 1,250 scenes.
- **`learning_loss_safe` is the best of the five, by a hint.** Its detector is
  the plain one; its head earned 14% then 21% of the batches on its audits;
  it has the best mean final mAP (+0.005, 3/5 trials) and area (+0.003):
  within noise, as on CIFAR-10.
- **The head learns a task-agnostic signal; detection entropy does not.**
  The head's test rank accuracy rises from 0.52-0.54 to 0.58-0.61 and its
  Spearman with the per-image MultiBox loss from 0.04-0.17 to 0.30-0.37,
  while the mean entropy over an image's detections correlates negatively
  with that loss (Spearman -0.08 to -0.17): it ranks these scenes the wrong
  way round, and `entropy` is the one strategy behind random in 4 of 5 trials.
  The table above shows why: averaging over the detections (SSD keeps every
  box above a 0.01 score) turns every measure negative, taking the max makes
  them weakly positive (+0.05 to +0.09), and the plain object count (+0.31)
  ranks better than any of them; the head reaches +0.30 to +0.37. The
  benchmark keeps the paper's mean; `DetectionTask(reduction="max")` is the
  other choice.
"""


def _uncertainty_rankings_markdown(figures):
    rows = "\n".join(f"| {name} | {rho:+.3f} |" for name, rho in figures["spearman"].items())
    return f"""### Which per-image uncertainty ranks scenes by their loss?

One detector without a head, trained with the benchmark's recipe on
{figures['scenes']:,} random pool scenes (seed 0; test mAP@0.5
{figures['map']:.3f}), scored on the 500 test scenes: Spearman of each
per-image score with the true per-image MultiBox loss
(`benchmarks/detection.py: measure_uncertainty_rankings`, run by the same
command). The benchmark's `entropy` is the first row (the paper's
detection baseline averages over the detected boxes).

| per-image score (measure, reduction over detections) | Spearman with the loss |
|---|---|
{rows}
"""


def _detection_markdown(figures):
    import detection

    regime = detection.DETECTION
    deviations = "\n".join(f"- {line}" for line in regime.deviations)
    return "\n".join([
        "## 5. Detection: does the head generalise beyond classification?",
        "",
        "The paper's second experiment (SSD on PASCAL VOC: learning loss 0.7338 "
        "mAP, entropy 0.7222, core-set 0.7171, random 0.7117 at 10k images) at "
        "CPU scale. Command: `python benchmarks/run.py --sections detection` "
        "(runs `python benchmarks/detection.py`; an interrupted run resumes), i.e.",
        "",
        f"    {figures['command']}",
        "",
        f"({figures['seconds'] / 60:.0f} min: the cycles' wall times added up.) "
        "Every strategy shares each trial's initial scenes, training seeds and "
        "candidate subsets; p-values are two-sided Wilcoxon signed-rank tests of "
        "the per-trial differences to `random`.",
        "",
        "Deviations from the paper's protocol (PAPER.md):",
        deviations,
        "",
        _summary_sections(figures["summary"]).replace("\n#### ", "\n### "),
        "",
        "\n".join("#" + line if line.startswith("## ") else line
                  for line in figures["rank"] + figures["spearman"]
                  + figures["entropy_spearman"]),
        "",
        "Rank accuracy: share of the test pairs (i, n-1-i) the head orders like "
        "the true per-image MultiBox loss (0.5 = chance); Spearman over all test "
        "scenes. Strategies without a head have none.",
        "",
        "NMS runs in numpy outside the graph (the same code behind Keras and the "
        "device scorer, `kerasll_serving.detections`): decoding and SSD's "
        f"per-class NMS took {figures['nms']['ms_per_image']:.1f} ms per image "
        f"({figures['nms']['boxes']} default boxes, {figures['nms']['classes']} "
        "classes, random logits so that every box passes the 0.01 score "
        f"threshold: the worst case; best of 3 over {figures['nms']['images']} "
        "images, measured after the runs).",
        "",
        "![mAP vs labeled scenes](curves-detection.png)",
        "",
        _uncertainty_rankings_markdown(figures["uncertainty"]),
        "",
        DETECTION_READING,
    ])


def _loop_cost_markdown(figures):
    import loop_cost

    rates = figures["images_per_s"]
    base = rates["keras_fit_arrays"]
    rows = "\n".join(
        f"| {name} | {rates[name]:.0f} | {rates[name] / base:.2f} |"
        for name in loop_cost.VARIANTS
    )
    return f"""## 2. Cost of the simulate loop

Command: `python benchmarks/loop_cost.py` — {figures['model']}, {figures['images']:,}
images x {figures['epochs']} epochs per fit, batch {figures['batch_size']}; whole fits
timed (model build, compile and tracing included, as every cycle pays them),
{figures['rounds']} alternating rounds in one process, medians.

| variant | images/s | vs plain fit |
|---|---|---|
{rows}

`keras_fit_arrays`: plain `keras.Model.fit` on in-memory float arrays, no
augmentation. `loop_*`: `kerasll.active.training.train_model`, what each
simulate cycle runs (seeded tf.data pipeline, pad-crop-flip augmentation per
image): without the head, with the head but no augmentation, and as
learning loss trains. Target for `loop_learning_loss`: 0.9 of the plain fit.
"""


def _head_cost_markdown(figures):
    rows = "\n".join(
        f"| {m['model']} | {len(m['taps'])} ({', '.join(m['taps'])}) | "
        f"{m['plain_images_per_s']:.0f} | {m['learner_images_per_s']:.0f} | "
        f"{100 * m['overhead']:+.1f}% |"
        for m in figures["models"]
    )
    return f"""## 3. Cost of the head

Command: `python benchmarks/head_cost.py` — the same backbone trained with plain
`keras.Model.fit` and as a `LossLearner` (head + ranking loss), alternating
3 timed rounds of 20 steps (batch 128, 32x32x3, after 2 warm-up steps) in one
process; medians reported. Target: under 10%. A negative cost means the
difference is smaller than this machine's run-to-run noise at the load
average given below.

| backbone | taps | plain images/s | with head images/s | head cost |
|---|---|---|---|---|
{rows}
"""


def _scoring_markdown(figures):
    import scoring

    def row(name, entry):
        if entry["refused"]:
            return (f"| kerasll-score {name} | refused: {scoring.refusal(entry)} | "
                    "- | - | - | - | - |")
        extra = (
            f"{entry['top10_overlap_vs_fp32']:.3f} | {entry['spearman_vs_fp32']:.4f}"
            if "top10_overlap_vs_fp32" in entry else "- | -"
        )
        return (f"| kerasll-score {name} | {entry['images_per_s']:.0f} | "
                f"{entry['ratio_to_keras']:.2f}x | {entry['ratio_to_fastest_tf']:.2f}x | "
                f"{entry['file_mib']:.2f} | {extra} |")

    memory = "\n".join(
        f"| {name} | {figures[f'memory_{key}_mib']['VmRSS']:.0f} | "
        f"{figures[f'memory_{key}_mib']['RssAnon']:.0f} |"
        for name, key in (("10,000", "pool10k"), ("100,000", "pool100k"))
    )
    gflops = ", ".join(f"{p} {v:.1f}" for p, v in figures["achieved_gflops"].items())
    peak = figures["matmul_peak_gflops"]
    sizes = ""
    if "installed_serving_mib" in figures:
        sizes = (f"| installed size of a fresh environment (MiB) | "
                 f"{figures['installed_serving_mib']:.0f} | "
                 f"{figures['installed_tensorflow_mib']:.0f} |\n")
    return f"""## 4. Scoring on a device (CPU)

Command: `python benchmarks/run.py --sections scoring` (runs
`python benchmarks/scoring.py --seed N` once per run) — a small-CNN learner trained
{figures['train_epochs']} epochs on {figures['train_images']:,} CIFAR-10 images, exported
with raw uint8 input; pool = the {figures['pool']:,} CIFAR-10 test images as a `.npy`.
`kerasll-score` figures are `PoolScorer.score` (what the CLI runs; CPU provider,
batch 256); Keras is `LossLearner.predict_loss` (batch 256) and
`tf.function` a traced call of the scoring graph, on the same pool. The
paths of one model are timed side by side: each is warmed up, then in every
round each path scores the same first pool images once, in an order rotated
from round to round; images/s is the median over rounds, and a ratio is
taken within each round, reported as its median over rounds (with the
interquartile range in the table of both models below), so a change of load
during the run hits the paths compared alike. {scoring.timing_note(figures)}

| path | images/s | vs Keras predict_loss | vs fastest TensorFlow path | file MiB | top-10% overlap vs fp32 | Spearman vs fp32 |
|---|---|---|---|---|---|---|
| Keras predict_loss | {figures['keras_images_per_s']:.0f} | 1.00x | {figures['keras_images_per_s'] / figures['fastest_tf_images_per_s']:.2f}x | - | - | - |
| tf.function of the scoring graph | {figures['tf_function_images_per_s']:.0f} | {figures['tf_function_images_per_s'] / figures['keras_images_per_s']:.2f}x | {figures['tf_function_images_per_s'] / figures['fastest_tf_images_per_s']:.2f}x | - | - | - |
{row('fp32', figures['fp32'])}
{row('fp16', figures['fp16'])}
{row('int8', figures['int8'])}

fp32 ONNX vs Keras, max abs difference of predicted loss over the pool:
{figures['fp32']['max_abs_diff_vs_keras']:.2e}.

Both models side by side in run 1 (seed 0), MobileNetV2 with every int8
setting exported alone (images/s against each model's own fp32 graph; the
figures above are run 1's too):

{scoring.table(figures)}

{scoring.spread(figures)}

Peak memory of `kerasll-score` (whole process; VmRSS counts the memory-mapped
pool pages the kernel keeps resident, RssAnon is the process's own memory):

| pool items | peak VmRSS MiB | peak RssAnon MiB |
|---|---|---|
{memory}

What a device pays before the first score:

| | kerasll-serving | TensorFlow + .keras |
|---|---|---|
| cold start: process start to 256 items scored and written (s, best of 3) | {figures['cold_start_serving_s']:.2f} | {figures['cold_start_keras_s']:.2f} |
{sizes}
Arithmetic: the graph costs {figures['model_mflops_per_image']:.1f} MFLOP per image (Conv/Gemm/MatMul);
achieved GFLOP/s: {gflops}; fastest path: {figures['best_path']}. This machine's
float32 matmul peak (2048x2048; numpy BLAS {peak['numpy']:.1f}, onnxruntime MLAS
{peak['onnxruntime']:.1f}) is {peak['peak']:.1f} GFLOP/s: the fp32 path runs at
{100 * figures['achieved_gflops']['fp32'] / peak['peak']:.0f}% of it (above 100% means a 2048x2048 matmul is not a
tight bound for small convolutions on this CPU). The int8 path
computes in 8-bit integers (VNNI), so its equivalent rate can exceed the float32 peak.
The installed size of kerasll-serving is dominated by onnxruntime-gpu (its CUDA
provider libraries); a CPU-only device using the `onnxruntime` wheel installs less.
"""


def _stream_memory_figures(data, folder):
    """Peak RSS of stream selection, in a process of its own (no TensorFlow)."""
    script = HERE.parent / "serving" / "benchmarks" / "stream_memory.py"
    done = subprocess.run([sys.executable, str(script), "--json"], check=True,
                          capture_output=True, text=True)
    return {"milestones": json.loads(done.stdout)}


def _stream_memory_markdown(figures):
    rows = "\n".join(
        f"| {row['items']:,} | {row['kept']:,} | {100 * row['share']:.2f}% | "
        f"{row['threshold']:.3f} | {row['peak_rss_mib']:.1f} |"
        for row in figures["milestones"])
    return f"""### 4.1 Memory of stream selection (`kerasll-score --stream`)

Command: `python serving/benchmarks/stream_memory.py` — synthetic predicted
losses (N(0, 1), shifted by +1 halfway) through a `StreamSelector` (rate
0.01, window 2,000, audit sample of 100) in batches of 256, as
`kerasll-score --stream` feeds it; peak resident memory of the process
(numpy and kerasll-serving only, no model) after each milestone. Flat
means the selector's memory does not grow with the stream.

| items seen | kept | share kept | threshold | peak RSS MiB |
|---|---|---|---|---|
{rows}
"""


def _project_commands_markdown(figures):
    import project_commands

    return f"""## 6. Wall time of the project commands that do not train

Command: `python benchmarks/project_commands.py --images {figures['images_per_device']} --repeats {figures['repeats']}`
— a digits project (two devices of {figures['images_per_device']} 8x8 images, one
labeled round, a trained model and device picks, built untimed), then per
repetition each command on a fresh copy, run as a user runs it: the
`kerasll` console script in a new process, start to exit. None of them imports TensorFlow
(tests/test_project_imports.py pins it). Target: under
{project_commands.TARGET_S:g} s each. 1/5/15-minute load average before
{' / '.join(f'{v:.1f}' for v in figures['loadavg_before'])}, after
{' / '.join(f'{v:.1f}' for v in figures['loadavg_after'])}.

{project_commands.table(figures)}
"""


# The scoring run whose MobileNetV2 models the int8 profile reads (scratch).
PROFILED_RUN = SCRATCH / "scoring" / "run1"
PROFILE_OPTIONS = {"upscale": 3, "batches": 9, "batch_size": 256, "threads": 1}


def _int8_profile_figures(data, folder):
    """Profiles the scoring run's MobileNetV2 fp32 and int8 models per op type."""
    import int8_profile

    return int8_profile.measure(PROFILED_RUN / "mobilenet-fp32.onnx",
                                PROFILED_RUN / "mobilenet-int8.onnx",
                                PROFILED_RUN / "pool10k.npy", **PROFILE_OPTIONS)


def _int8_profile_markdown(figures):
    import int8_profile

    options = " ".join(f"--{key.replace('_', '-')} {value}"
                       for key, value in PROFILE_OPTIONS.items())
    run = PROFILED_RUN.relative_to(HERE.parent)
    return f"""**Where MobileNetV2's fp32 and int8 graphs spend their time.** Profiled
with onnxruntime's own profiler on run 1's saved models (each node's median
over the batches after a warm-up, the two sessions run batch by batch in
turn, `ORT_ENABLE_ALL` as the scorer):
`python benchmarks/int8_profile.py {run}/mobilenet-fp32.onnx
{run}/mobilenet-int8.onnx --pool {run}/pool10k.npy {options}`

{int8_profile.markdown(figures)}
"""


def _measured(figures):
    """The line saying when a section was measured, how long it took and at
    what load; a recorded line where one was written by hand."""
    if "measured" in figures:
        return figures["measured"]
    load = figures.get("load_average")
    load_note = (f"; 5-minute load average at the end {load:.1f} on "
                 f"{figures['cores']} cores" if load is not None else "")
    return (f"(Measured {figures['finished']}, {figures['seconds'] / 60:.1f} "
            f"min{load_note}.)")


@dataclasses.dataclass(frozen=True)
class Section:
    """One benchmark section of RESULTS.md: how it runs and how it reads.

    Attributes:
        name: its key (`--sections`) and folder (`benchmarks/runs/<name>/`).
        run: (data, folder) -> figures (a JSON-friendly dict), saved as the
            folder's `figures.json`; the sections built on `kerasll
            simulate` keep their runs' states in the folder too.
        markdown: figures -> its RESULTS.md text.
        read: folder -> figures, or None before the first run; by default
            the folder's `figures.json`.
    """

    name: str
    run: Callable
    markdown: Callable
    read: Callable = read_figures

    def text(self, figures):
        """The section's RESULTS.md text from its figures.

        Figures that hold only the section's recorded text (`markdown`,
        `recorded_from`: its raw figures were not kept) give that text and
        where it was recorded from.
        """
        if "recorded_from" in figures:
            return (f"{figures['markdown'].strip()}\n\n(Recorded from "
                    f"{figures['recorded_from']}; `python benchmarks/run.py "
                    f"--sections {self.name}` measures it again and replaces this "
                    "text.)")
        measured = (_measured(figures) if "finished" in figures or "measured" in figures
                    else None)
        return "\n\n".join(filter(None, [self.markdown(figures).strip(), measured]))


SECTIONS = (
    Section("selection", _run_selection,
            lambda figures: selection.section_markdown(Path(figures["folder"])),
            _read_selection),
    Section("loop_cost", lambda data, folder: _import("loop_cost").measure_loop_cost(),
            _loop_cost_markdown),
    Section("head_cost", _head_cost_figures, _head_cost_markdown),
    Section("scoring",
            lambda data, folder: _import("scoring").run_repeated(
                data, SCRATCH / "scoring"),
            _scoring_markdown),
    Section("int8_profile", _int8_profile_figures, _int8_profile_markdown),
    Section("stream_memory", _stream_memory_figures, _stream_memory_markdown),
    Section("detection", _detection_figures, _detection_markdown),
    Section("project_commands",
            lambda data, folder: _import("project_commands").measure_project_commands(),
            _project_commands_markdown),
    Section("pose", _run_pose, _pose_markdown, _read_pose),
)


def render():
    """RESULTS.md text from what the sections' folders hold (nothing is run)."""
    recorded = json.loads(MACHINE.read_text()) if MACHINE.is_file() else {}
    parts = [
        "# Benchmark results",
        "",
        f"Machine: {recorded.get('machine', 'not recorded')}.",
        "",
        "Reproduce everything with `make bench` (= `python benchmarks/run.py --out "
        "benchmarks/RESULTS.md`); each section's command is given below. CIFAR-10 "
        "is read from `$KERASLL_DATA` or `../shared/data/cifar10.npz`.",
    ]
    saved = {section.name: section.read(RUNS / section.name) for section in SECTIONS}
    timed = [figures["seconds"] for figures in saved.values()
             if figures and "seconds" in figures]
    if timed:
        parts.append(f"\nTime of the sections below, added up: {sum(timed) / 60:.0f} "
                     "min (the selection regimes' cycle times, recorded while two or "
                     "three runs shared the cores, plus each other section's wall time; "
                     "a section recorded as text, its raw figures not kept, gives its "
                     "own).")
    for section in SECTIONS:
        figures = saved[section.name]
        parts += ["", section.text(figures) if figures
                  else f"## {section.name}: not run yet"]
    return "\n".join(parts) + "\n"


def _import(name):
    """A benchmark module, imported when a section runs (some import TensorFlow)."""
    import importlib

    return importlib.import_module(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--sections", default=",".join(s.name for s in SECTIONS))
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: render from benchmarks/runs/")
    parser.add_argument("--retime-scoring", action="store_true",
                        help="scoring: only re-measure the speeds of its finished runs.")
    args = parser.parse_args()
    if not args.report_only:
        if not Path(args.data).is_file():
            sys.exit(f"CIFAR-10 npz not found at {args.data}; set KERASLL_DATA or --data")
        sections = {section.name: section for section in SECTIONS}
        if args.retime_scoring:
            sections["scoring"] = dataclasses.replace(
                sections["scoring"], run=lambda data, folder: _import(
                    "scoring").run_repeated(data, SCRATCH / "scoring", retime=True))
        names = args.sections.split(",")
        unknown = [name for name in names if name not in sections]
        if unknown:
            sys.exit(f"unknown sections {unknown}; expected some of {list(sections)}")
        for name in names:
            run_section(sections[name], args.data)
            write_text(MACHINE, json.dumps({"machine": machine()}, indent=1) + "\n")
    text = render()
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
