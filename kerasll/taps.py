"""Choosing which intermediate layers of a user's model feed the loss head."""

import re

import keras

_RANKS_WITH_POOLING = (3, 4, 5)


def functional_model(model):
    """Returns the functional graph of a user's model, to tap.

    A functional model is returned as it is; a built Sequential model as a
    functional model of its graph (the same layers and weights).

    Args:
        model: the user's model.

    Returns:
        A functional `keras.Model`.

    Raises:
        TypeError: `model` is not a Keras model, a Sequential model with no
            known input shape, or a subclassed model (its layer graph cannot
            be tapped).
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
    if isinstance(model, keras.Sequential):
        if not inputs:
            raise TypeError(
                "Expected a Sequential model with a known input shape. Received "
                f"Sequential {model.name!r} that was never built; start it with "
                "keras.Input(shape=...) or call model.build(input_shape) first."
            )
        return keras.Model(inputs[0], outputs[0], name=model.name)
    if not inputs or not outputs:
        names = [layer.name for layer in model.layers]
        raise TypeError(
            "Expected a functional or Sequential keras.Model whose graph can be "
            "tapped (built from keras.Input). Received: a subclassed or unbuilt "
            f"model of type {type(model).__name__} with layers {names}. Rebuild "
            "it with the functional API, e.g. keras.Model(inputs, outputs)."
        )
    return model


def _is_nested_functional(layer):
    """A functional model used as a layer (e.g. a keras.applications backbone)."""
    if not isinstance(layer, keras.Model) or isinstance(layer, keras.Sequential):
        return False
    try:
        return bool(layer.inputs and layer.outputs)
    except (AttributeError, ValueError):
        return False


def _named_layers(model):
    """(tap name, layer) in graph order; nested functional models opened once.

    A layer inside a functional model used as a layer of `model` is named
    "<model>/<layer>" (one level deep).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not _is_nested_functional(layer):
            yield layer.name, layer
            continue
        for inner in layer.layers:
            if not isinstance(inner, keras.layers.InputLayer):
                yield f"{layer.name}/{inner.name}", inner


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
        included); input layers excluded. Layers of a functional model used
        as a layer are named "<model>/<layer>".
    """
    names = []
    for name, layer in _named_layers(model):
        shape = _single_output_shape(layer)
        if shape is not None and 2 <= len(shape) <= 5:
            names.append(name)
    return names


def _feature_map_runs(model):
    """Consecutive layers (graph order) with 4-D outputs of one spatial size."""
    runs = []
    for name, layer in _named_layers(model):
        shape = _single_output_shape(layer)
        if shape is None or len(shape) != 4:
            continue
        spatial = tuple(shape[1:3])
        if not runs or runs[-1]["spatial"] != spatial:
            runs.append({"spatial": spatial, "layers": [], "trainable": False})
        runs[-1]["layers"].append(name)
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
    The layers of a functional model used as a layer (a pretrained backbone)
    take part, named "<model>/<layer>".

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


def numbered_layers(model, prefix, builder):
    """The taps of a built-in task network: its layers "<prefix><i>", by i.

    Args:
        model: a model from `builder`.
        prefix: the layers' name before their number.
        builder: the name of the function that builds such models (for the
            message).

    Returns:
        The layer names, in increasing i.

    Raises:
        ValueError: the model has no such layer.
    """
    pattern = re.compile(f"{re.escape(prefix)}([0-9]+)")
    numbered = {}
    for layer in model.layers:
        match = pattern.fullmatch(layer.name)
        if match:
            numbered[int(match.group(1))] = layer.name
    if not numbered:
        raise ValueError(
            f"Expected a model from {builder}, with layers named '{prefix}<i>'. "
            f"Received a model with layers {[layer.name for layer in model.layers]}."
        )
    return [numbered[index] for index in sorted(numbered)]


def resolve_taps(model, taps):
    """Validates `taps` against `model` and returns layer names.

    Args:
        model: a functional or Sequential model.
        taps: "auto", or a list of layer names ("<model>/<layer>" for a
            layer inside a functional model used as a layer).

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
            "rank 2 to 5 ('model/layer' inside a nested functional model), or "
            f"taps='auto'. Received: taps={taps}. "
            f"Candidate layers: {candidates}"
        )
    return taps


def tapped_graph(model, taps):
    """Replays `model`'s graph, sharing its layers, and returns the taps too.

    The tapped tensors must belong to the graph that computes the outputs, so
    that one forward pass yields both: a nested model holding taps is called
    through a model that returns its outputs and the tapped inner outputs.

    Args:
        model: a functional model.
        taps: names from `resolve_taps`.

    Returns:
        `(graph, features)`: a functional model with the same inputs, outputs
        and layers as `model`, and the tapped tensors of its graph in the
        order of `taps`.

    Raises:
        ValueError: a tapped layer is called more than once in the graph, so
            which of its outputs to tap is ambiguous.
    """
    inner_taps = {}
    for name in taps:
        if "/" in name:
            outer, inner = name.split("/", 1)
            inner_taps.setdefault(outer, []).append(inner)
    recorded = {}

    def call(layer, *args, **kwargs):
        if layer.name not in inner_taps:
            output = layer(*args, **kwargs)
            recorded.setdefault(layer.name, []).append(output)
            return output
        names = inner_taps[layer.name]
        outputs = keras.tree.flatten(layer.output)
        probe = keras.Model(
            layer.input, [*outputs, *[layer.get_layer(n).output for n in names]]
        )
        flat = probe(*args, **kwargs)
        for name, feature in zip(names, flat[len(outputs):]):
            recorded.setdefault(f"{layer.name}/{name}", []).append(feature)
        return keras.tree.pack_sequence_as(layer.output, flat[: len(outputs)])

    graph = keras.models.clone_model(
        model, clone_function=lambda layer: layer, call_function=call
    )
    repeated = {name: len(recorded[name]) for name in taps if len(recorded[name]) > 1}
    if repeated:
        raise ValueError(
            "Expected taps to name layers called once in the model. Received "
            f"layers called more than once: {repeated}; tap another layer."
        )
    return graph, [recorded[name][0] for name in taps]


def needs_pooling(shape):
    """Whether a tapped tensor of this shape is pooled before its Dense layer."""
    return len(shape) in _RANKS_WITH_POOLING
