"""The learner and the engine on whichever Keras backend this process runs.

Written without any backend's own API, so the same file runs on TensorFlow
(the main test process) and, through tests/test_backends.py, in subprocesses
started with KERAS_BACKEND=jax or torch.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kerasll import LossLearner
from kerasll.active.pipeline import inference_dataset, training_dataset
from kerasll.augment import Augmentation, augment_batch
from kerasll.losses import margin_ranking_loss, pair_agreement
from models_for_tests import (
    colored_patches,
    marked_noise_data,
    small_cnn,
    train_task_model,
)

BACKEND = keras.backend.backend()
SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _ranking(true, predicted, **kwargs):
    value = margin_ranking_loss(
        ops.convert_to_tensor(np.float32(true)),
        ops.convert_to_tensor(np.float32(predicted)),
        **kwargs,
    )
    return float(ops.convert_to_numpy(value))


@pytest.mark.parametrize(
    "true, predicted, margin, expected",
    [
        # (0, 3): l0 > l3, max(0, -(0.2 - 0.1) + 1) = 0.9;
        # (1, 2): l1 < l2, max(0, (0.9 - 0.4) + 1) = 1.5.
        ([3.0, 1.0, 2.0, 0.5], [0.2, 0.9, 0.4, 0.1], 1.0, 1.2),
        ([2.0, 0.0], [5.0, 1.0], 1.0, 0.0),  # ordered by 4 > margin
        ([2.0, 0.0], [5.0, 1.0], 6.0, 2.0),
        ([1.0, 1.0], [0.5, 0.0], 1.0, 1.5),  # a tie counts as -1
        ([3.0, 100.0, 1.0], [0.0, -50.0, 0.0], 1.0, 1.0),  # odd: middle left out
        ([1.0], [3.0], 1.0, 0.0),  # no pair
    ],
)
def test_ranking_loss_known_answers(true, predicted, margin, expected):
    assert _ranking(true, predicted, margin=margin) == pytest.approx(expected)


def test_pair_agreement_known_answer():
    agreement = pair_agreement(
        ops.convert_to_tensor(np.float32([3.0, 1.0, 2.0, 0.5])),
        ops.convert_to_tensor(np.float32([0.2, 0.9, 0.4, 0.1])),
    )
    # (0, 3) ordered like the truth; (1, 2) not.
    np.testing.assert_array_equal(ops.convert_to_numpy(agreement), [1.0, 0.0])


def _zero_task_loss(y_true, y_pred):
    """Per-sample loss that is always 0: only the head's loss trains."""
    return 0.0 * ops.sum(y_pred, axis=-1)


def _learner(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return LossLearner(small_cnn(), head_units=8, **kwargs)


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("detach_epoch, backbone_moves", [(0, False), (None, True)])
def test_gradient_gate_acts_inside_the_compiled_step(detach_epoch, backbone_moves):
    x, y, _ = marked_noise_data(64, seed=2)
    learner = _learner(detach_epoch=detach_epoch)
    learner.compile(optimizer=keras.optimizers.SGD(0.1), loss=_zero_task_loss)
    backbone, head = _weights(learner.backbone), _weights(learner.loss_head)
    learner.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _changed(backbone, _weights(learner.backbone)) is backbone_moves
    assert _changed(head, _weights(learner.loss_head))
    assert float(ops.convert_to_numpy(learner.head_gradient_gate)) == (
        0.0 if detach_epoch == 0 else 1.0
    )


def test_gradient_gate_flips_between_epochs_of_one_fit():
    x, y, _ = marked_noise_data(32, seed=3)
    learner = _learner(detach_epoch=1)
    learner.compile(optimizer=keras.optimizers.SGD(0.1), loss=_zero_task_loss)
    moved = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.before = _weights(learner.backbone)

        def on_epoch_end(self, epoch, logs=None):
            moved.append(_changed(self.before, _weights(learner.backbone)))

    learner.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Watch()])
    assert moved == [True, False, False]


