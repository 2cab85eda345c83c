import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasll import DetachHead, LossLearner
from models_for_tests import auc, marked_noise_data, small_cnn

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _zero_task_loss(y_true, y_pred):
    """Per-sample loss that is always 0: only the head's loss trains."""
    return 0.0 * keras.ops.sum(y_pred, axis=-1)


def _learner(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return LossLearner(small_cnn(), head_units=8, **kwargs)


def _weights(layers):
    return [w.numpy().copy() for layer in layers for w in layer.weights]


def _max_abs(gradients):
    """Largest gradient entry; None (no path to the variable) counts as 0."""
    return [0.0 if g is None else float(tf.reduce_max(tf.abs(g))) for g in gradients]


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_head_gradient_reaches_backbone_only_before_the_switch():
    x, y, _ = marked_noise_data(64, seed=1)
    learner = _learner()
    learner.compile(loss=SPARSE_CE)
    with tf.GradientTape(persistent=True) as tape:
        y_pred, predicted = learner._forward_with_head(x, training=True)
        _, _, head_loss, _ = learner._loss_terms(y, y_pred, predicted, None)
    open_grads = tape.gradient(head_loss, learner.backbone.trainable_weights)
    assert max(_max_abs(open_grads)) > 0

    learner.head_gradient_gate.assign(0.0)
    with tf.GradientTape(persistent=True) as tape:
        y_pred, predicted = learner._forward_with_head(x, training=True)
        _, _, head_loss, _ = learner._loss_terms(y, y_pred, predicted, None)
    closed = tape.gradient(head_loss, learner.backbone.trainable_weights)
    assert max(_max_abs(closed)) == 0.0
    head_grads = tape.gradient(head_loss, learner.loss_head.trainable_weights)
    # Every head kernel learns; the final bias cancels in pairwise differences.
    kernels = [
        g for w, g in zip(learner.loss_head.trainable_weights, head_grads)
        if "kernel" in w.path
    ]
    assert min(_max_abs(kernels)) > 0


@pytest.mark.parametrize("detach_epoch, backbone_moves", [(0, False), (None, True)])
def test_switch_takes_effect_inside_the_compiled_step(detach_epoch, backbone_moves):
    x, y, _ = marked_noise_data(64, seed=2)
    learner = _learner(detach_epoch=detach_epoch)
    learner.compile(optimizer=keras.optimizers.SGD(0.1), loss=_zero_task_loss)
    backbone, head = _weights(learner.backbone.layers), _weights([learner.loss_head])
    learner.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _changed(backbone, _weights(learner.backbone.layers)) is backbone_moves
    assert _changed(head, _weights([learner.loss_head]))


def test_switch_flips_between_epochs_of_one_fit():
    x, y, _ = marked_noise_data(32, seed=3)
    learner = _learner(detach_epoch=1)
    learner.compile(optimizer=keras.optimizers.SGD(0.1), loss=_zero_task_loss)
    moved = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.before = _weights(learner.backbone.layers)

        def on_epoch_end(self, epoch, logs=None):
            moved.append(_changed(self.before, _weights(learner.backbone.layers)))

    learner.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Watch()])
    assert moved == [True, False, False]
    # A new fit starting at epoch 0 (warm start) opens the gradient again.
    learner.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert float(learner.head_gradient_gate.numpy()) == 1.0


def test_detach_head_rejects_negative_epoch():
    with pytest.raises(ValueError, match="epoch=-1"):
        DetachHead(-1)


def test_head_learns_which_inputs_are_hard():
    x, y, _ = marked_noise_data(1024, seed=4)
    x_test, y_test, hard_test = marked_noise_data(512, seed=5)
    learner = _learner(detach_epoch=None)
    learner.compile(optimizer=keras.optimizers.Adam(3e-3), loss=SPARSE_CE)
    learner.fit(x, y, epochs=8, batch_size=64, verbose=0)
    score = auc(learner.predict_loss(x_test, batch_size=128), hard_test)
    metrics = learner.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(f"held-out AUC(hard vs easy)={score:.3f} rank_accuracy={metrics['rank_accuracy']:.3f}")
    assert score > 0.8
    assert metrics["rank_accuracy"] > 0.6


