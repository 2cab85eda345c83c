"""Detector output -> detections per image: decoding, then NMS in numpy.

Decoding lives here; IoU, NMS and `Detections` have their one home in
`kerasll_serving.detections` (numpy only, so the device scorer draws the same
boxes without TensorFlow) and are re-exported under their usual names. NMS
stays outside the graph: the exported ONNX graph's outputs stop at decoded
boxes and class probabilities.
"""

import numpy as np
from kerasll_serving.detections import (
    Detections,
    non_max_suppression,
    select_detections,
)
from kerasll_serving.predictions import softmax

from kerasll.detection.boxes import VARIANCES, decode

__all__ = [
    "Detections",
    "decode_predictions",
    "non_max_suppression",
    "select_detections",
]


def decode_predictions(predictions, default_boxes, variances=VARIANCES):
    """Splits raw detector output into boxes and class probabilities.

    Args:
        predictions: (B, N, 4 + K) output of a `build_ssd` model.
        default_boxes: (N, 4) from `default_boxes_for`.
        variances: the offset variances used for the targets.

    Returns:
        `(boxes, probabilities)`: (B, N, 4) corner boxes and (B, N, K) softmax
        probabilities, background first.

    Raises:
        ValueError: the rows do not match the default boxes.
    """
    predictions = np.asarray(predictions, dtype=np.float32)
    if predictions.ndim != 3 or predictions.shape[1] != len(default_boxes):
        raise ValueError(
            f"Expected predictions of shape (B, {len(default_boxes)}, 4 + classes), "
            f"one row per default box. Received shape {predictions.shape}."
        )
    boxes = decode(predictions[..., :4], default_boxes[None], variances)
    logits = predictions[..., 4:].astype(np.float64)
    return boxes, softmax(logits).astype(np.float32)
