"""Synthetic detection scenes made of real CIFAR-10 images.

Each scene is a background cut from one image and upscaled, with one to four
other images pasted on it at random sizes, aspect ratios and positions; the
pasted rectangles are the ground-truth boxes and their images' classes the
labels. Scenes are deterministic given the source images and `seed`.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np
from PIL import Image

from kerasll.data import DATA_ENV
from kerasll.detection.boxes import iou

DEFAULT_CIFAR10 = Path("..") / "shared" / "data" / "cifar10.npz"


class SceneDataError(ValueError):
    """The source images or the CIFAR-10 file cannot make scenes."""


@dataclasses.dataclass(frozen=True)
class Scenes:
    """Images with their objects.

    Attributes:
        images: (n, H, W, 3) uint8.
        boxes: n arrays (k_i, 4) of normalized (xmin, ymin, xmax, ymax).
        labels: n arrays (k_i,) of 0-based classes.
        class_names: names of the classes, or None.
    """

    images: np.ndarray
    boxes: tuple
    labels: tuple
    class_names: tuple = None

    def __len__(self):
        return len(self.images)

    def take(self, indices):
        """The scenes at `indices`, as a new `Scenes`."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return Scenes(
            images=self.images[indices],
            boxes=tuple(self.boxes[i] for i in indices),
            labels=tuple(self.labels[i] for i in indices),
            class_names=self.class_names,
        )


def resized(image, height, width):
    """A uint8 image resized to (height, width) with bilinear filtering."""
    return np.asarray(
        Image.fromarray(image).resize((int(width), int(height)), Image.BILINEAR)
    )


