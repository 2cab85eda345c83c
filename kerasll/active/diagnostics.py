"""Why a selection helps or hurts: measurements of one cycle's picks.

Every function takes plain arrays, so the same numbers can be computed in
the simulator (where every label is known) and in a real loop (once the
picks come back labeled):

- class balance: the picks' class histogram and its entropy relative to the
  uniform distribution (1.0 = perfectly balanced, 0.0 = one class);
- hardness: the mean true loss of the picks under the model that picked
  them, next to a random batch's (does the head find high-loss items?);
- redundancy: the mean pairwise distance of the picks' features (a
  classifier's penultimate layer, a detector's pooled feature maps), next to
  a random batch's (smaller = more alike);
- loss prediction quality: how well a score orders items by their true loss
  (Spearman and Kendall rank correlations).
"""

import numpy as np


def cross_entropy(probabilities, labels):
    """Per-item cross-entropy `-log p[label]` of class probabilities.

    Args:
        probabilities: (n, classes) class probabilities.
        labels: (n,) integer labels.

    Returns:
        (n,) float64 losses.

    Raises:
        ValueError: mismatched lengths.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(
            "Expected (n, classes) probabilities and n labels. Received shapes "
            f"{probabilities.shape} and {labels.shape}"
        )
    picked = probabilities[np.arange(len(labels)), labels]
    return -np.log(np.clip(picked, 1e-12, 1.0))


def class_balance(labels, num_classes):
    """Class histogram of a set of labels and its relative entropy.

    Args:
        labels: integer labels of the picks.
        num_classes: number of classes C.

    Returns:
        Tuple `(histogram, relative_entropy)`: int counts per class, and
        `H(histogram) / log(C)` in [0, 1] (1 = uniform; NaN for no labels or
        a single class, e.g. a one-class detector).

    Raises:
        ValueError: no classes or a label outside [0, C).
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if int(num_classes) < 1:
        raise ValueError(f"Expected num_classes >= 1. Received: {num_classes}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Expected labels in [0, {num_classes}). Received labels from "
            f"{labels.min()} to {labels.max()}"
        )
    histogram = np.bincount(labels, minlength=int(num_classes))
    if not len(labels) or num_classes == 1:
        return histogram, float("nan")
    from scipy import stats  # Imported here: slow to load (kerasll project select).

    return histogram, float(stats.entropy(histogram) / np.log(num_classes))


def mean_pairwise_distance(features):
    """Mean Euclidean distance over all pairs of rows.

    Args:
        features: (n, d) features.

    Returns:
        A float (NaN for fewer than 2 rows).
    """
    features = np.asarray(features, dtype=np.float64)
    features = features.reshape(len(features), -1)
    if len(features) < 2:
        return float("nan")
    from scipy.spatial import distance

    return float(distance.pdist(features).mean())


def pair_rank_accuracy(true_loss, score):
    """Share of pairs (i, n-1-i) that `score` orders like `true_loss`.

    The pairing is the paper's (item i against item n-1-i, over the whole
    array); a tie in the true loss counts as "i is not harder", as in the
    ranking loss.

    Args:
        true_loss: (n,) true losses.
        score: (n,) predicted losses or any score (higher = harder).

    Returns:
        A float in [0, 1] (NaN for fewer than 2 items).
    """
    true_loss = np.asarray(true_loss, dtype=np.float64).reshape(-1)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    half = len(true_loss) // 2
    if half == 0:
        return float("nan")
    first_true, second_true = true_loss[:half], true_loss[::-1][:half]
    first_score, second_score = score[:half], score[::-1][:half]
    true_sign = first_true > second_true
    predicted_sign = first_score > second_score
    return float(np.mean(true_sign == predicted_sign))


def spearman(true_loss, score):
    """Spearman rank correlation of a score with the true loss (NaN if undefined)."""
    true_loss = np.asarray(true_loss, dtype=np.float64).reshape(-1)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    if len(true_loss) < 2 or np.ptp(true_loss) == 0 or np.ptp(score) == 0:
        return float("nan")
    from scipy import stats

    return float(stats.spearmanr(true_loss, score).statistic)


def ranking_evidence(true_loss, score):
    """Kendall's tau of a score against the true loss, with a one-sided test.

    Kendall's tau is P(a pair is ordered like the true loss) minus P(it is
    ordered the other way): 0 for a score that carries no information about
    the loss, 1 for a perfect ranker.

    Args:
        true_loss: (n,) true losses of items the score never trained on.
        score: (n,) the scores given to them before their labels were known.

    Returns:
        Tuple `(tau, p_value)`; p_value tests tau > 0 (scipy's
        `kendalltau(alternative="greater")`). `(nan, 1.0)` when undefined
        (fewer than 3 items or a constant input).
    """
    true_loss = np.asarray(true_loss, dtype=np.float64).reshape(-1)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    if len(true_loss) < 3 or np.ptp(true_loss) == 0 or np.ptp(score) == 0:
        return float("nan"), 1.0
    from scipy import stats

    result = stats.kendalltau(true_loss, score, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def describe_selection(view, picks, comparison, pick_classes, num_classes):
    """Class balance, hardness and redundancy of picks next to a random batch.

    Args:
        view: a model view of the model that picked, over the pool, with
            true losses (`kerasll.active.view`).
        picks: pool indices the strategy chose.
        comparison: as many pool indices drawn uniformly from the same
            candidates (the random batch it is compared with).
        pick_classes: the class labels the picks hold (one per item for
            classification, one per object for detection).
        num_classes: number of classes.

    Returns:
        Dict with `pick_histogram` (list of counts per class),
        `pick_class_entropy`, `pick_loss`, `random_loss` (mean true loss
        under the picking model), `pick_distance` and `random_distance`
        (mean pairwise distance of the view's features).
    """
    picks = np.asarray(picks, dtype=np.int64)
    comparison = np.asarray(comparison, dtype=np.int64)
    both = np.concatenate([picks, comparison])
    features = view.features(both)
    losses = np.asarray(view.true_loss(both), dtype=np.float64)
    count = len(picks)
    histogram, balance = class_balance(pick_classes, num_classes)
    return {
        "pick_histogram": histogram.tolist(),
        "pick_class_entropy": balance,
        "pick_loss": float(losses[:count].mean()),
        "random_loss": float(losses[count:].mean()),
        "pick_distance": mean_pairwise_distance(features[:count]),
        "random_distance": mean_pairwise_distance(features[count:]),
    }


def describe_test_set(view, metric):
    """The task metric and loss-prediction quality on a labeled test set.

    Args:
        view: a model view over the test items, with true losses; its
            indices are 0..len(view)-1.
        metric: the task's metric on the test set (accuracy, mAP).

    Returns:
        Dict with `metric` (the task metric); `rank_accuracy` (pairs
        i, n-1-i) and `head_spearman` of the loss head's predicted loss with
        the true loss (None without a head); `entropy_spearman`, the
        entropy score's Spearman with the true loss (the uncertainty
        baseline as a loss predictor).
    """
    indices = np.arange(len(view))
    true_loss = view.true_loss(indices)
    metrics = {
        "metric": float(metric),
        "rank_accuracy": None,
        "head_spearman": None,
        "entropy_spearman": spearman(true_loss, view.uncertainty(indices, "entropy")),
    }
    if view.has_predicted_loss:
        predicted = view.predicted_loss(indices)
        metrics["rank_accuracy"] = pair_rank_accuracy(true_loss, predicted)
        metrics["head_spearman"] = spearman(true_loss, predicted)
    return metrics
