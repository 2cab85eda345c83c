"""The pools collection devices see, built from any classification data set.

A device's pool is rarely a balanced sample of the world. It is long-tailed
(mostly common scenes) and redundant (consecutive frames of one scene). Two
transforms of an `ImageDataset` simulate that; both change the training split
(the unlabeled pool) only and leave the test split as it is:

- `long_tailed`: an exponential class profile (Cao et al., 2019, "Learning
  Imbalanced Datasets with Label-Distribution-Aware Margin Loss"; the
  CIFAR-10-LT recipe).
- `with_near_duplicates`: every image present as several near-duplicates
  (small shifts, brightness and contrast jitter, JPEG re-encoding), shuffled,
  with `groups` naming each item's original.

They compose: `with_near_duplicates(long_tailed(dataset, 20), 4)` is the
long-tailed and redundant pool. `duplicate_picks`, `class_recalls` and
`describe_pool` report on such pools. All randomness flows from an explicit
`seed`.
"""

import dataclasses
import io
import math
from numbers import Integral, Real

import numpy as np
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.data import DataError

# Images perturbed per vectorised step; bounds the float32 working memory.
_BATCH_SIZE = 2048

# The transforms' plain arguments, checked by `validate_arguments`.
PARAMETER_CONSTRAINTS = {
    "largest": [Interval(Integral, 1, None, closed="left")],
    "num_classes": [Interval(Integral, 2, None, closed="left")],
    "imbalance_ratio": [Interval(Real, 1, None, closed="left")],
    "copies": [Interval(Integral, 1, None, closed="left")],
    "max_shift": [Interval(Integral, 0, None, closed="left")],
    "jitter": [Interval(Real, 0, 1, closed="left")],
}


def long_tailed_profile(largest, num_classes, imbalance_ratio):
    """Class sizes of an exponential long-tailed profile.

    `n_c = floor(largest * imbalance_ratio ** (-c / (num_classes - 1)))` for
    class rank c = 0 (the most common) to num_classes - 1 (the rarest), as in
    Cao et al. (2019). The rarest class gets `floor(largest / imbalance_ratio)`.

    Args:
        largest: size of the most common class (n_max), an integer >= 1.
        num_classes: number of classes, an integer >= 2.
        imbalance_ratio: n_max / n_min, a finite number >= 1.

    Returns:
        int64 array (num_classes,), non-increasing.

    Raises:
        ValueError: an argument out of range, or a profile that leaves the
            rarest class empty (imbalance_ratio > largest).
    """
    largest, num_classes, ratio = validate_arguments(
        PARAMETER_CONSTRAINTS,
        {
            "largest": largest,
            "num_classes": num_classes,
            "imbalance_ratio": imbalance_ratio,
        },
    ).values()
    ranks = np.arange(num_classes) / (num_classes - 1)
    # The small tolerance keeps exact quotients (5000 / 20 = 250) from
    # rounding down to 249 through floating-point error.
    counts = np.floor(largest * ratio**-ranks + 1e-6).astype(np.int64)
    if counts[-1] < 1:
        raise ValueError(
            "Expected a long-tailed profile that leaves every class at least one "
            f"image (imbalance_ratio <= {largest}, the largest class). Received: "
            f"imbalance_ratio={imbalance_ratio!r}, which leaves the rarest class "
            f"{largest} / {ratio:g} < 1 images"
        )
    return counts


