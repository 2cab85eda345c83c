"""Per-candidate scores that batch rules turn into a selection.

A score maps candidates to one float each, higher = more wanted:

- `PredictedLoss`: the loss head's output (the paper);
- `Uncertainty`: entropy, margin or least confidence of the task's own
  class probabilities (`kerasll.active.uncertainty`);
- `Hybrid`: the rank average of the predicted loss and an uncertainty
  measure, for tasks that have both.

Scores read a model view (`kerasll.active.view`), never a model.
"""

import abc
from numbers import Real

import numpy as np
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

from kerasll.active.errors import ProtocolError
from kerasll.active.uncertainty import MEASURES


class Score(abc.ABC):
    """Base class: one float per candidate, higher = more wanted.

    Class attributes:
        name: the registry name.
        needs_head: whether the view must hold a loss head.
    """

    name = None
    needs_head = False

    @abc.abstractmethod
    def __call__(self, view, indices):
        """(len(indices),) float64 scores of pool items."""

    def get_config(self):
        """Constructor arguments."""
        return {}


class PredictedLoss(Score):
    """The loss head's predicted loss (Yoo & Kweon, 2019)."""

    name = "predicted_loss"
    needs_head = True

    def __call__(self, view, indices):
        return np.asarray(view.predicted_loss(indices), dtype=np.float64)


class Uncertainty(Score):
    """An uncertainty measure of the task's predictions.

    Args:
        measure: "entropy", "margin" or "least_confidence".

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    parameter_constraints = {"measure": [StrOptions(set(MEASURES))]}

    def __init__(self, measure="entropy"):
        self.measure = validate_arguments(
            self.parameter_constraints, {"measure": measure}, ProtocolError
        )["measure"]

    @property
    def name(self):
        return self.measure

    def __call__(self, view, indices):
        return np.asarray(view.uncertainty(indices, self.measure), dtype=np.float64)

    def get_config(self):
        return {"measure": self.measure}


def rank_fraction(values):
    """Average ranks scaled to (0, 1]: the highest value gets 1.

    Args:
        values: (n,) numbers.

    Returns:
        (n,) float64 array; ties share their average rank.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    from scipy import stats  # Imported here: slow to load (kerasll project select).

    return stats.rankdata(values) / max(len(values), 1)


class Hybrid(Score):
    """Rank average of the predicted loss and an uncertainty measure.

    `head_weight * rank(predicted loss) + (1 - head_weight) * rank(measure)`,
    ranks scaled to (0, 1] within the candidates, so neither score's scale
    matters. The head works on any task; the task's own uncertainty ranks
    the true loss better where it exists (RESULTS.md's diagnostics).

    Args:
        measure: the uncertainty measure ("entropy", "margin",
            "least_confidence").
        head_weight: weight of the predicted loss's rank, in [0, 1].

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    name = "hybrid"
    needs_head = True
    parameter_constraints = {
        **Uncertainty.parameter_constraints,
        "head_weight": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, measure="entropy", head_weight=0.5):
        checked = validate_arguments(
            self.parameter_constraints,
            {"measure": measure, "head_weight": head_weight},
            ProtocolError,
        )
        self.uncertainty = Uncertainty(checked["measure"])
        self.head_weight = checked["head_weight"]

    def __call__(self, view, indices):
        head = rank_fraction(view.predicted_loss(indices))
        other = rank_fraction(self.uncertainty(view, indices))
        return self.head_weight * head + (1.0 - self.head_weight) * other

    def get_config(self):
        return {"measure": self.uncertainty.measure, "head_weight": self.head_weight}


# name -> (class, fixed constructor arguments that a spec cannot change).
SCORES = {
    "predicted_loss": (PredictedLoss, {}),
    "entropy": (Uncertainty, {"measure": "entropy"}),
    "margin": (Uncertainty, {"measure": "margin"}),
    "least_confidence": (Uncertainty, {"measure": "least_confidence"}),
    "hybrid": (Hybrid, {}),
}