def test_short_fit_learns_and_reports_the_head_metrics():
    x, y, hard = marked_noise_data(512, seed=4)
    learner = _learner(detach_epoch=None)
    learner.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=SPARSE_CE, metrics=["accuracy"]
    )
    history = learner.fit(x, y, epochs=6, batch_size=64, verbose=0).history
    assert {"loss", "task_loss", "head_loss", "rank_accuracy", "accuracy"} <= set(
        history
    )
    assert history["task_loss"][-1] < history["task_loss"][0]
    assert history["loss"][0] == pytest.approx(
        history["task_loss"][0] + history["head_loss"][0], rel=1e-5
    )
    predicted = learner.predict_loss(x, batch_size=128)
    assert predicted.shape == (512,)
    assert predicted[hard].mean() > predicted[~hard].mean()
    logs = learner.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    assert 0.5 < logs["rank_accuracy"] <= 1.0


def test_save_and_load_round_trip(tmp_path):
    x, y, _ = marked_noise_data(64, seed=12)
    learner = _learner(taps=["stage2"], margin=0.5, weight=0.3, detach_epoch=0)
    learner.compile(optimizer="adam", loss=SPARSE_CE, metrics=["accuracy"])
    learner.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "learner.keras"
    learner.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, LossLearner)
    assert (loaded.taps, loaded.margin, loaded.weight, loaded.detach_epoch) == (
        ["stage2"], 0.5, 0.3, 0,
    )
    assert float(ops.convert_to_numpy(loaded.head_gradient_gate)) == 0.0
    np.testing.assert_allclose(loaded.predict_loss(x), learner.predict_loss(x))
    before = learner.evaluate(x, y, verbose=0, return_dict=True)
    after = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert after["head_loss"] == pytest.approx(before["head_loss"], rel=1e-5)
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)  # still trainable


def test_training_batches_are_a_function_of_the_seed():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(20, 8, 8, 3), dtype=np.uint8)
    y = np.arange(20) % 3
    augmentation = Augmentation(pad=2, flip=True)

    def batches(seed):
        dataset, steps = training_dataset(x, y, 8, 2, augmentation, seed)
        assert steps == 3
        return [
            tuple(np.asarray(part) for part in batch)
            for batch, _ in zip(dataset, range(6))
        ]

    first, again, other = batches(5), batches(5), batches(6)
    assert [b[0].shape[0] for b in first] == [8, 8, 4] * 2
    assert all(b[0].dtype == np.float32 for b in first)
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    epoch = np.concatenate([b[1] for b in first[:3]])
    assert sorted(epoch) == sorted(y)  # every item once per epoch


def test_inference_batches_keep_order_and_cast():
    x = np.arange(5 * 2 * 2 * 1, dtype=np.uint8).reshape(5, 2, 2, 1)
    batches = [
        tuple(np.asarray(part) for part in batch)
        for batch, _ in zip(inference_dataset(x, np.arange(5), batch_size=2), range(3))
    ]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), range(5))
    assert batches[0][0].dtype == np.float32


def test_numpy_augmentation_crops_the_padded_image_and_flips():
    image = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    augmentation = Augmentation(pad=1, flip=True)
    same = augment_batch(image, np.array([[1, 1]]), np.array([False]), augmentation)
    np.testing.assert_array_equal(same, image)
    shifted = augment_batch(image, np.array([[0, 2]]), np.array([True]), augmentation)
    # Crop at row 0, column 2 of the zero-padded 5x5, then mirror.
    expected = np.array([[0, 0, 0], [0, 2, 1], [0, 5, 4]], np.float32)
    np.testing.assert_array_equal(shifted[0, :, :, 0], expected)


