"""Training throughput of a `LossLearner` on each Keras backend, on this CPU.

Each backend runs in its own process (KERAS_BACKEND is read once, when keras
is imported): the built-in small CNN (width 0.5, 32x32x3 inputs, 10 classes)
with the loss head, SGD, batch 128, random pixels. One warm-up epoch
compiles the step; the timed epochs that follow give images per second.

Usage: python benchmarks/backends.py [--backends tensorflow,jax,torch]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

IMAGES, BATCH, EPOCHS = 2048, 128, 3


def measure():
    """Trains in this process; returns its backend and images per second."""
    import keras
    import numpy as np

    from kerasll import LossLearner
    from kerasll.models import build_model

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(IMAGES, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=IMAGES)
    keras.utils.set_random_seed(0)
    learner = LossLearner(build_model("small_cnn", (32, 32, 3), 10, width=0.5))
    learner.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    learner.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # compiles
    started = time.perf_counter()
    learner.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    seconds = time.perf_counter() - started
    return {
        "backend": keras.backend.backend(),
        "images_per_second": round(IMAGES * EPOCHS / seconds, 1),
    }


def _run(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, __file__, "--measure"],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        return {"backend": backend, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure()))
        return
    print(f"| backend | images/s (small CNN + head, batch {BATCH}) |")
    print("|---|---|")
    for backend in args.backends.split(","):
        if importlib.util.find_spec(backend) is None:
            print(f"| {backend} | not installed |")
            continue
        result = _run(backend)
        value = result.get("images_per_second", result.get("error"))
        print(f"| {backend} | {value} |", flush=True)


if __name__ == "__main__":
    main()