def long_tailed(dataset, imbalance_ratio=20.0, seed=0):
    """Subsamples the training split to an exponential class profile.

    Class c (in class index order: class 0 is the most common, the last class
    the rarest, as in CIFAR-10-LT) keeps `long_tailed_profile(n_max, C,
    imbalance_ratio)[c]` images, where n_max is the size of the smallest
    training class, so every class can fill its quota. Which images of a
    class are kept is a uniform draw seeded by `seed`; they keep their order.
    The test split, class names and augmentation are unchanged (a balanced
    test set stays balanced). `groups`, if present, are subset alongside.

    Args:
        dataset: an `ImageDataset`.
        imbalance_ratio: size of the most common class over the rarest, a
            finite number >= 1 (1 gives n_max images in every class).
        seed: seed of the draw.

    Returns:
        An `ImageDataset` named "<name>-lt<ratio>".

    Raises:
        DataError: a class without training images.
        ValueError: an imbalance ratio that is not a finite number >= 1, or
            that leaves the rarest class empty.
    """
    ratio = validate_arguments(
        PARAMETER_CONSTRAINTS, {"imbalance_ratio": imbalance_ratio}
    )["imbalance_ratio"]
    labels = dataset.y_train
    counts = np.bincount(labels, minlength=dataset.num_classes)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise DataError(
            "Expected training images in every class for a long-tailed profile. "
            f"Received none in class(es) {[dataset.class_names[c] for c in empty]}"
        )
    targets = long_tailed_profile(int(counts.min()), dataset.num_classes, ratio)
    rng = np.random.default_rng(seed)
    kept = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(labels == c), size=n, replace=False)
                for c, n in enumerate(targets)
            ]
        )
    )
    return dataclasses.replace(
        dataset,
        name=f"{dataset.name}-lt{ratio:g}",
        x_train=dataset.x_train[kept],
        y_train=labels[kept],
        groups=None if dataset.groups is None else dataset.groups[kept],
    )


