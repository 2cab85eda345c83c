"""Articulated stick figures with known joints, drawn on real backgrounds.

A figure is a kinematic tree of 14 keypoints (`FIGURE_SKELETON`): a torso
from the neck to the pelvis, a head segment above the neck, and two arms and
two legs of two segments each. Every figure faces the viewer, so its right
side is on the image's left, as in MPII and COCO. Joint angles are drawn
uniformly within limits (`JOINT_LIMITS`), then the figure is scaled, placed
(possibly partly outside the image) and drawn as thick limbs with a round
head on a background cut from a source image. Random patches of another
source image may hide some joints.

Coordinates are pixels with integer values at pixel centers: (0, 0) is the
center of the top-left pixel, (W - 1, H - 1) the center of the bottom-right
one; a point is in the image when -0.5 <= x < W - 0.5 and likewise for y.
Visibility follows COCO: 0 outside the image, 1 inside but hidden by a
patch, 2 visible.
"""

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from kerasll.detection.scenes import random_square, resized, seeded_split


class FigureDataError(ValueError):
    """The arguments cannot make figures (bad backgrounds, sizes or counts)."""


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """The keypoints of a figure type.

    Attributes:
        names: one name per keypoint, in keypoint order.
        edges: pairs of 0-based keypoint indices joined by a limb.
        flip_pairs: (left, right) index pairs that a mirror image swaps.
        sigmas: per-keypoint OKS constants (COCO's "kappa_i / 2"), or None
            when unknown (OKS AP then needs them passed explicitly).
    """

    names: tuple
    edges: tuple
    flip_pairs: tuple
    sigmas: tuple = None

    def __len__(self):
        return len(self.names)

    def flip_permutation(self):
        """Index array mapping each keypoint to its mirror-image counterpart."""
        order = np.arange(len(self.names))
        for left, right in self.flip_pairs:
            order[left], order[right] = right, left
        return order


# The head top takes COCO's ear sigma and the neck its shoulder sigma; the
# limbs take COCO's values for the same joints.
FIGURE_SKELETON = Skeleton(
    names=(
        "head_top", "neck",
        "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist",
        "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle",
    ),
    edges=(
        (0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),
        (2, 8), (5, 11), (8, 11), (8, 9), (9, 10), (11, 12), (12, 13),
    ),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)),
    sigmas=(
        0.035, 0.079, 0.079, 0.072, 0.062, 0.079, 0.072, 0.062,
        0.107, 0.087, 0.089, 0.107, 0.087, 0.089,
    ),
)
HEAD_TOP, NECK = 0, 1
# Segment lengths in torso lengths (neck to pelvis = 1).
SEGMENTS = {
    "head": 0.42, "shoulder": 0.26, "hip": 0.16,
    "upper_arm": 0.45, "forearm": 0.4, "thigh": 0.55, "shin": 0.5,
}
# Uniform ranges in degrees. "lean" tilts the torso and "head" the head from
# the torso's axis; limb roots are measured from "straight down along the
# torso", positive away from the body; elbows and knees bend by up to their
# flexion, elbows outward-or-inward, knees toward the body's midline.
JOINT_LIMITS = {
    "lean": (-25.0, 25.0),
    "head": (-30.0, 30.0),
    "shoulder": (-20.0, 170.0),
    "elbow": (-150.0, 150.0),
    "hip": (-15.0, 75.0),
    "knee": (0.0, 130.0),
}


