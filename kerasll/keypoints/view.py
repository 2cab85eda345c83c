"""The model view of a pose network: what strategies may ask of it, per figure.

See `kerasll.active.view` for what a model view is. Here an item is an image
of one figure: its uncertainty is the entropy of its joints' heatmaps
(`heatmap_entropy`), its features are the last hourglass's feature maps
pooled per image (`pose_feature_tensor`), and its true loss is the heatmap
mean squared error over its labeled joints (`HeatmapLoss`).
"""

import numpy as np

from kerasll.active.errors import UnknownStrategyError
from kerasll.active.view import TargetLossView
from kerasll.keypoints.heatmaps import STRIDE, decode_heatmaps
from kerasll.keypoints.loss import HeatmapLoss
from kerasll.keypoints.uncertainty import heatmap_entropy, pose_feature_tensor

# The one uncertainty measure of heatmaps; margin and least confidence are
# measures of class distributions, which a pose network does not output.
MEASURE = "entropy"


class KeypointModelView(TargetLossView):
    """A model view backed by a trained `build_hourglass` pose network.

    One forward pass gives the final heatmaps, the pooled features and (for
    a `LossLearner`) the predicted losses.

    Args:
        model: a single-output `build_hourglass` model, or a `LossLearner`
            wrapping one.
        images: (N, H, W, 3) raw pixels of the figures.
        batch_size: items per inference batch.
        targets: optional (N, h, w, J) heatmap targets (`encode_heatmaps`),
            for `true_loss`.
        stride: input pixels per heatmap cell.
    """

    def __init__(self, model, images, batch_size=256, targets=None, stride=STRIDE):
        super().__init__(
            model, images, batch_size, pose_feature_tensor, HeatmapLoss(), targets
        )
        self.stride = stride

    def heatmaps(self, indices):
        """(len(indices), h, w, J) predicted heatmaps."""
        return np.asarray(self._outputs(indices)["task"])

    def keypoints(self, indices):
        """Decoded keypoints and confidences (`decode_heatmaps`).

        Returns:
            `(keypoints, confidences)`: (len(indices), J, 2) input pixel
            coordinates and (len(indices), J) heatmap peaks.
        """
        return decode_heatmaps(self.heatmaps(indices), self.stride)

    def uncertainty(self, indices, measure):
        """(len(indices),) mean heatmap entropy of each figure's joints.

        Args:
            indices: pool indices.
            measure: "entropy" (the only measure of heatmaps).

        Raises:
            UnknownStrategyError: another measure.
        """
        if measure != MEASURE:
            raise UnknownStrategyError(
                f"Expected uncertainty measure {MEASURE!r} for a pose model (the "
                f"entropy of its joints' heatmaps). Received: {measure!r}"
            )
        return heatmap_entropy(self.heatmaps(indices)).astype(np.float64)
