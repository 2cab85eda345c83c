"""What the detection and keypoint tasks share: a pool split and a test split
of images with dense training targets, mirrored for training.

`SplitTask` holds the two splits (`Scenes`, `Figures`: anything with
`images` and a length), checks them, encodes each split's targets once and
adds each labeled item's mirror image to the training arrays. A subclass
says how targets are encoded (`encode_targets`) and mirrored
(`mirror_arrays`).
"""

import abc
import os
from numbers import Integral

import numpy as np
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.active.task import Task
from kerasll.tasks import CIFAR_ITEM_SIZE

_COUNT = [Interval(Integral, 1, None, closed="left"), None]
# The arguments of `load_detection_task` and `load_keypoint_task`, checked by
# `validate_arguments` before any data loads; each loader checks what its
# `image_size` must hold.
LOADER_CONSTRAINTS = {
    "source": [str, os.PathLike],
    "data": [str, os.PathLike, None],
    "seed": [Interval(Integral, 0, None, closed="left")],
    "image_size": [tuple, list, None],
    "train_count": _COUNT,
    "test_count": _COUNT,
    "images": [str, os.PathLike, None],
}


def check_loader_arguments(arguments, square):
    """Checks a loader's arguments and the size of the items it makes.

    Args:
        arguments: {name: value} of every argument in `LOADER_CONSTRAINTS`.
        square: whether the items must be square.

    Returns:
        (height, width) of the items: `image_size`, else `CIFAR_ITEM_SIZE`.

    Raises:
        ValueError: an argument outside `LOADER_CONSTRAINTS`, or an
            `image_size` other than two integers >= 1 (equal when `square`).
    """
    validate_arguments(LOADER_CONSTRAINTS, arguments)
    image_size = arguments["image_size"]
    sizes = tuple(image_size or CIFAR_ITEM_SIZE)
    integers = len(sizes) == 2 and all(
        isinstance(size, Integral) and not isinstance(size, bool) and size >= 1
        for size in sizes
    )
    if not integers or (square and sizes[0] != sizes[1]):
        shape = ("two equal integers >= 1 (square items)" if square
                 else "two integers >= 1 (height, width)")
        raise ValueError(
            f"Expected image_size as {shape}. Received: image_size={image_size!r}"
        )
    return int(sizes[0]), int(sizes[1])


class SplitTask(Task):
    """A task on train and test splits of images with encoded targets.

    Class attributes set by subclasses:
        items: how the splits' items are called in messages ("scenes").

    Args:
        name: short name of the data set.
        train: the pool's split (`images` of shape (n, H, W, C)).
        test: the test split (same image shape).
        mirror: also train on the mirror image of every labeled item.

    Raises:
        ValueError: an empty split, splits of different image shapes, or an
            argument outside `parameter_constraints`.
    """

    items = "items"
    parameter_constraints = {"mirror": ["boolean"]}

    def __init__(self, name, train, test, mirror=True):
        if not len(train) or not len(test):
            raise ValueError(
                f"Expected train and test {self.items}. Received "
                f"{len(train)} train and {len(test)} test {self.items}"
            )
        if train.images.shape[1:] != test.images.shape[1:]:
            raise ValueError(
                f"Expected train and test {self.items} of one shape. Received "
                f"{train.images.shape[1:]} and {test.images.shape[1:]}"
            )
        self._name, self.train, self.test = name, train, test
        self.mirror = validate_arguments(
            SplitTask.parameter_constraints, {"mirror": mirror}
        )["mirror"]
        self._targets = {}

    @property
    def name(self):
        return self._name

    @property
    def pool_size(self):
        return len(self.train)

    @property
    def input_shape(self):
        """(height, width, channels) of an item's image."""
        return tuple(self.train.images.shape[1:])

    def split(self, split):
        """The "train" (pool) or "test" split.

        Raises:
            ValueError: another name.
        """
        if split == "train":
            return self.train
        if split == "test":
            return self.test
        raise ValueError(f"Expected split 'train' or 'test'. Received: {split!r}")

    @abc.abstractmethod
    def encode_targets(self, items):
        """The training targets of a split's items, (n, ...)."""

    @abc.abstractmethod
    def mirror_arrays(self, indices, images, targets):
        """The mirror images of pool items and their targets.

        Args:
            indices: the pool indices.
            images: their images.
            targets: their encoded targets.

        Returns:
            `(images, targets)` of the mirror images.
        """

    def targets(self, split):
        """The encoded targets of a split's items, computed once."""
        if split not in self._targets:
            self._targets[split] = self.encode_targets(self.split(split))
        return self._targets[split]

    def training_arrays(self, indices):
        """The labeled items' images and targets, then (with `mirror`) their
        mirror images'."""
        indices = np.asarray(indices, dtype=np.int64)
        images, targets = self.train.images[indices], self.targets("train")[indices]
        if not self.mirror:
            return images, targets
        flipped_images, flipped_targets = self.mirror_arrays(indices, images, targets)
        return (
            np.concatenate([images, flipped_images]),
            np.concatenate([targets, flipped_targets]),
        )
