"""The hourglass under LossLearner: loss, taps, device form, learning, export.

One tiny pose network is trained once for the module (about 30 CPU seconds)
on stick figures drawn on noise backgrounds, so no data set is needed; the
tests that use it are marked slow.
"""

import keras
import numpy as np
import onnxruntime
import pytest
from keras import ops

from kerasll import LossLearner
from kerasll.export import to_onnx
from kerasll.keypoints.figures import make_figures
from kerasll.keypoints.heatmaps import IGNORED, decode_heatmaps, encode_heatmaps
from kerasll.keypoints.inference import inference_learner, inference_model
from kerasll.keypoints.loss import HeatmapLoss
from kerasll.keypoints.model import build_hourglass, feature_map_names
from kerasll.keypoints.uncertainty import heatmap_entropy, pose_feature_tensor
from models_for_tests import pair_accuracy

SIZE = 48
JOINTS = 14


def _backgrounds():
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(128, 40, (50, 32, 32, 3)), 0, 255).astype(np.uint8)


def _figures(count, seed):
    return make_figures(_backgrounds(), count, image_size=SIZE, scale=(0.2, 0.26),
                        occlusion=0.3, seed=seed)


def _targets(figures):
    return encode_heatmaps(figures.keypoints, figures.visibility, figures.image_size,
                           sigma=1.5)


def _tiny(**kwargs):
    return build_hourglass((SIZE, SIZE, 3), JOINTS, depth=2, stem_filters=(8, 16),
                           filters=24, **kwargs)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    train, test = _figures(96, seed=1), _figures(64, seed=2)
    model = _tiny()
    learner = LossLearner(model, taps=feature_map_names(model), head_units=16)
    learner.compile(keras.optimizers.Adam(3e-3), loss=HeatmapLoss())
    x, y = train.images.astype("float32"), _targets(train)

    def mean_loss(predictions):
        return float(ops.mean(HeatmapLoss().call(y, predictions)))

    before = mean_loss(model.predict(x, verbose=0))
    learner.fit(x, y, batch_size=16, epochs=40, verbose=0)
    return {
        "learner": learner,
        "test": test,
        "before": before,
        "after": mean_loss(model.predict(x, verbose=0)),
        "zero": mean_loss(np.zeros_like(y)),
    }


