"""Choosing which intermediate layers of a user's model feed the loss head."""

import keras

_RANKS_WITH_POOLING = (3, 4, 5)


def check_functional(model):
    """Raises unless `model` is a built functional or Sequential Keras model.

    Args:
        model: the user's model.

    Raises:
        TypeError: `model` is not a Keras model, or is subclassed (its layer
            graph cannot be tapped).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Expected a functional or Sequential keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        names = [layer.name for layer in model.layers]
        raise TypeError(
            "Expected a functional or Sequential keras.Model whose graph can be "
            "tapped (built from keras.Input). Received: a subclassed or unbuilt "
            f"model of type {type(model).__name__} with layers {names}. Rebuild "
            "it with the functional API, e.g. keras.Model(inputs, outputs)."
        )


def _single_output_shape(layer):
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(output, (list, tuple, dict)):
        return None
    return tuple(output.shape)


def tappable_layers(model):
    """Names of the layers whose single output can feed the loss head.

    Args:
        model: a functional or Sequential model.

    Returns:
        Layer names in graph order whose output has rank 2 to 5 (batch
        included); input layers excluded.
    """
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = _single_output_shape(layer)
        if shape is not None and 2 <= len(shape) <= 5:
            names.append(layer.name)
    return names


def _feature_map_runs(model):
    """Consecutive layers (graph order) with 4-D outputs of one spatial size."""
    runs = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = _single_output_shape(layer)
        if shape is None or len(shape) != 4:
            continue
        spatial = tuple(shape[1:3])
        if not runs or runs[-1]["spatial"] != spatial:
            runs.append({"spatial": spatial, "layers": [], "trainable": False})
        runs[-1]["layers"].append(layer.name)
        runs[-1]["trainable"] |= bool(layer.trainable_weights)
    return runs


def _merge_neighbours(runs):
    merged = []
    for run in runs:
        if merged and merged[-1]["spatial"] == run["spatial"]:
            merged[-1]["layers"] += run["layers"]
            merged[-1]["trainable"] |= run["trainable"]
        else:
            merged.append(dict(run, layers=list(run["layers"])))
    return merged


def _is_side_branch(runs, index):
    """A 1x1 run between two runs of one size (e.g. squeeze-and-excitation)."""
    if runs[index]["spatial"] != (1, 1) or not 0 < index < len(runs) - 1:
        return False
    return runs[index - 1]["spatial"] == runs[index + 1]["spatial"]


def auto_taps(model):
    """Picks the last feature map of each spatial-resolution stage.

    Layers with a 4-D (B, H, W, C) output are walked in graph order and cut
    into stages wherever the spatial size (H, W) changes. Two kinds of runs are
    not stages: 1x1 maps between two runs of one size (squeeze-and-excitation
    branches), and runs whose layers hold no trainable weights (input padding,
    rescaling). The tap of each stage is its last layer. Encoder-decoder
    models get one tap per run, decoder included; name taps to choose others.

    Args:
        model: a functional or Sequential model.

    Returns:
        List of layer names, one per stage, shallow to deep.

    Raises:
        ValueError: the model has no 4-D feature maps (name taps explicitly).
    """
    runs = _feature_map_runs(model)
    runs = [run for i, run in enumerate(runs) if not _is_side_branch(runs, i)]
    runs = _merge_neighbours(runs)
    runs = _merge_neighbours([run for run in runs if run["trainable"]])
    taps = [run["layers"][-1] for run in runs]
    if not taps:
        raise ValueError(
            "Expected a model with 4-D (batch, height, width, channels) feature "
            "maps for taps='auto'. Received a model without any. Name the taps "
            f"explicitly; candidate layers: {tappable_layers(model)}"
        )
    return taps


def resolve_taps(model, taps):
    """Validates `taps` against `model` and returns layer names.

    Args:
        model: a functional or Sequential model.
        taps: "auto", or a list of layer names.

    Returns:
        List of layer names to tap.

    Raises:
        ValueError: an unknown or untappable layer name, or an empty list.
    """
    if isinstance(taps, str) and taps == "auto":
        return auto_taps(model)
    if isinstance(taps, str):
        taps = [taps]
    taps = list(taps)
    candidates = tappable_layers(model)
    unknown = [name for name in taps if name not in candidates]
    if not taps or unknown:
        raise ValueError(
            "Expected taps to name layers of the model with a single output of "
            f"rank 2 to 5, or taps='auto'. Received: taps={taps}. "
            f"Candidate layers: {candidates}"
        )
    return taps


def needs_pooling(shape):
    """Whether a tapped tensor of this shape is pooled before its Dense layer."""
    return len(shape) in _RANKS_WITH_POOLING
