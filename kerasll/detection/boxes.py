"""Box geometry in numpy: corner/center forms, IoU, SSD offset encoding.

Boxes are (xmin, ymin, xmax, ymax), normalized to [0, 1] by the image width
and height unless said otherwise; center form is (cx, cy, w, h). `iou` has its
one home in `kerasll_serving.detections` and is re-exported here.
"""

import numpy as np
from kerasll_serving.detections import iou

__all__ = [
    "VARIANCES",
    "center_to_corners",
    "check_boxes",
    "corners_to_center",
    "decode",
    "encode",
    "iou",
]

VARIANCES = (0.1, 0.2)


def check_boxes(boxes, what="boxes"):
    """Returns `boxes` as a float32 (n, 4) array.

    Raises:
        ValueError: not of shape (n, 4), not finite, or a box with
            xmax < xmin or ymax < ymin.
    """
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(
            f"Expected {what} of shape (n, 4) as (xmin, ymin, xmax, ymax). "
            f"Received shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Expected finite {what}. Received NaN or inf.")
    bad = np.flatnonzero((array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1]))
    if bad.size:
        raise ValueError(
            f"Expected {what} with xmax >= xmin and ymax >= ymin. Received "
            f"{array[bad[0]].tolist()} at row {int(bad[0])}."
        )
    return array


def corners_to_center(boxes):
    """(xmin, ymin, xmax, ymax) -> (cx, cy, w, h), along the last axis."""
    boxes = np.asarray(boxes, dtype=np.float32)
    size = boxes[..., 2:] - boxes[..., :2]
    return np.concatenate([boxes[..., :2] + size / 2.0, size], axis=-1)


def center_to_corners(boxes):
    """(cx, cy, w, h) -> (xmin, ymin, xmax, ymax), along the last axis."""
    boxes = np.asarray(boxes, dtype=np.float32)
    half = boxes[..., 2:] / 2.0
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def encode(boxes, default_boxes, variances=VARIANCES):
    """SSD offsets of `boxes` relative to their default boxes.

    `t = ((cx - dcx) / (dw * v0), (cy - dcy) / (dh * v0), log(w / dw) / v1,
    log(h / dh) / v1)` (Liu et al., 2016, with the reference code's variances).

    Args:
        boxes: (..., 4) corner boxes with positive width and height.
        default_boxes: (..., 4) corner boxes, broadcastable to `boxes`.
        variances: (center variance, size variance); SSD: (0.1, 0.2).

    Returns:
        float32 offsets of shape (..., 4).
    """
    box = corners_to_center(boxes)
    default = corners_to_center(default_boxes)
    center = (box[..., :2] - default[..., :2]) / (default[..., 2:] * variances[0])
    size = np.log(box[..., 2:] / default[..., 2:]) / variances[1]
    return np.concatenate([center, size], axis=-1).astype(np.float32)


def decode(offsets, default_boxes, variances=VARIANCES):
    """Inverse of `encode`: corner boxes from offsets and default boxes.

    Args:
        offsets: (..., 4) predicted or encoded offsets.
        default_boxes: (..., 4) corner boxes, broadcastable to `offsets`.
        variances: as in `encode`.

    Returns:
        float32 corner boxes of shape (..., 4).
    """
    offsets = np.asarray(offsets, dtype=np.float32)
    default = corners_to_center(default_boxes)
    center = default[..., :2] + offsets[..., :2] * variances[0] * default[..., 2:]
    size = default[..., 2:] * np.exp(offsets[..., 2:] * variances[1])
    return center_to_corners(np.concatenate([center, size], axis=-1))
