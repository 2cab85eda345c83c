"""Image classification data sets for active-learning experiments.

Every loader returns an `ImageDataset` of raw uint8 pixels (N, H, W, C) and
integer labels, validated before any training starts:

- `digits`: scikit-learn's embedded 8x8 digits, scaled to 0-255, with a fixed
  stratified train/test split (no download).
- `cifar10`: an npz file with `x_train, y_train, x_test, y_test` (path given
  or from the `KERASLL_DATA` environment variable); `keras.datasets` is used
  only when no path is given at all.
- any npz file with those four arrays (optionally `class_names`).
- a folder of class sub-folders of images, split by a seeded stratified
  split, or a folder with `train/` and `test/` each holding class sub-folders.
"""

import dataclasses
import hashlib
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from kerasll_serving.sources import IMAGE_EXTENSIONS

from kerasll.augment import Augmentation, default_augmentation

DATA_ENV = "KERASLL_DATA"
NAMED_DATASETS = ("digits", "cifar10")
# Errors numpy raises for a file that is not a (complete) npz archive.
_NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


class DataError(ValueError):
    """A data set is missing, malformed or inconsistent."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """Train and test images with integer labels.

    Attributes:
        name: short name ("digits", "cifar10", a file or folder name).
        x_train: uint8 array (N, H, W, C) of raw pixels, the unlabeled pool.
        y_train: int64 labels (N,) in [0, num_classes).
        x_test: uint8 array (N_test, H, W, C).
        y_test: int64 labels (N_test,).
        class_names: one name per class.
        augmentation: the training-time `Augmentation` for these images.
        groups: None, or int64 (N,): for each training item, the index of
            the original image it is a near-duplicate of
            (`kerasll.pools.with_near_duplicates`).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    augmentation: Augmentation
    groups: np.ndarray | None = None

    def __post_init__(self):
        if self.groups is not None and np.shape(self.groups) != (len(self.x_train),):
            raise DataError(
                f"Expected groups of shape ({len(self.x_train)},), one per training "
                f"image. Received shape {np.shape(self.groups)}"
            )

    @property
    def num_classes(self):
        """Number of classes."""
        return len(self.class_names)

    @property
    def input_shape(self):
        """(height, width, channels) of one image."""
        return tuple(self.x_train.shape[1:])

    def channel_stats(self, chunk_size=4096):
        """Per-channel mean and std of the training pixels (0-255 scale).

        Computed in chunks, so memory does not grow with the pool.

        Args:
            chunk_size: images per chunk.

        Returns:
            Tuple `(mean, std)` of lists with one float per channel.
        """
        channels = self.x_train.shape[-1]
        total = np.zeros(channels)
        squares = np.zeros(channels)
        for start in range(0, len(self.x_train), chunk_size):
            chunk = self.x_train[start : start + chunk_size].astype(np.float64)
            total += chunk.sum(axis=(0, 1, 2))
            squares += np.square(chunk).sum(axis=(0, 1, 2))
        count = self.x_train.size // channels
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - np.square(mean), 1e-12))
        return [float(m) for m in mean], [float(s) for s in std]

    def fingerprint(self):
        """A SHA-256 of the arrays, to recognise the same data on resume."""
        digest = hashlib.sha256()
        arrays = [self.x_train, self.y_train, self.x_test, self.y_test]
        for array in arrays if self.groups is None else [*arrays, self.groups]:
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self):
        """One line: name, sizes, image shape, classes."""
        return (
            f"{self.name}: {len(self.x_train)} train / {len(self.x_test)} test images "
            f"of shape {self.input_shape}, {self.num_classes} classes"
        )


def _as_images(x, what):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(
            f"Expected {what} of shape (N, height, width) or (N, height, width, "
            f"channels). Received shape {x.shape}"
        )
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(
        x.dtype, np.complexfloating
    ):
        raise DataError(f"Expected numeric {what}. Received dtype {x.dtype}")
    if x.size and np.issubdtype(x.dtype, np.floating):
        _check_float_pixels(x, what)
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(
            f"Expected {what} as raw pixel values in [0, 255]. Received values in "
            f"[{x.min()}, {x.max()}]"
        )
    return np.rint(x).astype(np.uint8)


