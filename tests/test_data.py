"""Data loaders, validation and the augmented tf.data pipeline."""

import numpy as np
import pytest
from PIL import Image

from kerasll.active.pipeline import inference_dataset, training_dataset
from kerasll.augment import Augmentation, augment_image
from kerasll.data import (
    DATA_ENV,
    IMAGE_EXTENSIONS,
    DataError,
    load_cifar10,
    load_dataset,
    load_digits,
    load_folder,
    load_npz,
    make_dataset,
)
from data_helpers import CIFAR10


def _arrays(train=12, test=4, classes=3, shape=(6, 6, 3), seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (train, *shape), dtype=np.uint8),
        "y_train": np.arange(train) % classes,
        "x_test": rng.integers(0, 256, (test, *shape), dtype=np.uint8),
        "y_test": np.arange(test) % classes,
    }


def test_digits_are_uint8_images_with_a_fixed_split():
    digits = load_digits()
    assert digits.x_train.shape == (1437, 8, 8, 1) and digits.x_test.shape == (
        360,
        8,
        8,
        1,
    )
    assert digits.x_train.dtype == np.uint8 and digits.x_train.max() == 255
    assert digits.num_classes == 10 and digits.class_names[3] == "3"
    assert digits.augmentation == Augmentation(pad=1, flip=False)
    again = load_digits()
    np.testing.assert_array_equal(again.y_train, digits.y_train)
    assert again.fingerprint() == digits.fingerprint()
    assert load_dataset("digits").fingerprint() == digits.fingerprint()


def test_channel_stats_match_numpy():
    digits = load_digits()
    mean, std = digits.channel_stats(chunk_size=100)
    assert mean == pytest.approx([digits.x_train.mean()], rel=1e-9)
    assert std == pytest.approx([digits.x_train.std()], rel=1e-9)


def test_npz_loader_reads_arrays_and_class_names(tmp_path):
    path = tmp_path / "tiny.npz"
    np.savez(path, class_names=np.array(["a", "b", "c"]), **_arrays())
    dataset = load_dataset(str(path))
    assert dataset.name == "tiny" and dataset.class_names == ("a", "b", "c")
    assert dataset.input_shape == (6, 6, 3)
    assert dataset.augmentation == Augmentation(pad=1, flip=True)


def test_npz_missing_arrays_are_listed(tmp_path):
    path = tmp_path / "partial.npz"
    arrays = _arrays()
    del arrays["y_test"]
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"Missing \['y_test'\]"):
        load_npz(path)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"y_train": np.array([0, 1, 2, 5] * 3)}, r"y_train labels in \[0, 3\).*\[5\]"),
        ({"y_test": np.array([0, -1, 1, 2])}, r"y_test labels in \[0, 3\).*\[-1\]"),
        (
            {"y_train": np.zeros(11, dtype=int)},
            "12 x_train images and 11 y_train labels",
        ),
        (
            {"x_train": np.zeros((0, 6, 6, 3)), "y_train": np.zeros(0)},
            "non-empty train",
        ),
        ({"x_test": np.zeros((4, 5, 6, 3))}, "one shape"),
        ({"x_train": np.full((12, 6, 6, 3), 300.0)}, r"\[0, 255\]"),
        (
            {"x_train": np.linspace(0, 1, 12 * 6 * 6 * 3).reshape(12, 6, 6, 3)},
            r"Expected raw 0-255 pixel values .* x_train\. Received float values "
            r"in \[0, 1\].*multiply by 255",
        ),
        (
            {"x_test": np.full((4, 6, 6, 3), 0.5, dtype=np.float32)},
            r"x_test\. Received float values in \[0\.5, 0\.5\]",
        ),
        (
            {"x_train": np.full((12, 6, 6, 3), 17.5)},
            r"Received float values in \[17\.5, 17\.5\] \(not all are whole",
        ),
        ({"x_train": np.full((12, 6, 6, 3), np.nan)}, "Received float values"),
    ],
)
def test_invalid_arrays_are_rejected(change, match):
    arrays = {**_arrays(), **change}
    with pytest.raises(DataError, match=match):
        make_dataset("bad", class_names=["a", "b", "c"], **arrays)


