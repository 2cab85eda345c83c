"""A detector from `kerasll simulate` to device picks with boxes.

simulate --task detection --save-models -> kerasll export -> kerasll-score on
a folder of scene images, with the picks image: the device ranks the scenes
exactly as Keras does.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from kerasll_serving.cli import main as score_command
from kerasll_serving.topk import top_indices
from PIL import Image

from kerasll.active.experiment import run_experiment
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.training import TrainingConfig
from kerasll_cli import main as kerasll_command
from kerasll.detection.scenes import make_scenes
from kerasll.learner import PREDICTED_LOSS
from kerasll.tasks.detection import DetectionTask
from models_for_tests import colored_patches

K = 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    sources, labels = colored_patches(60, classes=2)
    names = ("red", "green")
    task = DetectionTask(
        "two-colors",
        make_scenes(sources, labels, 40, scene_size=64, seed=1, class_names=names),
        make_scenes(sources, labels, 12, scene_size=64, seed=2, class_names=names),
    )
    config = ExperimentConfig(
        task_kind="detection", dataset=task.name, width=0.25,
        strategies=("learning_loss",), initial_size=20, budget=10, subset_size=10,
        cycles=1, trials=1,
        training=TrainingConfig(epochs=3, batch_size=10, learning_rate=0.05),
    )
    folder = tmp_path_factory.mktemp("detection-device")
    result = run_experiment(config, task, folder / "run", save_models=True)
    model_path = result.models[("learning_loss", 0)]
    pool = folder / "pool"
    pool.mkdir()
    for index, image in enumerate(task.test.images):
        Image.fromarray(image).save(pool / f"scene{index:02d}.png")
    exported = CliRunner().invoke(
        kerasll_command,
        ["export", str(model_path), "--out", str(folder / "detector.onnx"),
         "--class-names", "red,green"],
    )
    assert exported.exit_code == 0, exported.output
    return {"folder": folder, "pool": pool, "task": task, "model": model_path}


@pytest.mark.slow
def test_device_ranks_scene_images_like_keras_and_draws_the_picks(exported):
    import keras

    folder = exported["folder"]
    scored = CliRunner().invoke(
        score_command,
        [str(folder / "detector.onnx"), str(exported["pool"]), "--k", str(K),
         "--out", str(folder / "picks.jsonl"), "--picks-image",
         str(folder / "picks.png"), "--providers", "cpu", "--quiet"],
    )
    assert scored.exit_code == 0, scored.output
    lines = (folder / "picks.jsonl").read_text().splitlines()
    picks = [json.loads(line) for line in lines]
    learner = keras.models.load_model(exported["model"])
    images = exported["task"].test.images.astype("float32")
    outputs = learner.scoring_model().predict(images, verbose=0)
    keras_loss = np.asarray(outputs[PREDICTED_LOSS]).reshape(-1)
    expected = top_indices(keras_loss, K)
    assert [pick["index"] for pick in picks] == expected.tolist()
    assert picks[0]["item"].endswith(f"scene{expected[0]:02d}.png")
    np.testing.assert_allclose(
        [pick["predicted_loss"] for pick in picks],
        keras_loss[expected],
        rtol=1e-4,
        atol=1e-5,
    )
    assert {"detections", "top_class", "top_score"} <= set(picks[0])
    with Image.open(folder / "picks.png") as image:
        assert image.format == "PNG" and image.width > 64 * K
