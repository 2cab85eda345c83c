"""The small SSD under LossLearner: it learns, its head ranks, it exports.

One tiny detector is trained once for the module (about 15 CPU seconds) on
scenes of colored noise patches, so no data set is needed; the tests that use
it are marked slow.
"""

import keras
import numpy as np
import onnxruntime
import pytest
from keras import ops

from kerasll import LossLearner
from kerasll.detection.anchors import DefaultBoxes
from kerasll.detection.inference import inference_learner, inference_model
from kerasll.detection.loss import MultiBoxLoss
from kerasll.detection.matching import encode_batch
from kerasll.detection.model import build_ssd, default_boxes_for, feature_map_names
from kerasll.detection.postprocess import decode_predictions, select_detections
from kerasll.detection.scenes import make_scenes
from kerasll.detection.uncertainty import detection_uncertainty, pooled_features
from kerasll.export import to_onnx
from models_for_tests import colored_patches, pair_accuracy

CLASSES = 3
TRAIN_SCENES = 128
TEST_SCENES = 32
EPOCHS = 30


def _tiny_detector():
    return build_ssd(
        (32, 32, 3),
        num_classes=CLASSES,
        stem_filters=(8, 16),
        feature_filters=(16, 16, 16, 16),
        batch_norm=False,  # Adam on 128 scenes: plain convolutions learn faster
    )


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    images, labels = colored_patches(200, CLASSES)
    train = make_scenes(images, labels, TRAIN_SCENES, scene_size=32, seed=1)
    test = make_scenes(images, labels, TEST_SCENES, scene_size=32, seed=2)
    detector = _tiny_detector()
    anchors = default_boxes_for(detector)
    learner = LossLearner(detector, taps=feature_map_names(detector), head_units=16)
    learner.compile(keras.optimizers.Adam(3e-3), loss=MultiBoxLoss())
    x_train = train.images.astype("float32")
    y_train = encode_batch(train.boxes, train.labels, anchors)

    def mean_loss():
        return float(
            ops.mean(MultiBoxLoss().call(y_train, detector.predict(x_train, verbose=0)))
        )

    before = mean_loss()
    learner.fit(x_train, y_train, batch_size=16, epochs=EPOCHS, verbose=0)
    return {
        "learner": learner,
        "anchors": anchors,
        "test": test,
        "before": before,
        "after": mean_loss(),
    }


def test_detector_shapes_and_taps():
    detector = _tiny_detector()
    anchors = default_boxes_for(detector)
    spec = DefaultBoxes()
    # 8x8, 4x4, 2x2 and 1x1 maps, 4 boxes per cell.
    assert len(anchors) == spec.per_location * (64 + 16 + 4 + 1)
    assert tuple(detector.output.shape) == (None, len(anchors), 4 + CLASSES + 1)
    assert feature_map_names(detector) == [f"feature_map_{i}" for i in range(4)]
    learner = LossLearner(detector, taps=feature_map_names(detector))
    assert learner.taps == feature_map_names(detector)
    with pytest.raises(ValueError, match="one default box per output row"):
        default_boxes_for(detector, DefaultBoxes(aspect_ratios=(1.0, 2.0)))
    with pytest.raises(ValueError, match="at least 64x64"):
        build_ssd((32, 32, 3), stem_filters=(8, 8, 8))
    with pytest.raises(ValueError, match="integer >= 1. Received: num_classes=2.5"):
        build_ssd(num_classes=2.5)
    with pytest.raises(ValueError, match="number >= 0. Received: weight_decay=nan"):
        build_ssd(weight_decay=float("nan"))
    single = build_ssd((16, 16, 3), stem_filters=(8,), feature_filters=(8,))
    assert single.output_names == ["detections"]


