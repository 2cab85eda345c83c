"""Keras scoring graph -> fp32 ONNX `ModelProto`, with tf2onnx.

The converted function takes the raw input the device feeds (e.g. uint8
pixels), casts it, applies any scale/offset the model was trained with, runs
the learner's scoring graph and returns float32 outputs named after the task
outputs plus `predicted_loss`, all with a dynamic batch axis named "batch".
"""

import logging
import re
import warnings

import numpy as np
from kerasll_serving.contract import DEFAULT_OPSET, PREDICTED_LOSS_OUTPUT
from kerasll_serving.errors import first_line

from kerasll.export.errors import ExportError
from kerasll.export.keras_internals import patch_tf2onnx

MIN_OPSET = 13  # Per-channel QuantizeLinear (int8 export) needs opset 13.
BATCH = "batch"


def max_opset():
    """Highest opset the installed tf2onnx can target."""
    from tf2onnx import constants

    return max(constants.OPSET_TO_IR_VERSION)


def sanitize_name(name):
    """A tensor name valid in TensorFlow and convenient in ONNX."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name)).lstrip("_.-")
    return cleaned or "input"


def _serving_function(learner, spec, model_dtype, scale, offset):
    import tensorflow as tf

    scoring = learner.scoring_model()
    names = [*learner.task_output_names, PREDICTED_LOSS_OUTPUT]

    @tf.function(input_signature=[spec], autograph=False)
    def serve(x):
        x = tf.cast(x, model_dtype)
        if scale != 1.0:
            x = x * tf.constant(scale, dtype=model_dtype)
        if offset != 0.0:
            x = x + tf.constant(offset, dtype=model_dtype)
        outputs = scoring(x, training=False)
        return {
            name: (
                tf.cast(outputs[name], tf.float32)
                if outputs[name].dtype.is_floating
                else outputs[name]
            )
            for name in names
        }

    return serve, names


def _name_batch_axes(model, output_names):
    graph = model.graph
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = BATCH
    # tf.function flattens dicts in key order; list the outputs in model order
    # with the predicted loss last (names, not positions, are the contract).
    by_name = {output.name: output for output in graph.output}
    ordered = [by_name[name] for name in output_names]
    del graph.output[:]
    graph.output.extend(ordered)


def to_onnx_proto(
    learner,
    *,
    input_name,
    input_shape,
    raw_dtype,
    model_dtype,
    scale=1.0,
    offset=0.0,
    opset=DEFAULT_OPSET,
):
    """Converts the learner's scoring graph to an fp32 ONNX model.

    Args:
        learner: a `LossLearner`.
        input_name: name of the ONNX input.
        input_shape: the input shape, batch axis (None) included.
        raw_dtype: dtype the graph takes (numpy name), e.g. "uint8".
        model_dtype: dtype the Keras model takes, e.g. "float32".
        scale, offset: applied after the cast, inside the graph.
        opset: ONNX opset.

    Returns:
        `onnx.ModelProto` with outputs `[*task_output_names, "predicted_loss"]`.

    Raises:
        ExportError: tf2onnx could not convert the graph.
    """
    import tensorflow as tf
    import tf2onnx

    patch_tf2onnx()  # tf2onnx 1.17 predates numpy 2.
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    spec = tf.TensorSpec(
        (None, *input_shape[1:]), tf.as_dtype(np.dtype(raw_dtype)), name=input_name
    )
    serve, names = _serving_function(
        learner, spec, tf.as_dtype(np.dtype(model_dtype)), float(scale), float(offset)
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = tf2onnx.convert.from_function(
                serve, input_signature=[spec], opset=opset
            )
    except Exception as error:  # tf2onnx raises many kinds on unsupported graphs.
        raise ExportError(
            f"Expected a graph tf2onnx can convert at opset {opset}. Conversion "
            f"failed: {type(error).__name__}: {first_line(error)}"
        ) from error
    graph_inputs = [value.name for value in model.graph.input]
    graph_outputs = {value.name for value in model.graph.output}
    if graph_inputs != [input_name] or set(names) - graph_outputs:
        raise ExportError(
            f"Expected the converted graph to have input {input_name!r} and "
            f"outputs {names}. Received inputs {graph_inputs} and outputs "
            f"{sorted(graph_outputs)}."
        )
    _name_batch_axes(model, names)
    model.graph.name = sanitize_name(learner.name)
    return model
