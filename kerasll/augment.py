"""Training-time image augmentation, applied in the input pipeline.

Augmentation is never part of the model: the exported scoring graph sees the
images exactly as a device captures them. All randomness is explicit: per-image
stateless seeds in TensorFlow (`augment_image`), drawn crop offsets and flips
in numpy (`augment_batch`, for the other Keras backends), so a pipeline built
from the same seed produces the same images in any process.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random crop after zero padding, and an optional horizontal flip.

    The paper's CIFAR-10 setting is `Augmentation(pad=4, flip=True)`; 8x8
    digits use `Augmentation(pad=1, flip=False)` (a mirrored digit is a
    different glyph).

    Args:
        pad: pixels of zero padding on each side before a random crop back to
            the original size; 0 disables cropping.
        flip: whether to flip left-right with probability 1/2.

    Raises:
        ValueError: a negative `pad`.
    """

    pad: int = 4
    flip: bool = True

    def __post_init__(self):
        if int(self.pad) < 0:
            raise ValueError(f"Expected pad >= 0. Received: pad={self.pad}")

    @property
    def enabled(self):
        """Whether this augmentation changes images at all."""
        return self.pad > 0 or self.flip


def default_augmentation(input_shape, name=""):
    """The augmentation a data set gets unless told otherwise.

    Args:
        input_shape: (height, width, channels) of the images.
        name: data set name; "digits" gets a 1-pixel pad and no flip.

    Returns:
        An `Augmentation`: pad of 1/8 of the height (4 on 32x32) with flips
        for natural images, `Augmentation(pad=1, flip=False)` for digits.
    """
    if name == "digits":
        return Augmentation(pad=1, flip=False)
    return Augmentation(pad=max(1, int(input_shape[0]) // 8), flip=True)


def augment_image(image, seed, augmentation):
    """Augments one image.

    Args:
        image: float tensor (height, width, channels).
        seed: int tensor of shape (2,), the stateless seed of this image.
        augmentation: an `Augmentation`.

    Returns:
        The augmented image, same shape and dtype.
    """
    import tensorflow as tf

    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if augmentation.pad > 0:
        pad = augmentation.pad
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        image = tf.image.stateless_random_crop(padded, tf.shape(image), crop_seed)
    if augmentation.flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image


def draw_augmentations(rng, shape, augmentation):
    """Draws the random crops and flips of `augment_batch` up front.

    Args:
        rng: a `numpy.random.Generator`.
        shape: leading shape of the draws, e.g. (epochs, items).
        augmentation: an `Augmentation`.

    Returns:
        Tuple `(offsets, flips)`: uint8 crop offsets (row, column) in
        [0, 2 * pad], of shape `shape + (2,)`, and booleans of shape `shape`
        (True: flip left-right, with probability 1/2 when `flip`).
    """
    shape = tuple(shape)
    offsets = rng.integers(0, 2 * augmentation.pad + 1, size=(*shape, 2))
    flips = rng.random(shape) < 0.5 if augmentation.flip else np.zeros(shape, bool)
    return offsets.astype(np.uint8), flips


def augment_batch(images, offsets, flips, augmentation):
    """Augments a batch in numpy, as `augment_image` does one image in TensorFlow.

    Zero padding by `pad` pixels, a crop back to the original size at
    `offsets`, then a left-right flip where `flips` is True.

    Args:
        images: array (B, height, width, channels).
        offsets: integer array (B, 2), crop offsets (row, column) in
            [0, 2 * pad].
        flips: boolean array (B,).
        augmentation: an `Augmentation`.

    Returns:
        A new array, same shape and dtype as `images`.
    """
    if augmentation.pad > 0:
        pad = augmentation.pad
        height, width = images.shape[1:3]
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        offsets = np.asarray(offsets, dtype=np.int64)
        rows = offsets[:, 0, None] + np.arange(height)
        cols = offsets[:, 1, None] + np.arange(width)
        batch = np.arange(len(images))[:, None, None]
        images = padded[batch, rows[:, :, None], cols[:, None, :]]
    if augmentation.flip:
        images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
    return images
