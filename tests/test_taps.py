import keras
import pytest

from kerasll import LossLearner
from kerasll.taps import auto_taps, resolve_taps
from models_for_tests import small_cnn


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
