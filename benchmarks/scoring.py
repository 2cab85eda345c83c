"""How fast, how big and how hungry is scoring a pool on a device?

One run measures, side by side in one process on the same trained learner
and the same 10,000 CIFAR-10 test images:
- images/s of Keras `predict_loss`, of a `tf.function` of the scoring graph,
  and of `PoolScorer` (what `kerasll-score` runs) for the fp32, fp16 and int8
  exports, on the CPU. The paths of one model are timed side by side:
  each is warmed up on the timed items, then in each of `--rounds` rounds
  every path scores the same first `--timed-items` pool images once, in an
  order rotated each round; a ratio (to fp32, to Keras `predict_loss`, to
  the fastest TensorFlow path) is taken within each round and reported as
  the median over rounds with its interquartile range, images/s as the
  median over rounds. A change of load during a run then hits every path of
  a round alike instead of whichever path was being timed;
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
`--retime` re-measures only the speeds of a finished run's saved models
(same rounds, same figures), leaving its ranking figures as they are.

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

BIN = Path(sys.executable).parent


MOBILENET_ALPHA = 0.35
MOBILENET_UPSCALE = 3  # 32x32 CIFAR-10 -> 96x96
# Where `benchmarks/run.py --sections scoring` keeps its runs' models and pools:
# too large to commit, so in the git-ignored scratch folder.
SCRATCH = Path(__file__).resolve().parent / "output" / "scoring"


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


def _side_by_side(paths, count, rounds):
    """Images/s of every path, timed in turn within each round.

    Each path is warmed up once (traces, allocations, thread pools); then
    in round r every path scores the same items once, in the order of
    `paths` rotated by r, so that a change of load hits every path of a
    round alike and no path is always timed first or last.

    Args:
        paths: name -> a callable scoring the timed items once.
        count: items each call scores.
        rounds: timed rounds after the warm-up.

    Returns:
        name -> images/s, one per round.
    """
    for score in paths.values():
        score()
    names = list(paths)
    rates = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            paths[name]()
            rates[name].append(count / (time.perf_counter() - start))
    return rates


def _set_ratio(entry, key, rates, reference):
    """Sets `entry[key]` to the median over rounds of `rates / reference`.

    Also sets `<key>_iqr` (25th and 75th percentiles) and `<key>_range`
    (min and max) over the rounds.
    """
    ratios = np.asarray(rates) / np.asarray(reference)
    entry[key] = float(np.median(ratios))
    entry[f"{key}_iqr"] = np.quantile(ratios, [0.25, 0.75]).tolist()
    entry[f"{key}_range"] = [float(ratios.min()), float(ratios.max())]


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


def _export_and_score(learner, path, pool_path, **options):
    """Exports `learner` to `path` and scores the pool with `PoolScorer`.

    Args:
        learner: the trained learner.
        path: the .onnx file to write.
        pool_path: the pool as a `.npy` of raw uint8 images.
        **options: `to_onnx` keyword arguments (`precision`, data, bars...).

    Returns:
        A dict: `refused` (bool); when refused, the export's `reason` and the
        `trials` it measured (setting, top-10% overlap, Kendall tau on the
        verification items); otherwise `file_mib`, `export_report`, `int8_setting`, `int8_trials`, and `scores` (the
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
        "file_mib": path.stat().st_size / 2**20,
        "export_report": str(report),
        "int8_setting": report.int8_setting,
        "int8_trials": [dataclasses.asdict(trial) for trial in report.int8_trials],
    }


def _compare(entry, fp32_scores):
    """Adds the pool figures of `entry` (scored) against fp32, in place."""
    from kerasll.export.verify import kendall_tau, spearman, top_overlap

    scores = entry.pop("scores")
    entry["top10_overlap_vs_fp32"] = top_overlap(fp32_scores, scores)
    entry["kendall_tau_vs_fp32"] = kendall_tau(fp32_scores, scores)
    entry["spearman_vs_fp32"] = spearman(fp32_scores, scores)


