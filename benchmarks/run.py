"""`make bench`: run every benchmark and write benchmarks/RESULTS.md.

Each section saves its raw figures to benchmarks/output/<section>.json, so
RESULTS.md can be re-rendered (`--report-only`) or one section rerun
(`--sections scoring`) without repeating the others.

    python benchmarks/run.py --out benchmarks/RESULTS.md
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import head_cost  # noqa: E402
import scoring  # noqa: E402
import selection  # noqa: E402

SECTIONS = ("selection", "head_cost", "scoring")
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


def run_section(name, data, output):
    """Runs one section and saves its figures as JSON."""
    start = time.perf_counter()
    if name == "selection":
        out_dir = output / "selection"
        resume = (out_dir / "state.json").exists()
        subprocess.run(selection.simulate_command(out_dir, data, resume=resume), check=True)
        figures = {"tables": selection.tables(
            selection.read_results(out_dir / "results.csv"))}
        shutil.copyfile(out_dir / "curves.png", HERE / "curves-cifar10-cpu.png")
    elif name == "head_cost":
        figures = {"models": [head_cost.measure_head_cost(m) for m in ("small_cnn", "resnet18")]}
    else:
        figures = scoring.run(data, output / "scoring")
    figures["seconds"] = time.perf_counter() - start
    figures["load_average"] = os.getloadavg()[1]  # 5-minute, at the end
    figures["finished"] = datetime.datetime.now().isoformat(timespec="minutes")
    (output / f"{name}.json").write_text(json.dumps(figures, indent=1))
    return figures


def _selection_markdown(figures):
    protocol = " ".join(f"{k} {v}" for k, v in selection.CPU_PROTOCOL.items())
    return f"""## 1. Selection quality on real CIFAR-10

Command: `python benchmarks/selection.py` (runs `kerasll simulate --dataset cifar10
--strategies {selection.STRATEGIES} {protocol}`); wall time {figures['seconds'] / 60:.0f} min.
The paper's full settings run from the same script with `--full` (a GPU job).

Deviations from the paper's protocol (see `../shared/PAPER.md`), all to fit 2
CPU cores in about an hour:
- model: the CPU-sized CNN at half width instead of ResNet-18;
- initial set 500, budget K = 500, subset M = 5,000 (the paper's 1,000 / 1,000
  / 10,000 halved together), 5 cycles (500 -> 2,500 labels) instead of 10;
- 12 epochs per cycle instead of 200, with the schedule's shape kept: lr 0.1
  dropped 10x at 80% of the epochs, head detached at 60%;
- 3 trials instead of 5; each cycle retrains from scratch (the fairer option;
  the paper's code warm-starts). Augmentation (4-pixel-pad random crop and
  horizontal flip) is on. The CIFAR-10 copy is JPEG-decoded (see its README),
  so absolute accuracies are not comparable with published numbers.

{figures['tables']}

How to read it: at these budgets (500-2,500 labels, 12 epochs) the head's rank
accuracy stays near 0.6, far from what it reaches with the paper's 200 epochs,
and top-K by a weak ranker picks hard, redundant items; the paired difference to
`random` in the table above is the figure to judge the method by at this scale.
The paper's regime (ResNet-18, 1k-10k labels, 200 epochs) is the `--full` run.

![accuracy vs labels](curves-cifar10-cpu.png)

(`curves-cifar10-cpu.png` is copied from `benchmarks/output/selection/curves.png`.)
"""


def _head_cost_markdown(figures):
    rows = "\n".join(
        f"| {m['model']} | {len(m['taps'])} ({', '.join(m['taps'])}) | "
        f"{m['plain_images_per_s']:.0f} | {m['learner_images_per_s']:.0f} | "
        f"{100 * m['overhead']:+.1f}% |"
        for m in figures["models"]
    )
    return f"""## 2. Cost of the head

