"""Mirroring encoded targets equals encoding the mirrored boxes."""

import numpy as np
import pytest

from kerasll.detection.anchors import DefaultBoxes
from kerasll.detection.augment import mirror, mirror_permutation
from kerasll.detection.matching import encode_batch


def _default_boxes():
    return DefaultBoxes().generate([(8, 8), (4, 4), (2, 2), (1, 1)])


def test_mirrored_targets_equal_encoding_the_mirrored_boxes():
    anchors = _default_boxes()
    rng = np.random.default_rng(0)
    boxes, labels = [], []
    for _ in range(20):
        corner = rng.uniform(0, 0.6, (3, 2))
        size = rng.uniform(0.15, 0.4, (3, 2))
        boxes.append(np.concatenate([corner, corner + size], axis=1).astype("float32"))
        labels.append(rng.integers(0, 5, 3))
    images = rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    targets = encode_batch(boxes, labels, anchors)
    flipped_boxes = [
        np.stack([1 - b[:, 2], b[:, 1], 1 - b[:, 0], b[:, 3]], axis=1) for b in boxes
    ]
    expected = encode_batch(flipped_boxes, labels, anchors)
    mirrored_images, mirrored = mirror(images, targets, mirror_permutation(anchors))
    positive = expected[..., 4] > 0
    np.testing.assert_array_equal(
        (mirrored[..., 4] > 0).sum(axis=1), positive.sum(axis=1)
    )
    # Row for row the same, but where an object's best default box is a float
    # near-tie (IoUs 0.46381116 and 0.46381122 here): 2 of 126 positives.
    differs = np.any(np.abs(mirrored - expected) > 1e-4, axis=-1)
    assert differs.sum() <= 2 and positive.sum() == 126
    np.testing.assert_array_equal(mirrored_images[:, :, 0], images[:, :, -1])
    # Mirroring twice is the identity.
    twice = mirror(mirrored_images, mirrored, mirror_permutation(anchors))
    np.testing.assert_array_equal(twice[0], images)
    np.testing.assert_allclose(twice[1], targets, atol=1e-6)


def test_an_asymmetric_layout_is_refused():
    anchors = _default_boxes()
    anchors[0] += [0.01, 0, 0.01, 0]
    with pytest.raises(ValueError, match="symmetrically"):
        mirror_permutation(anchors)