def _mobilenet_rows(data, out_dir, epochs, train_size, seed):
    """MobileNetV2 (alpha 0.35, 96x96) fp32, fp16, int8 and every int8 setting.

    Trained like the small CNN (same images, upsampled), scored on the
    10,000 test images upsampled; calibration and verification data as for
    the small CNN. int8 is exported once as `to_onnx` chooses (default
    settings and bars), then once per setting with no bar, so that each
    setting's pool figures are measured beside the others (`_time_paths`
    times them side by side).

    Returns:
        A dict: `fp32`, `fp16`, `int8` and `int8_settings` (setting name ->
        entry), each entry as `_export_and_score` returns it, compared with
        fp32 on the pool (`top10_overlap_vs_fp32`, `kendall_tau_vs_fp32`, `spearman_vs_fp32`); plus the model's
        `alpha`, `input_size` and `train_seconds`.
    """
    from kerasll.export import INT8_SETTINGS

    rng = np.random.default_rng(seed)
    train = rng.permutation(len(data["x_train"]))[:train_size]
    calibration = _upscale(
        data["x_train"][rng.permutation(len(data["x_train"]))[:512]])
    start = time.perf_counter()
    learner = _train_learner(_upscale(data["x_train"][train]), data["y_train"][train],
                             epochs, seed, model="mobilenet_v2", width=MOBILENET_ALPHA)
    rows = {"alpha": MOBILENET_ALPHA, "input_size": 32 * MOBILENET_UPSCALE,
            "train_seconds": time.perf_counter() - start}
    pool = _upscale(data["x_test"])
    pool_path = out_dir / "pool10k-96px.npy"
    np.save(pool_path, pool)
    common = {"verify_data": pool[:512]}
    fp32 = _export_and_score(learner, out_dir / "mobilenet-fp32.onnx", pool_path,
                             precision="fp32", **common)
    fp32_scores = fp32.pop("scores")
    rows["fp32"] = fp32
    chosen = {
        "fp16": {"precision": "fp16"},
        "int8": {"precision": "int8", "calibration_data": calibration},
    }
    for name, options in chosen.items():
        entry = _export_and_score(learner, out_dir / f"mobilenet-{name}.onnx",
                                  pool_path, **options, **common)
        if not entry["refused"]:
            _compare(entry, fp32_scores)
        rows[name] = entry
    rows["int8_settings"] = {}
    for index, setting in enumerate(INT8_SETTINGS):
        entry = _export_and_score(
            learner, out_dir / f"mobilenet-int8-setting{index}.onnx", pool_path,
            precision="int8", calibration_data=calibration,
            int8_settings=[setting], min_top_overlap=0.0, min_kendall_tau=-1.0,
            **common)
        if not entry["refused"]:  # only a NaN figure can refuse it
            _compare(entry, fp32_scores)
            entry["verification"] = entry.pop("int8_trials")[-1]
        rows["int8_settings"][setting.name] = entry
    pool_path.unlink()
    return rows


def _upscale(images):
    """CIFAR-10 images repeated to MobileNetV2's input size."""
    return np.ascontiguousarray(np.repeat(
        np.repeat(images, MOBILENET_UPSCALE, axis=1), MOBILENET_UPSCALE, axis=2))