Command: `python benchmarks/head_cost.py` — the same backbone trained with plain
`keras.Model.fit` and as a `LossLearner` (head + ranking loss), alternating
3 timed rounds of 20 steps (batch 128, 32x32x3, after 2 warm-up steps) in one
process; medians reported. Target: under 10%.

| backbone | taps | plain images/s | with head images/s | head cost |
|---|---|---|---|---|
{rows}
"""


def _scoring_markdown(figures):
    def row(name, entry):
        extra = (
            f"{entry['top10_overlap_vs_fp32']:.3f} | {entry['spearman_vs_fp32']:.4f}"
            if "top10_overlap_vs_fp32" in entry else "- | -"
        )
        return (f"| kerasll-score {name} | {entry['images_per_s']:.0f} | "
                f"{entry['ratio_to_keras']:.2f}x | {entry['file_mib']:.2f} | {extra} |")

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
    return f"""## 3. Scoring on a device (CPU)

Command: `python benchmarks/scoring.py` — a small-CNN learner trained
{figures['train_epochs']} epochs on {figures['train_images']:,} CIFAR-10 images, exported
with raw uint8 input; pool = the {figures['pool']:,} CIFAR-10 test images as a `.npy`.
`kerasll-score` figures are `PoolScorer.score` (what the CLI runs; CPU provider,
batch 256); Keras is `LossLearner.predict_loss` (batch 256) on the same pool.

| path | images/s | vs Keras | file MiB | top-10% overlap vs fp32 | Spearman vs fp32 |
|---|---|---|---|---|---|
| Keras predict_loss | {figures['keras_images_per_s']:.0f} | 1.00x | - | - | - |
{row('fp32', figures['fp32'])}
{row('fp16', figures['fp16'])}
{row('int8', figures['int8'])}

fp32 ONNX vs Keras, max abs difference of predicted loss over the pool:
{figures['fp32']['max_abs_diff_vs_keras']:.2e}.

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


def render(output):
    """RESULTS.md text from the saved section figures."""
    parts = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}.",
        "",
        "Reproduce everything with `make bench` (= `python benchmarks/run.py --out "
        "benchmarks/RESULTS.md`); each section's command is given below. CIFAR-10 "
        "is read from `$KERASLL_DATA` or `../shared/data/cifar10.npz`.",
    ]
    saved = [json.loads((output / f"{n}.json").read_text())
             for n in SECTIONS if (output / f"{n}.json").exists()]
    if saved:
        total = sum(figures["seconds"] for figures in saved) / 60
        parts.append(f"\nWall time of the sections below, added up: {total:.0f} min.")
    renderers = {"selection": _selection_markdown, "head_cost": _head_cost_markdown,
                 "scoring": _scoring_markdown}
    for name in SECTIONS:
        path = output / f"{name}.json"
        if path.exists():
            figures = json.loads(path.read_text())
            load = figures.get("load_average")
            load_note = (f"; 5-minute load average at the end {load:.1f} on "
                         f"{os.cpu_count()} cores" if load is not None else "")
            parts += ["", renderers[name](figures).strip(),
                      f"\n(Measured {figures['finished']}, {figures['seconds'] / 60:.1f} "
                      f"min{load_note}.)"]
        else:
            parts += ["", f"## {name}: not run yet"]
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    output = HERE / "output"
    output.mkdir(exist_ok=True)
    if not args.report_only:
        if not Path(args.data).is_file():
            sys.exit(f"CIFAR-10 npz not found at {args.data}; set KERASLL_DATA or --data")
        for name in args.sections.split(","):
            if name not in SECTIONS:
                sys.exit(f"unknown section {name!r}; expected one of {list(SECTIONS)}")
            run_section(name, args.data, output)
    text = render(output)
    temporary = Path(args.out).with_suffix(".md.tmp")
    temporary.write_text(text)
    os.replace(temporary, args.out)
    print(text)


if __name__ == "__main__":
    main()
