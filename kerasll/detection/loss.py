"""SSD's MultiBox loss, one value per image (the loss head's target)."""

import keras
from keras import ops


def smooth_l1(x):
    """Huber loss with delta 1, elementwise: 0.5 x^2 if |x| < 1 else |x| - 0.5."""
    absolute = ops.abs(x)
    return ops.where(absolute < 1.0, 0.5 * ops.square(x), absolute - 0.5)


def hard_negative_mask(confidence_loss, positive, neg_pos_ratio=3.0):
    """Picks the hardest negatives, `neg_pos_ratio` per positive, per image.

    Args:
        confidence_loss: (B, N) classification loss of each default box.
        positive: (B, N) boolean, default boxes matched to an object.
        neg_pos_ratio: negatives kept per positive (SSD: 3).

    Returns:
        (B, N) boolean: the `min(neg_pos_ratio * positives, negatives)`
        negatives of each image with the highest confidence loss (none in
        an image without positives, as in SSD).
    """
    positive = ops.cast(positive, "bool")
    loss = ops.stop_gradient(ops.cast(confidence_loss, "float32"))
    # The loss is >= 0, so -1 ranks every positive after every negative.
    negative_loss = ops.where(positive, -1.0, loss)
    order = ops.argsort(-negative_loss, axis=-1)
    rank = ops.argsort(order, axis=-1)
    positives = ops.sum(ops.cast(positive, "float32"), axis=-1)
    count = ops.shape(negative_loss)[-1]
    negatives = ops.minimum(
        ops.floor(neg_pos_ratio * positives), ops.cast(count, "float32") - positives
    )
    return ops.cast(rank, "float32") < negatives[:, None]


@keras.saving.register_keras_serializable(package="kerasll.detection")
class MultiBoxLoss(keras.losses.Loss):
    """SSD's loss per image: smooth-L1 localization + softmax confidence.

    For each image with P positive default boxes:
    `(L_conf(positives + hard negatives) + alpha * L_loc(positives)) / P`
    (Liu et al., 2016, eq. 1, normalized per image rather than per batch, so
    that each image has its own loss for the loss head to rank; 0 for an
    image without objects). Hard negatives: `hard_negative_mask`.

    `call` returns one value per image, so the loss works as the per-sample
    task loss of `kerasll.LossLearner`; used on its own, Keras averages it
    over the batch.

    Args:
        neg_pos_ratio: hard negatives per positive (SSD: 3).
        alpha: weight of the localization term (SSD: 1).
        reduction, name: as for `keras.losses.Loss`.

    Call args:
        y_true: (B, N, 5) from `encode_batch`: offsets, then the class
            (background 0).
        y_pred: (B, N, 4 + K): predicted offsets, then K class logits
            (background first).

    Raises:
        ValueError: `neg_pos_ratio` or `alpha` negative.
    """

    def __init__(
        self,
        neg_pos_ratio=3.0,
        alpha=1.0,
        reduction="sum_over_batch_size",
        name="multibox_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        for key, value in (("neg_pos_ratio", neg_pos_ratio), ("alpha", alpha)):
            if not float(value) >= 0.0:
                raise ValueError(f"Expected {key} >= 0. Received: {key}={value!r}.")
        self.neg_pos_ratio = float(neg_pos_ratio)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        labels = ops.cast(y_true[..., 4], "int32")
        positive = labels > 0
        confidence = ops.sparse_categorical_crossentropy(
            labels, y_pred[..., 4:], from_logits=True, axis=-1
        )
        hard = hard_negative_mask(confidence, positive, self.neg_pos_ratio)
        selected = ops.cast(ops.logical_or(positive, hard), y_pred.dtype)
        weights = ops.cast(positive, y_pred.dtype)
        localization = ops.sum(smooth_l1(y_pred[..., :4] - y_true[..., :4]), axis=-1)
        total = ops.sum(confidence * selected, axis=-1) + self.alpha * ops.sum(
            localization * weights, axis=-1
        )
        return total / ops.maximum(ops.sum(weights, axis=-1), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"neg_pos_ratio": self.neg_pos_ratio, "alpha": self.alpha})
        return config
