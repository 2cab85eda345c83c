"""Built-in models: structure, taps, in-graph scaling, weight decay."""

import keras
import numpy as np
import pytest

from kerasll import LossLearner, auto_taps
from kerasll.models import MODELS, build_model


@pytest.mark.parametrize(
    "name, value",
    [
        ("name", "vgg"),
        ("num_classes", 1),
        ("num_classes", 2.5),
        ("width", 0),
        ("width", float("nan")),
        ("weight_decay", -1e-4),
    ],
)
def test_build_model_refuses_each_bad_argument_by_name(name, value):
    arguments = {"name": "small_cnn", "input_shape": (8, 8, 1), "num_classes": 3}
    with pytest.raises(ValueError, match=f"^Expected {name} to be .*Received: {name}="):
        build_model(**{**arguments, name: value})


def test_resnet18_is_the_papers_cifar_variant_with_four_stage_taps():
    model = build_model("resnet18", (32, 32, 3), 10)
    assert auto_taps(model) == ["stage1", "stage2", "stage3", "stage4"]
    shapes = [tuple(model.get_layer(f"stage{i}").output.shape) for i in range(1, 5)]
    assert shapes == [
        (None, 32, 32, 64),
        (None, 16, 16, 128),
        (None, 8, 8, 256),
        (None, 4, 4, 512),
    ]
    # 3x3 stem without max-pooling, 11.2M parameters like the PyTorch CIFAR model.
    assert model.get_layer("stem_conv").kernel.shape == (3, 3, 3, 64)
    assert not any(
        isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers
    )
    assert 11.1e6 < model.count_params() < 11.2e6
    assert model.output.shape == (None, 10)


def test_width_scales_channels_and_the_head_taps_them():
    model = build_model("resnet18", (8, 8, 1), 10, width=0.125)
    assert model.get_layer("stage4").output.shape[-1] == 64
    learner = LossLearner(model, head_units=8)
    assert learner.taps == ["stage1", "stage2", "stage3", "stage4"]


def test_small_cnn_has_three_stage_taps():
    model = build_model("small_cnn", (8, 8, 1), 10, width=0.5)
    assert auto_taps(model) == ["stage1", "stage2", "stage3"]
    assert model.get_layer("features").output.shape == (None, 64)


def test_models_take_raw_pixels_and_scale_inside_the_graph():
    raw = np.full((1, 8, 8, 2), 255.0, dtype="float32")
    raw[..., 1] = 0.0
    plain = build_model("small_cnn", (8, 8, 2), 3)
    scaled = keras.Model(plain.input, plain.get_layer("rescale").output)
    np.testing.assert_allclose(scaled(raw)[0, 0, 0], [1.0, 0.0], atol=1e-6)
    standardised = build_model(
        "small_cnn", (8, 8, 2), 3, mean=[100.0, 50.0], std=[50.0, 25.0]
    )
    scaled = keras.Model(standardised.input, standardised.get_layer("rescale").output)
    np.testing.assert_allclose(scaled(raw)[0, 0, 0], [3.1, -2.0], atol=1e-5)


def test_weight_decay_is_an_l2_term_on_every_kernel():
    model = build_model("small_cnn", (8, 8, 1), 4, weight_decay=5e-4)
    kernels = [w for w in model.trainable_weights if "kernel" in w.path]
    expected = sum(2.5e-4 * float(np.sum(np.square(w.numpy()))) for w in kernels)
    assert len(model.losses) == len(kernels) == 7
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    # The learner's train step adds model.losses to the objective.
    assert len(LossLearner(model, head_units=4).losses) == len(kernels)
    assert build_model("small_cnn", (8, 8, 1), 4, weight_decay=0).losses == []


def test_built_in_model_round_trips_through_keras_save(tmp_path):
    model = build_model("small_cnn", (8, 8, 1), 3, width=0.25, mean=[10.0], std=[2.0])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, size=(4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "vgg16"}, r"\['mobilenet_v2', 'resnet18', 'small_cnn'\].*'vgg16'"),
        ({"input_shape": (8, 8)}, "input_shape"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"width": 0}, "width=0"),
        ({"mean": [1.0]}, "both mean and std"),
        ({"mean": [1.0], "std": [0.0]}, "positive std"),
    ],
)
def test_bad_model_arguments_are_rejected(kwargs, match):
    arguments = {
        "name": "small_cnn",
        "input_shape": (8, 8, 1),
        "num_classes": 3,
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        build_model(**arguments)
    assert sorted(MODELS) == ["mobilenet_v2", "resnet18", "small_cnn"]
