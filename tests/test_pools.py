"""Long-tailed and redundant pools, and the reports on them (kerasll/pools.py)."""

import dataclasses

import numpy as np
import pytest

from kerasll.data import DataError, load_dataset, load_digits, make_dataset
from kerasll.pools import (
    class_recalls,
    describe_pool,
    duplicate_picks,
    long_tailed,
    long_tailed_profile,
    with_near_duplicates,
)
from data_helpers import CIFAR10


def _balanced(per_class=100, classes=4, shape=(16, 16, 3), seed=0):
    """Smooth random images (4x4 blocks upsampled), `per_class` of each class.

    Smooth, so a shift of a few pixels changes an image less than the
    distance to any other image.
    """
    rng = np.random.default_rng(seed)
    height, width, channels = shape

    def images(count):
        blocks = rng.integers(0, 256, (count, 4, 4, channels), dtype=np.uint8)
        return blocks.repeat(height // 4, axis=1).repeat(width // 4, axis=2)

    train = per_class * classes
    return make_dataset(
        "toy",
        images(train),
        np.arange(train) % classes,
        images(20),
        np.arange(20) % classes,
    )


def _mean_abs(a, b):
    """(len(a), len(b)) mean absolute pixel differences."""
    a = a.reshape(len(a), -1).astype(np.float32)
    b = b.reshape(len(b), -1).astype(np.float32)
    chunks = np.array_split(a, 8)
    return np.concatenate([np.abs(c[:, None] - b[None]).mean(axis=-1) for c in chunks])


# long_tailed


def test_profile_is_the_cifar10_lt_recipe():
    # Cao et al. (2019), CIFAR-10-LT with imbalance 100: the published sizes.
    assert long_tailed_profile(5000, 10, 100).tolist() == [
        5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50,
    ]  # fmt: skip
    assert long_tailed_profile(5000, 10, 20)[[0, -1]].tolist() == [5000, 250]
    assert long_tailed_profile(7, 3, 1).tolist() == [7, 7, 7]


def test_long_tailed_keeps_exact_class_counts_and_the_test_split():
    dataset = _balanced(per_class=100, classes=4)
    skewed = long_tailed(dataset, imbalance_ratio=8, seed=0)
    # n_c = floor(100 * 8 ** (-c / 3)): 100, 50, 25, 12.5 -> 12.
    counts = np.bincount(skewed.y_train, minlength=4)
    assert counts.tolist() == [100, 50, 25, 12]
    assert counts.max() / counts.min() == pytest.approx(100 / 12)
    assert skewed.name == "toy-lt8" and skewed.groups is None
    assert skewed.x_test is dataset.x_test and skewed.y_test is dataset.y_test
    # Every kept item is an original image with its own label.
    originals = {
        (x.tobytes(), int(y)) for x, y in zip(dataset.x_train, dataset.y_train)
    }
    kept = {(x.tobytes(), int(y)) for x, y in zip(skewed.x_train, skewed.y_train)}
    assert len(kept) == len(skewed.y_train) and kept <= originals


def test_long_tailed_uses_the_smallest_class_as_n_max():
    dataset = _balanced(per_class=60, classes=3)
    uneven = dataclasses.replace(
        dataset, x_train=dataset.x_train[:-10], y_train=dataset.y_train[:-10]
    )
    assert np.bincount(uneven.y_train).tolist() == [57, 57, 56]
    skewed = long_tailed(uneven, imbalance_ratio=4)
    assert np.bincount(skewed.y_train).tolist() == [56, 28, 14]


def test_long_tailed_is_deterministic_per_seed():
    dataset = _balanced()
    first, again = long_tailed(dataset, 8, seed=3), long_tailed(dataset, 8, seed=3)
    other = long_tailed(dataset, 8, seed=4)
    assert np.array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    assert np.array_equal(np.bincount(first.y_train), np.bincount(other.y_train))


@pytest.mark.parametrize("ratio", [0.5, 0, -3, float("nan"), float("inf"), True, "20"])
def test_long_tailed_refuses_bad_ratios(ratio):
    with pytest.raises(ValueError, match=r"Expected imbalance_ratio.*Received"):
        long_tailed(_balanced(), imbalance_ratio=ratio)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"largest": 0}, "largest to be an integer >= 1"),
        ({"largest": 2.5}, "largest to be an integer >= 1"),
        ({"num_classes": 1}, "num_classes to be an integer >= 2"),
        ({"num_classes": True}, "num_classes to be an integer >= 2"),
        ({"imbalance_ratio": float("nan")}, "imbalance_ratio to be a finite number"),
    ],
)
def test_long_tailed_profile_refuses_each_bad_argument(arguments, message):
    arguments = {"largest": 100, "num_classes": 10, "imbalance_ratio": 10, **arguments}
    with pytest.raises(ValueError, match=f"^Expected {message}.*Received"):
        long_tailed_profile(**arguments)


