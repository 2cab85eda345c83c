"""A pose network from `kerasll simulate` to device picks with keypoints.

simulate --task keypoints --save-models -> kerasll export -> kerasll-score on
a folder of figure images: the device ranks the figures exactly as Keras
does, and each pick carries the figure's keypoints and their mean
confidence, as the exported graph decodes them.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from kerasll_serving.cli import main as score_command
from kerasll_serving.gallery import grid_size
from kerasll_serving.topk import top_indices
from PIL import Image

from kerasll.learner import PREDICTED_LOSS
from kerasll.tasks import load_task
from kerasll_cli import main as kerasll_command

CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"
K = 4
SCENES = ("40", "12")

needs_cifar10 = pytest.mark.skipif(not CIFAR10.is_file(), reason=f"needs {CIFAR10}")


def _contract(task_type, outputs):
    from kerasll_serving.contract import InputSpec, ModelContract

    return ModelContract(
        input=InputSpec("image", (None, 64, 64, 3), "uint8", "NHWC"),
        task_outputs=outputs, task_type=task_type,
    )


def test_export_names_keypoint_outputs_a_keypoints_task():
    from kerasll.export.errors import ExportError
    from kerasll.export.metadata import task_type

    assert task_type({"keypoints": (None, 14, 2), "confidences": (None, 14)}) == (
        "keypoints"
    )
    with pytest.raises(ExportError, match="Expected pose outputs 'keypoints' of "
                       "shape \\(batch, J, 2\\).*Received shapes"):
        task_type({"keypoints": (None, 14, 3), "confidences": (None, 14)})
    with pytest.raises(ExportError, match="Expected pose outputs"):
        task_type({"keypoints": (None, 14, 2), "confidences": (None, 13)})


def test_the_contract_round_trips_a_keypoints_task_and_needs_both_outputs():
    from kerasll_serving.contract import ContractError, ModelContract

    contract = _contract("keypoints", ("keypoints", "confidences"))
    again = ModelContract.from_metadata(contract.to_metadata())
    assert again.task_type == "keypoints"
    assert again.read_outputs == ("keypoints", "confidences")
    with pytest.raises(ContractError, match="Expected a keypoints model to name "
                       "task outputs \\['keypoints', 'confidences'\\]"):
        _contract("keypoints", ("keypoints",)).to_metadata()


def test_picks_read_keypoints_and_their_mean_confidence():
    from kerasll_serving.contract import ContractError
    from kerasll_serving.predictions import describe, task_columns, task_fields

    contract = _contract("keypoints", ("keypoints", "confidences"))
    keypoints = np.array([[[1.0, 2.0], [3.5, 4.0]], [[0.0, 0.0], [5.0, 6.0]]])
    confidences = np.array([[0.2, 0.6], [1.0, 0.0]])
    columns = task_columns((keypoints, confidences), contract)
    np.testing.assert_allclose(columns["confidence"], [0.4, 0.5])
    assert describe(columns, 0, contract) == {
        "prediction": [[1.0, 2.0], [3.5, 4.0]], "confidence": pytest.approx(0.4)
    }
    assert task_fields(contract) == (
        ("keypoints", "prediction"), ("mean_confidence", "confidence")
    )
    with pytest.raises(ContractError, match="Expected the pose outputs"):
        task_columns((keypoints, confidences[:, :1]), contract)


class _ArrayPool:
    """A pool of prepared images, read by index as `sources.open_pool`'s are."""

    def __init__(self, images):
        self.images = images

    def read(self, indices):
        from kerasll_serving.sources import Batch

        return Batch(indices, self.images[indices], [])


def test_the_picks_image_draws_each_keypoint_in_its_joints_color():
    from types import SimpleNamespace

    from kerasll_serving.gallery import (
        CELL, PAD, _PALETTE, draw_picks, grid_size, keypoint_centers,
    )
    from kerasll_serving.results import Pick

    contract = _contract("keypoints", ("keypoints", "confidences"))
    images = np.zeros((2, 64, 64, 3), np.float32)  # black figures
    keypoints = [[[10.0, 20.0], [40.0, 50.0]], [[63.0, 0.0], [31.5, 31.5]]]
    picks = [
        Pick(rank, f"figure{rank}.png", index, 1.0 / rank, False,
             prediction=keypoints[index], confidence=0.5)
        for rank, index in ((1, 1), (2, 0))
    ]
    grid = draw_picks(SimpleNamespace(contract=contract), _ArrayPool(images), picks)
    assert grid.size == grid_size(2)
    # 64 pixels shown in a 160-pixel cell: 2.5 picks-image pixels each, pixel
    # centers at (i + 0.5) * 2.5.
    area = (PAD, PAD, CELL, CELL)
    np.testing.assert_allclose(
        keypoint_centers([[0.0, 0.0], [63.0, 31.5]], area, (64, 64)),
        [[PAD + 1.25, PAD + 1.25], [PAD + 158.75, PAD + 80.0]],
    )
    for position, index in enumerate((1, 0)):
        cell = (PAD + position * (CELL + PAD), PAD, CELL, CELL)
        centers = keypoint_centers(keypoints[index], cell, (64, 64))
        for joint, (x, y) in enumerate(np.rint(centers).astype(int)):
            assert grid.getpixel((int(x), int(y))) == _PALETTE[joint]
    # Away from the keypoints the figure stays black.
    assert grid.getpixel((PAD + 100, PAD + 20)) == (0, 0, 0)


