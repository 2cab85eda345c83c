"""Uncertainty of class distributions: the scores of uncertainty strategies.

Each measure maps (..., classes) probabilities to one score per distribution,
higher = more uncertain. A classifier is scored on its one distribution per
item; a detector on the distributions of its detections, reduced per image
(`kerasll.tasks.detection`).
"""

import numpy as np

from kerasll.active.errors import UnknownStrategyError


def entropy(probabilities):
    """Predictive entropy `-sum_c p_c log p_c`, in nats."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def margin(probabilities):
    """Minus the gap between the two most probable classes."""
    top_two = np.sort(np.asarray(probabilities, dtype=np.float64), axis=-1)[..., -2:]
    return -(top_two[..., 1] - top_two[..., 0])


def least_confidence(probabilities):
    """One minus the probability of the predicted class."""
    return 1.0 - np.asarray(probabilities, dtype=np.float64).max(axis=-1)


MEASURES = {
    "entropy": entropy,
    "margin": margin,
    "least_confidence": least_confidence,
}


def uncertainty(probabilities, measure):
    """Scores class distributions with a named measure.

    Args:
        probabilities: (..., classes) class probabilities.
        measure: one of `MEASURES`.

    Returns:
        float64 array of shape `probabilities.shape[:-1]`.

    Raises:
        UnknownStrategyError: an unknown measure.
    """
    if measure not in MEASURES:
        raise UnknownStrategyError(
            f"Expected an uncertainty measure from {sorted(MEASURES)}. "
            f"Received: {measure!r}"
        )
    return MEASURES[measure](probabilities)