@dataclasses.dataclass(frozen=True)
class Figures:
    """Images of one figure each, with its keypoints.

    Attributes:
        images: (n, H, W, 3) uint8.
        keypoints: (n, J, 2) float32 (x, y) pixel coordinates (see the
            module docstring); a keypoint outside the image keeps its
            position there, flagged 0.
        visibility: (n, J) int8, 0 outside the image, 1 hidden, 2 visible.
        head_sizes: (n,) float32 head-segment length (head top to neck), in
            pixels: PCKh's normalizer.
        areas: (n,) float32 pixels covered by the figure: OKS's scale s^2.
        skeleton: the `Skeleton` the keypoints follow.
    """

    images: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    head_sizes: np.ndarray
    areas: np.ndarray
    skeleton: Skeleton = FIGURE_SKELETON

    def __len__(self):
        return len(self.images)

    @property
    def image_size(self):
        """(height, width) of the images."""
        return tuple(int(size) for size in self.images.shape[1:3])

    def take(self, indices):
        """The figures at `indices`, as a new `Figures`."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return Figures(
            self.images[indices],
            self.keypoints[indices],
            self.visibility[indices],
            self.head_sizes[indices],
            self.areas[indices],
            self.skeleton,
        )


def _rotate(vector, degrees):
    radians = np.deg2rad(degrees)
    cos, sin = np.cos(radians), np.sin(radians)
    return np.array(
        [cos * vector[0] - sin * vector[1], sin * vector[0] + cos * vector[1]]
    )


def random_pose(rng, limits=None):
    """One pose in torso units, the neck at the origin.

    Args:
        rng: a `numpy.random.Generator`.
        limits: joint-angle ranges in degrees (default `JOINT_LIMITS`).

    Returns:
        (J, 2) float64 keypoints of `FIGURE_SKELETON`, y pointing down.
    """
    limits = {**JOINT_LIMITS, **(limits or {})}

    def angle(name):
        return rng.uniform(*limits[name])

    down = _rotate(np.array([0.0, 1.0]), angle("lean"))
    across = np.array([-down[1], down[0]])  # toward the image's left
    joints = np.zeros((len(FIGURE_SKELETON), 2))
    joints[HEAD_TOP] = _rotate(-down, angle("head")) * SEGMENTS["head"]
    pelvis = down
    for side, shoulder, hip in ((1.0, 2, 8), (-1.0, 5, 11)):
        # Positive angles turn "down" away from the body on this side.
        def away(vector, degrees, side=side):
            return _rotate(vector, side * degrees)

        joints[shoulder] = side * across * SEGMENTS["shoulder"]
        upper = away(down, angle("shoulder"))
        joints[shoulder + 1] = joints[shoulder] + upper * SEGMENTS["upper_arm"]
        joints[shoulder + 2] = (
            joints[shoulder + 1] + away(upper, angle("elbow")) * SEGMENTS["forearm"]
        )
        joints[hip] = pelvis + side * across * SEGMENTS["hip"]
        thigh = away(down, angle("hip"))
        joints[hip + 1] = joints[hip] + thigh * SEGMENTS["thigh"]
        shin = away(thigh, -angle("knee"))
        joints[hip + 2] = joints[hip + 1] + shin * SEGMENTS["shin"]
    return joints


def _crop_resized(image, rng, height, width):
    """A random square-ish crop of `image` resized to (height, width)."""
    rows, columns = random_square(rng, *image.shape[:2])
    return resized(image[rows, columns], height, width)


def _inside(points, height, width):
    x, y = points[..., 0], points[..., 1]
    return (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)


def _check_range(name, value, low, high):
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        first = second = float("nan")
    if not low <= first <= second <= high:
        raise FigureDataError(
            f"Expected {name} as (low, high) with {low} <= low <= high <= {high}. "
            f"Received: {name}={value!r}."
        )
    return first, second


def make_figures(
    backgrounds,
    count,
    image_size=64,
    scale=(0.16, 0.26),
    truncation=0.15,
    occlusion=0.4,
    occluder_size=(0.12, 0.25),
    seed=0,
):
    """Draws one random figure on each of `count` backgrounds.

    Args:
        backgrounds: (n, h, w, 3) uint8 source images (e.g. CIFAR-10's
            `x_train`, from `kerasll.data.load_dataset("cifar10", data=...)`);
            each image's background is a random crop of one, resized, and
            occluding patches are cut from others.
        count: number of images.
        image_size: side of the square images, in pixels (>= 16).
        scale: (low, high) torso length as a fraction of `image_size`; a
            figure is about 2.5 torso lengths tall.
        truncation: the figure's bounding box is placed so that up to this
            fraction of its width and height may fall outside the image (its
            keypoints there are flagged 0).
        occlusion: probability that a figure gets 1 or 2 occluding patches
            centered near random joints (joints under a patch are flagged 1).
        occluder_size: (low, high) side of a patch as a fraction of
            `image_size`.
        seed: seed of every random draw.

    Returns:
        `Figures` (keypoints of `FIGURE_SKELETON`).

    Raises:
        FigureDataError: backgrounds not (n >= 1, h, w, 3) uint8, or a size,
            count or fraction out of range (named in the message).
    """
    backgrounds = np.asarray(backgrounds)
    if (
        backgrounds.ndim != 4
        or backgrounds.shape[-1] != 3
        or backgrounds.dtype != np.uint8
        or len(backgrounds) < 1
        or min(backgrounds.shape[1:3]) < 4
    ):
        raise FigureDataError(
            "Expected backgrounds of shape (n >= 1, height >= 4, width >= 4, 3) and "
            f"dtype uint8. Received shape {backgrounds.shape}, dtype "
            f"{backgrounds.dtype}."
        )
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise FigureDataError(f"Expected count >= 1. Received: count={count!r}.")
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, (int, np.integer))
        or image_size < 16
    ):
        raise FigureDataError(
            f"Expected image_size as an integer >= 16. Received: "
            f"image_size={image_size!r}."
        )
    low, high = _check_range("scale", scale, 0.01, 1.0)
    patch_low, patch_high = _check_range("occluder_size", occluder_size, 0.0, 1.0)
    for name, value, limit in (
        ("truncation", truncation, 0.5),
        ("occlusion", occlusion, 1.0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0.0 <= value <= limit
        ):
            raise FigureDataError(
                f"Expected {name} in [0, {limit}]. Received: {name}={value!r}."
            )
    rng = np.random.default_rng(seed)
    size = int(image_size)
    joints_count = len(FIGURE_SKELETON)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    keypoints = np.empty((count, joints_count, 2), dtype=np.float32)
    visibility = np.empty((count, joints_count), dtype=np.int8)
    head_sizes = np.empty(count, dtype=np.float32)
    areas = np.empty(count, dtype=np.float32)
    for index in range(count):
        background = backgrounds[int(rng.integers(len(backgrounds)))]
        canvas = Image.fromarray(_crop_resized(background, rng, size, size))
        torso = rng.uniform(low, high) * size
        points = random_pose(rng) * torso
        extent_low, extent_high = points.min(axis=0), points.max(axis=0)
        extent = extent_high - extent_low
        slack = truncation * extent
        # The box's top-left corner, within [-slack, size - 1 - extent + slack].
        corner = rng.uniform(-slack, np.maximum(size - 1 - extent + slack, -slack))
        points = points - extent_low + corner
        mask = Image.new("L", (size, size), 0)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        thickness = max(2, int(round(0.16 * torso)))
        head_radius = 0.5 * SEGMENTS["head"] * torso
        head_center = (points[HEAD_TOP] + points[NECK]) / 2.0
        # PIL draws at whole pixels: limbs end and joints sit on the pixel
        # holding the keypoint.
        pixels = [tuple(int(v) for v in point) for point in np.round(points)]
        radius = max(1, thickness // 2)
        for target, fill in ((canvas, color), (mask, 255)):
            draw = ImageDraw.Draw(target)
            for first, second in FIGURE_SKELETON.edges:
                draw.line([pixels[first], pixels[second]], fill=fill, width=thickness)
            for x, y in pixels:
                draw.ellipse(
                    [x - radius, y - radius, x + radius, y + radius], fill=fill
                )
            draw.ellipse(
                [tuple(head_center - head_radius), tuple(head_center + head_radius)],
                fill=fill,
            )
        flags = np.where(_inside(points, size, size), 2, 0).astype(np.int8)
        if rng.random() < occlusion:
            for _ in range(int(rng.integers(1, 3))):
                side = max(2, int(round(rng.uniform(patch_low, patch_high) * size)))
                center = points[int(rng.integers(joints_count))] + rng.normal(
                    0.0, side / 4.0, 2
                )
                left, top = np.round(center - side / 2.0).astype(int)
                source = backgrounds[int(rng.integers(len(backgrounds)))]
                canvas.paste(
                    Image.fromarray(_crop_resized(source, rng, side, side)),
                    (int(left), int(top)),
                )
                mask.paste(0, (int(left), int(top), int(left) + side, int(top) + side))
                covered = (
                    (points[:, 0] >= left - 0.5)
                    & (points[:, 0] < left + side - 0.5)
                    & (points[:, 1] >= top - 0.5)
                    & (points[:, 1] < top + side - 0.5)
                )
                flags[covered & (flags > 0)] = 1
        images[index] = np.asarray(canvas)
        keypoints[index] = points
        visibility[index] = flags
        head_sizes[index] = np.linalg.norm(points[HEAD_TOP] - points[NECK])
        areas[index] = max(float(np.count_nonzero(np.asarray(mask))), 1.0)
    return Figures(images, keypoints, visibility, head_sizes, areas)


def mirror(figures):
    """The figures mirrored left to right, their keypoints relabeled.

    A mirrored keypoint x becomes W - 1 - x (pixel centers), and each
    `skeleton.flip_pairs` pair swaps labels, so a mirrored figure is again a
    figure facing the viewer.

    Args:
        figures: `Figures`.

    Returns:
        `Figures` of the mirror images (areas and head sizes unchanged).
    """
    order = figures.skeleton.flip_permutation()
    width = figures.images.shape[2]
    keypoints = figures.keypoints[:, order].copy()
    keypoints[..., 0] = width - 1 - keypoints[..., 0]
    return Figures(
        np.ascontiguousarray(figures.images[:, :, ::-1]),
        keypoints,
        figures.visibility[:, order].copy(),
        figures.head_sizes.copy(),
        figures.areas.copy(),
        figures.skeleton,
    )


def split_figures(figures, test_fraction=0.2, seed=0):
    """A seeded random train/test split of one set of figures.

    Args:
        figures: `Figures`.
        test_fraction: share held out for testing.
        seed: seed of the split.

    Returns:
        `(train, test)` `Figures`, each in the original order.

    Raises:
        FigureDataError: a fraction outside (0, 1), or a split leaving a side
            empty.
    """
    return seeded_split(figures, test_fraction, seed, "figures", FigureDataError)
