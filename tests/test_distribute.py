import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasll import LossLearner
from models_for_tests import small_cnn


def _one_step(strategy, initial_weights, x, y):
    with strategy.scope():
        learner = LossLearner(small_cnn(), head_units=8, weight=2.0)
        learner.set_weights(initial_weights)
        learner.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    history = learner.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return learner.get_weights(), {k: v[0] for k, v in history.history.items()}


def test_two_replicas_match_one_replica_on_the_same_batch():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs two logical CPUs (set up in tests/conftest.py)")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 8, 8, 2)).astype("float32")
    # One replica pairs (A, B), (B, A); two replicas each get [A, B] and pair
    # (A, B): the same pairs, so the same loss and gradient if, and only if,
    # the hand-added ranking term is scaled like Keras' own loss.
    x = np.stack([a, b, a, b])
    y = np.array([0, 1, 0, 1])
    keras.utils.set_random_seed(0)
    initial = LossLearner(small_cnn(), head_units=8).get_weights()
    single_weights, single_logs = _one_step(
        tf.distribute.OneDeviceStrategy(devices[0].name), initial, x, y
    )
    mirrored = tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
    assert mirrored.num_replicas_in_sync == 2
    mirrored_weights, mirrored_logs = _one_step(mirrored, initial, x, y)
    assert mirrored_logs["head_loss"] > 0
    for key in ("loss", "task_loss", "head_loss"):
        assert mirrored_logs[key] == pytest.approx(single_logs[key], rel=1e-5)
    moved = [np.abs(w - w0).max() for w, w0 in zip(single_weights, initial)]
    assert max(moved) > 1e-3
    for single, mirrored_w in zip(single_weights, mirrored_weights):
        np.testing.assert_allclose(mirrored_w, single, rtol=1e-4, atol=1e-6)