def test_the_picks_image_caption_names_keypoints_not_their_coordinates():
    from kerasll_serving.gallery import _prediction
    from kerasll_serving.results import Pick

    contract = _contract("keypoints", ("keypoints", "confidences"))
    pick = Pick(1, "a.png", 0, 0.5, False, prediction=[[1.0, 2.0]] * 14,
                confidence=0.4321)
    assert _prediction(pick, contract) == "14 keypoints, conf. 0.43"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keypoints-device")
    simulated = CliRunner().invoke(
        kerasll_command,
        ["simulate", "--task", "keypoints", "--dataset", "cifar10", "--data",
         str(CIFAR10), "--scenes", *SCENES, "--image-size", "64", "64",
         "--width", "0.25", "--strategies", "learning_loss", "--initial", "20",
         "--budget", "10", "--subset", "10", "--cycles", "1", "--trials", "1",
         "--epochs", "2", "--batch-size", "10", "--save-models",
         "--out", str(folder / "run")],
    )
    assert simulated.exit_code == 0, simulated.output
    (model_path,) = sorted((folder / "run" / "models").glob("*.keras"))
    # The same figures simulate drew (same seed and counts).
    task = load_task("keypoints", "cifar10", data=str(CIFAR10), seed=0,
                     train_count=int(SCENES[0]), test_count=int(SCENES[1]))
    pool = folder / "pool"
    pool.mkdir()
    for index, image in enumerate(task.test.images):
        Image.fromarray(image).save(pool / f"figure{index:02d}.png")
    onnx_path = folder / "pose.onnx"
    exporting = CliRunner().invoke(
        kerasll_command, ["export", str(model_path), "--out", str(onnx_path)]
    )
    assert exporting.exit_code == 0, exporting.output
    return {"folder": folder, "pool": pool, "task": task, "model": model_path,
            "onnx": onnx_path}


@needs_cifar10
@pytest.mark.slow
def test_the_exported_contract_is_a_keypoint_one(exported):
    from kerasll_serving.model import ScoringModel

    contract = ScoringModel(exported["onnx"], providers="cpu").contract
    assert contract.task_type == "keypoints"
    assert contract.read_outputs == ("keypoints", "confidences")
    assert contract.training["weight"] == 1e-4  # the task's pose lambda


@needs_cifar10
@pytest.mark.slow
def test_device_ranks_figures_like_keras_and_picks_carry_keypoints(exported):
    import keras

    folder = exported["folder"]
    scored = CliRunner().invoke(
        score_command,
        [str(exported["onnx"]), str(exported["pool"]), "--k", str(K),
         "--out", str(folder / "picks.jsonl"), "--providers", "cpu", "--quiet",
         "--picks-image", str(folder / "picks.png")],
    )
    assert scored.exit_code == 0, scored.output
    with Image.open(folder / "picks.png") as picture:
        assert picture.format == "PNG" and picture.size == grid_size(K)
    picks = [json.loads(line)
             for line in (folder / "picks.jsonl").read_text().splitlines()]
    learner = keras.models.load_model(exported["model"])
    images = exported["task"].test.images.astype("float32")
    deployed = exported["task"].deployable(learner)
    outputs = deployed.scoring_model().predict(images, verbose=0)
    keras_loss = np.asarray(outputs[PREDICTED_LOSS]).reshape(-1)
    expected = top_indices(keras_loss, K)
    assert [pick["index"] for pick in picks] == expected.tolist()
    assert picks[0]["item"].endswith(f"figure{expected[0]:02d}.png")
    np.testing.assert_allclose(
        [pick["predicted_loss"] for pick in picks], keras_loss[expected],
        rtol=1e-4, atol=1e-6,
    )
    keypoints = np.asarray(outputs["keypoints"])[expected]
    confidences = np.asarray(outputs["confidences"])[expected]
    np.testing.assert_allclose(
        [pick["keypoints"] for pick in picks], keypoints, atol=1e-2
    )
    np.testing.assert_allclose(
        [pick["mean_confidence"] for pick in picks], confidences.mean(axis=-1),
        rtol=1e-4, atol=1e-6,
    )
