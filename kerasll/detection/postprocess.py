"""Detector output -> detections per image: decoding, then NMS in numpy.

NMS runs in numpy on the host rather than in the graph: it yields a
different number of boxes per image (awkward for a fixed-shape graph and for
`keras.ops`, which has no NMS), it is the same code behind Keras and behind
the exported ONNX graph (whose outputs stop at decoded boxes and class
probabilities), and at SSD's sizes (hundreds to thousands of default boxes)
it costs milliseconds per image.
"""

import dataclasses

import numpy as np

from kerasll.detection.boxes import VARIANCES, decode, iou


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


def softmax(logits, axis=-1):
    """Numerically stable softmax in numpy."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return (shifted / shifted.sum(axis=axis, keepdims=True)).astype(np.float32)


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
    return boxes, softmax(predictions[..., 4:])


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
    all classes are kept.

    Args:
        boxes: (B, N, 4) decoded corner boxes (`decode_predictions`, or the
            "boxes" output of the exported graph).
        probabilities: (B, N, K) class probabilities, background first.
        score_threshold: SSD: 0.01.
        iou_threshold: SSD: 0.45.
        max_detections: SSD: 200.

    Returns:
        A list of `Detections`, one per image.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    results = []
    for image_boxes, image_probabilities in zip(boxes, probabilities):
        kept = []
        overlaps = iou(image_boxes, image_boxes)  # shared by all classes
        for column in range(1, image_probabilities.shape[-1]):
            scores = image_probabilities[:, column]
            candidates = np.flatnonzero(scores > score_threshold)
            chosen = candidates[
                _greedy(
                    overlaps[np.ix_(candidates, candidates)],
                    scores[candidates],
                    iou_threshold,
                )
            ]
            kept.extend((scores[i], column - 1, i) for i in chosen)
        kept.sort(key=lambda item: -item[0])
        kept = kept[:max_detections]
        indices = np.asarray([item[2] for item in kept], dtype=np.int64)
        results.append(
            Detections(
                boxes=image_boxes[indices].reshape(-1, 4),
                scores=np.asarray([item[0] for item in kept], dtype=np.float32),
                classes=np.asarray([item[1] for item in kept], dtype=np.int64),
                indices=indices,
            )
        )
    return results
