"""Ground truth -> fixed-shape SSD training targets (one row per default box)."""

import numpy as np

from kerasll.detection.boxes import VARIANCES, check_boxes, encode, iou


def match(boxes, default_boxes, iou_threshold=0.5):
    """Assigns ground-truth boxes to default boxes, as SSD does.

    A default box is matched to the ground truth it overlaps most when that
    IoU is at least `iou_threshold`; in addition each ground-truth box claims
    the default box it overlaps most (so every object has a match; when two
    objects claim one default box, the later one keeps it).

    Args:
        boxes: (G, 4) ground-truth corner boxes.
        default_boxes: (N, 4) corner boxes.
        iou_threshold: SSD: 0.5.

    Returns:
        int64 array (N,): the matched ground-truth row, -1 for background.
    """
    boxes = check_boxes(boxes)
    matched = np.full(len(default_boxes), -1, dtype=np.int64)
    if len(boxes) == 0:
        return matched
    overlaps = iou(boxes, default_boxes)
    best = overlaps.argmax(axis=0)
    keep = overlaps[best, np.arange(len(default_boxes))] >= iou_threshold
    matched[keep] = best[keep]
    for row, column in enumerate(overlaps.argmax(axis=1)):
        matched[column] = row
    return matched


def encode_targets(
    boxes, labels, default_boxes, iou_threshold=0.5, variances=VARIANCES
):
    """Training target of one image: offsets and class per default box.

    Args:
        boxes: (G, 4) normalized corner boxes of the objects.
        labels: (G,) object classes, 0-based.
        default_boxes: (N, 4) from `DefaultBoxes.generate`.
        iou_threshold: matching threshold (SSD: 0.5).
        variances: offset variances (SSD: (0.1, 0.2)).

    Returns:
        float32 array (N, 5): columns 0-3 the encoded offsets of the matched
        object (0 for background), column 4 the class with background 0 and
        object class c as c + 1.

    Raises:
        ValueError: boxes and labels disagree in length, a negative label, or
            a box with no area.
    """
    boxes = check_boxes(boxes)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(boxes) or (labels.size and labels.min() < 0):
        raise ValueError(
            "Expected one non-negative class per box. Received "
            f"{len(boxes)} boxes and labels {labels.tolist()}."
        )
    if len(boxes) and np.any(boxes[:, 2:] <= boxes[:, :2]):
        raise ValueError(
            "Expected boxes with positive width and height. Received: "
            f"{boxes.tolist()}."
        )
    default_boxes = np.asarray(default_boxes, dtype=np.float32)
    matched = match(boxes, default_boxes, iou_threshold)
    targets = np.zeros((len(default_boxes), 5), dtype=np.float32)
    positive = matched >= 0
    targets[positive, :4] = encode(
        boxes[matched[positive]], default_boxes[positive], variances
    )
    targets[positive, 4] = labels[matched[positive]] + 1
    return targets


def encode_batch(boxes, labels, default_boxes, iou_threshold=0.5, variances=VARIANCES):
    """`encode_targets` for a list of images.

    Args:
        boxes: sequence of (G_i, 4) arrays, one per image.
        labels: sequence of (G_i,) arrays.
        default_boxes, iou_threshold, variances: as in `encode_targets`.

    Returns:
        float32 array (B, N, 5), the `y_true` of `MultiBoxLoss`.

    Raises:
        ValueError: `boxes` and `labels` hold different numbers of images.
    """
    if len(boxes) != len(labels):
        raise ValueError(
            "Expected boxes and labels for the same images. Received "
            f"{len(boxes)} box arrays and {len(labels)} label arrays."
        )
    if not len(boxes):
        return np.zeros((0, len(default_boxes), 5), dtype=np.float32)
    return np.stack(
        [
            encode_targets(b, l, default_boxes, iou_threshold, variances)
            for b, l in zip(boxes, labels)
        ]
    )
