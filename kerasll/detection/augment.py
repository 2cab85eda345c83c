"""Box-aware horizontal mirroring of encoded detection targets.

SSD's default boxes tile each feature map symmetrically, so the mirror image
of a default box is another default box. Mirroring a scene therefore maps
its encoded targets (`matching.encode_batch`) onto the mirrored default
boxes with the horizontal center offset negated; the other offsets and the
classes are unchanged. That is exactly what encoding the mirrored boxes
gives, without matching again.
"""

import numpy as np
from scipy import spatial


def mirror_permutation(default_boxes, tolerance=1e-5):
    """For each default box, the index of its mirror image.

    Args:
        default_boxes: (N, 4) normalized corner boxes (`default_boxes_for`).
        tolerance: largest coordinate difference still counted as equal.

    Returns:
        int64 array (N,): the nearest default box to each mirror image
        (a k-d tree query, so large layouts cost N log N).

    Raises:
        ValueError: the layout is not symmetric (a mirrored box is no
            default box).
    """
    boxes = np.asarray(default_boxes, dtype=np.float64)
    mirrored = np.stack(
        [1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=1
    )
    _, permutation = spatial.cKDTree(boxes).query(mirrored)
    error = np.abs(boxes[permutation] - mirrored).max(initial=0.0)
    if error > tolerance:
        raise ValueError(
            "Expected default boxes laid out symmetrically left-right. Received a "
            f"layout whose mirror images miss its boxes by up to {error:.3g}"
        )
    return permutation


def mirror(images, targets, permutation):
    """Mirrors scenes left-right together with their encoded targets.

    Args:
        images: (n, H, W, C) scenes.
        targets: (n, N, 5) encoded targets (offsets, then class).
        permutation: `mirror_permutation` of the default boxes.

    Returns:
        `(images, targets)` of the mirrored scenes.
    """
    mirrored = np.asarray(targets)[:, permutation].copy()
    mirrored[..., 0] *= -1.0
    return np.asarray(images)[:, :, ::-1], mirrored
