"""The model view of a detector: what strategies may ask of it, per scene.

See `kerasll.active.view` for what a model view is. Here an item is a scene:
its uncertainty is reduced over its detections after NMS, its features are
the detector's feature maps pooled per image, and its true loss is SSD's
MultiBox loss.
"""

from kerasll.active.view import TargetLossView
from kerasll.detection.loss import MultiBoxLoss
from kerasll.detection.postprocess import decode_predictions, select_detections
from kerasll.detection.uncertainty import detection_uncertainty, pooled_feature_tensor


class DetectionModelView(TargetLossView):
    """A model view backed by a trained `build_ssd` detector.

    The forward pass gives the raw predictions, the pooled feature maps and
    (for a `LossLearner`) the predicted losses; the detections of the last
    request are cached too.

    Args:
        model: a `build_ssd` model, or a `LossLearner` wrapping one.
        scenes: the `Scenes` the indices refer to.
        default_boxes: (N, 4) default boxes of the detector.
        batch_size: items per inference batch.
        targets: optional (n, N, 5) encoded targets of the scenes, for
            `true_loss`.
        reduction: how detections' uncertainties make an image's ("mean" or
            "max").
    """

    def __init__(
        self, model, scenes, default_boxes, batch_size=256, targets=None,
        reduction="mean",
    ):
        super().__init__(
            model, scenes.images, batch_size, pooled_feature_tensor, MultiBoxLoss(),
            targets,
        )
        self.default_boxes, self.reduction = default_boxes, reduction
        self._decoded_key, self._decoded_cache = None, None

    def _decoded(self, indices):
        """Class probabilities and detections (SSD's NMS) of the items,
        computed once per forward pass."""
        predictions = self._outputs(indices)["task"]
        if self._decoded_key != self._cache_key:
            boxes, probabilities = decode_predictions(predictions, self.default_boxes)
            detections = select_detections(boxes, probabilities)
            self._decoded_cache = probabilities, detections
            self._decoded_key = self._cache_key
        return self._decoded_cache

    def detections(self, indices):
        """One `Detections` per item (SSD's thresholds and NMS)."""
        return self._decoded(indices)[1]

    def uncertainty(self, indices, measure):
        """(len(indices),) uncertainty of each image's detections."""
        probabilities, detections = self._decoded(indices)
        return detection_uncertainty(probabilities, detections, measure, self.reduction)
