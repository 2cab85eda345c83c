#!/usr/bin/env bash
# The GPU run, one command on a machine with an NVIDIA GPU, PyTorch and JAX but
# no TensorFlow or Keras:   bash benchmarks/gpu/run.sh [--preset gpu|tiny]
# It needs only this repository and benchmarks/gpu/carry (written here by
# benchmarks/gpu/prepare.py): it installs the carried wheels into a scratch
# folder, then runs benchmarks/gpu/regime.py on the JAX backend, writing
# summary.md, curves.png, results.csv, run.json and log.txt into $OUT
# (default benchmarks/gpu/output). PYTHON, CARRY and SITE override the
# interpreter, the carried folder and the install folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
CARRY=${CARRY:-benchmarks/gpu/carry}
SITE=${SITE:-/tmp/kerasll-site}
OUT_DIR=${OUT:-benchmarks/gpu/output}
mkdir -p "$OUT_DIR"
"$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$SITE" "$CARRY"/wheels/*.whl
export PYTHONPATH="$SITE:$PWD:$PWD/serving${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
"$PYTHON" benchmarks/gpu/regime.py --data "$CARRY/cifar10-compact.npz" \
    --out "$OUT_DIR" "$@" 2>&1 | tee "$OUT_DIR/log.txt"