def random_square(rng, height, width):
    """Draws a square window of an image: the background of a scene or figure.

    Its side is drawn in [max(4, shorter side // 2), shorter side], then its
    top-left corner.

    Args:
        rng: a `numpy.random.Generator`.
        height, width: the image's size in pixels.

    Returns:
        `(rows, columns)`, two slices selecting the window.
    """
    shorter = min(height, width)
    side = int(rng.integers(max(4, shorter // 2), shorter + 1))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    return slice(top, top + side), slice(left, left + side)


def make_scenes(
    images,
    labels,
    count,
    scene_size=64,
    max_objects=4,
    object_scale=(0.25, 0.6),
    aspect_range=(0.75, 1.33),
    max_iou=0.2,
    seed=0,
    class_names=None,
):
    """Pastes source images onto backgrounds cut from other source images.

    Args:
        images: (n, h, w, 3) uint8 source images (n >= 2).
        labels: (n,) their classes, 0-based.
        count: number of scenes.
        scene_size: side of the square scenes, in pixels.
        max_objects: each scene holds 1 to `max_objects` objects.
        object_scale: (low, high) object side as a fraction of `scene_size`.
        aspect_range: (low, high) width / height of a pasted object.
        max_iou: a new object overlapping an earlier one by more is placed
            elsewhere (20 tries, then the scene keeps fewer objects).
        seed: seed of the placement and of the image draws.
        class_names: optional class names, kept on the result.

    Returns:
        `Scenes`.

    Raises:
        SceneDataError: images not (n, h, w, 3) uint8 with n >= 2, labels of
            another length, or bad sizes.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if (
        images.ndim != 4
        or images.shape[-1] != 3
        or images.dtype != np.uint8
        or len(images) < 2
    ):
        raise SceneDataError(
            "Expected source images of shape (n >= 2, height, width, 3) and dtype "
            f"uint8. Received shape {images.shape}, dtype {images.dtype}."
        )
    if len(labels) != len(images):
        raise SceneDataError(
            f"Expected one label per source image ({len(images)}). Received "
            f"{len(labels)}."
        )
    low, high = object_scale
    if (
        not (0.0 < low <= high <= 1.0)
        or int(max_objects) < 1
        or int(scene_size) < 8
        or int(count) < 1
    ):
        raise SceneDataError(
            "Expected 0 < object_scale[0] <= object_scale[1] <= 1, max_objects >= 1, "
            "scene_size >= 8 and count >= 1. Received "
            f"object_scale={object_scale!r}, max_objects={max_objects!r}, "
            f"scene_size={scene_size!r}, count={count!r}."
        )
    rng = np.random.default_rng(seed)
    size = int(scene_size)
    height, width = images.shape[1:3]
    scenes = np.empty((int(count), size, size, 3), dtype=np.uint8)
    all_boxes, all_labels = [], []
    for index in range(int(count)):
        rows, columns = random_square(rng, height, width)
        background = images[int(rng.integers(len(images)))]
        scene = resized(background[rows, columns], size, size).copy()
        boxes, classes = [], []
        for _ in range(int(rng.integers(1, int(max_objects) + 1))):
            source = int(rng.integers(len(images)))
            for _ in range(20):
                side = rng.uniform(low, high) * size
                aspect = rng.uniform(*aspect_range)
                w = int(np.clip(round(side * np.sqrt(aspect)), 2, size))
                h = int(np.clip(round(side / np.sqrt(aspect)), 2, size))
                x = int(rng.integers(0, size - w + 1))
                y = int(rng.integers(0, size - h + 1))
                box = np.array([[x, y, x + w, y + h]], dtype=np.float32) / size
                if not boxes or iou(box, np.stack(boxes)).max() <= max_iou:
                    scene[y : y + h, x : x + w] = resized(images[source], h, w)
                    boxes.append(box[0])
                    classes.append(int(labels[source]))
                    break
        scenes[index] = scene
        all_boxes.append(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
        all_labels.append(np.asarray(classes, dtype=np.int64))
    return Scenes(
        images=scenes,
        boxes=tuple(all_boxes),
        labels=tuple(all_labels),
        class_names=None if class_names is None else tuple(class_names),
    )


def cifar10_path(path=None):
    """Where the CIFAR-10 npz is: `path`, else `KERASLL_DATA`, else the default.

    A folder stands for the `cifar10.npz` inside it; the default is
    `../shared/data/cifar10.npz` (relative to the working directory).
    """
    path = Path(path or os.environ.get(DATA_ENV) or DEFAULT_CIFAR10)
    return path / "cifar10.npz" if path.is_dir() else path


def load_cifar_scenes(
    path=None, train_count=1000, test_count=200, scene_size=64, seed=0, **kwargs
):
    """Train and test scenes from the CIFAR-10 train and test splits.

    Args:
        path: the CIFAR-10 npz (arrays x_train, y_train, x_test, y_test and
            optionally class_names), or a folder holding `cifar10.npz`;
            default `cifar10_path()`.
        train_count: scenes made from the train split.
        test_count: scenes made from the test split.
        scene_size: scene side in pixels.
        seed: train scenes use `seed`, test scenes `seed + 1`.
        **kwargs: more `make_scenes` arguments.

    Returns:
        `(train, test)`, two `Scenes`.

    Raises:
        SceneDataError: no such file, or it lacks the expected arrays.
    """
    path = cifar10_path(path)
    if not path.is_file():
        raise SceneDataError(
            f"Expected the CIFAR-10 npz at {str(path)!r} (argument, {DATA_ENV} or "
            f"the default {str(DEFAULT_CIFAR10)!r}). No such file."
        )
    with np.load(path) as data:
        missing = sorted({"x_train", "y_train", "x_test", "y_test"} - set(data.files))
        if missing:
            raise SceneDataError(
                f"Expected arrays x_train, y_train, x_test, y_test in {str(path)!r}. "
                f"Received {sorted(data.files)} (missing {missing})."
            )
        names = (
            tuple(str(name) for name in data["class_names"])
            if "class_names" in data.files
            else None
        )
        train = make_scenes(
            data["x_train"],
            data["y_train"],
            train_count,
            scene_size,
            seed=seed,
            class_names=names,
            **kwargs,
        )
        test = make_scenes(
            data["x_test"],
            data["y_test"],
            test_count,
            scene_size,
            seed=seed + 1,
            class_names=names,
            **kwargs,
        )
    return train, test


def split_scenes(scenes, test_fraction=0.2, seed=0):
    """A seeded random train/test split of one set of scenes.

    Args:
        scenes: `Scenes`.
        test_fraction: share of the scenes held out for testing.
        seed: seed of the split.

    Returns:
        `(train, test)` `Scenes`, each in the original order.

    Raises:
        SceneDataError: a fraction outside (0, 1), or a split leaving a side
            empty.
    """
    return seeded_split(scenes, test_fraction, seed, "scenes", SceneDataError)


def seeded_split(items, test_fraction, seed, what, error):
    """A seeded random train/test split of a collection with `take`.

    The one split behind `split_scenes` and `keypoints.split_figures`.

    Args:
        items: a sized collection whose `take(indices)` returns a subset.
        test_fraction: share of the items held out for testing.
        seed: seed of the split.
        what: the items' plural name, for the error message.
        error: the `ValueError` subclass to raise.

    Returns:
        `(train, test)`, each from `items.take`, in the original order.

    Raises:
        error: a fraction outside (0, 1), or a split leaving a side empty.
    """
    count = len(items)
    test_count = int(round(float(test_fraction) * count))
    if not 0.0 < float(test_fraction) < 1.0 or not 0 < test_count < count:
        raise error(
            f"Expected a test fraction in (0, 1) leaving {what} on both sides. "
            f"Received: test_fraction={test_fraction} for {count} {what}."
        )
    order = np.random.default_rng(seed).permutation(count)
    return items.take(np.sort(order[test_count:])), items.take(
        np.sort(order[:test_count])
    )
