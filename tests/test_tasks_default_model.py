"""The classification task's default model fits its images' size: small_cnn
on 8x8 digits (ResNet-18 sits at chance there), ResNet-18 from 32x32."""

import numpy as np
import pytest
from click.testing import CliRunner

from kerasll.active.protocol import ExperimentConfig
from kerasll_cli import main
from kerasll.data import load_digits, make_dataset
from kerasll.tasks.classification import ClassificationTask
from kerasll.tasks.detection import DetectionTask


def _images(side, count=20):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8)
    y = np.arange(count) % 2
    return make_dataset(f"random{side}", x, y, x, y)


def test_default_model_follows_the_image_size():
    model, reason = ClassificationTask(load_digits()).default_model()
    assert model == "small_cnn" and "8x8 images" in reason
    assert ClassificationTask(_images(31)).default_model()[0] == "small_cnn"
    model, reason = ClassificationTask(_images(32)).default_model()
    assert model == "resnet18" and "32x32" in reason
    assert DetectionTask.models[0] == "ssd"


def test_one_name_for_the_small_classifier():
    from kerasll.models import MODELS
    from kerasll.tasks import SMALL_CLASSIFIER

    assert SMALL_CLASSIFIER == "small_cnn" and SMALL_CLASSIFIER in MODELS
    result = CliRunner().invoke(main, ["project", "train", "--help"])
    assert f"default: {SMALL_CLASSIFIER})" in " ".join(result.output.split())


def test_experiment_config_takes_the_tasks_choice_unless_named():
    task = ClassificationTask(load_digits())
    config = ExperimentConfig(dataset="digits", model=None)
    assert config.with_task_defaults(task).model == "small_cnn"
    named = ExperimentConfig(dataset="digits", model="resnet18")
    assert named.with_task_defaults(task).model == "resnet18"


@pytest.mark.slow
def test_simulate_on_digits_says_which_model_it_chose(tmp_path):
    arguments = ["simulate", "--dataset", "digits", "--strategies", "random",
                 "--initial", "20", "--budget", "10", "--subset", "20",
                 "--cycles", "2", "--epochs", "1", "--trials", "1",
                 "--width", "0.25", "--batch-size", "16"]
    result = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "Model: small_cnn, 8x8 images are below resnet18's 32x32" in result.output
    assert "small_cnn" in (tmp_path / "a" / "summary.md").read_text()

    named = CliRunner().invoke(
        main, [*arguments, "--model", "resnet18", "--out", str(tmp_path / "b")])
    assert named.exit_code == 0, named.output
    assert "Model: small_cnn" not in named.output
    assert "resnet18" in (tmp_path / "b" / "summary.md").read_text()
