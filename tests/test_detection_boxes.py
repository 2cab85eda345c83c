"""Box geometry, default boxes and SSD matching (numpy, no model)."""

import numpy as np
import pytest

from kerasll.detection.anchors import DefaultBoxes
from kerasll.detection.boxes import decode, encode, iou
from kerasll.detection.matching import encode_batch, encode_targets, match


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    low = rng.uniform(0.0, 0.6, (50, 2))
    boxes = np.concatenate([low, low + rng.uniform(0.05, 0.4, (50, 2))], axis=1)
    anchors = DefaultBoxes().generate([(4, 4)])[rng.integers(0, 64, 50)]
    offsets = encode(boxes, anchors)
    np.testing.assert_allclose(decode(offsets, anchors), boxes, atol=1e-5)
    # An object exactly on its default box encodes to zero offsets.
    np.testing.assert_allclose(encode(anchors, anchors), 0.0, atol=1e-6)


def test_encode_uses_the_variances():
    anchor = np.array([[0.25, 0.25, 0.75, 0.75]])
    box = np.array([[0.3, 0.25, 0.8, 0.75]])  # shifted right by 0.05
    np.testing.assert_allclose(
        encode(box, anchor, variances=(0.1, 0.2)),
        [[0.05 / 0.5 / 0.1, 0, 0, 0]],
        atol=1e-6,
    )


def test_iou_of_known_boxes():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
    np.testing.assert_allclose(iou(a, b), [[1 / 7, 0.0, 1.0]], atol=1e-6)


def test_default_boxes_tile_each_map_in_reshape_order():
    spec = DefaultBoxes(min_scale=0.2, max_scale=0.9, aspect_ratios=(1.0, 2.0, 0.5))
    boxes = spec.generate([(2, 2), (1, 1)])
    assert spec.per_location == 4
    np.testing.assert_array_equal(spec.generate([(np.int64(2), 2), (1, 1)]), boxes)
    assert boxes.shape == ((4 + 1) * 4, 4)
    # Cell (row 0, column 1) of the 2x2 map: its boxes are rows 4-7, centered
    # at (0.75, 0.25); the first is the square box of scale 0.2.
    centers = (boxes[4:8, :2] + boxes[4:8, 2:]) / 2
    np.testing.assert_allclose(centers, [[0.75, 0.25]] * 4, atol=1e-6)
    np.testing.assert_allclose(boxes[4], [0.65, 0.15, 0.85, 0.35], atol=1e-6)
    # The extra square box of the last map has scale sqrt(0.9 * 1.0), clipped.
    side = np.sqrt(0.9)
    np.testing.assert_allclose(
        boxes[-1],
        np.clip([0.5 - side / 2, 0.5 - side / 2, 0.5 + side / 2, 0.5 + side / 2], 0, 1),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"min_scale": 0.0}, {"min_scale": 0.9, "max_scale": 0.2}, {"aspect_ratios": ()}],
)
def test_default_boxes_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Expected"):
        DefaultBoxes(**kwargs)


def test_matching_threshold_and_best_match_per_object():
    anchors = np.array(
        [
            [0.0, 0.0, 0.5, 0.5],  # IoU 1 with object 0
            [0.0, 0.0, 0.5, 0.6],  # IoU 0.83 with object 0
            [0.5, 0.5, 1.0, 1.0],  # IoU 0.25 with object 1: its best, forced
            [0.0, 0.5, 0.5, 1.0],  # overlaps nothing: background
        ]
    )
    objects = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.75, 0.75]])
    np.testing.assert_array_equal(match(objects, anchors), [0, 0, 1, -1])
    np.testing.assert_array_equal(match(np.zeros((0, 4)), anchors), [-1] * 4)


def test_encode_targets_shifts_classes_and_zeroes_background():
    anchors = DefaultBoxes().generate([(2, 2)])
    objects = np.array([[0.0, 0.0, 0.5, 0.5]])
    targets = encode_targets(objects, [2], anchors)
    assert targets.shape == (len(anchors), 5)
    positive = targets[:, 4] > 0
    assert positive.any() and set(targets[positive, 4]) == {3.0}
    np.testing.assert_array_equal(targets[~positive], 0.0)
    np.testing.assert_allclose(
        decode(targets[positive, :4], anchors[positive]),
        np.repeat(objects, positive.sum(), 0),
        atol=1e-5,
    )
    batch = encode_batch([objects, np.zeros((0, 4))], [[2], []], anchors)
    assert batch.shape == (2, len(anchors), 5) and not batch[1].any()


@pytest.mark.parametrize(
    "boxes, labels, message",
    [
        ([[0.0, 0.0, 0.5]], [0], r"shape \(n, 4\)"),
        ([[0.5, 0.0, 0.2, 0.5]], [0], "xmax >= xmin"),
        ([[0.0, 0.0, 0.5, 0.5]], [0, 1], "one non-negative class per box"),
        ([[0.0, 0.0, 0.0, 0.5]], [0], "positive width and height"),
    ],
)
def test_encode_targets_rejects_bad_ground_truth(boxes, labels, message):
    with pytest.raises(ValueError, match=message):
        encode_targets(boxes, labels, DefaultBoxes().generate([(2, 2)]))
