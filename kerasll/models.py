"""Built-in target networks for active-learning experiments.

Every model takes raw pixel values (0-255, float) and scales them inside the
graph, so an exported graph can be fed the pixels a device captured. In
`resnet18` and `small_cnn` the last feature map of each stage is a layer named
`stage1`, `stage2`, ..., which is exactly what `taps="auto"` picks for the
loss head; `mobilenet_v2` keeps `keras.applications`' layer names, and
`taps="auto"` picks its stages' last maps all the same. The penultimate
features (input of the final `logits` layer) come from the layer named
`features`.

Weight decay is applied as an L2 kernel regularizer on every convolution and
dense kernel, with coefficient `weight_decay / 2`: its gradient is then
`weight_decay * w`, which flows through SGD momentum like the coupled decay
of PyTorch's `SGD(weight_decay=...)` in the paper's reference code. (Keras'
`SGD(weight_decay=...)` decays decoupled from momentum, about 10x weaker at
momentum 0.9.) It is not identical to PyTorch: there every parameter is
decayed, here only the kernels are. Decayed: convolution kernels
(`mobilenet_v2`'s depthwise kernels included) and the kernel of the `logits`
layer. Not decayed: BatchNorm scale (gamma) and shift (beta), the `logits`
bias (the convolutions have none), and BatchNorm's moving statistics (not
trained in either framework). The loss head is decayed by
`LossLearner(head_weight_decay=...)`, with the same convention, on its Dense
kernels only.
"""

from numbers import Integral, Real

import keras
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

# BatchNorm settings of the PyTorch reference (momentum 0.1 there means a
# moving-average factor of 0.9 here); Keras' default 0.99 lags far behind on
# the short runs of early active-learning cycles.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
# keras.applications.MobileNetV2 downsamples by 32; below 32 pixels its last
# stage has no pixel left.
MOBILENET_MIN_SIDE = 32


# The one declaration of a weight decay's constraint (the pose and detection
# networks', `TrainingConfig`'s and the loss head's): a finite number >= 0.
WEIGHT_DECAY = [Interval(Real, 0, None, closed="left")]
# The one declaration of a channel multiplier's constraint (`build_model`'s,
# `ExperimentConfig`'s): a finite number > 0.
WIDTH = [Interval(Real, 0, None, closed="neither")]


def l2_regularizer(weight_decay):
    """L2 kernel regularizer of coefficient `weight_decay / 2` (see above), or
    None for no decay."""
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def scaled_channels(base, width):
    """`base` channels times the width multiplier, rounded, at least 1."""
    return max(1, int(round(base * width)))


def _input_scaling(inputs, mean, std):
    """Raw 0-255 pixels -> network scale, inside the graph.

    A `Rescaling` layer either divides by 255 or, given per-channel `mean`
    and `std`, computes `(x - mean) / std` as `x * (1 / std) - mean / std`.
    Its constants are plain Python floats, traced into the graph as
    constants, so converters see no captured tensors.
    """
    if mean is None and std is None:
        return keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if mean is None or std is None:
        raise ValueError(
            "Expected both mean and std (per channel, 0-255 scale) or neither. "
            f"Received: mean={mean}, std={std}"
        )
    mean, std = _as_list(mean), _as_list(std)
    if len(mean) != len(std) or min(std) <= 0:
        raise ValueError(
            "Expected one mean and one positive std per channel. "
            f"Received: mean={mean}, std={std}"
        )
    return keras.layers.Rescaling(
        scale=[1.0 / s for s in std],
        offset=[-m / s for m, s in zip(mean, std)],
        name="rescale",
    )(inputs)


def _as_list(values):
    try:
        return [float(v) for v in values]
    except TypeError:
        return [float(values)]


