"""kerasll-serving: score unlabeled pools with a kerasll-exported ONNX model.

Needs only numpy, onnxruntime, Pillow and click (never TensorFlow/Keras/onnx).
`PoolScorer` and the result types load onnxruntime on first use, so importing
the contract (as the exporter does) stays light.
"""

import importlib

from kerasll_serving.contract import (
    ContractError,
    InputSpec,
    LossQuantiles,
    ModelContract,
    Preprocessing,
)
from kerasll_serving.errors import (
    CheckpointError,
    EngineError,
    MissingDependencyError,
    ModelError,
    OutputError,
    PoolError,
    ProviderError,
    ServingError,
)

__version__ = "0.1.0"
_LAZY = {
    "PoolScorer": "kerasll_serving.scorer",
    "ScoreResult": "kerasll_serving.results",
    "Pick": "kerasll_serving.results",
    "SkippedItem": "kerasll_serving.results",
    "StreamResult": "kerasll_serving.results",
    "StreamSelector": "kerasll_serving.selector",
}
__all__ = [
    "CheckpointError",
    "ContractError",
    "EngineError",
    "InputSpec",
    "LossQuantiles",
    "MissingDependencyError",
    "ModelContract",
    "ModelError",
    "OutputError",
    "PoolError",
    "Preprocessing",
    "ProviderError",
    "ServingError",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerasll_serving' has no attribute {name!r}")
