"""The pose loss per image: heatmap mean squared error over labeled joints."""

import keras
from keras import ops

from kerasll.keypoints.heatmaps import IGNORED


@keras.saving.register_keras_serializable(package="kerasll.keypoints")
class HeatmapLoss(keras.losses.Loss):
    """Mean squared heatmap error per image, over the joints it labels.

    For an image, the mean over its labeled joints of the mean squared
    error between the predicted and the target heatmap of the joint (the
    stacked hourglass' loss, Newell et al. 2016, averaged per image so that
    each image has its own loss for the loss head to rank). A joint whose
    target map is `IGNORED` (see `encode_heatmaps`: outside the image, or
    hidden with `min_visibility=2`) adds nothing; an image without labeled
    joints has loss 0.

    `call` returns one value per image, so the loss works as the per-sample
    task loss of `kerasll.LossLearner`; used on its own, Keras averages it
    over the batch. For a model with intermediate outputs, compile with one
    `HeatmapLoss` (it applies to every output) and pass the same targets
    for each output.

    Args:
        reduction, name, dtype: as for `keras.losses.Loss`.

    Call args:
        y_true: (B, h, w, J) targets from `encode_heatmaps`.
        y_pred: (B, h, w, J) predicted heatmaps.
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="heatmap_loss", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        # A target map is IGNORED everywhere or a Gaussian (>= 0) everywhere.
        labeled = ops.cast(y_true[:, 0, 0, :] > IGNORED / 2.0, y_pred.dtype)
        per_joint = ops.mean(ops.square(y_pred - y_true), axis=(1, 2))
        total = ops.sum(per_joint * labeled, axis=-1)
        return total / ops.maximum(ops.sum(labeled, axis=-1), 1.0)