def _check_float_pixels(x, what):
    """Float images must hold raw 0-255 values: whole numbers, not [0, 1].

    Rounding [0, 1]-scaled images to uint8 would silently turn them into
    (almost) black-and-white 0/1 images, so they are refused instead.
    """
    low, high = float(np.min(x)), float(np.max(x))
    whole = bool(np.isfinite(low) and np.isfinite(high)) and bool(
        np.all(np.equal(np.mod(x, 1), 0))
    )
    scaled = high <= 1.0 and (low != 0.0 or high != 0.0)
    if whole and 0.0 <= low and high <= 255.0 and not scaled:
        return
    if scaled:
        reason = "they look scaled to [0, 1]"
    elif not whole:
        reason = "not all are whole numbers"
    else:
        reason = "some are outside [0, 255]"
    raise DataError(
        f"Expected raw 0-255 pixel values (whole numbers in [0, 255]) in {what}. "
        f"Received float values in [{low:g}, {high:g}] ({reason}); multiply by 255 "
        "if they are scaled to [0, 1], and round to uint8 before loading"
    )


def _as_labels(y, what):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"Expected {what} as a 1-D array of class indices. Received shape {y.shape}"
        )
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError(f"Expected integer class indices in {what}.")
    return y.astype(np.int64)


def make_dataset(
    name, x_train, y_train, x_test, y_test, class_names=None, augmentation=None
):
    """Validates arrays and wraps them in an `ImageDataset`.

    Args:
        name: data set name.
        x_train, y_train, x_test, y_test: images (N, H, W[, C]) of raw pixel
            values in [0, 255], and integer labels.
        class_names: names of the classes; by default "0", "1", ... up to the
            largest training label.
        augmentation: training augmentation; by default `default_augmentation`.

    Returns:
        An `ImageDataset`.

    Raises:
        DataError: an empty split, x/y length mismatch, labels outside
            [0, num_classes), train and test image shapes that differ.
    """
    x_train, x_test = _as_images(x_train, "x_train"), _as_images(x_test, "x_test")
    y_train, y_test = _as_labels(y_train, "y_train"), _as_labels(y_test, "y_test")
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(
                f"Expected as many {split} labels as images. Received "
                f"{len(x)} x_{split} images and {len(y)} y_{split} labels"
            )
        if len(x) == 0:
            raise DataError(f"Expected a non-empty {split} split. Received 0 images")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            "Expected train and test images of one shape. Received "
            f"{x_train.shape[1:]} and {x_test.shape[1:]}"
        )
    if class_names is None:
        class_names = [str(c) for c in range(int(y_train.max()) + 1)]
    class_names = tuple(str(c) for c in class_names)
    if len(class_names) < 2:
        raise DataError(
            f"Expected at least 2 classes. Received class_names={list(class_names)}"
        )
    for split, y in (("y_train", y_train), ("y_test", y_test)):
        bad = y[(y < 0) | (y >= len(class_names))]
        if bad.size:
            raise DataError(
                f"Expected {split} labels in [0, {len(class_names)}) for "
                f"{len(class_names)} classes. Received label(s) "
                f"{sorted(set(bad.tolist()))[:5]}"
            )
    if augmentation is None:
        augmentation = default_augmentation(x_train.shape[1:], name)
    return ImageDataset(
        name, x_train, y_train, x_test, y_test, class_names, augmentation
    )


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's 8x8 handwritten digits as uint8 images.

    The 0-16 intensities are scaled to 0-255. The split is stratified and
    fixed by `seed` (default: 1437 train / 360 test images).

    Args:
        test_fraction: share of images held out for testing.
        seed: seed of the split.

    Returns:
        An `ImageDataset` named "digits" with pad-1, no-flip augmentation.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        digits.target,
        test_size=test_fraction,
        stratify=digits.target,
        random_state=seed,
    )
    names = [str(name) for name in digits.target_names]
    return make_dataset("digits", x_train, y_train, x_test, y_test, names)