def test_inference_learner_keeps_every_argument_and_the_trained_head():
    detector = _tiny_detector()
    learner = LossLearner(
        detector,
        taps=feature_map_names(detector)[1:3],
        head_units=8,
        margin=0.5,
        weight=2.0,
        objective="mse",
        detach_epoch=3,
        head_weight_decay=1e-4,
        name="custom",
    )
    exported = inference_learner(learner, default_boxes_for(detector))
    expected = {**learner.get_config(), "name": "custom_boxes"}
    got = exported.get_config()
    assert got.pop("model") != expected.pop("model")  # Rewired to boxes, scores.
    assert got == expected
    assert exported.task_output_names == ["boxes", "scores"]
    head = zip(exported.loss_head.get_weights(), learner.loss_head.get_weights())
    for copied, trained_weight in head:
        np.testing.assert_array_equal(copied, trained_weight)
    assert exported.backbone.get_layer("feature_map_1") is detector.get_layer(
        "feature_map_1"
    )


@pytest.mark.slow
def test_tiny_detector_learns_a_few_scenes(trained):
    print(
        f"mean MultiBox loss on the training scenes: {trained['before']:.3f} -> "
        f"{trained['after']:.3f}"
    )
    assert trained["after"] < 0.6 * trained["before"]


@pytest.mark.slow
def test_head_ranks_held_out_scenes_above_chance(trained):
    learner, test = trained["learner"], trained["test"]
    x = test.images.astype("float32")
    y = encode_batch(test.boxes, test.labels, trained["anchors"])
    true = ops.convert_to_numpy(MultiBoxLoss().call(y, learner.predict(x, verbose=0)))
    accuracy = pair_accuracy(learner.predict_loss(x), true)
    print(f"head rank accuracy on {len(x)} held-out scenes (all pairs): {accuracy:.3f}")
    assert accuracy > 0.5


@pytest.mark.slow
def test_onnx_export_carries_boxes_scores_and_predicted_loss(trained, tmp_path):
    learner, anchors = trained["learner"], trained["anchors"]
    x = trained["test"].images.astype("float32")
    exported = inference_learner(learner, anchors)
    report = to_onnx(exported, tmp_path / "detector.onnx", verify_data=x)
    assert report.outputs == ("boxes", "scores", "predicted_loss")
    print("ONNX max |diff| vs Keras:", report.max_abs_diff)
    session = onnxruntime.InferenceSession(
        str(tmp_path / "detector.onnx"), providers=["CPUExecutionProvider"]
    )
    boxes, scores, predicted = session.run(None, {report.input_name: x})
    # The graph's boxes and scores are the numpy decoding of the trained model.
    expected_boxes, expected_scores = decode_predictions(
        learner.predict(x, verbose=0), anchors
    )
    np.testing.assert_allclose(boxes, expected_boxes, atol=1e-4)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    np.testing.assert_allclose(predicted, learner.predict_loss(x), atol=1e-4)


@pytest.mark.slow
def test_inference_model_round_trips_through_keras_saving(trained, tmp_path):
    model = inference_model(trained["learner"].backbone, trained["anchors"])
    x = trained["test"].images[:4].astype("float32")
    model.save(tmp_path / "boxes.keras")
    restored = keras.models.load_model(tmp_path / "boxes.keras")
    for got, want in zip(restored.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.slow
def test_detection_learner_round_trips_with_its_loss(trained, tmp_path):
    learner = trained["learner"]
    x = trained["test"].images[:4].astype("float32")
    learner.save(tmp_path / "learner.keras")
    restored = keras.models.load_model(tmp_path / "learner.keras")
    assert isinstance(restored.loss, MultiBoxLoss)
    np.testing.assert_allclose(
        restored.predict_loss(x), learner.predict_loss(x), atol=1e-6
    )


@pytest.mark.slow
def test_uncertainty_scores_from_the_trained_detector(trained):
    learner, anchors = trained["learner"], trained["anchors"]
    x = trained["test"].images[:8].astype("float32")
    boxes, probabilities = decode_predictions(learner.predict(x, verbose=0), anchors)
    detections = select_detections(boxes, probabilities)
    entropy = detection_uncertainty(probabilities, detections)
    assert entropy.shape == (8,) and np.all(entropy >= 0)
    assert np.all(entropy <= np.log(CLASSES + 1) + 1e-5)
    features = pooled_features(learner.backbone, x)
    assert features.shape == (8, 16 * 4)
