"""`kerasll project train` with the user's own `.keras` backbone."""

import keras
import pytest
from project_helpers import CLASSES, annotate_csv, cli, write_digits

from kerasll.project.manifest import Manifest


def _backbone(path, input_shape=(8, 8, 1), classes=10, activation=None):
    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                            name="stage1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu",
                            name="stage2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="logits")(x)
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project of 40 digits, 20 of them labeled."""
    root = tmp_path_factory.mktemp("backbone")
    truth = write_digits(root / "captures", {"cam": range(40)})
    folder = root / "project"
    assert cli("init", folder, "--classes", CLASSES).exit_code == 0
    assert cli("add", folder, root / "captures" / "cam").exit_code == 0
    assert cli("select", folder, "--k", "20", "--random").exit_code == 0
    assert cli("tasks", folder, "--format", "csv").exit_code == 0
    labels = annotate_csv(folder / "tasks" / "round-1.csv", root / "l.csv", truth)
    assert cli("labels", folder, labels).exit_code == 0
    return folder


def test_train_wraps_the_users_backbone(project, tmp_path):
    backbone = _backbone(tmp_path / "mine.keras")
    result = cli("train", project, "--backbone", backbone, "--epochs", "2",
                 "--batch-size", "8")
    assert result.exit_code == 0, result.output
    with Manifest.open(project) as manifest:
        version, folder = manifest.current_model()
        assert manifest.query("SELECT backbone, labeled FROM models") == [
            ("mine.keras", 20)]
    assert (folder / "learner.keras").is_file() and (folder / "model.onnx").is_file()
    assert version in result.output
    assert cli("select", project, "--k", "5").exit_code == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"activation": "softmax"}, "logits (no final softmax)"),
    ({"input_shape": (16, 16, 1)}, "one input (None, 8, 8, 1)"),
    ({"classes": 3}, "logits output (None, 10)"),
])
def test_backbones_that_do_not_fit_are_refused(project, tmp_path, kwargs, message):
    backbone = _backbone(tmp_path / "bad.keras", **kwargs)
    result = cli("train", project, "--backbone", backbone, "--epochs", "1")
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
