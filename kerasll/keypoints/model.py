"""A CPU-sized stacked-hourglass pose network in the Keras functional API.

After Newell et al. (ECCV 2016): a strided stem to 1/4 resolution, then one
or more hourglasses (encoder-decoder with a skip connection at every
resolution), each ending in J heatmaps at 1/4 resolution. Between stacks
the features and heatmaps are mapped back and added to the stack's input,
so a later stack refines an earlier one's heatmaps.
"""

from numbers import Integral

import keras
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.keypoints.sizes import DEPTH
from kerasll.models import BN_EPSILON, BN_MOMENTUM, WEIGHT_DECAY, l2_regularizer
from kerasll.taps import numbered_layers

OUTPUT_NAME = "heatmaps"
FEATURE_PREFIX = "hourglass_feature_"
STEM_FILTERS = (16, 32)
HOURGLASS_FILTERS = 48

_AT_LEAST_ONE = [Interval(Integral, 1, None, closed="left")]
# `build_hourglass`'s plain arguments, checked by `validate_arguments`.
PARAMETER_CONSTRAINTS = {
    "num_keypoints": _AT_LEAST_ONE,
    "stacks": _AT_LEAST_ONE,
    "depth": _AT_LEAST_ONE,
    "filters": _AT_LEAST_ONE,
    "intermediate_outputs": ["boolean"],
    "weight_decay": WEIGHT_DECAY,
}