def _time_paths(results, out_dir, rounds, timed_items):
    """Times every scoring path of a run side by side, in place.

    The small CNN's paths (Keras `predict_loss`, its `tf.function`, the
    fp32/fp16/int8 exports) are timed together, then MobileNetV2's (fp32,
    fp16, int8 and every int8 setting), each group by `_side_by_side` on the
    first `timed_items` pool images. Sets every scored entry's
    `images_per_s` (median over rounds), `images_per_s_by_round` and ratios
    (`_set_ratio`: `ratio_to_fp32`, and for the small CNN's exports
    `ratio_to_keras` and `ratio_to_fastest_tf`); `timing` of each model
    says the rounds, items and 1/5/15-minute load averages before and after.

    Args:
        results: a run's figures, its exports saved in `out_dir`.
        out_dir: the run's folder (`learner.keras`, `pool10k.npy`, models).
        rounds: timed rounds after the warm-up.
        timed_items: pool images each path scores per round.
    """
    import keras

    import kerasll  # noqa: F401  (registers LossLearner for load_model)
    from kerasll_serving import PoolScorer

    def onnx_path(model_file, timed_file):
        scorer = PoolScorer(model_file, providers="cpu", batch_size=256)
        return lambda: scorer.score(timed_file, k=timed_items)

    def timed(group, paths, timed_file):
        load_before = os.getloadavg()
        rates = _side_by_side(paths, timed_items, rounds)
        group["timing"] = {"rounds": rounds, "timed_items": timed_items,
                           "load_before": load_before, "load_after": os.getloadavg()}
        timed_file.unlink()
        return rates

    pool = np.load(out_dir / "pool10k.npy")[:timed_items]
    learner = keras.models.load_model(out_dir / "learner.keras")
    pixels = pool.astype("float32")
    timed_file = out_dir / "pool-timed.npy"
    np.save(timed_file, pool)
    paths = {"keras": lambda: learner.predict_loss(pixels, batch_size=256),
             "tf_function": _tf_function_scorer(learner, pixels, 256)}
    exports = [p for p in ("fp32", "fp16", "int8") if not results[p]["refused"]]
    for precision in exports:
        paths[precision] = onnx_path(out_dir / f"model-{precision}.onnx", timed_file)
    rates = timed(results, paths, timed_file)
    for path in ("keras", "tf_function"):
        results[f"{path}_images_per_s"] = float(np.median(rates[path]))
    fastest_tf = max(("keras", "tf_function"),
                     key=lambda path: results[f"{path}_images_per_s"])
    results["fastest_tf_path"] = fastest_tf
    results["fastest_tf_images_per_s"] = results[f"{fastest_tf}_images_per_s"]
    for precision in exports:
        entry = results[precision]
        entry["images_per_s"] = float(np.median(rates[precision]))
        entry["images_per_s_by_round"] = rates[precision]
        _set_ratio(entry, "ratio_to_keras", rates[precision], rates["keras"])
        _set_ratio(entry, "ratio_to_fastest_tf", rates[precision], rates[fastest_tf])
        if precision != "fp32":
            _set_ratio(entry, "ratio_to_fp32", rates[precision], rates["fp32"])

    mobilenet = results["mobilenet_v2"]
    timed_file = out_dir / "pool-timed-96px.npy"
    np.save(timed_file, _upscale(pool))
    entries = {name: mobilenet[name] for name in ("fp32", "fp16", "int8")}
    files = {name: out_dir / f"mobilenet-{name}.onnx" for name in entries}
    for index, (name, entry) in enumerate(mobilenet["int8_settings"].items()):
        entries[f"int8 {name}"] = entry
        files[f"int8 {name}"] = out_dir / f"mobilenet-int8-setting{index}.onnx"
    scored = {name: entry for name, entry in entries.items() if not entry["refused"]}
    rates = timed(mobilenet, {name: onnx_path(files[name], timed_file) for name in scored},
                  timed_file)
    for name, entry in scored.items():
        entry["images_per_s"] = float(np.median(rates[name]))
        entry["images_per_s_by_round"] = rates[name]
        if name != "fp32":
            _set_ratio(entry, "ratio_to_fp32", rates[name], rates["fp32"])


def _arithmetic(results):
    """Sets `best_path` and `achieved_gflops` of the small CNN's exports."""
    exports = [p for p in ("fp32", "fp16", "int8") if not results[p]["refused"]]
    results["best_path"] = max(exports, key=lambda p: results[p]["images_per_s"])
    results["achieved_gflops"] = {
        p: results["model_mflops_per_image"] * results[p]["images_per_s"] / 1e3
        for p in exports}


def retime(out_dir, figures_path, rounds=9, timed_items=2560):
    """Re-measures the speeds of a finished run's saved models side by side.

    Args:
        out_dir: the run's folder (its models and `pool10k.npy`).
        figures_path: the run's figures (JSON), rewritten in place.
        rounds: timed rounds after the warm-up.
        timed_items: pool images each path scores per round.

    Returns:
        The figures with new speeds (ranking figures unchanged).
    """
    from kerasll_serving.atomic import write_text

    out_dir = Path(out_dir)
    results = json.loads(Path(figures_path).read_text())
    results.pop("repetitions", None)
    _time_paths(results, out_dir, rounds, timed_items)
    _arithmetic(results)
    write_text(figures_path, json.dumps(results, indent=1))
    return results


