"""A detector through `kerasll-score`: ranking, detection columns, picks image.

One tiny untrained SSD (seeded, so deterministic; a few default boxes biased
towards a class, so that they pass the display threshold) is exported once
for the module with `inference_learner` + `to_onnx` and scored on six PNG
scenes.
"""

import csv
import dataclasses
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from serving_fixtures import models, random_images  # noqa: F401 (models is a fixture)

import kerasll.detection
from kerasll import LossLearner
from kerasll.detection import (
    build_ssd,
    decode_predictions,
    default_boxes_for,
    feature_map_names,
    inference_learner,
)
from kerasll.export import to_onnx
from kerasll_serving import (
    ContractError,
    InputSpec,
    ModelContract,
    PoolScorer,
    detections,
)
from kerasll_serving.contract import PREFIX
from kerasll_serving.cli import main
from kerasll_serving.gallery import grid_size
from kerasll_serving.predictions import DISPLAY_THRESHOLD
from kerasll_serving.topk import top_indices

CLASS_NAMES = ("red", "green", "blue")
SCENES = 6


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """The exported detector, its Keras learner, and a folder of PNG scenes."""
    keras.utils.set_random_seed(0)
    model = build_ssd((32, 32, 3), num_classes=3, stem_filters=(8, 16),
                      feature_filters=(16, 16, 16, 16))
    learner = LossLearner(model, taps=feature_map_names(model), head_units=8)
    images = _scenes(SCENES)
    learner(images[:1].astype("float32"))
    _favor_class(model, "predictor_2", 0)
    _favor_class(model, "predictor_3", 2)
    exported = inference_learner(learner, default_boxes_for(model))
    directory = tmp_path_factory.mktemp("detector")
    path = directory / "detector.onnx"
    to_onnx(exported, path, verify_data=images.astype("float32"),
            class_names=CLASS_NAMES)
    pool = directory / "scenes"
    pool.mkdir()
    for number, pixels in enumerate(images):
        Image.fromarray(pixels).save(pool / f"scene_{number}.png")
    return {"model": path, "pool": pool, "images": images, "learner": learner,
            "anchors": default_boxes_for(model)}


def _favor_class(model, predictor, object_class, logit=6.0):
    """Biases a predictor's first box per location towards a class (> 0.5)."""
    layer = model.get_layer(predictor)
    kernel, bias = layer.get_weights()
    bias[4 + 1 + object_class] = logit  # Box 0: 4 offsets, background, classes.
    layer.set_weights([kernel, bias])