def with_near_duplicates(
    dataset, copies=4, seed=0, max_shift=None, jitter=0.05, quality=(70, 95)
):
    """Makes every training image present as `copies` near-duplicates.

    As consecutive video frames are: each image is kept once as it is, plus
    `copies - 1` perturbed variants. A variant is shifted by 1 to `max_shift`
    pixels (uniform over the nonzero offsets in [-max_shift, max_shift]^2,
    edges repeated; no shift when `max_shift` is 0), gets its contrast and
    brightness scaled by factors in [1 - jitter, 1 + jitter]
    (`(x - mean) * contrast + mean * brightness`, mean over the image), and
    is re-encoded as JPEG at a quality drawn from `quality` (Pillow). The
    result is shuffled, so copies are not adjacent indices, and its `groups`
    holds each item's original: its index in the input's training split (or
    the input's own group, when it has `groups`). The test split is
    unchanged. Shifts and jitter are vectorised per batch; the JPEG round
    trip runs per image.

    Args:
        dataset: an `ImageDataset` of 1-channel (grayscale) or 3-channel
            (RGB) images, uint8 or another dtype holding values in [0, 255];
            the result keeps the dtype.
        copies: items per original, an integer >= 1 (1 only shuffles).
        seed: seed of the perturbations and of the shuffle.
        max_shift: largest shift in pixels along each axis, an integer >= 0;
            by default a tenth of the smaller image side, at most 3 (3 on
            32x32 CIFAR-10, 0 on the 8x8 digits, where one pixel moves a
            stroke farther than the distance between two digits).
        jitter: largest relative change of contrast and brightness, a number
            in [0, 1).
        quality: (lowest, highest) JPEG quality, integers in [1, 95].

    Returns:
        An `ImageDataset` named "<name>-dup<copies>" with `copies * N`
        training items and `groups`.

    Raises:
        DataError: images with other than 1 or 3 channels, or with values
            that are not finite or outside [0, 255].
        ValueError: an argument out of range.
    """
    if max_shift is None:
        max_shift = min(3, min(dataset.input_shape[:2]) // 10)
    copies, max_shift, jitter = validate_arguments(
        PARAMETER_CONSTRAINTS,
        {"copies": copies, "max_shift": max_shift, "jitter": jitter},
    ).values()
    low_quality, high_quality = _check_quality(quality)
    images = _check_pixels(dataset.x_train)
    size = len(images)
    rng = np.random.default_rng(seed)
    # Every draw happens up front, in one order: results do not depend on
    # the batch size.
    offsets = np.array(
        [
            (dy, dx)
            for dy in range(-max_shift, max_shift + 1)
            for dx in range(-max_shift, max_shift + 1)
            if (dy, dx) != (0, 0) or max_shift == 0
        ]
    )
    variants = (copies - 1, size)
    shifts = offsets[rng.integers(len(offsets), size=variants)]
    contrasts = rng.uniform(1 - jitter, 1 + jitter, size=variants)
    brightnesses = rng.uniform(1 - jitter, 1 + jitter, size=variants)
    qualities = rng.integers(low_quality, high_quality + 1, size=variants)
    # order[j]: which (copy, image) pair, as copy * size + image, is item j.
    order = rng.permutation(copies * size)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    x_train = np.empty((copies * size, *images.shape[1:]), dtype=images.dtype)
    x_train[position[:size]] = images
    for copy in range(1, copies):
        for start in range(0, size, _BATCH_SIZE):
            part = np.arange(start, min(start + _BATCH_SIZE, size))
            x_train[position[copy * size + part]] = _perturb(
                images[part],
                shifts[copy - 1, part],
                contrasts[copy - 1, part],
                brightnesses[copy - 1, part],
                qualities[copy - 1, part],
            )
    source = order % size
    groups = source if dataset.groups is None else dataset.groups[source]
    return dataclasses.replace(
        dataset,
        name=f"{dataset.name}-dup{copies}",
        x_train=x_train,
        y_train=dataset.y_train[source],
        groups=np.asarray(groups, dtype=np.int64),
    )


def _perturb(images, shifts, contrasts, brightnesses, qualities):
    """Shifted, jittered and JPEG re-encoded copies of a batch of images."""
    count, height, width, _ = images.shape
    rows = np.clip(np.arange(height) - shifts[:, :1], 0, height - 1)
    cols = np.clip(np.arange(width) - shifts[:, 1:], 0, width - 1)
    shifted = images[
        np.arange(count)[:, None, None], rows[:, :, None], cols[:, None, :]
    ].astype(np.float32)
    mean = shifted.mean(axis=(1, 2, 3), keepdims=True)
    scale = (slice(None), None, None, None)
    jittered = (shifted - mean) * contrasts[scale] + mean * brightnesses[scale]
    pixels = np.clip(np.rint(jittered), 0, 255).astype(np.uint8)
    encoded = [_jpeg_round_trip(image, int(q)) for image, q in zip(pixels, qualities)]
    return np.stack(encoded).astype(images.dtype)


def _jpeg_round_trip(image, quality):
    """One (H, W, C) uint8 image encoded as JPEG and decoded again."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, format="JPEG", quality=quality
    )
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded, dtype=np.uint8).reshape(image.shape)


def duplicate_picks(picked_indices, groups, labeled_indices=None):
    """How many picks bring no new original.

    A pick is a duplicate when its group (`groups[index]`, its original) is
    also the group of a labeled item, or of another pick in the batch that
    is counted as the group's first: with m picks of one group, m - 1 are
    duplicates, or all m when the group is already labeled. Hence the count
    is `len(picked_indices)` minus the number of originals the batch adds,
    and does not depend on the order of the picks.

    Args:
        picked_indices: distinct pool indices picked in one batch.
        groups: int array (N,), the original of each pool item (an
            `ImageDataset`'s `groups`).
        labeled_indices: optional pool indices already labeled.

    Returns:
        The number of duplicate picks, an int in [0, len(picked_indices)].

    Raises:
        ValueError: indices that are not integers in [0, N), or a pick
            listed twice.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(
            "Expected groups as a 1-D integer array. Received: "
            f"dtype {groups.dtype}, shape {groups.shape}"
        )
    picks = _check_integers(
        "picked_indices", picked_indices, len(groups), "integer indices"
    )
    if len(np.unique(picks)) != len(picks):
        values, counts = np.unique(picks, return_counts=True)
        raise ValueError(
            "Expected distinct picked_indices. Received repeated indices "
            f"{values[counts > 1][:5].tolist()}"
        )
    labeled = (
        np.zeros(0, dtype=np.int64)
        if labeled_indices is None
        else _check_integers(
            "labeled_indices", labeled_indices, len(groups), "integer indices"
        )
    )
    new = np.setdiff1d(groups[picks], groups[labeled])
    return int(len(picks) - len(new))


@dataclasses.dataclass(frozen=True, eq=False)
class ClassRecalls:
    """Recall per class, their mean and their minimum.

    Attributes:
        per_class: float64 array (num_classes,), the recall of each class.
        balanced_accuracy: the mean of `per_class`.
        worst: the minimum of `per_class` (worst-class recall).
    """

    per_class: np.ndarray
    balanced_accuracy: float
    worst: float


def class_recalls(y_true, y_pred, num_classes):
    """Per-class recall, with balanced accuracy and worst-class recall.

    Args:
        y_true: int labels (N,) in [0, num_classes); every class must occur.
        y_pred: int predicted labels (N,) in [0, num_classes).
        num_classes: number of classes, an integer >= 2.

    Returns:
        A `ClassRecalls`: `per_class` (float64 array (num_classes,)),
        `balanced_accuracy` (their mean) and `worst` (their minimum).

    Raises:
        ValueError: labels that are not 1-D integers in range, lengths that
            differ, or a class absent from `y_true` (its recall is undefined).
    """
    from sklearn.metrics import balanced_accuracy_score, recall_score

    num_classes = validate_arguments(
        PARAMETER_CONSTRAINTS, {"num_classes": num_classes}
    )["num_classes"]
    labels = "integer class labels (not scores)"
    y_true = _check_integers("y_true", y_true, num_classes, labels)
    y_pred = _check_integers("y_pred", y_pred, num_classes, labels)
    if len(y_true) != len(y_pred):
        raise ValueError(
            "Expected as many predictions as labels. Received "
            f"{len(y_pred)} predictions and {len(y_true)} labels"
        )
    absent = np.flatnonzero(np.bincount(y_true, minlength=num_classes) == 0)
    if absent.size:
        raise ValueError(
            "Expected every class in y_true (a recall needs the class). Received "
            f"none of class(es) {absent.tolist()}"
        )
    per_class = recall_score(
        y_true, y_pred, labels=np.arange(num_classes), average=None
    ).astype(np.float64)
    return ClassRecalls(
        per_class=per_class,
        balanced_accuracy=float(balanced_accuracy_score(y_true, y_pred)),
        worst=float(per_class.min()),
    )


def describe_pool(dataset):
    """One line: training class counts, imbalance, and near-duplicates.

    Args:
        dataset: an `ImageDataset`.

    Returns:
        A string such as "cifar10-lt20-dup4: 60,000 pool items, class counts
        [12000, ..., 600] (imbalance 20); 15,000 originals x 4 items".
    """
    counts = np.bincount(dataset.y_train, minlength=dataset.num_classes)
    imbalance = (
        f"imbalance {counts.max() / counts.min():.3g}"
        if counts.min()
        else "a class is empty"
    )
    if dataset.groups is None:
        duplicates = "no near-duplicates"
    else:
        originals = len(np.unique(dataset.groups))
        duplicates = (
            f"{originals:,} originals x {len(dataset.groups) / originals:.3g} items"
        )
    return (
        f"{dataset.name}: {len(dataset.y_train):,} pool items, class counts "
        f"{counts.tolist()} ({imbalance}); {duplicates}"
    )


def _check_quality(quality):
    try:
        low, high = quality
        valid = all(
            isinstance(q, Integral) and not isinstance(q, bool)
            for q in (low, high)
        ) and (1 <= low <= high <= 95)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            "Expected quality as (lowest, highest), integers with 1 <= lowest <= "
            f"highest <= 95. Received: quality={quality!r}"
        )
    return int(low), int(high)


def _check_pixels(images):
    """The training images, refused unless JPEG can encode them faithfully."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            "Expected training images of shape (N, height, width, 1 or 3) for "
            f"JPEG re-encoding. Received shape {images.shape}"
        )
    if images.dtype != np.uint8 and images.size:
        low, high = float(np.min(images)), float(np.max(images))
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 255:
            raise DataError(
                "Expected pixel values in [0, 255]. Received values in "
                f"[{low:g}, {high:g}] (dtype {images.dtype})"
            )
    return images


def _check_integers(name, values, size, what):
    """`values` as int64, refused unless a 1-D array of integers in [0, size)."""
    values = np.asarray(values)
    if values.ndim != 1 or not (
        values.size == 0 or np.issubdtype(values.dtype, np.integer)
    ):
        raise ValueError(
            f"Expected {name} as a 1-D array of {what}. Received: "
            f"dtype {values.dtype}, shape {values.shape}"
        )
    bad = values[(values < 0) | (values >= size)]
    if bad.size:
        raise ValueError(f"Expected {name} in [0, {size}). Received {bad[:5].tolist()}")
    return values.astype(np.int64)
