"""Decoding, numpy NMS and per-image entropy."""

import numpy as np
import pytest

from kerasll.detection.anchors import DefaultBoxes
from kerasll.detection.boxes import encode
from kerasll.detection.postprocess import (
    Detections,
    decode_predictions,
    non_max_suppression,
    select_detections,
)
from kerasll.detection.uncertainty import detection_uncertainty


def test_nms_drops_overlaps_above_the_threshold():
    boxes = np.array(
        [[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0.5, 1, 1.5], [2, 2, 3, 3]], np.float32
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # IoU with box 0: 0.9 (dropped), 1/3 (kept), 0 (kept).
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, 0.45), [0, 2, 3])
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, 0.2), [0, 3])
    np.testing.assert_array_equal(non_max_suppression(boxes, scores, 0.45, 1), [0])


def test_select_detections_recovers_encoded_objects():
    anchors = DefaultBoxes().generate([(4, 4), (2, 2)])
    objects = np.array([[0.1, 0.1, 0.4, 0.45], [0.5, 0.55, 0.9, 0.95]], np.float32)
    rows = [5, 70]
    predictions = np.zeros((1, len(anchors), 4 + 3), np.float32)
    predictions[0, :, 4] = 5.0  # background everywhere ...
    predictions[0, rows, :4] = encode(objects, anchors[rows])
    predictions[0, rows, 4] = 0.0
    predictions[0, rows, [5, 6]] = 8.0  # ... but classes 0 and 1 at two rows
    boxes, probabilities = decode_predictions(predictions, anchors)
    found = select_detections(boxes, probabilities, score_threshold=0.5)[0]
    np.testing.assert_array_equal(found.classes, [0, 1])
    np.testing.assert_array_equal(found.indices, rows)
    np.testing.assert_allclose(found.boxes, objects, atol=1e-5)


def test_decode_predictions_checks_rows():
    with pytest.raises(ValueError, match=r"\(B, 4, 4 \+ classes\)"):
        decode_predictions(np.zeros((1, 5, 7)), np.zeros((4, 4)))


def test_entropy_mean_and_max_over_detections():
    uniform = np.full(3, 1 / 3)
    certain = np.array([0.0, 1.0, 0.0])
    probabilities = np.stack([[uniform, certain, certain], [certain, certain, uniform]])
    found = [
        Detections(np.zeros((2, 4)), np.ones(2), np.zeros(2, int), np.array([0, 1])),
        Detections(np.zeros((0, 4)), np.ones(0), np.zeros(0, int), np.zeros(0, int)),
    ]
    mean = detection_uncertainty(probabilities, found, reduction="mean")
    high = detection_uncertainty(probabilities, found, reduction="max")
    np.testing.assert_allclose(mean, [np.log(3) / 2, 0.0], atol=1e-6)
    # Nothing detected: the most confident foreground box (row 0) is scored.
    np.testing.assert_allclose(high, [np.log(3), 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        detection_uncertainty(probabilities, found, reduction="median")