def load_npz(path, name=None):
    """A data set stored as npz with `x_train, y_train, x_test, y_test`.

    An optional `class_names` array names the classes (and fixes their count).

    Args:
        path: path of the .npz file.
        name: data set name; default the file name without suffix.

    Returns:
        An `ImageDataset`.

    Raises:
        DataError: missing file or arrays, or invalid contents.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Expected an existing .npz file. Received: {str(path)!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except _NPZ_READ_ERRORS as error:
        raise _unreadable_npz(path, error) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"Expected an .npz archive of named arrays in {str(path)!r}. Received "
            f"a single {type(archive).__name__} (a .npy file?)"
        )
    with archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            raise DataError(
                f"Expected arrays {list(_NPZ_KEYS)} in {str(path)!r}. Missing "
                f"{missing}; found {sorted(archive.files)}"
            )
        try:
            arrays = {key: archive[key] for key in _NPZ_KEYS}
            class_names = (
                [str(c) for c in archive["class_names"]]
                if "class_names" in archive.files
                else None
            )
        except _NPZ_READ_ERRORS as error:
            raise _unreadable_npz(path, error) from error
    return make_dataset(name or path.stem, class_names=class_names, **arrays)


def _unreadable_npz(path, error):
    return DataError(
        f"Expected a readable .npz archive (np.savez) at {str(path)!r}. Received a "
        f"corrupt or truncated file ({type(error).__name__}: {error})"
    )


def _cifar10_path(data):
    """Resolves the CIFAR-10 npz from an argument or `KERASLL_DATA`."""
    data = data or os.environ.get(DATA_ENV)
    if not data:
        return None
    path = Path(data)
    if path.is_dir():
        path = path / "cifar10.npz"
    return path


def load_cifar10(data=None):
    """CIFAR-10 from an npz file, or from `keras.datasets` as a last resort.

    Args:
        data: path of the npz (or of a folder holding `cifar10.npz`); default
            the `KERASLL_DATA` environment variable. Only when neither is set
            is `keras.datasets.cifar10` asked to download.

    Returns:
        An `ImageDataset` named "cifar10" with pad-4 crop and flip.

    Raises:
        DataError: the given path does not exist, or the download failed.
    """
    path = _cifar10_path(data)
    if path is not None:
        if not path.is_file():
            raise DataError(
                f"Expected the CIFAR-10 npz at {str(path)!r} (from --data or "
                f"{DATA_ENV}). No such file."
            )
        return load_npz(path, name="cifar10")
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # no network, proxy, corrupt cache ...
        raise DataError(
            "Could not download CIFAR-10 with keras.datasets "
            f"({type(error).__name__}: {error}). Pass --data PATH.npz or set "
            f"{DATA_ENV}."
        ) from error
    names = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    return make_dataset("cifar10", x_train, y_train, x_test, y_test, names)


def _class_folders(root):
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    )


def _read_images(folders, image_size):
    """Reads the images of class folders (label = folder position).

    All grayscale images stay grayscale (one channel); otherwise everything
    is converted to RGB.

    Returns:
        Tuple (list of uint8 arrays, list of labels).
    """
    from PIL import Image

    files = [
        (path, label)
        for label, folder in enumerate(folders)
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_EXTENSIONS
    ]
    images, sizes = [], {}
    for path, _ in files:
        try:
            with Image.open(path) as image:
                images.append(image.copy())  # copy() decodes the whole file.
        except (OSError, ValueError, SyntaxError) as error:  # PIL's decode errors
            raise DataError(
                f"Expected a readable image file. Received {str(path)!r}, which "
                f"cannot be decoded ({type(error).__name__}: {error}); remove or "
                "replace it"
            ) from error
        sizes.setdefault(images[-1].size, path)
    if image_size is None and len(sizes) > 1:
        examples = {f"{w}x{h}": str(p) for (w, h), p in list(sizes.items())[:3]}
        raise DataError(
            "Expected images of one size, or an image size to resize them to "
            "(--image-size HEIGHT WIDTH, or image_size=(height, width)). Received "
            f"several sizes, e.g. {examples}"
        )
    grayscale = all(image.mode in ("L", "1", "I", "I;16") for image in images)
    arrays = []
    for image in images:
        image = image.convert("L" if grayscale else "RGB")
        if image_size is not None:
            image = image.resize((int(image_size[1]), int(image_size[0])))
        arrays.append(np.asarray(image, dtype=np.uint8))
    return arrays, [label for _, label in files]


def _stack(images):
    """(N, H, W[, C]) array from a list of images; an empty list gives N = 0."""
    return np.stack(images) if images else np.zeros((0, 1, 1, 1), dtype=np.uint8)


def load_folder(path, test_fraction=0.2, seed=0, image_size=None):
    """Images in class sub-folders (`root/<class>/<image>`).

    If `root` holds `train/` and `test/` folders, each with the same class
    sub-folders, they are the split; otherwise a stratified split of
    `test_fraction`, seeded by `seed`, is made.

    Args:
        path: the root folder.
        test_fraction: share held out for testing when there is no split.
        seed: seed of that split.
        image_size: optional (height, width) every image is resized to;
            otherwise all images must share one size.

    Returns:
        An `ImageDataset` whose class names are the sub-folder names (sorted).

    Raises:
        DataError: no class folders or images, mixed sizes, bad split.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(
            f"Expected a folder of class sub-folders. Received: {str(root)!r}"
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_folders = _class_folders(root / "train")
        test_folders = _class_folders(root / "test")
        names = [folder.name for folder in train_folders]
        if names != [folder.name for folder in test_folders]:
            raise DataError(
                "Expected the same class folders under train/ and test/. Received "
                f"{names} and {[f.name for f in test_folders]}"
            )
        x_train, y_train = _read_images(train_folders, image_size)
        x_test, y_test = _read_images(test_folders, image_size)
        return make_dataset(
            root.name, _stack(x_train), y_train, _stack(x_test), y_test, names
        )
    folders = _class_folders(root)
    names = [folder.name for folder in folders]
    images, labels = _read_images(folders, image_size)
    if len(images) < 2:
        raise DataError(
            f"Expected image files ({', '.join(IMAGE_EXTENSIONS)}) in class "
            f"sub-folders of {str(root)!r}. Found {len(images)} in folders {names}"
        )
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=len(names))
    stratify = labels if counts.min() >= 2 else None
    indices = np.arange(len(images))
    try:
        train_idx, test_idx = train_test_split(
            indices, test_size=test_fraction, stratify=stratify, random_state=seed
        )
    except ValueError as error:  # too few images for the split
        raise DataError(
            f"Expected enough images in {str(root)!r} for a test_fraction="
            f"{test_fraction} split. Received {len(images)} images in "
            f"{len(names)} classes: {error}"
        ) from error
    images = np.stack(images)
    return make_dataset(
        root.name,
        images[train_idx],
        labels[train_idx],
        images[test_idx],
        labels[test_idx],
        names,
    )


