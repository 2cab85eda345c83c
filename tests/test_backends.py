"""kerasll on JAX and PyTorch, driven from the TensorFlow test process.

KERAS_BACKEND must be set before keras is imported, so each backend runs in
a subprocess: tests/test_backends_core.py as a whole (its tests run here on
TensorFlow too), and tests/backend_worker.py for the cross-backend checks:
the same step gives the same numbers, and a learner trained on JAX exports
under TensorFlow with the same predicted losses.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import onnxruntime
import pytest

import backend_worker
from kerasll import LossLearner
from kerasll.export import to_onnx
from models_for_tests import marked_noise_data, small_cnn

pytestmark = pytest.mark.slow  # every test starts a subprocess

TESTS = pathlib.Path(__file__).resolve().parent
WORKER = TESTS / "backend_worker.py"
TIMEOUT = 1800  # seconds; these CPUs are shared and slow.


def _backend(name):
    """A pytest param for `name`, skipped with a reason when not installed."""
    missing = importlib.util.find_spec(name) is None
    reason = f"{name} is not installed (pip install {name}); its backend tests skip"
    return pytest.param(name, marks=pytest.mark.skipif(missing, reason=reason))


OTHER_BACKENDS = [_backend("jax"), _backend("torch")]


def _environment(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if backend == "jax":  # two CPU devices for the DataParallel test
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    return env


def _run(backend, *args):
    """Runs `python *args` under `backend`; fails the test with its output."""
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=TESTS.parent,
        env=_environment(backend),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{backend} run failed:\n{output[-6000:]}"
    return output


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_core_suite_passes_on(backend):
    output = _run(
        backend, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
        TESTS / "test_backends_core.py",
    )
    summary = output.strip().splitlines()[-1]
    print(f"{backend}: {summary}")
    assert " passed" in summary and "failed" not in summary, output[-6000:]
    if backend == "jax":  # DataParallel and the export message ran
        assert "skipped" not in summary, output[-6000:]


def _initial_weights_and_batch(folder):
    keras.utils.set_random_seed(0)
    learner = LossLearner(small_cnn(), head_units=8)
    learner.save_weights(folder / "initial.weights.h5")
    x, y, _ = marked_noise_data(16, seed=9)
    np.savez(folder / "batch.npz", x=x, y=y)
    return x, y


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_same_steps_give_tensorflows_numbers(backend, tmp_path):
    x, y = _initial_weights_and_batch(tmp_path)
    learner = backend_worker.recipe_learner(tmp_path / "initial.weights.h5")
    logs = backend_worker.run_step(learner, x, y)
    _run(backend, WORKER, "step", tmp_path)
    after = np.load(tmp_path / "after.npz")
    other_logs = json.loads(str(after["logs"]))
    assert logs["head_loss"] > 0
    for key in ("loss", "task_loss", "head_loss", "rank_accuracy"):
        assert other_logs[key] == pytest.approx(logs[key], rel=1e-4, abs=1e-6), key
    weights = learner.get_weights()
    initial = LossLearner(small_cnn(), head_units=8)
    initial.load_weights(tmp_path / "initial.weights.h5")
    moved = [np.abs(w - w0).max() for w, w0 in zip(weights, initial.get_weights())]
    assert max(moved) > 1e-3
    for index, weight in enumerate(weights):
        np.testing.assert_allclose(after[f"w{index}"], weight, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", [_backend("jax")])
def test_learner_trained_on_jax_exports_under_tensorflow(backend, tmp_path):
    probe, _, _ = marked_noise_data(64, seed=10)
    np.save(tmp_path / "probe.npy", probe)
    _run(backend, WORKER, "train-save", tmp_path)
    trained_on_jax = np.load(tmp_path / "predicted.npy")
    learner = keras.models.load_model(tmp_path / "learner.keras")
    np.testing.assert_allclose(learner.predict_loss(probe), trained_on_jax, atol=1e-4)
    onnx_path = tmp_path / "learner.onnx"
    to_onnx(learner, onnx_path, verify_data=probe)
    session = onnxruntime.InferenceSession(
        str(onnx_path), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    scored = dict(zip(names, session.run(None, {session.get_inputs()[0].name: probe})))
    difference = np.abs(scored["predicted_loss"] - trained_on_jax).max()
    print(f"max |ONNX - JAX| predicted loss: {difference:.2e}")
    assert difference <= 1e-4


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_library_and_engine_import_no_tensorflow(backend, tmp_path):
    _run(backend, WORKER, "imports", tmp_path)
    imported = json.loads((tmp_path / "modules.json").read_text())
    assert imported == {"tensorflow": False}
