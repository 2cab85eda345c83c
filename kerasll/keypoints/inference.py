"""The pose network as a device sees it: keypoints and their confidences.

A `build_hourglass` model is trained on heatmaps. For export, its final
heatmaps are decoded in the graph (`heatmap_peaks`: argmax, then the
Taylor sub-cell step, then input coordinates) into "keypoints", and their
peak values become "confidences"; wrapped in a `LossLearner` that carries
the trained loss head, `kerasll.export.to_onnx` writes keypoints,
confidences and `predicted_loss` in one graph.
"""

import keras
from kerasll_serving.contract import CONFIDENCES_OUTPUT, KEYPOINTS_OUTPUT

from kerasll.keypoints.heatmaps import (
    STRIDE,
    check_stride,
    heatmap_peaks,
    to_input_coordinates,
)
from kerasll.keypoints.model import heatmap_output


@keras.saving.register_keras_serializable(package="kerasll.keypoints")
class DecodeKeypoints(keras.layers.Layer):
    """Heatmaps (B, h, w, J) -> keypoints (B, J, 2) in input pixels.

    Args:
        stride: input pixels per heatmap cell.
        **kwargs: `keras.layers.Layer` arguments.

    Raises:
        ValueError: stride not an integer >= 1.
    """

    def __init__(self, stride=STRIDE, **kwargs):
        super().__init__(**kwargs)
        self.stride = check_stride(stride)

    def call(self, heatmaps):
        points, _ = heatmap_peaks(heatmaps)
        return to_input_coordinates(points, self.stride)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1], 2)

    def get_config(self):
        config = super().get_config()
        config.update({"stride": self.stride})
        return config


def inference_model(pose_model, stride=STRIDE):
    """The pose network's layers ending in keypoints and confidences.

    Args:
        pose_model: a `build_hourglass` model (trained or not); its layers
            are shared. With intermediate outputs, the last stack's
            "heatmaps" are decoded.
        stride: input pixels per heatmap cell (4).

    Returns:
        A functional `keras.Model` with outputs "keypoints" (B, J, 2) (x, y)
        input pixel coordinates and "confidences" (B, J) heatmap peaks.

    Raises:
        ValueError: the model has no "heatmaps" layer.
    """
    heatmaps = heatmap_output(pose_model)
    keypoints = DecodeKeypoints(stride, name=KEYPOINTS_OUTPUT)(heatmaps)
    confidences = keras.layers.GlobalMaxPooling2D(name=CONFIDENCES_OUTPUT)(heatmaps)
    return keras.Model(
        pose_model.input, [keypoints, confidences], name=f"{pose_model.name}_keypoints"
    )


def inference_learner(learner, stride=STRIDE):
    """A `LossLearner` for export: keypoints, confidences and the loss head.

    Args:
        learner: a `LossLearner` wrapping a `build_hourglass` model.
        stride: input pixels per heatmap cell (4).

    Returns:
        `learner.with_backbone(inference_model(...))`: every setting and
        the trained head's weights kept, the network's layers shared;
        `kerasll.export.to_onnx` turns it into a graph with outputs
        "keypoints", "confidences" and "predicted_loss".
    """
    return learner.with_backbone(
        inference_model(learner.backbone, stride), name=f"{learner.name}_keypoints"
    )
