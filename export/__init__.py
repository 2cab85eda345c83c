"""ONNX export of a trained `LossLearner` for device scoring.

`to_onnx(learner, path, ...)` writes one graph with the task output(s) and
`predicted_loss`, its metadata contract (`kerasll_serving.contract`), verified
against Keras with onnxruntime before it is renamed into place.

Importing this package is cheap; TensorFlow loads on first use of `to_onnx`.
"""

import importlib

_LAZY = {
    "to_onnx": "kerasll.export.exporter",
    "ExportReport": "kerasll.export.exporter",
    "PRECISIONS": "kerasll.export.exporter",
    "ExportError": "kerasll.export.errors",
    "VerificationError": "kerasll.export.errors",
    "LearnerTypeError": "kerasll.export.errors",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerasll.export' has no attribute {name!r}")
