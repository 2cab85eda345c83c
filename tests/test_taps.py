import keras
import numpy as np
import pytest

from kerasll import LossLearner
from kerasll.taps import auto_taps, resolve_taps
from models_for_tests import small_cnn

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.slow
def test_auto_taps_pick_one_tap_per_resnet50_stage():
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    assert auto_taps(model) == [
        "conv1_relu",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ]


def test_auto_taps_on_a_small_cnn_skip_the_pooled_head():
    assert auto_taps(small_cnn()) == ["stage1", "stage2"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "builder",
    [keras.applications.MobileNetV2, keras.applications.EfficientNetB0],
    ids=["MobileNetV2", "EfficientNetB0"],
)
def test_auto_taps_on_keras_applications_are_stage_ends(builder):
    model = builder(weights=None, input_shape=(64, 64, 3), classes=10)
    taps = auto_taps(model)
    sizes = [model.get_layer(name).output.shape[1] for name in taps]
    # One tap per resolution, shallow to deep, strictly shrinking.
    assert sizes == sorted(set(sizes), reverse=True)
    assert sizes[-1] == 2 and len(taps) == 5
    for name in taps:  # nothing later in the graph has the same resolution
        later = model.layers[[layer.name for layer in model.layers].index(name) + 1 :]
        assert all(
            len(layer.output.shape) != 4
            or layer.output.shape[1] != model.get_layer(name).output.shape[1]
            for layer in later
            if not isinstance(layer.output, (list, tuple))
        )


def test_unknown_tap_lists_the_candidates():
    with pytest.raises(ValueError, match=r"taps=\['blok1'\].*'stage1', 'stage2'"):
        resolve_taps(small_cnn(), ["blok1"])


def test_named_dense_tap_skips_pooling():
    learner = LossLearner(small_cnn(), taps=["stage2", "pool"], head_units=4)
    layer_types = [type(layer).__name__ for layer in learner.loss_head.layers]
    assert layer_types.count("GlobalAveragePooling2D") == 1


def test_auto_taps_without_feature_maps_explains_what_to_do():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1, name="out")(keras.layers.Dense(3, name="h")(inputs))
    with pytest.raises(ValueError, match=r"Name the taps explicitly.*\['h', 'out'\]"):
        auto_taps(keras.Model(inputs, outputs))


def test_subclassed_model_is_rejected_with_its_layers():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(keras.ops.zeros((1, 3)))
    with pytest.raises(TypeError, match="subclassed or unbuilt"):
        LossLearner(model)


def test_non_model_is_rejected():
    with pytest.raises(TypeError, match="Received: model of type str"):
        LossLearner("resnet")


# Models users really have: Sequential, and a functional backbone used as a layer.


def _conv_layers():
    return [
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c2"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, name="out"),
    ]


def _transfer_model():
    """A pretrained-style backbone called as one layer of the user's model."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="b1")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="b2")(x)
    x = keras.layers.BatchNormalization(name="b2_bn")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="b3")(x)
    base = keras.Model(inputs, x, name="base")
    outer = keras.Input((16, 16, 3))
    y = keras.layers.GlobalAveragePooling2D(name="gap")(base(outer))
    return keras.Model(outer, keras.layers.Dense(3, name="out")(y)), base


def _data(count=8, shape=(16, 16, 3)):
    rng = np.random.default_rng(0)
    return rng.normal(size=(count, *shape)).astype("float32"), rng.integers(0, 3, count)


@pytest.mark.parametrize("build", ["input", "build", "call"])
def test_a_built_sequential_model_trains_and_round_trips(build, tmp_path):
    layers = _conv_layers()
    if build == "input":
        model = keras.Sequential([keras.Input((8, 8, 1)), *layers])
    else:
        model = keras.Sequential(layers)
        if build == "build":
            model.build((None, 8, 8, 1))
        else:
            model(np.zeros((1, 8, 8, 1), "float32"))
    learner = LossLearner(model, head_units=4)
    assert learner.taps == ["c1", "c2"]
    x, y = _data(shape=(8, 8, 1))
    learner.compile(optimizer="sgd", loss=SPARSE_CE)
    learner.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_allclose(
        learner.predict(x, verbose=0), model.predict(x, verbose=0))
    learner.save(tmp_path / "learner.keras")
    loaded = keras.models.load_model(tmp_path / "learner.keras")
    np.testing.assert_allclose(
        loaded.predict_loss(x), learner.predict_loss(x), rtol=1e-5)


def test_a_never_built_sequential_model_is_a_clear_error():
    with pytest.raises(TypeError, match="Sequential model with a known input shape"):
        LossLearner(keras.Sequential(_conv_layers()))


def test_auto_taps_reach_inside_a_nested_backbone():
    model, _ = _transfer_model()
    assert auto_taps(model) == ["base/b1", "base/b2_bn", "base/b3"]
    assert "base/b2" in resolve_taps(model, ["base/b2"])


def test_nested_taps_feed_the_head_from_the_same_forward_pass(tmp_path):
    model, base = _transfer_model()
    learner = LossLearner(model, taps=["base/b1", "base/b2_bn", "gap"], head_units=4)
    x, y = _data()
    flat = learner.feature_extractor(x, training=False)
    expected = keras.Model(base.input, base.get_layer("b2_bn").output)(x)
    np.testing.assert_allclose(flat[2], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat[0], model(x), rtol=1e-5, atol=1e-6)
    # One forward pass: every backbone layer is called once in the extractor.
    calls = [layer.name for layer in learner.feature_extractor.layers]
    assert calls.count("base") <= 1 and "b3" not in calls
    learner.compile(optimizer="sgd", loss=SPARSE_CE)
    learner.fit(x, y, epochs=1, verbose=0)
    learner.save(tmp_path / "nested.keras")
    loaded = keras.models.load_model(tmp_path / "nested.keras")
    assert loaded.taps == ["base/b1", "base/b2_bn", "gap"]
    np.testing.assert_allclose(
        loaded.predict_loss(x), learner.predict_loss(x), rtol=1e-5)


def test_an_unknown_nested_tap_lists_the_nested_candidates():
    model, _ = _transfer_model()
    with pytest.raises(ValueError, match=r"taps=\['base/b9'\].*'base/b1', 'base/b2'"):
        LossLearner(model, taps=["base/b9"])


def test_a_layer_called_twice_cannot_be_tapped():
    inputs = keras.Input((8, 8, 1))
    shared = keras.layers.Conv2D(1, 3, padding="same", name="shared")
    x = shared(shared(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(
        keras.layers.GlobalAveragePooling2D()(x)))
    with pytest.raises(ValueError, match=r"called more than once: \{'shared': 2\}"):
        LossLearner(model, taps=["shared"])