def test_fit_reports_the_head_metrics():
    x, y, _ = marked_noise_data(64, seed=6)
    learner = _learner()
    learner.compile(loss=SPARSE_CE, metrics=["accuracy"])
    history = learner.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert {"loss", "task_loss", "head_loss", "rank_accuracy", "accuracy"} <= set(
        history.history
    )
    logs = {k: v[0] for k, v in history.history.items()}
    assert logs["loss"] == pytest.approx(logs["task_loss"] + logs["head_loss"], rel=1e-5)


def test_tf_data_input_and_predict_shapes():
    x, y, _ = marked_noise_data(96, seed=7)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    learner = _learner()
    learner.compile(loss=SPARSE_CE)
    learner.fit(dataset, epochs=1, verbose=0)
    assert learner.predict(x, verbose=0).shape == (96, 2)
    from_arrays = learner.predict_loss(x)
    from_dataset = learner.predict_loss(dataset)
    assert from_arrays.shape == (96,)
    np.testing.assert_allclose(from_arrays, from_dataset, rtol=1e-5, atol=1e-6)


def test_sample_weights_weight_the_task_loss():
    x, y, _ = marked_noise_data(8, seed=8)
    weights = np.array([1, 0, 2, 0, 1, 0, 3, 0], dtype="float32")
    learner = _learner(weight=0.0)
    learner.compile(loss=SPARSE_CE)
    logits = learner.predict(x, verbose=0)
    per_sample = SPARSE_CE.call(tf.constant(y), tf.constant(logits)).numpy()
    logs = learner.evaluate(
        x, y, sample_weight=weights, batch_size=8, verbose=0, return_dict=True
    )
    assert logs["task_loss"] == pytest.approx((per_sample * weights).mean(), rel=1e-5)


def test_odd_batch_and_batch_of_one_train_without_nan():
    x, y, _ = marked_noise_data(5, seed=9)
    learner = _learner()
    learner.compile(loss=SPARSE_CE)
    history = learner.fit(x, y, epochs=1, batch_size=2, verbose=0)  # batches 2, 2, 1
    assert np.isfinite(history.history["loss"][0])
    one = learner.evaluate(x[:1], y[:1], verbose=0, return_dict=True)
    assert one["head_loss"] == 0.0 and np.isfinite(one["loss"])


def test_regression_with_mse_ranks_noisy_inputs():
    rng = np.random.default_rng(10)

    def data(count):
        x = rng.normal(size=(count, 8, 8, 2)).astype("float32")
        noisy = rng.random(count) < 0.3
        x[..., 1] = noisy[:, None, None]
        y = x[..., 0].mean(axis=(1, 2)) + noisy * rng.normal(scale=2.0, size=count)
        return x, y.astype("float32")[:, None], noisy

    inputs = keras.Input((8, 8, 2))
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c")(
        inputs
    )
    outputs = keras.layers.Dense(1, name="value")(
        keras.layers.GlobalAveragePooling2D()(features)
    )
    keras.utils.set_random_seed(10)
    learner = LossLearner(keras.Model(inputs, outputs), head_units=8, detach_epoch=None)
    learner.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    x, y, _ = data(1024)
    learner.fit(x, y, epochs=6, batch_size=64, verbose=0)
    x_test, _, noisy_test = data(400)
    assert auc(learner.predict_loss(x_test), noisy_test) > 0.75