def test_float_images_of_whole_0_255_values_are_accepted():
    arrays = _arrays()
    expected = arrays["x_train"].copy()
    arrays["x_train"] = expected.astype(np.float32)
    arrays["x_test"] = np.zeros((4, 6, 6, 3))  # all black: not "scaled to [0, 1]"
    dataset = make_dataset("floats", **arrays)
    assert dataset.x_train.dtype == np.uint8
    np.testing.assert_array_equal(dataset.x_train, expected)
    assert not dataset.x_test.any()


def _write_images(root, counts, size=(5, 4), mode="L"):
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            value = 40 * index % 256
            Image.new(mode, size, color=value).save(root / name / f"{index}.png")


def test_folder_loader_splits_reproducibly_by_seed(tmp_path):
    _write_images(tmp_path / "pool", {"cat": 6, "dog": 4})
    first = load_folder(tmp_path / "pool", test_fraction=0.5, seed=3)
    again = load_folder(tmp_path / "pool", test_fraction=0.5, seed=3)
    other = load_folder(tmp_path / "pool", test_fraction=0.5, seed=4)
    assert first.class_names == ("cat", "dog")
    assert first.x_train.shape == (5, 4, 5, 1)  # PIL sizes are (width, height)
    assert sorted(np.bincount(first.y_test).tolist()) == [2, 3]  # stratified
    assert first.fingerprint() == again.fingerprint()
    assert first.fingerprint() != other.fingerprint()


def test_folder_with_train_and_test_folders_and_mixed_sizes(tmp_path):
    _write_images(tmp_path / "split" / "train", {"a": 2, "b": 2}, mode="RGB")
    _write_images(tmp_path / "split" / "test", {"a": 1, "b": 1}, mode="RGB")
    dataset = load_dataset(str(tmp_path / "split"))
    assert (len(dataset.x_train), len(dataset.x_test), dataset.input_shape) == (
        4,
        2,
        (4, 5, 3),
    )
    _write_images(tmp_path / "mixed", {"a": 2})
    Image.new("L", (9, 9)).save(tmp_path / "mixed" / "a" / "big.png")
    (tmp_path / "mixed" / "b").mkdir()
    with pytest.raises(DataError, match="images of one size"):
        load_folder(tmp_path / "mixed")
    resized = load_folder(tmp_path / "mixed", image_size=(3, 3), test_fraction=0.34)
    assert resized.input_shape == (3, 3, 1)


def test_unknown_source_lists_the_options():
    with pytest.raises(DataError, match=r"\['digits', 'cifar10'\].*'mnist'"):
        load_dataset("mnist")


def test_cifar10_with_a_missing_path_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataError, match="No such file"):
        load_cifar10(tmp_path / "nowhere.npz")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))  # a folder without cifar10.npz
    with pytest.raises(DataError, match="cifar10.npz"):
        load_cifar10()


@pytest.mark.cifar
def test_cifar10_loader_reads_the_shared_file():
    cifar = load_cifar10(CIFAR10)
    assert cifar.x_train.shape == (50000, 32, 32, 3) and cifar.x_test.shape == (
        10000,
        32,
        32,
        3,
    )
    assert cifar.class_names[0] == "airplane" and cifar.num_classes == 10
    assert np.bincount(cifar.y_test).tolist() == [1000] * 10
    assert cifar.augmentation == Augmentation(pad=4, flip=True)


def test_augmentation_crops_within_the_padding_and_flips_only_when_asked():
    import tensorflow as tf

    image = np.arange(16, dtype="float32").reshape(4, 4, 1) + 1.0
    seen = set()
    for seed in range(40):
        out = augment_image(
            tf.constant(image), tf.constant([seed, 7]), Augmentation(1, False)
        )
        out = out.numpy()[..., 0]
        # A 1-pixel shift: the original's rows/columns appear in order, no flip.
        shifted = [
            np.array_equal(
                out[max(0, -dy) : 4 - max(0, dy), max(0, -dx) : 4 - max(0, dx)],
                image[max(0, dy) : 4 + min(0, dy), max(0, dx) : 4 + min(0, dx), 0],
            )
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ]
        assert any(shifted)
        flipped = augment_image(
            tf.constant(image), tf.constant([seed, 7]), Augmentation(0, True)
        )
        seen.add(bool(np.array_equal(flipped.numpy(), image[:, ::-1])))
    assert seen == {True, False}


