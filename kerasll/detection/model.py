"""A CPU-sized SSD-style single-shot detector in the Keras functional API."""

from numbers import Integral

import keras
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.detection.anchors import DefaultBoxes
from kerasll.models import BN_EPSILON, BN_MOMENTUM, WEIGHT_DECAY, l2_regularizer
from kerasll.taps import numbered_layers

FEATURE_MAP_PREFIX = "feature_map_"
OUTPUT_NAME = "detections"
STEM_FILTERS = (16, 32, 32)
FEATURE_FILTERS = (48, 64, 64, 64)
# `build_ssd`'s plain arguments, checked by `validate_arguments`.
PARAMETER_CONSTRAINTS = {
    "num_classes": [Interval(Integral, 1, None, closed="left")],
    "weight_decay": WEIGHT_DECAY,
}


def build_ssd(
    input_shape=(64, 64, 3),
    num_classes=10,
    stem_filters=STEM_FILTERS,
    feature_filters=FEATURE_FILTERS,
    default_boxes=None,
    input_scale=1.0 / 255.0,
    batch_norm=True,
    weight_decay=0.0,
    name="ssd",
):
    """Builds a small SSD: a strided convolutional stem, then feature maps.

    Each stem block halves the resolution (3x3 convolution, stride 2, then
    BatchNorm when `batch_norm`, then ReLU).
    The first feature map is the stem's output after one more 3x3 convolution;
    each further one halves the resolution again. Every feature map, named
    "feature_map_<i>" (the detector's taps for `LossLearner`), feeds a 3x3
    convolutional predictor with `per_location * (4 + num_classes + 1)`
    channels, reshaped to one row per default box. A 64x64 input with the
    defaults gives 8x8, 4x4, 2x2 and 1x1 maps, 340 default boxes.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: object classes, background excluded.
        stem_filters: channels of each downsampling stem block.
        feature_filters: channels of each feature map, finest first.
        default_boxes: a `DefaultBoxes`; its `per_location` sets the
            predictors' width (default `DefaultBoxes()`).
        input_scale: the model multiplies its input by this (1/255: raw
            pixels in, as the device feeds them).
        batch_norm: put BatchNorm between each stem and feature-map
            convolution (then without bias) and its ReLU (the default: SGD
            trains the detector only with it); False gives convolution +
            bias -> ReLU.
        weight_decay: L2 weight decay of every convolution kernel, predictors
            included, as a regularizer with coefficient `weight_decay / 2`
            (the convention of `kerasll.models`); 0 adds none.
        name: model name.

    Returns:
        A functional `keras.Model` with output "detections" of shape
        (B, N, 4 + num_classes + 1): box offsets (see `boxes.encode`), then
        class logits with background first.

    Raises:
        ValueError: an argument outside `PARAMETER_CONSTRAINTS` (fewer than
            one class, a negative or NaN weight_decay), no feature map, or an
            input too small for the requested number of feature maps.
    """
    arguments = {"num_classes": num_classes, "weight_decay": weight_decay}
    checked = validate_arguments(PARAMETER_CONSTRAINTS, arguments)
    if not feature_filters:
        raise ValueError(
            "Expected at least one feature map. Received: "
            f"feature_filters={feature_filters!r}."
        )
    default_boxes = default_boxes or DefaultBoxes()
    regularizer = l2_regularizer(checked["weight_decay"])
    halvings = len(stem_filters) + len(feature_filters) - 1
    if min(input_shape[:2]) < 2**halvings:
        raise ValueError(
            f"Expected an input of at least {2**halvings}x{2**halvings} for "
            f"{len(stem_filters)} stem blocks and {len(feature_filters)} feature "
            f"maps. Received: input_shape={tuple(input_shape)}."
        )
    width = 4 + checked["num_classes"] + 1
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(input_scale, name="rescale")(inputs)
    for index, filters in enumerate(stem_filters):
        x = _conv(
            x, filters, 2, f"stem_{index}", f"stem_{index}", batch_norm, regularizer
        )
    predictions = []
    for index, filters in enumerate(feature_filters):
        strides = 1 if index == 0 else 2
        x = _conv(
            x,
            filters,
            strides,
            f"feature_{index}",
            f"{FEATURE_MAP_PREFIX}{index}",
            batch_norm,
            regularizer,
        )
        head = keras.layers.Conv2D(
            default_boxes.per_location * width,
            3,
            padding="same",
            kernel_regularizer=regularizer,
            name=f"predictor_{index}",
        )(x)
        single = len(feature_filters) == 1
        rows = OUTPUT_NAME if single else f"predictor_{index}_boxes"
        predictions.append(keras.layers.Reshape((-1, width), name=rows)(head))
    if len(predictions) == 1:
        return keras.Model(inputs, predictions[0], name=name)
    outputs = keras.layers.Concatenate(axis=1, name=OUTPUT_NAME)(predictions)
    return keras.Model(inputs, outputs, name=name)


def _conv(x, filters, strides, block, name, batch_norm, regularizer):
    """3x3 Conv2D `{kind}_conv_{i}` [-> BatchNorm `{kind}_bn_{i}`] -> ReLU `name`."""
    kind, index = block.rsplit("_", 1)
    x = keras.layers.Conv2D(
        filters,
        3,
        strides=strides,
        padding="same",
        use_bias=not batch_norm,
        kernel_initializer="he_normal" if batch_norm else "glorot_uniform",
        kernel_regularizer=regularizer,
        name=f"{kind}_conv_{index}",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{kind}_bn_{index}"
        )(x)
    return keras.layers.ReLU(name=name)(x)


def feature_map_names(model):
    """Names of the detector's feature maps, finest first (its taps).

    Args:
        model: a model from `build_ssd`.

    Returns:
        List of layer names "feature_map_<i>".

    Raises:
        ValueError: the model has no such layers.
    """
    return numbered_layers(model, FEATURE_MAP_PREFIX, "build_ssd")


def default_boxes_for(model, default_boxes=None):
    """The default boxes of a detector, from its feature maps' sizes.

    Args:
        model: a model from `build_ssd`.
        default_boxes: the `DefaultBoxes` it was built with (default
            `DefaultBoxes()`).

    Returns:
        float32 array (N, 4) lined up with the rows of the model's output.

    Raises:
        ValueError: the number of boxes does not match the output rows (the
            model was built with another `DefaultBoxes`).
    """
    default_boxes = default_boxes or DefaultBoxes()
    sizes = [
        tuple(int(size) for size in model.get_layer(name).output.shape[1:3])
        for name in feature_map_names(model)
    ]
    boxes = default_boxes.generate(sizes)
    rows = model.output.shape[1]
    if rows != len(boxes):
        raise ValueError(
            f"Expected {default_boxes} to give one default box per output row. "
            f"Received {len(boxes)} boxes for feature maps {sizes} and an "
            f"output with {rows} rows; pass the DefaultBoxes the model was "
            "built with."
        )
    return boxes