def build_hourglass(
    input_shape=(64, 64, 3),
    num_keypoints=14,
    stacks=1,
    depth=DEPTH,
    stem_filters=STEM_FILTERS,
    filters=HOURGLASS_FILTERS,
    intermediate_outputs=False,
    input_scale=1.0 / 255.0,
    weight_decay=0.0,
    name="hourglass",
):
    """Builds a small stacked hourglass with heatmaps at 1/4 resolution.

    Every convolution is 3x3 (1x1 for the heatmap and remapping ones),
    followed by BatchNorm and ReLU. The stem's blocks each halve the
    resolution (two blocks: 1/4). An hourglass of `depth` keeps a skip
    branch at its resolution, max-pools, recurses (a convolution at the
    bottom), upsamples (nearest) and adds the skip branch. In the last
    stack, the bottom and each upsampled-and-added level are named
    "hourglass_feature_<i>", finest (1/4) first: the taps for `LossLearner`
    (`feature_map_names`).

    Args:
        input_shape: (height, width, channels); height and width divisible
            by 4 * 2**depth.
        num_keypoints: J, one heatmap per keypoint.
        stacks: hourglasses in sequence (>= 1).
        depth: halvings inside each hourglass (>= 1).
        stem_filters: channels of the stem's two stride-2 blocks.
        filters: channels inside the hourglasses.
        intermediate_outputs: with several stacks, output every stack's
            heatmaps ("heatmaps_<s>" for the first stacks, "heatmaps" for
            the last), for intermediate supervision; otherwise only the
            last stack's "heatmaps".
        input_scale: the model multiplies its input by this (1/255: raw
            pixels in, as the device feeds them).
        weight_decay: L2 weight decay of every convolution kernel, as a
            regularizer with coefficient `weight_decay / 2`; 0 adds none.
        name: model name.

    Returns:
        A functional `keras.Model`: (B, H/4, W/4, J) heatmaps, or a list of
        them (earlier stacks first) with `intermediate_outputs`.

    Raises:
        ValueError: an argument outside `PARAMETER_CONSTRAINTS` (fewer than
            one keypoint, stack or depth level, a non-boolean
            intermediate_outputs, a negative or NaN weight_decay), a stem
            other than two blocks, or an input size not divisible by
            4 * 2**depth.
    """
    checked = validate_arguments(
        PARAMETER_CONSTRAINTS,
        {
            "num_keypoints": num_keypoints,
            "stacks": stacks,
            "depth": depth,
            "filters": filters,
            "intermediate_outputs": intermediate_outputs,
            "weight_decay": weight_decay,
        },
    )
    num_keypoints, stacks, depth, filters, intermediate_outputs, weight_decay = (
        checked.values()
    )
    if len(stem_filters) != 2:
        raise ValueError(
            "Expected two stem blocks (heatmaps at 1/4). Received: "
            f"stem_filters={tuple(stem_filters)!r}."
        )
    factor = 4 * 2**depth
    if input_shape[0] % factor or input_shape[1] % factor:
        raise ValueError(
            f"Expected an input height and width divisible by {factor} (4 * 2**depth "
            f"for depth={depth}). Received: input_shape={tuple(input_shape)}."
        )
    regularizer = l2_regularizer(weight_decay)

    def conv(x, channels, layer_name, strides=1, kernel=3):
        x = keras.layers.Conv2D(
            channels, kernel, strides=strides, padding="same", use_bias=False,
            kernel_initializer="he_normal", kernel_regularizer=regularizer,
            name=f"{layer_name}_conv",
        )(x)
        x = keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{layer_name}_bn"
        )(x)
        return keras.layers.ReLU(name=layer_name)(x)

    def hourglass(x, stack, level, last):
        skip = conv(x, filters, f"stack_{stack}_skip_{level}")
        down = keras.layers.MaxPooling2D(2, name=f"stack_{stack}_pool_{level}")(x)
        down = conv(down, filters, f"stack_{stack}_down_{level}")
        if level + 1 < depth:
            down = hourglass(down, stack, level + 1, last)
        else:
            bottom = f"{FEATURE_PREFIX}{depth}" if last else f"stack_{stack}_bottom"
            down = conv(down, filters, bottom)
        up = keras.layers.UpSampling2D(2, name=f"stack_{stack}_up_{level}")(down)
        merged = f"{FEATURE_PREFIX}{level}" if last else f"stack_{stack}_merge_{level}"
        return keras.layers.Add(name=merged)([skip, up])

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Rescaling(input_scale, name="rescale")(inputs)
    for index, channels in enumerate(stem_filters):
        x = conv(x, channels, f"stem_{index}", strides=2)
    x = conv(x, filters, "stem_out")
    outputs = []
    for stack in range(stacks):
        last = stack == stacks - 1
        features = hourglass(x, stack, 0, last)
        features = conv(features, filters, f"stack_{stack}_out")
        heatmaps = keras.layers.Conv2D(
            num_keypoints, 1, kernel_regularizer=regularizer,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
            name=OUTPUT_NAME if last else f"{OUTPUT_NAME}_{stack}",
        )(features)
        outputs.append(heatmaps)
        if not last:
            remapped = [
                keras.layers.Conv2D(
                    filters, 1, kernel_regularizer=regularizer,
                    name=f"stack_{stack}_remap_{kind}",
                )(tensor)
                for kind, tensor in (("features", features), ("heatmaps", heatmaps))
            ]
            x = keras.layers.Add(name=f"stack_{stack}_next")([x, *remapped])
    if intermediate_outputs and stacks > 1:
        return keras.Model(inputs, outputs, name=name)
    return keras.Model(inputs, outputs[-1], name=name)


def feature_map_names(model):
    """Names of the last hourglass's features per resolution, finest first.

    Args:
        model: a model from `build_hourglass`.

    Returns:
        List of layer names "hourglass_feature_<i>" (i = 0 at 1/4
        resolution, up to `depth` at the bottom): the taps for
        `LossLearner`.

    Raises:
        ValueError: the model has no such layers.
    """
    return numbered_layers(model, FEATURE_PREFIX, "build_hourglass")


def heatmap_output(model):
    """The final heatmaps tensor of a `build_hourglass` model.

    Raises:
        ValueError: the model has no layer named "heatmaps".
    """
    try:
        return model.get_layer(OUTPUT_NAME).output
    except ValueError:
        raise ValueError(
            f"Expected a pose model with a layer named {OUTPUT_NAME!r} (from "
            f"build_hourglass). Received a model with outputs {model.output_names}."
        ) from None