def _scenes(count, seed=1):
    """Noise backgrounds with one or two solid red, green or blue rectangles."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 64, size=(count, 32, 32, 3), dtype=np.uint8)
    for image in images:
        for _ in range(rng.integers(1, 3)):
            top, left = rng.integers(0, 20, size=2)
            height, width = rng.integers(8, 13, size=2)
            image[top:top + height, left:left + width] = 0
            image[top:top + height, left:left + width, rng.integers(0, 3)] = 255
    return images


def invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


def test_cli_ranks_like_keras_with_detection_columns_and_picks_image(detector,
                                                                     tmp_path):
    out, image = tmp_path / "picks.csv", tmp_path / "picks.png"
    result = invoke(detector["model"], detector["pool"], "--k", 4, "--out", out,
                    "--picks-image", image, "--providers", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out)))
    # The export wrote its predicted-loss quantiles: picks carry a percentile.
    assert list(rows[0]) == ["rank", "item", "index", "predicted_loss", "nan",
                             "percentile", "detections", "top_class", "top_score"]
    assert all(0.0 <= float(row["percentile"]) <= 100.0 for row in rows)
    x = detector["images"].astype("float32")
    learner = detector["learner"]
    expected = top_indices(learner.predict_loss(x), 4)
    assert [int(row["index"]) for row in rows] == expected.tolist()
    # The columns are SSD's inference (score threshold 0.01, IoU 0.45) on the
    # Keras model, counting the detections above the display threshold.
    boxes, probabilities = decode_predictions(learner.predict(x, verbose=0),
                                              detector["anchors"])
    found = kerasll.detection.select_detections(boxes, probabilities)
    for row in rows:
        item = found[int(row["index"])]
        above = item.scores > DISPLAY_THRESHOLD
        assert int(row["detections"]) == int(above.sum())
        if above.any():
            assert row["top_class"] == CLASS_NAMES[item.classes[0]]
            assert float(row["top_score"]) == pytest.approx(item.scores[0], abs=1e-4)
        else:
            assert row["top_class"] == row["top_score"] == ""
    assert sum(int(row["detections"]) for row in rows) > 0  # Boxes get drawn.
    with Image.open(image) as picture:
        assert picture.format == "PNG" and picture.size == grid_size(4)


def test_library_reads_the_detection_contract(detector, tmp_path):
    scorer = PoolScorer(detector["model"], providers="cpu")
    assert scorer.contract.task_type == "detection"
    assert scorer.contract.class_names == CLASS_NAMES
    assert scorer.contract.task_outputs == ("boxes", "scores")
    result = scorer.score(detector["pool"], k=SCENES, all_scores=tmp_path / "all.jsonl",
                          picks_image=tmp_path / "all.png")
    assert all(pick.detections is not None for pick in result.picks)
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(lines) == SCENES
    assert list(json.loads(lines[0])) == ["index", "item", "predicted_loss", "nan",
                                          "detections", "top_class", "top_score"]
    assert result.picks_image == str(tmp_path / "all.png")
    with Image.open(tmp_path / "all.png") as picture:
        assert picture.size == grid_size(SCENES)


@pytest.mark.parametrize("target, fragment", [
    ("model", "Expected picks_image to be a new file, not the model"),
    ("inside_pool", "outside the pool directory"),
    ("not_png", "ending in .png"),
])
def test_bad_picks_image_is_one_line_and_writes_nothing(detector, tmp_path, target,
                                                        fragment):
    paths = {"model": detector["model"],
             "inside_pool": detector["pool"] / "picks.png",
             "not_png": tmp_path / "picks.jpg"}
    before = detector["model"].read_bytes()
    out = tmp_path / "picks.csv"
    result = invoke(detector["model"], detector["pool"], "--k", 2, "--out", out,
                    "--picks-image", paths[target], "--providers", "cpu")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    last = result.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("Error:") and fragment in last, result.stderr
    assert detector["model"].read_bytes() == before
    assert not out.exists() and not (detector["pool"] / "picks.png").exists()


def test_classifier_picks_keep_their_columns_and_caption_the_class(models, tmp_path):
    np.save(tmp_path / "pool.npy", random_images(20, seed=3))
    out = tmp_path / "picks.csv"
    result = invoke(models["gray"], tmp_path / "pool.npy", "--k", 3, "--out", out,
                    "--picks-image", tmp_path / "picks.png", "--quiet")
    assert result.exit_code == 0, result.output
    assert list(next(csv.DictReader(open(out)))) == [
        "rank", "item", "index", "predicted_loss", "nan", "prediction", "confidence"]
    with Image.open(tmp_path / "picks.png") as picture:
        assert picture.size == grid_size(3)


def test_nms_keeps_what_it_kept_before():
    boxes = np.array([[0, 0, 1, 1],       # kept: highest score
                      [0, 0, 1, 0.5],     # IoU 0.5 with box 0 > 0.45: dropped
                      [0, 0, 1, 0.4],     # IoU 0.4 with box 0 < 0.45: kept
                      [2, 2, 3, 3]],      # disjoint: kept
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    np.testing.assert_array_equal(detections.non_max_suppression(boxes, scores),
                                  [0, 2, 3])
    np.testing.assert_array_equal(detections.non_max_suppression(boxes, scores, 0.3),
                                  [0, 3])
    # kerasll.detection's names are the serving package's, not copies.
    assert kerasll.detection.non_max_suppression is detections.non_max_suppression
    assert kerasll.detection.select_detections is detections.select_detections
    assert kerasll.detection.boxes.iou is detections.iou
    # Per class: the two classes on boxes 0 and 1 do not suppress each other.
    probabilities = np.zeros((1, 4, 3), np.float32)
    probabilities[0, :, 0] = 1.0
    probabilities[0, [0, 1], 0] = 0.0
    probabilities[0, 0, 1] = probabilities[0, 1, 2] = 1.0
    found = detections.select_detections(boxes[None], probabilities)[0]
    np.testing.assert_array_equal(found.indices, [0, 1])
    np.testing.assert_array_equal(found.classes, [0, 1])


def test_a_higher_score_threshold_keeps_the_same_detections_above_it():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 1, size=(4, 300, 2, 2))
    boxes = np.concatenate([corners.min(axis=2), corners.max(axis=2)], axis=-1)
    probabilities = rng.dirichlet(np.full(4, 0.3), size=(4, 300)).astype(np.float32)
    low = detections.select_detections(boxes, probabilities, score_threshold=0.01)
    high = detections.select_detections(boxes, probabilities, score_threshold=0.5)
    for every, above in zip(low, high):
        keep = every.scores > 0.5
        assert keep.any()
        np.testing.assert_array_equal(above.indices, every.indices[keep])
        np.testing.assert_array_equal(above.classes, every.classes[keep])


def test_detection_contract_round_trips_and_older_metadata_still_loads():
    contract = ModelContract(
        input=InputSpec(name="image", shape=(None, 32, 32, 3), dtype="float32",
                        layout="NHWC"),
        task_outputs=("boxes", "scores"), task_type="detection",
        class_names=CLASS_NAMES,
    )
    metadata = contract.to_metadata()
    assert ModelContract.from_metadata(metadata) == contract
    assert contract.read_outputs == ("boxes", "scores")
    older = {key: value for key, value in metadata.items()
             if key != PREFIX + "task_type"}
    assert ModelContract.from_metadata(older).task_type == "other"
    newer = dict(metadata, **{PREFIX + "task_type": '"segmentation"'})
    with pytest.raises(ContractError, match="upgrade kerasll-serving"):
        ModelContract.from_metadata(newer)
    with pytest.raises(ContractError, match=r"task outputs \['boxes', 'scores'\]"):
        dataclasses.replace(contract, task_outputs=("boxes",)).to_metadata()
