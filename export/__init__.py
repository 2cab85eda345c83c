"""ONNX export of a trained `LossLearner` for device scoring.

`to_onnx(learner, path, ...)` writes one graph with the task output(s) and
`predicted_loss`, its metadata contract (`kerasll_serving.contract`), verified
against Keras with onnxruntime before it is renamed into place.
"""

from kerasll.export.errors import ExportError, LearnerTypeError, VerificationError
from kerasll.export.exporter import PRECISIONS, ExportReport, to_onnx

__all__ = [
    "ExportError",
    "ExportReport",
    "LearnerTypeError",
    "PRECISIONS",
    "VerificationError",
    "to_onnx",
]
