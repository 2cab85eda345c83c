"""The per-cycle training setup: learning-rate drop and loss-head decay."""

import keras
import numpy as np
import pytest

from kerasll.active.training import (
    TrainingConfig,
    compile_model,
    lr_schedule,
    make_model,
)
from kerasll.models import build_model


class _LearningRates(keras.callbacks.Callback):
    """Records the learning rate each training step is taken with."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        # The optimizer evaluates its schedule at `iterations`, the number of
        # steps already taken: exactly the rate of the step about to run.
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_learning_rate_drops_at_the_first_step_of_the_drop_epoch():
    config = TrainingConfig(epochs=5, lr_drop_fraction=0.4, learning_rate=0.1)
    assert config.lr_drop_epoch == 2
    steps = 3
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    compile_model(model, config, steps)
    recorder = _LearningRates()
    x = np.random.default_rng(0).normal(size=(steps * 4, 4)).astype("float32")
    y = np.arange(steps * 4) % 3
    model.fit(x, y, batch_size=4, epochs=5, shuffle=False, verbose=0,
              callbacks=[recorder])
    rates = np.reshape(recorder.rates, (5, steps))
    np.testing.assert_allclose(rates[:2], 0.1, rtol=1e-6)  # epochs 0 and 1
    np.testing.assert_allclose(rates[2:], 0.01, rtol=1e-6)  # from epoch 2, step 0
    assert float(model.optimizer.iterations) == 5 * steps


@pytest.mark.parametrize(
    "fraction, first_low_step", [(0.0, 0), (0.2, 3), (0.8, 12), (1.0, None)]
)
def test_lr_schedule_boundary_is_the_last_step_before_the_drop_epoch(
    fraction, first_low_step
):
    config = TrainingConfig(epochs=5, lr_drop_fraction=fraction, learning_rate=0.1)
    schedule = lr_schedule(config, steps_per_epoch=3)
    rates = [
        float(schedule(step)) if callable(schedule) else schedule
        for step in range(15)
    ]
    expected = [
        0.01 if first_low_step is not None and step >= first_low_step else 0.1
        for step in range(15)
    ]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_loss_head_gets_the_target_weight_decay():
    config = TrainingConfig(epochs=5, weight_decay=5e-4, head_units=4)
    backbone = build_model("small_cnn", (8, 8, 1), 3, width=0.25)
    learner = make_model(backbone, config, with_head=True)
    assert learner.head_weight_decay == pytest.approx(5e-4)
    dense = [
        layer
        for layer in learner.loss_head._flatten_layers()
        if isinstance(layer, keras.layers.Dense)
    ]
    assert dense and all(
        layer.kernel_regularizer is not None
        and float(layer.kernel_regularizer.l2) == pytest.approx(2.5e-4)
        for layer in dense
    )
    undecayed = make_model(
        build_model("small_cnn", (8, 8, 1), 3, width=0.25),
        TrainingConfig(weight_decay=0.0),
        with_head=True,
    )
    assert undecayed.head_weight_decay == 0.0
