"""Parity and agreement numbers between Keras and exported graphs.

numpy, and scipy (a dependency of scikit-learn, which kerasll needs) for
Kendall's tau.
"""

import dataclasses
import math

import numpy as np
from kerasll_serving.topk import top_indices

TOP_FRACTION = 0.1


def rank(values):
    """Ranks of `values` from 1 to n; tied values share their average rank.

    Args:
        values: 1-D array-like.

    Returns:
        float64 array of the same length.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(values, kind="stable")
    ordinal = np.empty(len(values), dtype=np.float64)
    ordinal[order] = np.arange(1, len(values) + 1, dtype=np.float64)
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    # Tied values occupy consecutive ordinal ranks; replace each by the mean.
    sums = np.bincount(group, weights=ordinal)
    return sums[group] / counts[group]


def spearman(reference, candidate):
    """Spearman rank correlation of two score vectors.

    Args:
        reference, candidate: 1-D array-likes of the same length.

    Returns:
        The correlation in [-1, 1], or NaN when either vector is constant
        (or has fewer than two values): the correlation is then undefined.
    """
    a, b = rank(reference), rank(candidate)
    if len(a) != len(b):
        raise ValueError(
            f"Expected score vectors of one length. Received {len(a)} and {len(b)}."
        )
    if len(a) < 2:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    if denominator == 0.0:
        return math.nan
    return float(np.dot(a, b) / denominator)


def top_count(n, fraction=TOP_FRACTION):
    """How many items the top `fraction` of `n` holds (at least 1)."""
    return max(1, int(math.ceil(fraction * n - 1e-9)))


def top_overlap(reference, candidate, fraction=TOP_FRACTION):
    """Share of the reference's top-`fraction` picks that the candidate also picks.

    Both pick the `top_count(n, fraction)` highest scores; ties are broken by
    position, the same way for both.

    Args:
        reference, candidate: 1-D score vectors of one length (higher = picked).
        fraction: the share of items picked.

    Returns:
        The overlap in [0, 1] (1.0: the same items are picked).
    """
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    candidate = np.asarray(candidate, dtype=np.float64).reshape(-1)
    if len(reference) != len(candidate) or len(reference) == 0:
        raise ValueError(
            "Expected two non-empty score vectors of one length. Received "
            f"{len(reference)} and {len(candidate)}."
        )
    k = top_count(len(reference), fraction)
    picked = set(top_indices(reference, k).tolist())
    also = set(top_indices(candidate, k).tolist())
    return len(picked & also) / k


def kendall_tau(reference, candidate):
    """Kendall's tau-b of two score vectors (`scipy.stats.kendalltau`).

    The share of item pairs both order alike minus the share they order
    differently, ties accounted for: the figure for how well a lower
    precision keeps the whole acquisition ranking, not only its top.

    Args:
        reference, candidate: 1-D array-likes of one length.

    Returns:
        tau in [-1, 1], or NaN when either vector is constant or has fewer
        than two values.

    Raises:
        ValueError: vectors of different lengths.
    """
    from scipy import stats

    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    candidate = np.asarray(candidate, dtype=np.float64).reshape(-1)
    if len(reference) != len(candidate):
        raise ValueError(
            "Expected score vectors of one length. Received "
            f"{len(reference)} and {len(candidate)}."
        )
    if len(reference) < 2:
        return math.nan
    return float(stats.kendalltau(reference, candidate).statistic)


@dataclasses.dataclass(frozen=True)
class RankingTrial:
    """How well one lower-precision graph keeps the fp32 predicted-loss ranking.

    Attributes:
        setting: what was tried ("fp16", or an `Int8Setting.name`).
        top_overlap: share of fp32's top-10% picks it also picks.
        kendall_tau: Kendall's tau against fp32's predicted losses.
        spearman: Spearman correlation against them.
    """

    setting: str
    top_overlap: float
    kendall_tau: float
    spearman: float

    def passes(self, min_top_overlap, min_kendall_tau):
        """Whether both figures reach their bars (NaN never does)."""
        return (
            self.top_overlap >= min_top_overlap
            and self.kendall_tau >= min_kendall_tau
        )

    def describe(self):
        """One line: "<setting>: overlap 0.923, tau 0.912"."""
        return (
            f"{self.setting}: overlap {self.top_overlap:.3f}, "
            f"tau {self.kendall_tau:.3f}"
        )


def ranking_trial(setting, reference, candidate):
    """The `RankingTrial` of `candidate` predicted losses against `reference`."""
    return RankingTrial(
        setting=setting,
        top_overlap=top_overlap(reference, candidate),
        kendall_tau=kendall_tau(reference, candidate),
        spearman=spearman(reference, candidate),
    )


def output_scale(reference):
    """The scale an output's error is measured against: max(1, max |value|)."""
    reference = np.asarray(reference, dtype=np.float64)
    return max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0


def max_abs_diffs(reference, candidate):
    """Largest absolute difference per output.

    Args:
        reference, candidate: dicts of output name -> array, same names and
            shapes (after squeezing nothing).

    Returns:
        dict of name -> float.
    """
    diffs = {}
    for name, expected in reference.items():
        expected = np.asarray(expected, dtype=np.float64)
        got = np.asarray(candidate[name], dtype=np.float64)
        if got.shape != expected.shape:
            raise ValueError(
                f"Expected output {name!r} of shape {expected.shape}. "
                f"Received shape {got.shape}."
            )
        diffs[name] = float(np.max(np.abs(got - expected))) if got.size else 0.0
    return diffs


def parity_failures(reference, candidate, tolerance):
    """Outputs whose max abs difference exceeds `tolerance * output_scale`.

    Returns:
        dict of name -> (difference, allowed) for the failing outputs.
    """
    diffs = max_abs_diffs(reference, candidate)
    failures = {}
    for name, diff in diffs.items():
        allowed = tolerance * output_scale(reference[name])
        if not diff <= allowed:  # NaN fails too.
            failures[name] = (diff, allowed)
    return failures


def argmax_agreement(reference, candidate):
    """Share of rows whose argmax (last axis) is the same, for (B, C>1) outputs."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.ndim != 2 or reference.shape[-1] < 2:
        return None
    return float(np.mean(reference.argmax(-1) == candidate.argmax(-1)))


def run_onnx(model, input_name, x, output_names=None):
    """Runs an ONNX model with onnxruntime on the CPU.

    Args:
        model: path to an .onnx file, or serialized model bytes.
        input_name: the graph input.
        x: the batch.
        output_names: outputs to fetch (default: all).

    Returns:
        dict of output name -> numpy array.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        model, sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = output_names or [output.name for output in session.get_outputs()]
    values = session.run(names, {input_name: x})
    return dict(zip(names, values))