def _conv_bn(x, filters, kernel_size, strides, weight_decay, name, padding="same"):
    """Conv2D (no bias, He init, decayed) -> BatchNorm, named `{name}_conv/_bn`."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=l2_regularizer(weight_decay),
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)


def _conv_bn_relu(x, filters, strides, weight_decay, name, relu_name=None):
    x = _conv_bn(x, filters, 3, strides, weight_decay, name)
    return keras.layers.ReLU(name=relu_name or f"{name}_relu")(x)


def _basic_block(x, filters, strides, weight_decay, name, out_name=None):
    """ResNet basic block: two 3x3 convolutions and an identity/1x1 shortcut."""
    shortcut = x
    y = _conv_bn_relu(x, filters, strides, weight_decay, f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, weight_decay, f"{name}_b")
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv_bn(
            shortcut, filters, 1, strides, weight_decay, f"{name}_shortcut",
            padding="valid",
        )
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=out_name or f"{name}_out")(y)


def _classifier(x, num_classes, weight_decay):
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    return keras.layers.Dense(
        num_classes, kernel_regularizer=l2_regularizer(weight_decay), name="logits"
    )(x)


def resnet18(
    input_shape, num_classes, width=1.0, weight_decay=5e-4, mean=None, std=None
):
    """The CIFAR variant of ResNet-18 used by the paper.

    3x3 stem (no max-pooling), 4 stages of 2 basic blocks with 64, 128, 256,
    512 channels (times `width`), strides 1, 2, 2, 2, global average pooling
    and a dense layer producing logits. On 32x32 inputs the stage outputs are
    32, 16, 8 and 4 pixels wide.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: number of classes (logits).
        width: channel multiplier (1.0 = the paper; smaller for CPU runs).
        weight_decay: L2 weight decay on kernels (paper: 5e-4).
        mean: optional per-channel mean of raw pixels (0-255 scale).
        std: optional per-channel std of raw pixels; with `mean`, inputs are
            standardised in the graph, otherwise divided by 255.

    Returns:
        A functional `keras.Model` named "resnet18" mapping raw pixels to
        logits, with stage outputs named `stage1` ... `stage4`.
    """
    inputs = keras.Input(tuple(input_shape), name="pixels")
    x = _input_scaling(inputs, mean, std)
    x = _conv_bn_relu(x, scaled_channels(64, width), 1, weight_decay, "stem")
    for stage, (base, strides) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), 1):
        filters = scaled_channels(base, width)
        x = _basic_block(x, filters, strides, weight_decay, f"stage{stage}_block1")
        x = _basic_block(
            x,
            filters,
            1,
            weight_decay,
            f"stage{stage}_block2",
            out_name=f"stage{stage}",
        )
    outputs = _classifier(x, num_classes, weight_decay)
    return keras.Model(inputs, outputs, name="resnet18")


def small_cnn(
    input_shape, num_classes, width=1.0, weight_decay=5e-4, mean=None, std=None
):
    """A three-stage CNN that trains in seconds on a CPU.

    Each stage is two 3x3 conv-BN-ReLU layers (32, 64, 128 channels times
    `width`); stages 2 and 3 start with stride 2. Global average pooling and a
    dense layer produce logits.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: number of classes (logits).
        width: channel multiplier.
        weight_decay: L2 weight decay on kernels (paper: 5e-4).
        mean: optional per-channel mean of raw pixels (0-255 scale).
        std: optional per-channel std of raw pixels.

    Returns:
        A functional `keras.Model` named "small_cnn" with stage outputs named
        `stage1` ... `stage3`.
    """
    inputs = keras.Input(tuple(input_shape), name="pixels")
    x = _input_scaling(inputs, mean, std)
    for stage, (base, strides) in enumerate(((32, 1), (64, 2), (128, 2)), 1):
        filters = scaled_channels(base, width)
        x = _conv_bn_relu(x, filters, strides, weight_decay, f"stage{stage}_a")
        x = _conv_bn_relu(
            x, filters, 1, weight_decay, f"stage{stage}_b", relu_name=f"stage{stage}"
        )
    outputs = _classifier(x, num_classes, weight_decay)
    return keras.Model(inputs, outputs, name="small_cnn")


def mobilenet_v2(
    input_shape, num_classes, width=1.0, weight_decay=5e-4, mean=None, std=None
):
    """MobileNetV2 (`keras.applications.MobileNetV2`, no pretrained weights).

    The depthwise-separable network devices run. The application's layers
    are rebuilt from their configs with this module's conventions: L2 decay
    on every convolution kernel (depthwise kernels included), BatchNorm
    momentum `BN_MOMENTUM` and epsilon `BN_EPSILON`. Its own classifier is
    replaced by global average pooling (`features`) and a dense `logits`
    layer. Nothing is downloaded: weights are initialised randomly. Layers
    keep the application's names: `taps="auto"` picks the last layer of each
    spatial-resolution stage, which is the expansion of each downsampling
    block (`block_1_expand_relu`, `block_3_expand_relu`, `block_6_expand_relu`,
    `block_13_expand_relu`, the maps SSDLite also taps) and `out_relu`.

    Args:
        input_shape: (height, width, channels) of the images, at least 32x32.
        num_classes: number of classes (logits).
        width: the width multiplier, MobileNetV2's `alpha` (0.35 is the
            smallest published one; any positive value builds).
        weight_decay: L2 weight decay on kernels.
        mean: optional per-channel mean of raw pixels (0-255 scale).
        std: optional per-channel std of raw pixels.

    Returns:
        A functional `keras.Model` named "mobilenet_v2".

    Raises:
        ValueError: an image side below 32 pixels.
    """
    if min(input_shape[:2]) < MOBILENET_MIN_SIDE:
        raise ValueError(
            f"Expected images of at least {MOBILENET_MIN_SIDE}x{MOBILENET_MIN_SIDE} "
            f"for mobilenet_v2. Received: input_shape={tuple(input_shape)}"
        )
    inputs = keras.Input(tuple(input_shape), name="pixels")
    scaled = _input_scaling(inputs, mean, std)
    application = keras.applications.MobileNetV2(
        input_tensor=scaled, alpha=width, include_top=False, weights=None
    )
    backbone = keras.models.clone_model(
        application,
        clone_function=lambda layer: _with_conventions(layer, weight_decay),
    )
    outputs = _classifier(backbone.output, num_classes, weight_decay)
    return keras.Model(backbone.input, outputs, name="mobilenet_v2")


def _with_conventions(layer, weight_decay):
    """A fresh copy of an application layer with this module's decay and BN."""
    config = layer.get_config()
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        config["depthwise_regularizer"] = l2_regularizer(weight_decay)
    elif isinstance(layer, keras.layers.Conv2D):
        config["kernel_regularizer"] = l2_regularizer(weight_decay)
    elif isinstance(layer, keras.layers.BatchNormalization):
        config.update(momentum=BN_MOMENTUM, epsilon=BN_EPSILON)
    return layer.__class__.from_config(config)


