"""How fast, how big and how hungry is scoring a pool on a device?

One run measures, side by side in one process on the same trained learner
and the same 10,000 CIFAR-10 test images:
- images/s of Keras `predict_loss`, of a `tf.function` of the scoring graph,
  and of `PoolScorer` (what `kerasll-score` runs) for the fp32, fp16 and int8
  exports, on the CPU. Every path is warmed up on the very same pool (so the
  last, shorter batch is traced before timing) and reported as the best of
  `--repetitions` timed runs; ratios are against Keras `predict_loss` and
  against the fastest TensorFlow path;
- top-10% overlap and Spearman correlation of fp16/int8 against fp32;
- peak memory of `kerasll-score` on a 10,000 and a 100,000 item `.npy` pool;
- cold start (process start to a first batch scored and written) of
  `kerasll-score` vs TensorFlow loading the `.keras` model;
- installed size of a fresh environment with only `kerasll-serving` vs one
  with TensorFlow and Keras;
- achieved GFLOP/s of the best path against this machine's matmul peak.

    python benchmarks/scoring.py --out benchmarks/output/scoring
"""

import argparse
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


def _train_learner(x, y, epochs, seed):
    import keras

    from kerasll import LossLearner
    from kerasll.models import build_model

    keras.utils.set_random_seed(seed)
    learner = LossLearner(build_model("small_cnn", x.shape[1:], 10))
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


def run(data_path, out_dir, epochs=2, train_size=10000, seed=0, sizes=True,
        repetitions=3):
    """Runs every measurement and returns them as a dict."""
    from kerasll_serving import PoolScorer

    from kerasll.export import to_onnx
    from kerasll.export.verify import spearman, top_overlap

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
    for precision in ("fp32", "fp16", "int8"):
        path = out_dir / f"model-{precision}.onnx"
        report = to_onnx(learner, path, precision=precision, raw_input_dtype="uint8",
                         verify_data=pool[:512],
                         calibration_data=calibration if precision == "int8" else None)
        exports[precision] = path
        scorer = PoolScorer(path, providers="cpu", batch_size=256)
        result = scorer.score(out_dir / "pool10k.npy", k=len(pool))
        scores = _scores_in_pool_order(result, len(pool))
        entry = {
            "images_per_s": _best_rate(
                lambda: scorer.score(out_dir / "pool10k.npy", k=len(pool)),
                len(pool), repetitions),
            "file_mib": path.stat().st_size / 2**20,
            "export_report": str(report),
        }
        if precision == "fp32":
            fp32_scores = scores
            entry["max_abs_diff_vs_keras"] = float(np.max(np.abs(scores - keras_scores)))
        else:
            entry["top10_overlap_vs_fp32"] = top_overlap(fp32_scores, scores)
            entry["spearman_vs_fp32"] = spearman(fp32_scores, scores)
        entry["ratio_to_keras"] = entry["images_per_s"] / results["keras_images_per_s"]
        entry["ratio_to_fastest_tf"] = (
            entry["images_per_s"] / results["fastest_tf_images_per_s"])
        results[precision] = entry

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

    best = max(("fp32", "fp16", "int8"), key=lambda p: results[p]["images_per_s"])
    flops = graph_flops(exports["fp32"], batch_size=1)
    results["model_mflops_per_image"] = flops / 1e6
    results["best_path"] = best
    results["achieved_gflops"] = {
        p: flops * results[p]["images_per_s"] / 1e9 for p in ("fp32", "fp16", "int8")}
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/output/scoring")
    parser.add_argument("--data", default=os.environ.get(
        "KERASLL_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/cifar10.npz")))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=3,
                        help="Timed runs per path after its warm-up; the best counts.")
    parser.add_argument("--skip-install-sizes", action="store_true")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
    results = run(args.data, args.out, epochs=args.epochs,
                  sizes=not args.skip_install_sizes, repetitions=args.repetitions)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