def load_dataset(source, data=None, seed=0, image_size=None):
    """Loads a data set by name or path.

    Args:
        source: "digits", "cifar10", a path to an .npz file, or a folder of
            class sub-folders.
        data: for "cifar10", the npz path (default `KERASLL_DATA`).
        seed: seed of the train/test split of an unsplit folder.
        image_size: for a folder, optional (height, width) every image is
            resized to (needed when the images differ in size).

    Returns:
        An `ImageDataset`.

    Raises:
        DataError: unknown source, missing files, invalid contents, or an
            `image_size` that is not two positive integers or is given for
            a source other than a folder.
    """
    source = str(source)
    path = Path(source)
    if image_size is not None:
        image_size = _check_image_size(image_size)
        if source in NAMED_DATASETS or not path.is_dir():
            raise DataError(
                "Expected image_size (--image-size) only with a folder of images; "
                f"arrays are used at their stored size. Received image_size="
                f"{image_size} for dataset {source!r}"
            )
    if source == "digits":
        return load_digits()
    if source == "cifar10":
        return load_cifar10(data)
    if path.suffix == ".npz":
        return load_npz(path)
    if path.is_dir():
        return load_folder(path, seed=seed, image_size=image_size)
    raise DataError(
        f"Expected dataset in {list(NAMED_DATASETS)}, a path to an .npz file or a "
        f"folder of class sub-folders. Received: {source!r}"
    )


def _check_image_size(image_size):
    try:
        height, width = (int(side) for side in image_size)
        valid = height >= 1 and width >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise DataError(
            "Expected image_size as (height, width), two integers >= 1. "
            f"Received: {image_size!r}"
        )
    return (height, width)
