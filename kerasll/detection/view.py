"""The model view of a detector: what strategies may ask of it, per scene.

See `kerasll.active.view` for what a model view is. Here an item is a scene:
its uncertainty is reduced over its detections after NMS, its features are
the detector's feature maps pooled per image, and its true loss is SSD's
MultiBox loss.
"""

import keras
import numpy as np

from kerasll.active.pipeline import inference_dataset
from kerasll.active.view import FEATURES, MissingOutputError
from kerasll.detection.loss import MultiBoxLoss
from kerasll.detection.postprocess import decode_predictions, select_detections
from kerasll.detection.uncertainty import detection_uncertainty, pooled_feature_tensor
from kerasll.learner import PREDICTED_LOSS, LossLearner


class DetectionModelView:
    """A model view backed by a trained `build_ssd` detector.

    One forward pass per request gives the raw predictions, the pooled
    feature maps and (for a `LossLearner`) the predicted losses; the last
    request is cached, and so are its detections.

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
        self.scenes, self.default_boxes = scenes, default_boxes
        self.batch_size, self.targets, self.reduction = int(batch_size), targets, reduction
        self._has_head = isinstance(model, LossLearner)
        backbone = model.backbone if self._has_head else model
        outputs = {"task": backbone.output, FEATURES: pooled_feature_tensor(backbone)}
        if self._has_head:
            outputs[PREDICTED_LOSS] = model.loss_head(
                [backbone.get_layer(name).output for name in model.taps]
            )
        self._graph = keras.Model(backbone.input, outputs, name="detection_view")
        self._cache_key, self._cache, self._detections = None, None, None

    def __len__(self):
        return len(self.scenes)

    @property
    def has_predicted_loss(self):
        """Whether the model has a loss head."""
        return self._has_head

    def _outputs(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        key = indices.tobytes()
        if key != self._cache_key:
            dataset = inference_dataset(
                self.scenes.images[indices], batch_size=self.batch_size
            )
            self._cache = self._graph.predict(dataset, verbose=0)
            self._cache_key, self._detections = key, None
        return self._cache

    def _decoded(self, indices):
        """Boxes, class probabilities and detections (SSD's NMS) of the items."""
        predictions = self._outputs(indices)["task"]
        boxes, probabilities = decode_predictions(predictions, self.default_boxes)
        if self._detections is None:
            self._detections = select_detections(boxes, probabilities)
        return boxes, probabilities, self._detections

    def detections(self, indices):
        """One `Detections` per item (SSD's thresholds and NMS)."""
        return self._decoded(indices)[2]

    def uncertainty(self, indices, measure):
        """(len(indices),) uncertainty of each image's detections."""
        _, probabilities, detections = self._decoded(indices)
        return detection_uncertainty(probabilities, detections, measure, self.reduction)

    def features(self, indices):
        """(len(indices), D) feature maps pooled per image."""
        return np.asarray(self._outputs(indices)[FEATURES])

    def predicted_loss(self, indices):
        """(len(indices),) losses predicted by the loss head.

        Raises:
            MissingOutputError: the model has no loss head.
        """
        outputs = self._outputs(indices)
        if PREDICTED_LOSS not in outputs:
            raise MissingOutputError(
                "Expected a LossLearner for predicted losses. Received a detector "
                "without a loss head; train the strategy with a loss head."
            )
        return np.asarray(outputs[PREDICTED_LOSS]).reshape(-1)

    def true_loss(self, indices):
        """(len(indices),) MultiBox loss of each image under the model.

        Raises:
            MissingOutputError: the view was made without targets.
        """
        if self.targets is None:
            raise MissingOutputError(
                "Expected a view made with targets for true losses. Received none"
            )
        indices = np.asarray(indices, dtype=np.int64)
        loss = MultiBoxLoss().call(self.targets[indices], self._outputs(indices)["task"])
        return np.asarray(keras.ops.convert_to_numpy(loss), dtype=np.float64)
