"""The detector as a device sees it: decoded boxes and class probabilities.

A `build_ssd` model is trained on raw offsets and logits. For export, the
same layers are rewired to end in "boxes" (decoded, normalized corners) and
"scores" (softmax), and wrapped in a `LossLearner` that carries the trained
loss head, so `kerasll.export.to_onnx` writes boxes, scores and
`predicted_loss` in one graph. NMS stays outside the graph
(`postprocess.select_detections`).
"""

import keras
import numpy as np
from keras import ops
from kerasll_serving.contract import BOXES_OUTPUT, SCORES_OUTPUT

from kerasll.detection.boxes import VARIANCES


@keras.saving.register_keras_serializable(package="kerasll.detection")
class DecodeBoxes(keras.layers.Layer):
    """Decodes SSD offsets into corner boxes against fixed default boxes.

    The default boxes are a non-trainable weight, so they are saved with the
    model and exported as a constant.

    Args:
        num_boxes: N, the number of default boxes.
        variances: offset variances (SSD: (0.1, 0.2)).
        default_boxes: optional (N, 4) corner boxes to initialize the weight
            with (omitted when a saved layer is loaded: the weight is read).
        **kwargs: `keras.layers.Layer` arguments.

    Raises:
        ValueError: `default_boxes` is not of shape (num_boxes, 4).
    """

    def __init__(self, num_boxes, variances=VARIANCES, default_boxes=None, **kwargs):
        super().__init__(**kwargs)
        self.num_boxes = int(num_boxes)
        self.variances = tuple(float(v) for v in variances)
        if default_boxes is not None:
            default_boxes = np.asarray(default_boxes, dtype="float32")
            if default_boxes.shape != (self.num_boxes, 4):
                raise ValueError(
                    f"Expected default_boxes of shape ({self.num_boxes}, 4). "
                    f"Received shape {default_boxes.shape}."
                )
        self._initial = default_boxes

    def build(self, input_shape):
        initial = self._initial
        self.default_boxes = self.add_weight(
            name="default_boxes",
            shape=(self.num_boxes, 4),
            initializer=(
                "zeros" if initial is None else keras.initializers.Constant(initial)
            ),
            trainable=False,
        )

    def call(self, offsets):
        default = ops.cast(self.default_boxes, offsets.dtype)
        size = default[:, 2:] - default[:, :2]
        center = default[:, :2] + size / 2.0
        box_center = center + offsets[..., :2] * self.variances[0] * size
        box_size = size * ops.exp(offsets[..., 2:] * self.variances[1])
        return ops.concatenate(
            [box_center - box_size / 2.0, box_center + box_size / 2.0], axis=-1
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"num_boxes": self.num_boxes, "variances": self.variances})
        return config


def inference_model(detector, default_boxes, variances=VARIANCES):
    """The detector's layers ending in decoded boxes and class probabilities.

    Args:
        detector: a `build_ssd` model (trained or not); its layers are shared.
        default_boxes: (N, 4) from `default_boxes_for(detector)`.
        variances: the offset variances of its training targets.

    Returns:
        A functional `keras.Model` with outputs "boxes" (B, N, 4) and "scores"
        (B, N, K), background first.
    """
    default_boxes = np.asarray(default_boxes, dtype="float32")
    predictions = detector.output
    boxes = DecodeBoxes(
        len(default_boxes), variances, default_boxes, name=BOXES_OUTPUT
    )(predictions[..., :4])
    scores = keras.layers.Softmax(axis=-1, name=SCORES_OUTPUT)(predictions[..., 4:])
    return keras.Model(detector.input, [boxes, scores], name=f"{detector.name}_boxes")


def inference_learner(learner, default_boxes, variances=VARIANCES):
    """A `LossLearner` for export: boxes, scores and the trained loss head.

    Args:
        learner: a `LossLearner` wrapping a `build_ssd` model.
        default_boxes: (N, 4) from `default_boxes_for(learner.backbone)`.
        variances: the offset variances of its training targets.

    Returns:
        `learner.with_backbone(inference_model(...))`: every setting and
        the trained head's weights kept, the detector's layers shared;
        `kerasll.export.to_onnx` turns it into a graph with outputs "boxes",
        "scores" and "predicted_loss".
    """
    return learner.with_backbone(
        inference_model(learner.backbone, default_boxes, variances),
        name=f"{learner.name}_boxes",
    )