def test_engine_trains_a_cycle_and_scores_the_pool():
    from kerasll.active.training import TrainingConfig, train_model
    from kerasll.tasks.classification import KerasModelView
    from kerasll.models import build_model

    x, y, _ = marked_noise_data(48, seed=8)
    config = TrainingConfig(epochs=2, batch_size=16, head_units=4)

    def train():
        return train_model(
            lambda: build_model("small_cnn", (8, 8, 2), 2, width=0.25),
            x, y, config, with_head=True,
            augmentation=Augmentation(pad=1, flip=False), seed=3,
        )

    first, second = train(), train()
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    view = KerasModelView(first, x, batch_size=32)
    assert view.predicted_loss(np.arange(10)).shape == (10,)
    assert view.probabilities(np.arange(10)).shape == (10, 2)


def test_engine_trains_a_detector_and_scores_scenes():
    from kerasll.active.training import TrainingConfig
    from kerasll.detection.scenes import make_scenes
    from kerasll.tasks.detection import DetectionTask

    sources, labels = colored_patches(40, classes=2)
    task = DetectionTask(
        "two-colors",
        make_scenes(sources, labels, 24, scene_size=64, seed=1),
        make_scenes(sources, labels, 8, scene_size=64, seed=2),
    )
    x, y = task.training_arrays(np.arange(16))  # 16 scenes and their mirrors
    model = train_task_model(
        task, "ssd", x, y, TrainingConfig(epochs=2, batch_size=8, learning_rate=0.05),
        weight_decay=5e-4,
    )
    view = task.view(model, "test", batch_size=8)
    items = np.arange(8)
    assert np.all(np.isfinite(view.predicted_loss(items)))
    assert np.all(view.true_loss(items) > 0)
    assert view.uncertainty(items, "entropy").shape == (8,)
    assert 0.0 <= task.evaluate(view) <= 1.0


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow exports itself")
def test_to_onnx_on_another_backend_says_how(tmp_path):
    from kerasll.export import ExportError, to_onnx

    with pytest.raises(ExportError, match="KERAS_BACKEND=tensorflow"):
        to_onnx(_learner(), tmp_path / "learner.onnx")


def _one_distributed_step(distribution, initial, x, y):
    keras.distribution.set_distribution(distribution)
    try:
        learner = LossLearner(small_cnn(), head_units=8, weight=2.0)
        learner.set_weights(initial)
        learner.compile(optimizer=keras.optimizers.SGD(0.5), loss=SPARSE_CE)
        history = learner.fit(
            x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0
        )
    finally:
        keras.distribution.set_distribution(None)
    return learner.get_weights(), {k: v[0] for k, v in history.history.items()}


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution runs on JAX")
def test_data_parallel_matches_one_device_on_the_same_batch():
    devices = keras.distribution.list_devices("cpu")
    if len(devices) < 2:
        pytest.skip(
            "needs two devices: XLA_FLAGS=--xla_force_host_platform_device_count=2"
        )
    rng = np.random.default_rng(0)
    # Four distinct items: the global batch pairs (0, 3) and (1, 2), which
    # no device holds alone. The step sees the global batch, so the ranking
    # term must equal the one-device value, neither scaled by the device
    # count nor paired per shard.
    x = rng.normal(size=(4, 8, 8, 2)).astype("float32")
    y = np.array([0, 1, 1, 0])
    keras.utils.set_random_seed(0)
    initial = LossLearner(small_cnn(), head_units=8).get_weights()
    single = keras.distribution.DataParallel(devices=devices[:1])
    single_weights, single_logs = _one_distributed_step(single, initial, x, y)
    parallel = keras.distribution.DataParallel(devices=devices[:2])
    parallel_weights, parallel_logs = _one_distributed_step(parallel, initial, x, y)
    assert parallel_logs["head_loss"] > 0
    for key in ("loss", "task_loss", "head_loss"):
        assert parallel_logs[key] == pytest.approx(single_logs[key], rel=1e-5)
    moved = [np.abs(w - w0).max() for w, w0 in zip(single_weights, initial)]
    assert max(moved) > 1e-3
    for one, two in zip(single_weights, parallel_weights):
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-6)
