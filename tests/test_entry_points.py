"""Which heavy modules each command-line entry point imports (pinned)."""

import subprocess
import sys

import numpy as np
import pytest

from serving_fixtures import models, random_images  # noqa: F401 (a fixture)

HEAVY = ("tensorflow", "keras", "kerasll", "tf2onnx", "onnx", "onnxruntime")

# Runs one entry point ("module:function") with arguments in a fresh
# interpreter, then prints the heavy top-level packages it imported.
RUN = r'''
import importlib
import sys

entry, args = sys.argv[1], sys.argv[2:]
module, function = entry.split(":")
sys.argv = [entry] + args
try:
    getattr(importlib.import_module(module), function)()
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
heavy = set(HEAVY.split())
print("heavy:", *sorted({name.split(".")[0] for name in sys.modules} & heavy))
'''.replace("HEAVY.split()", repr(list(HEAVY)))


def _heavy_imports(entry, *args):
    done = subprocess.run([sys.executable, "-c", RUN, entry, *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()[-1].split()[1:]


@pytest.fixture
def scoring_args(models, tmp_path):
    np.save(tmp_path / "pool.npy", random_images(12))
    return [models["gray"], tmp_path / "pool.npy", "--out", tmp_path / "picks.csv",
            "--k", "2", "--quiet"]


def test_kerasll_help_imports_no_heavy_package():
    assert _heavy_imports("kerasll_cli:main", "--help") == []


def test_kerasll_score_runs_on_onnxruntime_alone(scoring_args):
    assert _heavy_imports("kerasll_cli:main", "score", *scoring_args) == [
        "onnxruntime"]


def test_kerasll_score_console_script_runs_on_onnxruntime_alone(scoring_args):
    assert _heavy_imports("kerasll_serving.cli:main", *scoring_args) == [
        "onnxruntime"]


@pytest.mark.slow
def test_kerasll_export_help_imports_no_heavy_package():
    # The export command lives in kerasll_cli and loads the training stack
    # only when it runs.
    assert _heavy_imports("kerasll_cli:main", "export", "--help") == []
