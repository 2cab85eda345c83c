"""How fast, how big and how hungry is scoring a pool on a device?

One run measures, side by side in one process on the same trained learner
and the same 10,000 CIFAR-10 test images:
- images/s of Keras `predict_loss`, of a `tf.function` of the scoring graph,
  and of `PoolScorer` (what `kerasll-score` runs) for the fp32, fp16 and int8
  exports, on the CPU. Every path is warmed up on the very same pool (so the
  last, shorter batch is traced before timing) and reported as the best of
  `--repetitions` timed runs; ratios are against Keras `predict_loss` and
  against the fastest TensorFlow path;
- top-10% overlap, Kendall tau and Spearman correlation of fp16/int8
  against fp32; a precision whose export is refused (its ranking fell below
  the bar) is a row that says so, with the figures the export measured;
- the same for MobileNetV2 (alpha 0.35, 96x96: the CIFAR-10 images upsampled
  3x by pixel repetition), with every int8 setting of
  `kerasll.export.INT8_SETTINGS` exported alone and scored side by side,
  beside the one `to_onnx` chose, images/s as a ratio to its fp32 graph;
- peak memory of `kerasll-score` on a 10,000 and a 100,000 item `.npy` pool;
- cold start (process start to a first batch scored and written) of
  `kerasll-score` vs TensorFlow loading the `.keras` model;
- installed size of a fresh environment with only `kerasll-serving` vs one
  with TensorFlow and Keras;
- achieved GFLOP/s of the best path against this machine's matmul peak.

`run_repeated` (what `benchmarks/run.py --sections scoring` runs) repeats
the whole benchmark from scratch, each run a new process with its own seed
(training images, initial weights, calibration images), and `spread`
reports the range of every precision's ratio to fp32, overlap and tau over
the runs, with each run's load average: one lucky run cannot carry a claim,
and on a shared machine ratios measured side by side are the claim.

    python benchmarks/scoring.py --out benchmarks/output/scoring [--seed 0]
"""

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from flops import graph_flops, matmul_peak_gflops

BIN = Path(sys.executable).parent


MOBILENET_ALPHA = 0.35
MOBILENET_UPSCALE = 3  # 32x32 CIFAR-10 -> 96x96


def _train_learner(x, y, epochs, seed, model="small_cnn", width=1.0):
    import keras

    from kerasll import LossLearner
    from kerasll.models import build_model

    keras.utils.set_random_seed(seed)
    learner = LossLearner(build_model(model, x.shape[1:], 10, width=width))
    learner.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    learner.fit(x.astype("float32"), y, epochs=epochs, batch_size=128, verbose=0)
    return learner


def _best_rate(score, count, repetitions):
    """Images/s of `score()` over `count` images: a warm-up, then the best run.

    Args:
        score: a callable scoring the whole pool once.
        count: images it scores.
        repetitions: timed runs after the warm-up.

    Returns:
        `count / fastest run's seconds`.
    """
    score()  # Warm-up on the same shapes: traces, allocations, thread pools.
    seconds = []
    for _ in range(repetitions):
        start = time.perf_counter()
        score()
        seconds.append(time.perf_counter() - start)
    return count / min(seconds)


def _tf_function_scorer(learner, pixels, batch_size):
    """A callable scoring `pixels` with a `tf.function` of the scoring graph.

    One trace serves every batch size (the batch axis is None in the
    signature), so the last, shorter batch does not trace again.
    """
    import tensorflow as tf

    graph = learner.scoring_model()
    spec = tf.TensorSpec((None, *pixels.shape[1:]), tf.float32)

    @tf.function(input_signature=[spec])
    def predicted_loss(x):
        return graph(x, training=False)["predicted_loss"]

    def score():
        return np.concatenate([
            predicted_loss(pixels[start:start + batch_size]).numpy()
            for start in range(0, len(pixels), batch_size)
        ])

    return score


def _scores_in_pool_order(result, size):
    scores = np.full(size, np.nan)
    for pick in result.picks:
        scores[pick.index] = pick.predicted_loss
    return scores


