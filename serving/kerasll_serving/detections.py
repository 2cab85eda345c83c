"""Detections from boxes and class probabilities: IoU and greedy NMS in numpy.

The one home of detection post-processing, behind Keras (`kerasll.detection`
re-exports it) and behind the device scorer alike, so both keep the same
boxes. NMS runs on the host rather than in the graph: it yields a different
number of boxes per image (awkward for a fixed-shape graph and for
`keras.ops`, which has no NMS), and at SSD's sizes (hundreds to thousands of
default boxes) it costs milliseconds per image. Boxes are normalized corners
(xmin, ymin, xmax, ymax).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Detections:
    """The detections of one image, highest score first.

    Attributes:
        boxes: (k, 4) normalized corner boxes.
        scores: (k,) class probabilities.
        classes: (k,) object classes, 0-based (background excluded).
        indices: (k,) the default box each detection comes from.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    indices: np.ndarray

    def __len__(self):
        return len(self.scores)


def iou(boxes_a, boxes_b):
    """Pairwise intersection over union.

    Args:
        boxes_a: (n, 4) corner boxes.
        boxes_b: (m, 4) corner boxes.

    Returns:
        float32 array of shape (n, m); 0 where both boxes are empty.
    """
    a = np.asarray(boxes_a, dtype=np.float32)[:, None, :]
    b = np.asarray(boxes_b, dtype=np.float32)[None, :, :]
    low = np.maximum(a[..., :2], b[..., :2])
    high = np.minimum(a[..., 2:], b[..., 2:])
    intersection = np.prod(np.clip(high - low, 0.0, None), axis=-1)
    area_a = np.prod(a[..., 2:] - a[..., :2], axis=-1)
    area_b = np.prod(b[..., 2:] - b[..., :2], axis=-1)
    union = area_a + area_b - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0).astype(
        np.float32
    )


def non_max_suppression(boxes, scores, iou_threshold=0.45, max_output=None):
    """Greedy NMS: keeps boxes in score order, dropping heavy overlaps.

    Args:
        boxes: (n, 4) corner boxes.
        scores: (n,) scores.
        iou_threshold: a box overlapping a kept one by more than this is
            dropped (SSD: 0.45).
        max_output: keep at most this many (None: no limit).

    Returns:
        int64 indices into `boxes` of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    return _greedy(iou(boxes, boxes), scores, iou_threshold, max_output)


def select_detections(
    boxes,
    probabilities,
    score_threshold=0.01,
    iou_threshold=0.45,
    max_detections=200,
):
    """Per-class thresholding and NMS, then the top detections per image.

    SSD's inference: for each object class, default boxes with probability
    above `score_threshold` go through NMS; the `max_detections` highest of
    all classes are kept. A box can only be suppressed by a higher-scoring
    one, so raising `score_threshold` gives exactly the detections above it
    that a lower threshold would give (and is much faster).

    Args:
        boxes: (B, N, 4) decoded corner boxes (`decode_predictions`, or the
            "boxes" output of the exported graph).
        probabilities: (B, N, K) class probabilities, background first.
        score_threshold: SSD: 0.01.
        iou_threshold: SSD: 0.45.
        max_detections: SSD: 200.

    Returns:
        A list of `Detections`, one per image.

    Raises:
        ValueError: the shapes are not (B, N, 4) and (B, N, K).
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if (
        boxes.ndim != 3
        or boxes.shape[-1] != 4
        or probabilities.ndim != 3
        or probabilities.shape[:2] != boxes.shape[:2]
    ):
        raise ValueError(
            "Expected boxes of shape (B, N, 4) and probabilities of shape "
            f"(B, N, K). Received shapes {boxes.shape} and {probabilities.shape}."
        )
    return [
        _select_one(image_boxes, image_probabilities[:, 1:], score_threshold,
                    iou_threshold, max_detections)
        for image_boxes, image_probabilities in zip(boxes, probabilities)
    ]


def _select_one(boxes, foreground, score_threshold, iou_threshold, max_detections):
    """`select_detections` for one image's (N, 4) boxes and (N, K-1) scores."""
    rows = np.flatnonzero((foreground > score_threshold).any(axis=1))
    overlaps = iou(boxes[rows], boxes[rows])  # Shared by all classes.
    kept = []
    for column in range(foreground.shape[1]):
        scores = foreground[rows, column]
        candidates = np.flatnonzero(scores > score_threshold)
        chosen = candidates[
            _greedy(
                overlaps[np.ix_(candidates, candidates)],
                scores[candidates],
                iou_threshold,
            )
        ]
        kept.extend((scores[i], column, rows[i]) for i in chosen)
    kept.sort(key=lambda item: -item[0])
    kept = kept[:max_detections]
    indices = np.asarray([item[2] for item in kept], dtype=np.int64)
    return Detections(
        boxes=boxes[indices].reshape(-1, 4),
        scores=np.asarray([item[0] for item in kept], dtype=np.float32),
        classes=np.asarray([item[1] for item in kept], dtype=np.int64),
        indices=indices,
    )


def _greedy(overlaps, scores, iou_threshold, max_output=None):
    """NMS on a precomputed (n, n) IoU matrix."""
    suppressed = np.zeros(len(overlaps), dtype=bool)
    keep = []
    for index in np.argsort(-np.asarray(scores), kind="stable"):
        if suppressed[index]:
            continue
        keep.append(index)
        if max_output is not None and len(keep) == max_output:
            break
        suppressed |= overlaps[index] > iou_threshold
    return np.asarray(keep, dtype=np.int64)
