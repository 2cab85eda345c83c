"""The private Keras API the export needs, held in this one module.

Keras 3 offers no public way to find the operation that produced a
symbolic tensor (a `Sequential` model has no `operations` to search), nor
to apply the numpy>=2 fix for tf2onnx 1.17 that `keras.Model.export(...,
format="onnx")` applies for itself. Both are read here and nowhere else;
tests/test_keras_internals.py fails when a Keras release moves them.
"""

import warnings


def producing_operation(tensor):
    """The layer or operation whose call produced a symbolic Keras tensor.

    Args:
        tensor: a `keras.KerasTensor`, e.g. `model.inputs[0]` or
            `model.outputs[0]` (an `InputLayer` for an input).

    Returns:
        The `keras.Operation` (a layer, or an op such as `keras.ops.softmax`),
        or None for a tensor no operation produced.
    """
    history = getattr(tensor, "_keras_history", None)
    return getattr(history, "operation", None)


def patch_tf2onnx():
    """Applies Keras' numpy>=2 compatibility patch to tf2onnx (idempotent).

    Returns:
        Whether the patch was found and applied.
    """
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx as patch
    except ImportError:  # pragma: no cover - the adapter's test fails first
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        patch()
    return True