def _peak_memory(command):
    """Runs a command, sampling its VmRSS and RssAnon; returns peaks in MiB."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {"VmRSS": 0, "RssAnon": 0}

    def sample():
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    key = line.split(":")[0]
                    if key in peaks:
                        peaks[key] = max(peaks[key], int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{command} failed: {stderr.decode()[-500:]}")
    return {key: value / 1024 for key, value in peaks.items()}


def _wall(command, env=None):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def _installed_size(packages, workdir):
    """MiB of site-packages of a fresh venv with `packages` installed."""
    venv = Path(workdir) / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", *packages], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    shutil.rmtree(venv)
    return total / 2**20


def _export_and_score(learner, path, pool_path, repetitions, **options):
    """Exports `learner` to `path` and scores the pool with `PoolScorer`.

    Args:
        learner: the trained learner.
        path: the .onnx file to write.
        pool_path: the pool as a `.npy` of raw uint8 images.
        repetitions: timed runs after the warm-up.
        **options: `to_onnx` keyword arguments (`precision`, data, bars...).

    Returns:
        A dict: `refused` (bool); when refused, the export's `reason` and the
        `trials` it measured (setting, top-10% overlap, Kendall tau on the
        verification items); otherwise `images_per_s`, `file_mib`,
        `export_report`, `int8_setting`, `int8_trials`, and `scores` (the
        pool's predicted losses in pool order).
    """
    from kerasll_serving import PoolScorer
    from kerasll_serving.errors import first_line

    from kerasll.export import RankingError, to_onnx

    try:
        report = to_onnx(learner, path, raw_input_dtype="uint8", **options)
    except RankingError as error:
        return {"refused": True, "reason": first_line(error),
                "trials": [dataclasses.asdict(trial) for trial in error.trials]}
    scorer = PoolScorer(path, providers="cpu", batch_size=256)
    count = len(np.load(pool_path, mmap_mode="r"))
    scores = _scores_in_pool_order(scorer.score(pool_path, k=count), count)
    return {
        "refused": False,
        "scores": scores,
        "images_per_s": _best_rate(lambda: scorer.score(pool_path, k=count), count,
                                   repetitions),
        "file_mib": path.stat().st_size / 2**20,
        "export_report": str(report),
        "int8_setting": report.int8_setting,
        "int8_trials": [dataclasses.asdict(trial) for trial in report.int8_trials],
    }


def _compare(entry, fp32_scores, fp32_rate):
    """Adds the pool figures of `entry` (scored) against fp32, in place."""
    from kerasll.export.verify import kendall_tau, spearman, top_overlap

    scores = entry.pop("scores")
    entry["top10_overlap_vs_fp32"] = top_overlap(fp32_scores, scores)
    entry["kendall_tau_vs_fp32"] = kendall_tau(fp32_scores, scores)
    entry["spearman_vs_fp32"] = spearman(fp32_scores, scores)
    entry["ratio_to_fp32"] = entry["images_per_s"] / fp32_rate


def _mobilenet_rows(data, out_dir, epochs, train_size, seed, repetitions):
    """MobileNetV2 (alpha 0.35, 96x96) fp32, fp16, int8 and every int8 setting.

    Trained like the small CNN (same images, upsampled), scored on the
    10,000 test images upsampled; calibration and verification data as for
    the small CNN. int8 is exported once as `to_onnx` chooses (default
    settings and bars), then once per setting with no bar, so that each
    setting's speed and pool figures are measured side by side.

    Returns:
        A dict: `fp32`, `fp16`, `int8` and `int8_settings` (setting name ->
        entry), each entry as `_export_and_score` returns it, compared with
        fp32 on the pool (`ratio_to_fp32`, `top10_overlap_vs_fp32`,
        `kendall_tau_vs_fp32`, `spearman_vs_fp32`); plus the model's
        `alpha`, `input_size` and `train_seconds`.
    """
    from kerasll.export import INT8_SETTINGS

    def upscale(images):
        return np.ascontiguousarray(np.repeat(
            np.repeat(images, MOBILENET_UPSCALE, axis=1), MOBILENET_UPSCALE, axis=2))

    rng = np.random.default_rng(seed)
    train = rng.permutation(len(data["x_train"]))[:train_size]
    calibration = upscale(
        data["x_train"][rng.permutation(len(data["x_train"]))[:512]])
    start = time.perf_counter()
    learner = _train_learner(upscale(data["x_train"][train]), data["y_train"][train],
                             epochs, seed, model="mobilenet_v2", width=MOBILENET_ALPHA)
    rows = {"alpha": MOBILENET_ALPHA, "input_size": 32 * MOBILENET_UPSCALE,
            "train_seconds": time.perf_counter() - start}
    pool = upscale(data["x_test"])
    pool_path = out_dir / "pool10k-96px.npy"
    np.save(pool_path, pool)
    common = {"verify_data": pool[:512]}
    fp32 = _export_and_score(learner, out_dir / "mobilenet-fp32.onnx", pool_path,
                             repetitions, precision="fp32", **common)
    fp32_scores = fp32.pop("scores")
    fp32["ratio_to_fp32"] = 1.0
    rows["fp32"] = fp32
    chosen = {
        "fp16": {"precision": "fp16"},
        "int8": {"precision": "int8", "calibration_data": calibration},
    }
    for name, options in chosen.items():
        entry = _export_and_score(learner, out_dir / f"mobilenet-{name}.onnx",
                                  pool_path, repetitions, **options, **common)
        if not entry["refused"]:
            _compare(entry, fp32_scores, fp32["images_per_s"])
        rows[name] = entry
    rows["int8_settings"] = {}
    for index, setting in enumerate(INT8_SETTINGS):
        entry = _export_and_score(
            learner, out_dir / f"mobilenet-int8-setting{index}.onnx", pool_path,
            repetitions, precision="int8", calibration_data=calibration,
            int8_settings=[setting], min_top_overlap=0.0, min_kendall_tau=-1.0,
            **common)
        if not entry["refused"]:  # only a NaN figure can refuse it
            _compare(entry, fp32_scores, fp32["images_per_s"])
            entry["verification"] = entry.pop("int8_trials")[-1]
        rows["int8_settings"][setting.name] = entry
    pool_path.unlink()
    return rows


def refusal(entry):
    """What a refused export's row says: the figures of every setting tried."""
    figures = "; ".join(
        f"{trial['setting']}: overlap {trial['top_overlap']:.3f}, "
        f"tau {trial['kendall_tau']:.3f}" for trial in entry["trials"])
    return f"ranking below the bar on the verification items ({figures})"


def table(results):
    """The precision rows of both models as markdown, refused ones included.

    Args:
        results: what `run` returns.

    Returns:
        The markdown table (a str).
    """
    lines = [
        "| model | precision (int8 setting) | images/s | vs fp32 | file MiB | "
        "top-10% overlap vs fp32 | Kendall tau vs fp32 | Spearman vs fp32 |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(model, label, entry):
        if entry["refused"]:
            return (f"| {model} | {label} | refused: {refusal(entry)} | "
                    "- | - | - | - | - |")
        figures = (
            f"{entry['top10_overlap_vs_fp32']:.3f} | {entry['kendall_tau_vs_fp32']:.4f} | "
            f"{entry['spearman_vs_fp32']:.4f}"
            if "top10_overlap_vs_fp32" in entry else "- | - | -")
        ratio = entry.get("ratio_to_fp32", 1.0)
        return (f"| {model} | {label} | {entry['images_per_s']:.0f} | {ratio:.2f}x | "
                f"{entry['file_mib']:.2f} | {figures} |")

    def label(precision, entry):
        if precision == "int8" and not entry["refused"]:
            return f"int8, chosen: {entry['int8_setting']}"
        return precision

    for model, figures in (("small CNN", results),
                           ("MobileNetV2 0.35, 96 px", results["mobilenet_v2"])):
        for precision in ("fp32", "fp16", "int8"):
            lines.append(row(model, label(precision, figures[precision]),
                             figures[precision]))
    mobilenet = results["mobilenet_v2"]
    for name, entry in mobilenet["int8_settings"].items():
        lines.append(row("MobileNetV2 0.35, 96 px", f"int8 {name}", entry))
    return "\n".join(lines)


def run(data_path, out_dir, epochs=2, train_size=10000, seed=0, sizes=True,
        repetitions=3):
    """Runs every measurement and returns them as a dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = np.load(data_path)
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(data["x_train"]))[:train_size]
    learner = _train_learner(data["x_train"][train], data["y_train"][train], epochs, seed)
    learner.save(out_dir / "learner.keras")
    pool = np.ascontiguousarray(data["x_test"])  # 10,000 uint8 NHWC images
    np.save(out_dir / "pool10k.npy", pool)
    calibration = data["x_train"][rng.permutation(len(data["x_train"]))[:512]]
    results = {"pool": len(pool), "train_images": train_size, "train_epochs": epochs,
               "repetitions": repetitions}

    pixels = pool.astype("float32")
    keras_scores = learner.predict_loss(pixels, batch_size=256)
    results["keras_images_per_s"] = _best_rate(
        lambda: learner.predict_loss(pixels, batch_size=256), len(pool), repetitions)
    results["tf_function_images_per_s"] = _best_rate(
        _tf_function_scorer(learner, pixels, 256), len(pool), repetitions)
    fastest_tf = max(("keras", "tf_function"),
                     key=lambda path: results[f"{path}_images_per_s"])
    results["fastest_tf_path"] = fastest_tf
    results["fastest_tf_images_per_s"] = results[f"{fastest_tf}_images_per_s"]

    exports = {}
    pool_path = out_dir / "pool10k.npy"
    for precision in ("fp32", "fp16", "int8"):
        entry = _export_and_score(
            learner, out_dir / f"model-{precision}.onnx", pool_path, repetitions,
            precision=precision, verify_data=pool[:512],
            calibration_data=calibration if precision == "int8" else None)
        if precision == "fp32":
            fp32_scores = entry.pop("scores")
            entry["max_abs_diff_vs_keras"] = float(
                np.max(np.abs(fp32_scores - keras_scores)))
        elif not entry["refused"]:
            _compare(entry, fp32_scores, results["fp32"]["images_per_s"])
        if not entry["refused"]:
            exports[precision] = out_dir / f"model-{precision}.onnx"
            entry["ratio_to_keras"] = (
                entry["images_per_s"] / results["keras_images_per_s"])
            entry["ratio_to_fastest_tf"] = (
                entry["images_per_s"] / results["fastest_tf_images_per_s"])
        results[precision] = entry
    results["mobilenet_v2"] = _mobilenet_rows(data, out_dir, epochs, train_size, seed,
                                              repetitions)

    big = np.concatenate([pool] * 10)
    np.save(out_dir / "pool100k.npy", big)
    del big
    score_cli = str(BIN / "kerasll-score")
    for name in ("pool10k", "pool100k"):
        results[f"memory_{name}_mib"] = _peak_memory(
            [score_cli, str(exports["fp32"]), str(out_dir / f"{name}.npy"), "--k", "100",
             "--out", str(out_dir / f"{name}-picks.csv"), "--providers", "cpu", "--quiet"])
    (out_dir / "pool100k.npy").unlink()

    np.save(out_dir / "pool256.npy", pool[:256])
    results["cold_start_serving_s"] = min(_wall(
        [score_cli, str(exports["fp32"]), str(out_dir / "pool256.npy"), "--k", "10",
         "--out", str(out_dir / "cold.csv"), "--providers", "cpu", "--quiet"])
        for _ in range(3))
    tf_script = (
        "import numpy as np, keras, kerasll;"
        f"m = keras.models.load_model({str(out_dir / 'learner.keras')!r});"
        f"x = np.load({str(out_dir / 'pool256.npy')!r}).astype('float32');"
        "s = m.predict_loss(x, batch_size=256);"
        f"np.savetxt({str(out_dir / 'cold-keras.csv')!r}, s)"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    results["cold_start_keras_s"] = min(
        _wall([sys.executable, "-c", tf_script], env=env) for _ in range(3))

    best = max(exports, key=lambda p: results[p]["images_per_s"])
    flops = graph_flops(exports["fp32"], batch_size=1)
    results["model_mflops_per_image"] = flops / 1e6
    results["best_path"] = best
    results["achieved_gflops"] = {
        p: flops * results[p]["images_per_s"] / 1e9 for p in exports}
    results["matmul_peak_gflops"] = matmul_peak_gflops()

    if sizes:
        repo = Path(__file__).resolve().parents[1]
        with tempfile.TemporaryDirectory() as workdir:
            results["installed_serving_mib"] = _installed_size([str(repo / "serving")],
                                                               workdir)
        with tempfile.TemporaryDirectory() as workdir:
            results["installed_tensorflow_mib"] = _installed_size(
                ["tensorflow", "keras", "numpy"], workdir)
    return results


def _figures(entry):
    """(ratio to fp32, top-10% overlap, Kendall tau) of a row, None if refused."""
    if entry["refused"]:
        return None
    return (entry.get("ratio_to_fp32", 1.0), entry.get("top10_overlap_vs_fp32"),
            entry.get("kendall_tau_vs_fp32"))


def _rows(results):
    """(model, label, entry) of every precision row of one run, as `table`."""
    mobilenet = results["mobilenet_v2"]
    rows = [("small CNN", precision, results[precision])
            for precision in ("fp16", "int8")]
    rows += [("MobileNetV2 0.35, 96 px", precision, mobilenet[precision])
             for precision in ("fp16", "int8")]
    rows += [("MobileNetV2 0.35, 96 px", f"int8 {name}", entry)
             for name, entry in mobilenet["int8_settings"].items()]
    return rows


def run_repeated(data_path, out_dir, runs=3, sizes=True, repetitions=3):
    """Runs the benchmark `runs` times from scratch, each in a new process.

    Run i (from 0) uses seed i; only the first measures installed sizes.
    Each run's folder is `out_dir/run<i+1>` (its models, pools and log).

    Args:
        data_path: the CIFAR-10 npz.
        out_dir: the folder of the runs.
        runs: how many runs.
        sizes: measure installed sizes in the first run.
        repetitions: timed runs per path after its warm-up.

    Returns:
        The first run's figures (what `table` and the single-run report
        read), plus `runs`: per run its `seed`, `started`, `finished`,
        `load_before` and `load_after` (1, 5 and 15-minute load averages)
        and its `figures`.

    Raises:
        RuntimeError: a run failed (with the end of its output).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    records = []
    for index in range(runs):
        folder = out_dir / f"run{index + 1}"
        figures_path = out_dir / f"run{index + 1}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--data",
                   str(data_path), "--out", str(folder), "--seed", str(index),
                   "--repetitions", str(repetitions), "--json", str(figures_path)]
        if index or not sizes:
            command.append("--skip-install-sizes")
        record = {"seed": index, "load_before": os.getloadavg(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        folder.mkdir(exist_ok=True)
        with open(folder / "log.txt", "w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode:
            tail = (folder / "log.txt").read_text()[-1500:]
            raise RuntimeError(
                f"Expected scoring run {index + 1} (seed {index}) to finish. Received "
                f"exit code {done.returncode}; the end of {folder / 'log.txt'}:\n{tail}"
            )
        record.update(load_after=os.getloadavg(),
                      finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                      figures=json.loads(figures_path.read_text()))
        records.append(record)
    return {**records[0]["figures"], "runs": records}


def _span(values, digits):
    """"min-max (mean)" of `values`, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{min(values):.{digits}f}-{max(values):.{digits}f} "
            f"({np.mean(values):.{digits}f})")


def spread(results, target=(2.5, 0.95, 0.9)):
    """The spread over the runs of `run_repeated`, as markdown.

    Args:
        results: what `run_repeated` returns.
        target: (ratio to fp32, top-10% overlap, Kendall tau) that
            MobileNetV2's chosen int8 must reach.

    Returns:
        The runs' seeds and load averages, a table of every precision row's
        min-max (mean) ratio to fp32, overlap and tau over the runs (refused
        runs counted, not averaged), and how many runs met the target.
    """
    runs = results["runs"]
    seeds = ", ".join(str(run["seed"]) for run in runs)
    lines = [f"The benchmark ran {len(runs)} time{'s' if len(runs) > 1 else ''} from "
             "scratch (a new process, model, training and calibration per run; "
             f"seed{'s' if len(runs) > 1 else ''} {seeds}). The machine is shared, so absolute images/s follow "
             "its load; the ratios to fp32 are measured side by side within each "
             "run.", "",
             "| run | seed | started | finished | 1/5/15-min load average before | "
             "after | small CNN fp32 images/s | MobileNetV2 fp32 images/s | "
             "MobileNetV2 int8 setting chosen |", "|---|---|---|---|---|---|---|---|---|"]
    for number, run in enumerate(runs, 1):
        figures = run["figures"]
        mobilenet = figures["mobilenet_v2"]
        chosen = ("refused" if mobilenet["int8"]["refused"]
                  else mobilenet["int8"]["int8_setting"])
        lines.append(
            f"| {number} | {run['seed']} | {run['started']} | {run['finished']} | "
            f"{' / '.join(f'{v:.1f}' for v in run['load_before'])} | "
            f"{' / '.join(f'{v:.1f}' for v in run['load_after'])} | "
            f"{figures['fp32']['images_per_s']:.0f} | "
            f"{mobilenet['fp32']['images_per_s']:.0f} | {chosen} |")
    overlapping = [number for number, run in enumerate(runs, 1)
                   if any(other is not run and other["started"] < run["started"]
                          < other["finished"] for other in runs)]
    if overlapping:
        named = (f"Run {overlapping[0]}" if len(overlapping) == 1
                 else f"Runs {', '.join(map(str, overlapping))}")
        lines += ["", f"{named} started while an "
                  "earlier run was still going: those runs shared the cores with "
                  "each other too."]
    lines += ["", "| model | precision (int8 setting) | x fp32, min-max (mean) | "
              "top-10% overlap | Kendall tau | runs refused |", "|---|---|---|---|---|---|"]
    per_run = [_rows(run["figures"]) for run in runs]
    for position, (model, label, _) in enumerate(per_run[0]):
        figures = [_figures(rows[position][2]) for rows in per_run]
        kept = [f for f in figures if f is not None]
        refused = len(figures) - len(kept)
        if not kept:
            lines.append(f"| {model} | {label} | - | - | - | {refused} of {len(runs)} |")
            continue
        ratio, overlap, tau = ([f[i] for f in kept] for i in range(3))
        lines.append(f"| {model} | {label} | {_span(ratio, 2)} | {_span(overlap, 3)} | "
                     f"{_span(tau, 3)} | {refused} of {len(runs)} |")
    chosen = [_figures(run["figures"]["mobilenet_v2"]["int8"]) for run in runs]
    met = sum(1 for figures in chosen if figures is not None
              and all(value >= bar for value, bar in zip(figures, target)))
    lines += ["", f"MobileNetV2 int8 (the setting export chose) reached the target "
              f"(at least {target[0]}x fp32, top-10% overlap at least {target[1]}, "
              f"Kendall tau at least {target[2]}) in {met} of {len(runs)} runs."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/output/scoring")
    parser.add_argument("--data", default=os.environ.get(
        "KERASLL_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/cifar10.npz")))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the training images, weights and calibration.")
    parser.add_argument("--repetitions", type=int, default=3,
                        help="Timed runs per path after its warm-up; the best counts.")
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    parser.add_argument("--skip-install-sizes", action="store_true")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
    results = run(args.data, args.out, epochs=args.epochs, seed=args.seed,
                  sizes=not args.skip_install_sizes, repetitions=args.repetitions)
    text = json.dumps(results, indent=1)
    if args.json:
        from kerasll_serving.atomic import write_text

        write_text(args.json, text)
    print(text)
    print(table(results))


if __name__ == "__main__":
    main()