def test_long_tailed_refuses_a_profile_that_empties_a_class():
    with pytest.raises(ValueError, match=r"imbalance_ratio <= 100.*rarest class"):
        long_tailed(_balanced(per_class=100), imbalance_ratio=101)


def test_long_tailed_refuses_a_class_without_images():
    dataset = _balanced(classes=4)
    keep = dataset.y_train != 2
    missing = dataclasses.replace(
        dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep]
    )
    with pytest.raises(DataError, match=r"every class.*\['2'\]"):
        long_tailed(missing, 10)


# with_near_duplicates


def test_near_duplicates_count_groups_and_closeness():
    dataset = _balanced(per_class=30, classes=4)
    redundant = with_near_duplicates(dataset, copies=4, seed=0)
    size = len(dataset.y_train)
    assert redundant.x_train.shape == (4 * size, 16, 16, 3)
    assert redundant.x_train.dtype == np.uint8
    assert redundant.groups.dtype == np.int64
    assert np.bincount(redundant.groups).tolist() == [4] * size
    assert np.array_equal(redundant.y_train, dataset.y_train[redundant.groups])
    assert redundant.x_test is dataset.x_test and redundant.y_test is dataset.y_test
    assert redundant.name == "toy-dup4"
    distances = _mean_abs(redundant.x_train, dataset.x_train)
    own = distances[np.arange(4 * size), redundant.groups]
    # One exact original per group, the other three perturbed ...
    assert np.bincount(redundant.groups[own == 0]).tolist() == [1] * size
    assert np.all(own[own > 0] > 1)
    # ... each nearer its own original than any other original is.
    others = distances.copy()
    others[np.arange(4 * size), redundant.groups] = np.inf
    assert own.max() < others.min()
    assert own.mean() < 0.5 * others[np.isfinite(others)].mean()


def test_near_duplicates_are_shuffled_and_seeded():
    dataset = _balanced(per_class=30, classes=4)
    first = with_near_duplicates(dataset, copies=3, seed=1)
    again = with_near_duplicates(dataset, copies=3, seed=1)
    other = with_near_duplicates(dataset, copies=3, seed=2)
    assert np.array_equal(first.x_train, again.x_train)
    assert np.array_equal(first.groups, again.groups)
    assert not np.array_equal(first.groups, other.groups)
    # Copies are not neighbours: 360 items, adjacent pairs of one group are
    # rare (2 of 359 are expected by chance).
    assert np.sum(first.groups[1:] == first.groups[:-1]) < 10
    assert first.fingerprint() != other.fingerprint()


def test_near_duplicates_of_grayscale_digits_survive_jpeg():
    digits = load_digits()
    subset = dataclasses.replace(
        digits, x_train=digits.x_train[:200], y_train=digits.y_train[:200]
    )
    redundant = with_near_duplicates(subset, copies=2, seed=0)
    assert redundant.x_train.shape == (400, 8, 8, 1)
    distances = _mean_abs(redundant.x_train, subset.x_train)
    # 8x8 images are not shifted by default: jitter and JPEG only.
    assert np.array_equal(distances.argmin(axis=1), redundant.groups)
    assert distances[np.arange(400), redundant.groups].mean() < 10


def test_near_duplicates_keep_float_images_float():
    dataset = _balanced(per_class=10, classes=2)
    floats = dataclasses.replace(
        dataset, x_train=dataset.x_train.astype(np.float32)
    )
    redundant = with_near_duplicates(floats, copies=2, seed=0)
    as_uint8 = with_near_duplicates(dataset, copies=2, seed=0)
    assert redundant.x_train.dtype == np.float32
    assert np.array_equal(redundant.x_train, as_uint8.x_train.astype(np.float32))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"copies": 0}, "copies to be an integer >= 1"),
        ({"copies": 2.0}, "copies to be an integer >= 1"),
        ({"copies": True}, "copies to be an integer >= 1"),
        ({"max_shift": -1}, "max_shift to be an integer >= 0"),
        ({"jitter": 1.0}, r"jitter to be a finite number in \[0, 1\)"),
        ({"jitter": float("nan")}, r"jitter to be a finite number in \[0, 1\)"),
        ({"jitter": True}, r"jitter to be a finite number in \[0, 1\)"),
        ({"quality": (90, 70)}, r"quality as \(lowest, highest\)"),
        ({"quality": (70, 100)}, r"quality as \(lowest, highest\)"),
        ({"quality": 80}, r"quality as \(lowest, highest\)"),
    ],
)
def test_near_duplicates_refuse_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=f"Expected {message}.*Received"):
        with_near_duplicates(_balanced(per_class=2), **arguments)


def test_near_duplicates_refuse_images_jpeg_cannot_hold():
    dataset = _balanced(per_class=2)
    two_channels = dataclasses.replace(dataset, x_train=dataset.x_train[..., :2])
    with pytest.raises(DataError, match=r"1 or 3\).*\(8, 16, 16, 2\)"):
        with_near_duplicates(two_channels)
    scaled = dataclasses.replace(dataset, x_train=dataset.x_train * 1.5)
    with pytest.raises(DataError, match=r"\[0, 255\]. Received values in \[.*382"):
        with_near_duplicates(scaled)