def test_training_pipeline_is_a_pure_function_of_its_seed():
    x = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4, 1)
    y = np.arange(10)

    def batches(seed):
        dataset, steps = training_dataset(x, y, 4, 3, Augmentation(1, False), seed)
        return steps, [(bx.numpy(), by.numpy()) for bx, by in dataset]

    steps, first = batches(5)
    assert steps == 3 and len(first) == 9  # 3 epochs of 4 + 4 + 2
    assert [len(by) for _, by in first] == [4, 4, 2] * 3
    for epoch in range(3):  # every epoch is a permutation of all items
        labels = np.concatenate([by for _, by in first[epoch * 3 : (epoch + 1) * 3]])
        assert sorted(labels.tolist()) == list(range(10))
    orders = [
        np.concatenate([by for _, by in first[e * 3 : (e + 1) * 3]]) for e in range(3)
    ]
    assert not np.array_equal(orders[0], orders[1])
    _, again = batches(5)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    _, other = batches(6)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    assert first[0][0].dtype == np.float32


def test_inference_pipeline_keeps_order():
    x = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2, 1)
    batches = list(inference_dataset(x, np.arange(5), batch_size=2))
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x)
    with pytest.raises(ValueError, match="5 images, 4 labels"):
        training_dataset(x, np.arange(4), 2, 1, None, 0)


def test_corrupt_npz_is_a_data_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive at all")
    with pytest.raises(DataError, match=r"readable \.npz archive.*garbage\.npz"):
        load_dataset(str(garbage))
    good = tmp_path / "good.npz"
    np.savez(good, **_arrays())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=r"truncated\.npz.*BadZipFile"):
        load_npz(truncated)
    single = tmp_path / "single.npz"
    with open(single, "wb") as stream:
        np.save(stream, np.zeros(3))
    with pytest.raises(DataError, match=r"archive of named arrays in .*single\.npz"):
        load_npz(single)


def test_unreadable_image_is_a_data_error_naming_the_file(tmp_path):
    _write_images(tmp_path / "pool", {"a": 2, "b": 2})
    broken = tmp_path / "pool" / "b" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")
    with pytest.raises(DataError, match=r"readable image file.*broken\.png"):
        load_dataset(str(tmp_path / "pool"))
    png = tmp_path / "pool" / "a" / "0.png"
    broken.write_bytes(png.read_bytes()[:-20])  # a truncated image
    with pytest.raises(DataError, match=r"broken\.png.*cannot be decoded"):
        load_folder(tmp_path / "pool")


def test_load_dataset_passes_image_size_to_folders_only(tmp_path):
    _write_images(tmp_path / "mixed", {"a": 4, "b": 4})
    Image.new("L", (9, 9)).save(tmp_path / "mixed" / "a" / "big.png")
    with pytest.raises(DataError, match=r"--image-size HEIGHT WIDTH"):
        load_dataset(str(tmp_path / "mixed"))
    resized = load_dataset(str(tmp_path / "mixed"), image_size=(3, 2))
    assert resized.input_shape == (3, 2, 1)
    with pytest.raises(DataError, match=r"only with a folder.*'digits'"):
        load_dataset("digits", image_size=(8, 8))
    with pytest.raises(DataError, match=r"two integers >= 1\. Received: \(0, 3\)"):
        load_dataset(str(tmp_path / "mixed"), image_size=(0, 3))


def test_folder_too_small_for_its_split_is_a_data_error(tmp_path):
    _write_images(tmp_path / "tiny", {"a": 2, "b": 2})
    with pytest.raises(DataError, match=r"enough images in .*tiny.*4 images in 2"):
        load_folder(tmp_path / "tiny", test_fraction=0.25)


def test_folders_read_every_extension_the_scorer_reads(tmp_path):
    from kerasll_serving import sources

    assert IMAGE_EXTENSIONS is sources.IMAGE_EXTENSIONS
    formats = {".bmp": "BMP", ".gif": "GIF", ".tif": "TIFF", ".webp": "WEBP"}
    for index, (suffix, fmt) in enumerate(formats.items()):
        for label in ("a", "b"):
            (tmp_path / label).mkdir(exist_ok=True)
            image = Image.new("L", (4, 4), color=10 * index)
            image.save(tmp_path / label / f"{index}{suffix}", format=fmt)
    dataset = load_folder(tmp_path, test_fraction=0.5)
    assert len(dataset.x_train) + len(dataset.x_test) == 8