def test_two_output_model_sums_the_per_output_losses():
    x, y, hard = marked_noise_data(512, seed=11)
    inputs = keras.Input((8, 8, 2))
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c")(
        inputs
    )
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logits = keras.layers.Dense(2, name="label")(pooled)
    value = keras.layers.Dense(1, name="value")(pooled)
    keras.utils.set_random_seed(11)
    learner = LossLearner(
        keras.Model(inputs, [logits, value]), head_units=8, detach_epoch=None
    )
    learner.compile(optimizer=keras.optimizers.Adam(3e-3), loss=[SPARSE_CE, "mse"])
    targets = [y, x[..., 0].mean(axis=(1, 2))[:, None]]
    learner.fit(x, targets, epochs=10, batch_size=64, verbose=0)
    logs = learner.evaluate(x, targets, batch_size=512, verbose=0, return_dict=True)
    label_pred, value_pred = learner.predict(x, verbose=0)
    expected = SPARSE_CE.call(tf.constant(y), tf.constant(label_pred)).numpy().mean()
    expected += ((value_pred - targets[1]) ** 2).mean()
    assert logs["task_loss"] == pytest.approx(expected, rel=1e-4)
    assert auc(learner.predict_loss(x), hard) > 0.7
    scored = learner.scoring_model().predict(x[:3], verbose=0)
    assert {k: v.shape for k, v in scored.items()} == {
        "label": (3, 2),
        "value": (3, 1),
        "predicted_loss": (3,),
    }


def _two_output_model():
    """Outputs listed value first, so sorted names would misalign them."""
    inputs = keras.Input((8, 8, 2))
    pooled = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(4, 3, padding="same", name="c")(inputs)
    )
    value = keras.layers.Dense(1, name="value")(pooled)
    label = keras.layers.Dense(2, name="label")(pooled)
    return keras.Model(inputs, [value, label])


def test_dict_losses_targets_and_loss_weights_follow_output_names():
    x, y, _ = marked_noise_data(16, seed=14)
    value_target = x[..., 0].mean(axis=(1, 2))[:, None]
    keras.utils.set_random_seed(14)
    learner = LossLearner(_two_output_model(), head_units=4, weight=0.0)
    learner.compile(
        loss={"label": "SparseCategoricalCrossentropy", "value": "mse"},
        loss_weights={"label": 2.0, "value": 0.5},
    )
    logs = learner.evaluate(
        x, {"label": y, "value": value_target}, batch_size=16, verbose=0,
        return_dict=True,
    )
    value_pred, label_pred = learner.predict(x, verbose=0)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()
    expected = 2.0 * cross_entropy.call(tf.constant(y), tf.constant(label_pred))
    expected += 0.5 * ((value_pred - value_target) ** 2).mean(axis=1)
    assert logs["task_loss"] == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_unknown_dict_loss_key_names_the_outputs():
    x, y, _ = marked_noise_data(8, seed=15)
    learner = LossLearner(_two_output_model(), head_units=4)
    learner.compile(loss={"labels": "mse", "value": "mse"})
    with pytest.raises(ValueError, match=r"\['label', 'value'\]|\['value', 'label'\]"):
        learner.evaluate(x, [x[:, 0, 0, :1], y], verbose=0)


def test_logged_loss_includes_regularization_like_keras():
    x, y, _ = marked_noise_data(16, seed=16)
    keras.utils.set_random_seed(16)
    learner = LossLearner(small_cnn(), head_units=4, head_weight_decay=0.5)
    learner.compile(loss=SPARSE_CE)
    logs = learner.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    decay = float(sum(float(v) for v in learner.losses))
    assert decay > 0
    assert logs["loss"] == pytest.approx(
        logs["task_loss"] + logs["head_loss"] + decay, rel=1e-5
    )


def test_save_and_load_round_trip(tmp_path):
    x, y, _ = marked_noise_data(64, seed=12)
    learner = _learner(
        taps=["stage2"], margin=0.5, weight=0.3, detach_epoch=7, head_weight_decay=1e-3
    )
    learner.compile(optimizer="adam", loss=SPARSE_CE, metrics=["accuracy"])
    learner.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "learner.keras"
    learner.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, LossLearner)
    assert (
        loaded.taps, loaded.margin, loaded.weight, loaded.detach_epoch,
        loaded.head_weight_decay,
    ) == (["stage2"], 0.5, 0.3, 7, 1e-3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), learner.predict(x, verbose=0))
    np.testing.assert_allclose(loaded.predict_loss(x), learner.predict_loss(x))
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)  # still trainable


