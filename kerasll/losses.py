"""The loss-prediction loss of Yoo & Kweon (2019) and its pair metric.

A mini-batch of B samples is split into B // 2 pairs (i, B - 1 - i): the batch
is flipped and the first half kept, as in the paper's reference code. With an
odd B the middle sample has no partner and is left out; with B < 2 there are no
pairs and the loss is exactly zero.
"""

from keras import ops

OBJECTIVES = ("ranking", "mse")


def split_pairs(values):
    """Splits a batch into the paper's pairs (i, B - 1 - i).

    Args:
        values: tensor of shape (B,).

    Returns:
        Tuple `(first, second)` of tensors of shape (B // 2,), where
        `second[i] == values[B - 1 - i]`.
    """
    half = ops.shape(values)[0] // 2
    flipped = ops.flip(values, axis=0)
    return values[:half], flipped[:half]


def _mean_or_zero(values):
    count = ops.cast(ops.shape(values)[0], values.dtype)
    return ops.sum(values) / ops.maximum(count, 1.0)


def margin_ranking_loss(true_loss, predicted_loss, margin=1.0):
    """Pairwise margin ranking loss between true and predicted losses.

    Per pair: `max(0, -sign_ij * (lhat_i - lhat_j) + margin)` with
    `sign_ij = +1` if `l_i > l_j` else `-1` (ties count as -1). The true loss
    is a target only: its gradient is stopped.

    Args:
        true_loss: per-sample target loss `l`, shape (B,).
        predicted_loss: per-sample prediction `lhat`, shape (B,).
        margin: the margin xi (paper: 1.0).

    Returns:
        Scalar mean over the B // 2 pairs; 0.0 when there are no pairs.
    """
    true_loss = ops.stop_gradient(ops.cast(true_loss, predicted_loss.dtype))
    true_i, true_j = split_pairs(true_loss)
    pred_i, pred_j = split_pairs(predicted_loss)
    sign = ops.where(true_i > true_j, 1.0, -1.0)
    sign = ops.cast(sign, predicted_loss.dtype)
    per_pair = ops.relu(margin - sign * (pred_i - pred_j))
    return _mean_or_zero(per_pair)


def mse_loss(true_loss, predicted_loss):
    """Mean squared error between true and predicted losses.

    The paper's comparison objective: it is worse than ranking because the
    scale of the true loss shrinks during training.

    Args:
        true_loss: per-sample target loss, shape (B,); gradient stopped.
        predicted_loss: per-sample prediction, shape (B,).

    Returns:
        Scalar mean over the batch; 0.0 for an empty batch.
    """
    true_loss = ops.stop_gradient(ops.cast(true_loss, predicted_loss.dtype))
    return _mean_or_zero(ops.square(predicted_loss - true_loss))


def loss_prediction_loss(true_loss, predicted_loss, objective="ranking", margin=1.0):
    """Dispatches to the chosen loss-prediction objective.

    Args:
        true_loss: per-sample target loss, shape (B,).
        predicted_loss: per-sample prediction, shape (B,).
        objective: "ranking" (the paper's method) or "mse".
        margin: the ranking margin; ignored by "mse".

    Returns:
        Scalar loss.

    Raises:
        ValueError: unknown objective.
    """
    if objective == "ranking":
        return margin_ranking_loss(true_loss, predicted_loss, margin=margin)
    if objective == "mse":
        return mse_loss(true_loss, predicted_loss)
    raise ValueError(
        f"Expected objective in {list(OBJECTIVES)}. Received: objective={objective!r}"
    )


def pair_agreement(true_loss, predicted_loss):
    """Whether the prediction orders each pair the way the true loss does.

    A pair counts as correct when `(lhat_i > lhat_j) == (l_i > l_j)`, the same
    tie rule as the ranking loss.

    Args:
        true_loss: per-sample target loss, shape (B,).
        predicted_loss: per-sample prediction, shape (B,).

    Returns:
        Float tensor of shape (B // 2,): 1.0 for a correctly ordered pair.
    """
    true_i, true_j = split_pairs(ops.cast(true_loss, "float32"))
    pred_i, pred_j = split_pairs(ops.cast(predicted_loss, "float32"))
    return ops.cast(ops.equal(pred_i > pred_j, true_i > true_j), "float32")
