"""kerasll: Learning Loss for Active Learning (Yoo & Kweon, CVPR 2019) in Keras.

Importing `kerasll` is cheap; TensorFlow loads when a public name that needs
it is first used.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "LossLearner": "kerasll.learner",
    "DetachHead": "kerasll.callbacks",
    "build_loss_head": "kerasll.head",
    "auto_taps": "kerasll.taps",
    "margin_ranking_loss": "kerasll.losses",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerasll' has no attribute {name!r}")
