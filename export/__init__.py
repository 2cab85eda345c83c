"""ONNX export of a trained `LossLearner` for device scoring.

`to_onnx(learner, path, ...)` writes one graph with the task output(s) and
`predicted_loss`, its metadata contract (`kerasll_serving.contract`), verified
against Keras with onnxruntime before it is renamed into place.

Modules: `checks` (every argument, before anything runs), `onnx_export`
(`to_onnx`: convert, lower the precision, verify, write), `report`
(`ExportReport`), and the steps they use (`convert`, `quantize`, `verify`,
`metadata`).
"""

from kerasll_serving.contract import PRECISIONS

from kerasll.export.errors import (
    ExportError,
    LearnerTypeError,
    RankingError,
    VerificationError,
)
from kerasll.export.onnx_export import to_onnx
from kerasll.export.quantize import INT8_SETTINGS, Int8Setting
from kerasll.export.report import ExportReport

__all__ = [
    "ExportError",
    "ExportReport",
    "INT8_SETTINGS",
    "Int8Setting",
    "LearnerTypeError",
    "PRECISIONS",
    "RankingError",
    "VerificationError",
    "to_onnx",
]