def timing_note(results):
    """How the speeds of a run were timed, with the load, as one sentence."""
    def group(name, figures):
        timing = figures["timing"]
        return (f"{name} {timing['rounds']} rounds of {timing['timed_items']:,} images "
                f"per path, 1/5/15-minute load average "
                f"{' / '.join(f'{v:.1f}' for v in timing['load_before'])} before and "
                f"{' / '.join(f'{v:.1f}' for v in timing['load_after'])} after")

    return (f"Timed side by side: {group('small CNN', results)}; "
            f"{group('MobileNetV2', results['mobilenet_v2'])} "
            f"({results.get('cores', os.cpu_count())} cores).")


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
        "| model | precision (int8 setting) | images/s | vs fp32, median (IQR) | file MiB | "
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
        ratio = (f"{entry['ratio_to_fp32']:.2f}x ({entry['ratio_to_fp32_iqr'][0]:.2f}-"
                 f"{entry['ratio_to_fp32_iqr'][1]:.2f})" if "ratio_to_fp32_iqr" in entry
                 else "1.00x")
        return (f"| {model} | {label} | {entry['images_per_s']:.0f} | {ratio} | "
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
        rounds=9, timed_items=2560):
    """Runs every measurement and returns them as a dict.

    `rounds` and `timed_items` are `_time_paths`'s.
    """
    from flops import graph_flops, matmul_peak_gflops

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
    results = {"pool": len(pool), "train_images": train_size, "train_epochs": epochs}

    keras_scores = learner.predict_loss(pool.astype("float32"), batch_size=256)

    exports = {}
    pool_path = out_dir / "pool10k.npy"
    for precision in ("fp32", "fp16", "int8"):
        entry = _export_and_score(
            learner, out_dir / f"model-{precision}.onnx", pool_path,
            precision=precision, verify_data=pool[:512],
            calibration_data=calibration if precision == "int8" else None)
        if precision == "fp32":
            fp32_scores = entry.pop("scores")
            entry["max_abs_diff_vs_keras"] = float(
                np.max(np.abs(fp32_scores - keras_scores)))
        elif not entry["refused"]:
            _compare(entry, fp32_scores)
        if not entry["refused"]:
            exports[precision] = out_dir / f"model-{precision}.onnx"
        results[precision] = entry
    results["mobilenet_v2"] = _mobilenet_rows(data, out_dir, epochs, train_size, seed)
    _time_paths(results, out_dir, rounds, timed_items)

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

    results["model_mflops_per_image"] = graph_flops(exports["fp32"], batch_size=1) / 1e6
    _arithmetic(results)
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