def test_groups_must_align_with_the_pool_and_count_in_its_fingerprint():
    dataset = _balanced(per_class=2)
    with pytest.raises(DataError, match=r"groups of shape \(8,\).*\(7,\)"):
        dataclasses.replace(dataset, groups=np.arange(7))
    grouped = dataclasses.replace(dataset, groups=np.arange(8) // 2)
    assert grouped.fingerprint() != dataset.fingerprint()


# Both together


def test_long_tailed_then_near_duplicates_compose():
    dataset = _balanced(per_class=100, classes=4)
    skewed = long_tailed(dataset, 8, seed=0)
    pool = with_near_duplicates(skewed, copies=3, seed=0)
    assert np.bincount(pool.y_train).tolist() == [300, 150, 75, 36]
    assert np.array_equal(pool.y_train, skewed.y_train[pool.groups])
    assert pool.name == "toy-lt8-dup3" and pool.x_test is dataset.x_test
    assert describe_pool(pool) == (
        "toy-lt8-dup3: 561 pool items, class counts [300, 150, 75, 36] "
        "(imbalance 8.33); 187 originals x 3 items"
    )
    assert describe_pool(dataset) == (
        "toy: 400 pool items, class counts [100, 100, 100, 100] (imbalance 1); "
        "no near-duplicates"
    )
    # The other order subsets the groups with the images.
    reverse = long_tailed(with_near_duplicates(dataset, copies=2, seed=0), 8)
    distances = _mean_abs(reverse.x_train, dataset.x_train)
    assert np.array_equal(distances.argmin(axis=1), reverse.groups)


@pytest.mark.cifar
def test_cifar10_long_tailed_and_redundant_pool():
    cifar = load_dataset("cifar10", data=CIFAR10)
    pool = with_near_duplicates(long_tailed(cifar, 20, seed=0), copies=4, seed=0)
    profile = [5000, 3584, 2569, 1842, 1320, 946, 678, 486, 348, 250]
    assert np.bincount(pool.y_train).tolist() == [4 * n for n in profile]
    assert pool.x_train.shape == (4 * sum(profile), 32, 32, 3)
    assert np.bincount(pool.groups).tolist() == [4] * sum(profile)
    assert np.bincount(pool.y_test).tolist() == [1000] * 10
    # Copies of real photos: nearer their original than the next image is.
    sample = slice(0, 400)
    originals = long_tailed(cifar, 20, seed=0).x_train
    items = pool.x_train[sample].astype(np.float32)
    own = np.abs(items - originals[pool.groups[sample]]).mean()
    other = np.abs(items - originals[pool.groups[sample] - 1]).mean()
    assert own < 0.7 * other


# Reports


def test_duplicate_picks_on_a_hand_made_pool():
    groups = np.array([0, 0, 1, 1, 2, 2, 3])
    assert duplicate_picks([0, 2, 4, 6], groups) == 0
    assert duplicate_picks([0, 1, 2, 6], groups) == 1  # item 1 repeats group 0
    assert duplicate_picks([0, 1, 4, 5], groups) == 2
    # Group 1 is labeled (item 3): picking item 2 adds nothing new either.
    assert duplicate_picks([0, 1, 2, 6], groups, labeled_indices=[3]) == 2
    assert duplicate_picks([], groups, labeled_indices=[3]) == 0


@pytest.mark.parametrize(
    "picks, message",
    [
        ([0, 0], r"distinct picked_indices. Received repeated indices \[0\]"),
        ([0, 7], r"picked_indices in \[0, 7\). Received \[7\]"),
        ([0.0, 1.0], "picked_indices as a 1-D array of integer"),
    ],
)
def test_duplicate_picks_refuses_bad_indices(picks, message):
    with pytest.raises(ValueError, match=message):
        duplicate_picks(picks, np.array([0, 0, 1, 1, 2, 2, 3]))


def test_class_recalls_on_a_hand_made_case():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 2]
    recalls = class_recalls(y_true, y_pred, num_classes=3)
    assert recalls.per_class.tolist() == [0.75, 0.5, 1.0]
    assert recalls.balanced_accuracy == pytest.approx(0.75)
    assert recalls.worst == 0.5


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 0, 1], [0, 1, 1], r"every class in y_true.*class\(es\) \[2\]"),
        ([0, 1, 2], [0, 1], "3 labels"),
        ([0, 1, 2], [0, 1, 3], r"y_pred in \[0, 3\). Received \[3\]"),
        ([0, 1, 2], np.eye(3), "integer class labels"),
    ],
)
def test_class_recalls_refuses_bad_labels(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        class_recalls(y_true, y_pred, num_classes=3)
