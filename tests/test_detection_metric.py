"""mAP through pycocotools, checked on cases with a known answer."""

import numpy as np
import pytest

from kerasll.detection.metric import mean_average_precision
from kerasll.detection.postprocess import Detections


def _detections(boxes, scores, classes):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return Detections(
        boxes,
        np.asarray(scores, np.float32),
        np.asarray(classes, np.int64),
        np.arange(len(boxes)),
    )


def test_hand_made_case_matches_the_101_point_interpolated_ap():
    # One class, two objects in two images. Ranked detections: TP (0.9),
    # FP (0.8), TP (0.7): precision/recall (1, .5), (.5, .5), (2/3, 1).
    # Interpolated precision is 1 up to recall 0.5 (51 of COCO's 101 recall
    # points) and 2/3 above (50 points); VOC2010's all-point AP would be
    # 0.5 * 1 + 0.5 * 2/3 = 0.8333.
    true_boxes = [np.array([[0, 0, 10, 10]]), np.array([[20, 20, 30, 30]])]
    true_labels = [np.array([0]), np.array([0])]
    detections = [
        _detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 0]),
        _detections([[21, 21, 30, 30]], [0.7], [0]),  # IoU 0.81
    ]
    value, per_class = mean_average_precision(
        true_boxes, true_labels, detections, num_classes=2
    )
    assert value == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-9)
    assert np.isnan(per_class[1])  # no ground truth for class 1


def test_iou_threshold_and_wrong_class_count_as_misses():
    true_boxes = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]])]
    true_labels = [np.array([0, 1])]
    detections = [
        _detections([[0, 0, 10, 10], [25, 0, 35, 10]], [0.9, 0.9], [0, 1])
    ]  # class 1 found at IoU 1/3 only
    value, per_class = mean_average_precision(true_boxes, true_labels, detections, 2)
    np.testing.assert_allclose(per_class, [1.0, 0.0])
    assert value == pytest.approx(0.5)
    value, _ = mean_average_precision(
        true_boxes, true_labels, detections, 2, iou_threshold=0.3
    )
    assert value == pytest.approx(1.0)


def test_no_detections_give_zero():
    value, per_class = mean_average_precision(
        [np.array([[0, 0, 1, 1]])], [np.array([0])], [_detections([], [], [])], 1
    )
    assert value == 0.0 and per_class.tolist() == [0.0]


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same images"):
        mean_average_precision([np.zeros((0, 4))], [], [], 1)
    with pytest.raises(ValueError, match=r"label in \[0, 2\)"):
        mean_average_precision(
            [np.array([[0, 0, 1, 1]])], [np.array([5])], [_detections([], [], [])], 2
        )