def run_repeated(data_path, out_dir, runs=3, sizes=True, rounds=9, timed_items=2560,
                 retime=False):
    """Runs the benchmark `runs` times from scratch, each in a new process.

    Run i (from 0) uses seed i; only the first measures installed sizes.
    Each run's folder is `out_dir/run<i+1>` (its models, pools and log).
    With `retime`, each finished run (its `run<i+1>.json` exists) only
    re-measures its speeds (`retime`, logged to `log-retime.txt`).

    Args:
        data_path: the CIFAR-10 npz.
        out_dir: the folder of the runs.
        runs: how many runs.
        sizes: measure installed sizes in the first run.
        rounds: timed rounds per path after its warm-up.
        timed_items: pool images each path scores per round.
        retime: only re-measure the speeds of the finished runs.

    Returns:
        The first run's figures (what `table` and the single-run report
        read), plus `runs`: per run its `seed`, `started`, `finished`,
        `load_before` and `load_after` (1, 5 and 15-minute load averages),
        `retimed` and its `figures`.

    Raises:
        RuntimeError: a run failed (with the end of its output), or
            `retime` found no finished run.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    indices = [index for index in range(runs)
               if not retime or (out_dir / f"run{index + 1}.json").is_file()]
    if not indices:
        raise RuntimeError(f"Expected a finished run (run1.json) in {out_dir} to "
                           "retime. Received none.")
    records = []
    for index in indices:
        folder = out_dir / f"run{index + 1}"
        figures_path = out_dir / f"run{index + 1}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--data",
                   str(data_path), "--out", str(folder), "--seed", str(index),
                   "--rounds", str(rounds), "--timed-items", str(timed_items),
                   "--json", str(figures_path)]
        if index or not sizes:
            command.append("--skip-install-sizes")
        if retime:
            command.append("--retime")
        record = {"seed": index, "load_before": os.getloadavg(), "retimed": retime,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        folder.mkdir(exist_ok=True)
        log_path = folder / ("log-retime.txt" if retime else "log.txt")
        with open(log_path, "w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode:
            tail = log_path.read_text()[-1500:]
            raise RuntimeError(
                f"Expected scoring run {index + 1} (seed {index}) to finish. Received "
                f"exit code {done.returncode}; the end of {log_path}:\n{tail}"
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
             "its load; the ratios to fp32 are taken within each round of paths "
             "timed side by side (median over rounds per run).", "",
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
    retimed = [str(number) for number, run in enumerate(runs, 1) if run.get("retimed")]
    if retimed:
        lines += ["", f"Run {', '.join(retimed)}: the speeds were re-measured "
                  "(`scoring.py --retime`, the started and finished times above) on "
                  "the models that run had saved; overlap and tau are its own."]
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


def section_figures(data, folder, retime=False):
    """RESULTS.md §4's figures: `run_repeated` with its runs in `SCRATCH`.

    Args:
        data: the CIFAR-10 npz.
        folder: the section's folder (unused: the models and pools are too
            large to commit; they stay in `SCRATCH`).
        retime: only re-measure the speeds of the finished runs.

    Returns:
        `run_repeated`'s answer.
    """
    return run_repeated(data, SCRATCH, retime=retime)


def section_markdown(figures):
    """RESULTS.md §4 from `section_figures`' answer (`run.Section.markdown`)."""
    def row(name, entry):
        if entry["refused"]:
            return (f"| kerasll-score {name} | refused: {refusal(entry)} | "
                    "- | - | - | - | - |")
        extra = (
            f"{entry['top10_overlap_vs_fp32']:.3f} | {entry['spearman_vs_fp32']:.4f}"
            if "top10_overlap_vs_fp32" in entry else "- | -"
        )
        return (f"| kerasll-score {name} | {entry['images_per_s']:.0f} | "
                f"{entry['ratio_to_keras']:.2f}x | "
                f"{entry['ratio_to_fastest_tf']:.2f}x | "
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
during the run hits the paths compared alike. {timing_note(figures)}

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

{table(figures)}

{spread(figures)}

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(SCRATCH))
    parser.add_argument("--data", default=os.environ.get(
        "KERASLL_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/cifar10.npz")))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the training images, weights and calibration.")
    parser.add_argument("--rounds", type=int, default=9,
                        help="Timed rounds after the warm-up; every path of a model "
                             "is timed once per round, in a rotated order.")
    parser.add_argument("--timed-items", type=int, default=2560,
                        help="Pool images each path scores per round.")
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    parser.add_argument("--skip-install-sizes", action="store_true")
    parser.add_argument("--retime", action="store_true",
                        help="Only re-measure the speeds of the finished run in --out "
                             "whose figures are --json.")
    args = parser.parse_args()
    if args.rounds < 1 or not 1 <= args.timed_items <= 10000:
        sys.exit(f"Expected --rounds >= 1 and --timed-items in 1..10000. Received "
                 f"{args.rounds} and {args.timed_items}.")
    if args.retime:
        if not args.json or not Path(args.json).is_file():
            sys.exit(f"Expected --json to name a finished run's figures with --retime. "
                     f"Received {args.json!r}.")
        results = retime(args.out, args.json, args.rounds, args.timed_items)
        print(table(results))
        return
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
    results = run(args.data, args.out, epochs=args.epochs, seed=args.seed,
                  sizes=not args.skip_install_sizes, rounds=args.rounds,
                  timed_items=args.timed_items)
    text = json.dumps(results, indent=1)
    if args.json:
        from kerasll_serving.atomic import write_text

        write_text(args.json, text)
    print(text)
    print(table(results))


if __name__ == "__main__":
    main()
