"""kerasll_serving never imports TensorFlow, Keras, tf2onnx or onnx."""

import subprocess
import sys

import numpy as np

from serving_fixtures import (  # noqa: F401 (models is a fixture)
    import_blocker,
    models,
    random_images,
    write_images,
)

# A fresh interpreter that refuses the heavy packages (`onnxruntime` must
# still import, `onnx` must not) and records every attempt.
BLOCKER = import_blocker(("tensorflow", "keras", "tf2onnx", "onnx"))
CHECK = BLOCKER + r'''
import kerasll_serving
from kerasll_serving import PoolScorer
from kerasll_serving.cli import main
from click.testing import CliRunner

model, array_pool, image_pool, out = sys.argv[1:5]
result = PoolScorer(model, batch_size=8).score(array_pool, k=3)
assert len(result.picks) == 3
cli = CliRunner().invoke(main, [model, image_pool, "--out", out, "--k", "2"])
assert cli.exit_code == 0, cli.output
import onnxruntime
loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
assert not attempts, attempts
assert not loaded, loaded
print("clean")
'''


def test_importing_and_scoring_pull_in_no_heavy_package(models, tmp_path):
    np.save(tmp_path / "pool.npy", random_images(20))
    write_images(tmp_path / "images", random_images(6))
    completed = subprocess.run(
        [sys.executable, "-c", CHECK, models["gray"], str(tmp_path / "pool.npy"),
         str(tmp_path / "images"), str(tmp_path / "picks.csv")],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "clean"


def test_the_blocker_really_blocks():
    code = BLOCKER + "import onnx\n"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode != 0
    assert "blocked heavy import: onnx" in completed.stderr


def test_importing_the_contract_does_not_load_onnxruntime():
    code = ("import sys; import kerasll_serving.contract; "
            "print('onnxruntime' in sys.modules, 'PIL' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               text=True, timeout=60)
    assert completed.stdout.split() == ["False", "False"], completed.stderr
