"""kerasll: Learning Loss for Active Learning (Yoo & Kweon, CVPR 2019) in Keras.

Importing `kerasll` is light: its public names load on first use (PEP 562),
so `import kerasll.project.manifest` and the `kerasll project` commands that
do not train never import TensorFlow.

`keras.models.load_model` finds `LossLearner` (and the head's layers) once
they are registered, which importing `kerasll.learner` does. `import kerasll`
does it at once when Keras is already imported (`import keras` first, as
isort orders the two); otherwise `from kerasll import LossLearner`, or any
use of `kerasll.LossLearner`, registers it before loading.
"""

import importlib
import sys

from kerasll.lazy import lazy_names

__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "DetachHead": "kerasll.callbacks",
    "GradientGate": "kerasll.head",
    "LossLearner": "kerasll.learner",
    "auto_taps": "kerasll.taps",
    "build_loss_head": "kerasll.head",
    "margin_ranking_loss": "kerasll.losses",
}

__all__ = sorted([*_LAZY, "__version__"])
__getattr__, __dir__ = lazy_names(__name__, _LAZY)

if "keras" in sys.modules:
    # Keras is in use already, so registering costs nothing more: a plain
    # `import keras, kerasll` is then enough for `keras.models.load_model`.
    importlib.import_module("kerasll.learner")