def test_with_backbone_keeps_every_setting_and_the_head_and_shares_layers():
    learner = _learner(
        taps=["stage1", "stage2"], margin=0.5, weight=2.0, objective="mse",
        detach_epoch=3, head_weight_decay=1e-4, name="custom",
    )
    base = learner.backbone
    probabilities = keras.layers.Softmax(name="probabilities")(base.output)
    rewired = learner.with_backbone(
        keras.Model(base.input, probabilities), name="custom_probabilities"
    )
    expected = {**learner.get_config(), "name": "custom_probabilities"}
    got = rewired.get_config()
    assert got.pop("model") != expected.pop("model")
    assert got == expected
    assert rewired.task_output_names == ["probabilities"]
    head = zip(rewired.loss_head.get_weights(), learner.loss_head.get_weights())
    for copied, trained in head:
        np.testing.assert_array_equal(copied, trained)
    assert rewired.backbone.get_layer("stage2") is base.get_layer("stage2")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"objective": "hinge"}, "objective"),
        ({"margin": -1}, "margin"),
        ({"weight": -0.1}, "weight"),
        ({"detach_epoch": -3}, "detach_epoch"),
        ({"head_units": 0}, "head_units"),
        ({"head_weight_decay": -1e-4}, "head_weight_decay"),
        ({"margin": float("nan")}, r"Expected margin to be a finite number >= 0\. "
         r"Received: margin=nan"),
        ({"weight": float("inf")}, r"Expected weight to be a finite number >= 0\. "
         r"Received: weight=inf"),
        ({"weight": "heavy"}, "Received: weight='heavy'"),
        ({"head_weight_decay": float("nan")}, "head_weight_decay=nan"),
        ({"detach_epoch": 1.5}, r"detach_epoch to be an integer >= 0 or None\. "
         r"Received: detach_epoch=1\.5"),
    ],
)
def test_bad_hyper_parameters_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossLearner(small_cnn(), **kwargs)


def test_compiling_without_a_loss_is_a_clear_error():
    x, y, _ = marked_noise_data(8, seed=13)
    learner = _learner()
    learner.compile(optimizer="adam")
    with pytest.raises(ValueError, match="compile\\(loss=...\\)"):
        learner.fit(x, y, epochs=1, verbose=0)


@pytest.mark.slow
def test_plain_import_is_enough_to_load_a_saved_learner(tmp_path):
    import subprocess
    import sys

    learner = _learner()
    learner.compile(loss=SPARSE_CE)
    path = tmp_path / "learner.keras"
    learner.save(path)
    script = (
        "import keras, kerasll, numpy as np;"
        f"m = keras.models.load_model({str(path)!r});"
        "print(type(m).__name__, m.predict_loss(np.zeros((2, 8, 8, 2))).shape)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LossLearner (2,)" in done.stdout


def _batch_mean_loss(y_true, y_pred):
    """A loss already reduced over the batch: one scalar."""
    return keras.ops.mean(SPARSE_CE.call(y_true, y_pred))


@pytest.mark.parametrize("batch_size", [1, 8])
def test_a_loss_returning_a_scalar_is_a_clear_error(batch_size):
    x, y, _ = marked_noise_data(8, seed=14)
    learner = _learner()
    learner.compile(loss=_batch_mean_loss)
    message = "Received a scalar from loss '_batch_mean_loss'"
    with pytest.raises(ValueError, match=message):
        learner.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)


def test_predict_loss_of_an_empty_array_is_empty():
    x, _, _ = marked_noise_data(4, seed=15)
    predicted = _learner().predict_loss(x[:0])
    assert predicted.shape == (0,) and predicted.dtype == np.float32


def test_logged_loss_is_the_learners_own_public_tracker():
    x, y, _ = marked_noise_data(64, seed=16)
    learner = _learner()
    learner.compile(loss=SPARSE_CE, metrics=["accuracy"])
    logs = learner.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    names = [metric.name for metric in learner.metrics]
    assert names.count("loss") == 1 and learner.metrics[0] is learner.loss_tracker
    assert logs["loss"] == pytest.approx(float(learner.loss_tracker.result()))
    total = logs["task_loss"] + logs["head_loss"]
    assert logs["loss"] == pytest.approx(total, rel=1e-5)
    assert {"accuracy", "task_loss", "head_loss", "rank_accuracy"} <= set(logs)