def test_heatmaps_at_a_quarter_and_taps_per_resolution():
    model = _tiny()
    assert tuple(model.output.shape) == (None, SIZE // 4, SIZE // 4, JOINTS)
    names = feature_map_names(model)
    assert names == [f"hourglass_feature_{i}" for i in range(3)]
    sizes = [model.get_layer(name).output.shape[1] for name in names]
    assert sizes == [12, 6, 3]
    assert LossLearner(model, taps=names).taps == names
    with pytest.raises(ValueError, match="divisible by 16"):
        build_hourglass((40, 40, 3), depth=2)
    with pytest.raises(ValueError, match="stacks=0"):
        build_hourglass((48, 48, 3), stacks=0, depth=2)
    with pytest.raises(ValueError, match="integer >= 1. Received: depth=True"):
        build_hourglass(depth=True)
    with pytest.raises(ValueError, match="number >= 0. Received: weight_decay=-1"):
        build_hourglass(weight_decay=-1)
    with pytest.raises(ValueError, match="layers named 'hourglass_feature_<i>'"):
        feature_map_names(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


@pytest.mark.slow  # the first fit traces the training step: ~20 s
def test_two_stacks_supervise_both_and_tap_the_last():
    model = build_hourglass((16, 16, 3), 3, stacks=2, depth=1, stem_filters=(4, 4),
                            filters=4, intermediate_outputs=True)
    assert model.output_names == ["heatmaps_0", "heatmaps"]
    assert feature_map_names(model) == ["hourglass_feature_0", "hourglass_feature_1"]
    # The taps are the last stack's; the first stack's merges are not taps.
    assert model.get_layer("stack_0_merge_0") is not None
    learner = LossLearner(model, taps=feature_map_names(model), head_units=4)
    learner.compile(keras.optimizers.Adam(1e-3), loss=HeatmapLoss(), jit_compile=False)
    keypoints = np.full((4, 3, 2), 7.5)
    y = encode_heatmaps(keypoints, np.full((4, 3), 2), (16, 16))
    x = np.zeros((4, 16, 16, 3), dtype="float32")
    history = learner.fit(x, [y, y], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    single = build_hourglass((16, 16, 3), 3, stacks=2, depth=1)
    assert single.output_names == ["heatmaps"]


def test_loss_averages_labeled_joints_of_each_image():
    y_true = np.zeros((2, 2, 2, 3), dtype=np.float32)
    y_true[:, :, :, 1] = IGNORED  # joint 1 unlabeled in both images
    y_true[1] = IGNORED  # nothing labeled in image 1
    y_pred = np.zeros_like(y_true)
    y_pred[0, :, :, 0] = 1.0  # squared error 1 on every cell
    y_pred[0, 0, 0, 2] = 2.0  # squared error 4 on one cell of four: mean 1
    y_pred[0, :, :, 1] = 5.0  # unlabeled: not counted
    y_pred[1] = 3.0
    loss = ops.convert_to_numpy(HeatmapLoss().call(y_true, y_pred))
    np.testing.assert_allclose(loss, [1.0, 0.0])
    restored = HeatmapLoss.from_config(HeatmapLoss(name="pose").get_config())
    assert restored.name == "pose"
    assert float(restored(y_true, y_pred)) == pytest.approx(0.5)  # batch mean


def test_device_form_decodes_like_numpy_and_round_trips_saving(tmp_path):
    model = _tiny()
    device = inference_model(model)
    assert device.output_names == ["keypoints", "confidences"]
    x = _figures(6, seed=4).images.astype("float32")
    keypoints, confidences = device.predict(x, verbose=0)
    expected = decode_heatmaps(model.predict(x, verbose=0))
    np.testing.assert_allclose(keypoints, expected[0], atol=1e-4)
    np.testing.assert_allclose(confidences, expected[1], atol=1e-6)
    device.save(tmp_path / "pose.keras")
    restored = keras.models.load_model(tmp_path / "pose.keras")
    for got, want in zip(restored.predict(x, verbose=0), (keypoints, confidences)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_entropy_is_zero_for_one_peak_and_one_for_a_flat_map():
    maps = np.zeros((3, 4, 4, 2), dtype=np.float32)
    maps[0, 1, 2, :] = 0.9  # one cell per joint
    maps[1] = 0.3  # flat
    maps[2, ..., 0] = -0.5  # negative: clipped, counts as flat
    maps[2, :2, :, 1] = 1.0  # half the cells: log(8) / log(16)
    np.testing.assert_allclose(heatmap_entropy(maps), [0.0, 1.0, (1.0 + 0.75) / 2],
                               atol=1e-6)
    nats = heatmap_entropy(maps, normalize=False)
    assert nats[1] == pytest.approx(np.log(16))


def test_pooled_features_cover_every_tap():
    model = _tiny()
    tensor = pose_feature_tensor(model)
    assert tensor.shape[-1] == 3 * 24


@pytest.mark.slow
def test_tiny_pose_network_learns_a_few_figures(trained):
    print(
        f"mean heatmap loss on the training figures: {trained['before']:.4f} -> "
        f"{trained['after']:.4f} (all-zero heatmaps: {trained['zero']:.4f})"
    )
    assert trained["after"] < 0.7 * trained["zero"]


@pytest.mark.slow
def test_head_ranks_held_out_figures_above_chance(trained):
    learner, test = trained["learner"], trained["test"]
    x = test.images.astype("float32")
    true = ops.convert_to_numpy(
        HeatmapLoss().call(_targets(test), learner.predict(x, verbose=0))
    )
    accuracy = pair_accuracy(learner.predict_loss(x), true)
    print(f"head rank accuracy on {len(x)} held-out figures: {accuracy:.3f}")
    assert accuracy > 0.5


@pytest.mark.slow
def test_onnx_export_carries_keypoints_confidences_and_loss(trained, tmp_path):
    learner = trained["learner"]
    x = trained["test"].images.astype("float32")
    report = to_onnx(inference_learner(learner), tmp_path / "pose.onnx", verify_data=x)
    assert report.outputs == ("keypoints", "confidences", "predicted_loss")
    session = onnxruntime.InferenceSession(
        str(tmp_path / "pose.onnx"), providers=["CPUExecutionProvider"]
    )
    keypoints, confidences, predicted = session.run(None, {report.input_name: x})
    expected_keypoints, expected_confidences = decode_heatmaps(
        learner.predict(x, verbose=0)
    )
    np.testing.assert_allclose(keypoints, expected_keypoints, atol=1e-3)
    np.testing.assert_allclose(confidences, expected_confidences, atol=1e-5)
    np.testing.assert_allclose(predicted, learner.predict_loss(x), atol=1e-4)
