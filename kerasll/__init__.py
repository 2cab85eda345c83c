"""kerasll: Learning Loss for Active Learning (Yoo & Kweon, CVPR 2019) in Keras.

Importing `kerasll` registers its Keras serializables (`LossLearner`, the
head's layers), so `keras.models.load_model` reads saved learners after a
plain `import kerasll`.
"""

from kerasll.callbacks import DetachHead
from kerasll.head import GradientGate, build_loss_head
from kerasll.learner import LossLearner
from kerasll.losses import margin_ranking_loss
from kerasll.taps import auto_taps

__version__ = "0.1.0"

__all__ = [
    "DetachHead",
    "GradientGate",
    "LossLearner",
    "__version__",
    "auto_taps",
    "build_loss_head",
    "margin_ranking_loss",
]