MODELS = {"mobilenet_v2": mobilenet_v2, "resnet18": resnet18, "small_cnn": small_cnn}
# `build_model`'s plain arguments, checked by `validate_arguments`.
PARAMETER_CONSTRAINTS = {
    "name": [StrOptions(set(MODELS))],
    "num_classes": [Interval(Integral, 2, None, closed="left")],
    "width": WIDTH,
    "weight_decay": WEIGHT_DECAY,
}


def build_model(name, input_shape, num_classes, **kwargs):
    """Builds a built-in model by name.

    Args:
        name: one of `MODELS` ("mobilenet_v2", "resnet18", "small_cnn").
        input_shape: (height, width, channels) of the images.
        num_classes: number of classes.
        **kwargs: passed to the builder (`width`, `weight_decay`, `mean`,
            `std`).

    Returns:
        A functional `keras.Model` producing logits.

    Raises:
        ValueError: a bad input shape, or an argument outside
            `PARAMETER_CONSTRAINTS` (an unknown name, fewer than 2 classes,
            a width <= 0).
    """
    checked = validate_arguments(
        PARAMETER_CONSTRAINTS,
        {
            "name": name,
            "num_classes": num_classes,
            **{key: kwargs[key] for key in ("width", "weight_decay") if key in kwargs},
        },
    )
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(
            "Expected input_shape=(height, width, channels) with positive sizes. "
            f"Received: input_shape={input_shape}"
        )
    name, num_classes = checked.pop("name"), checked.pop("num_classes")
    return MODELS[name](input_shape, num_classes, **{**kwargs, **checked})
