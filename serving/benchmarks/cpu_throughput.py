"""Measures `kerasll-score` throughput on a synthetic pool.

Builds a small CNN with a loss-prediction head (needs the main `kerasll`
environment: TensorFlow/Keras and onnx, only to build the model), exports it
with the kerasll metadata, writes a synthetic uint8 32x32x3 `.npy` pool, then
times the real `kerasll-score` command end to end (process start, model load,
scoring, writing the picks) and reports items/s.

Usage:
    python serving/benchmarks/cpu_throughput.py --items 10000 --providers cpu
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

SEED = 0


def build_model(path):
    """Exports the benchmark CNN to `path` and adds the kerasll metadata.

    The model: uint8 32x32x3 input, Rescaling(1/255) in graph,
    Conv(32)-Conv(32)-MaxPool-Conv(64)-Conv(64)-MaxPool-GAP-Dense(10) logits,
    and a loss head over the two pooled stages (GAP -> Dense(128) -> Dense(1)
    each, concatenated -> Dense(1)): about 70k parameters.
    """
    import keras
    import onnx

    from kerasll_serving.contract import InputSpec, ModelContract, Preprocessing

    keras.utils.set_random_seed(SEED)
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255)(keras.ops.cast(inputs, "float32"))
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    tap1 = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(tap1)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    tap2 = layers.MaxPooling2D()(x)
    logits = layers.Dense(10)(layers.GlobalAveragePooling2D()(tap2))
    heads = [
        layers.Dense(128, activation="relu")(layers.GlobalAveragePooling2D()(tap))
        for tap in (tap1, tap2)
    ]
    loss = layers.Reshape(())(layers.Dense(1)(layers.Concatenate()(heads)))
    model = keras.Model(inputs, {"logits": logits, "predicted_loss": loss})
    model(np.zeros((1, 32, 32, 3), dtype="uint8"))
    model.export(path, format="onnx", verbose=False)
    contract = ModelContract(
        input=InputSpec("image", (None, 32, 32, 3), "uint8", "NHWC"),
        task_outputs=("logits",),
        preprocessing=Preprocessing(in_graph=True, color_mode="rgb"),
        task_type="classification",
        from_logits=True,
        kerasll_version="benchmark",
    )
    onnx_model = onnx.load(path)
    for key, value in contract.to_metadata().items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(onnx_model, path)
    return model.count_params()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--providers", default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="onnxruntime intra-op threads (0 = its default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        model_path = os.path.join(directory, "cnn.onnx")
        parameters = build_model(model_path)
        pool = os.path.join(directory, "pool.npy")
        rng = np.random.default_rng(SEED)
        np.save(pool, rng.integers(0, 256, (args.items, 32, 32, 3), dtype=np.uint8))
        script = os.path.join(os.path.dirname(sys.executable), "kerasll-score")
        print(f"model: small CNN, {parameters:,} parameters; pool: {args.items:,} "
              f"uint8 32x32x3; batch {args.batch_size}; providers {args.providers}; "
              f"threads {args.threads or 'default'}")
        for repeat in range(args.repeats):
            started = time.perf_counter()
            completed = subprocess.run(
                [script, model_path, pool, "--k", "100", "--out",
                 os.path.join(directory, "picks.csv"), "--batch-size",
                 str(args.batch_size), "--providers", args.providers,
                 "--threads", str(args.threads)],
                capture_output=True, text=True, check=True)
            wall = time.perf_counter() - started
            summary = completed.stderr.strip().splitlines()[-1]
            scoring = re.search(r"([\d,]+) items/s", summary).group(1)
            print(f"run {repeat + 1}: {summary}")
            print(f"    end to end (process start to picks written): "
                  f"{args.items / wall:,.0f} items/s in {wall:.2f} s; "
                  f"scoring loop: {scoring} items/s")


if __name__ == "__main__":
    main()
