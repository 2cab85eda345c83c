"""tf.data pipelines feeding images to training, evaluation and scoring.

Images stay uint8 in memory and are cast to float32 batch by batch; the model
scales them itself. The training pipeline draws every epoch's order and every
image's augmentation seed from one numpy seed up front, so the batches of a
cycle are a pure function of (labeled images, seed).
"""

import math

import numpy as np
import tensorflow as tf

from kerasll.augment import augment_image


def training_dataset(x, y, batch_size, epochs, augmentation, seed):
    """Shuffled, augmented batches for `epochs` epochs in one dataset.

    Each epoch is a fresh permutation of the items cut into
    `ceil(len(x) / batch_size)` batches (the last one may be short); pass the
    returned `steps_per_epoch` to `fit` together with `epochs`.

    Args:
        x: images, (N, H, W, C) numpy array (raw pixel values).
        y: integer labels, (N,).
        batch_size: items per batch (paper: 128).
        epochs: number of epochs the dataset covers.
        augmentation: an `Augmentation`, or None for none.
        seed: integer seed of the orders and augmentations.

    Returns:
        Tuple `(dataset, steps_per_epoch)`.

    Raises:
        ValueError: empty inputs, mismatched lengths, bad sizes.
    """
    count = len(x)
    if count == 0 or count != len(y):
        raise ValueError(
            "Expected as many labels as images, at least one. "
            f"Received: {count} images, {len(y)} labels"
        )
    if int(batch_size) < 1 or int(epochs) < 1:
        raise ValueError(
            "Expected batch_size >= 1 and epochs >= 1. "
            f"Received: batch_size={batch_size}, epochs={epochs}"
        )
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(count) for _ in range(epochs)])
    seeds = rng.integers(0, 2**31 - 1, size=(epochs, count, 2), dtype=np.int64)
    images = tf.constant(x)
    labels = tf.constant(np.asarray(y, dtype=np.int32))

    def load(index, item_seed):
        image = tf.cast(tf.gather(images, index), tf.float32)
        if augmentation is not None and augmentation.enabled:
            image = augment_image(image, item_seed, augmentation)
        return image, tf.gather(labels, index)

    def epoch(order, epoch_seeds):
        return (
            tf.data.Dataset.from_tensor_slices((order, epoch_seeds))
            .map(load, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
        )

    dataset = tf.data.Dataset.from_tensor_slices((orders, seeds)).flat_map(epoch)
    steps_per_epoch = math.ceil(count / batch_size)
    dataset = dataset.apply(
        tf.data.experimental.assert_cardinality(steps_per_epoch * epochs)
    )
    return dataset.prefetch(tf.data.AUTOTUNE), steps_per_epoch


def inference_dataset(x, y=None, batch_size=256):
    """Batches of float32 images (and labels), in order, for predict/evaluate.

    Args:
        x: images, (N, H, W, C) numpy array.
        y: optional labels, (N,).
        batch_size: items per batch.

    Returns:
        A `tf.data.Dataset`.
    """

    def cast(images, *labels):
        images = tf.cast(images, tf.float32)
        return (images, *labels) if labels else images

    slices = (x,) if y is None else (x, np.asarray(y, dtype=np.int32))
    return (
        tf.data.Dataset.from_tensor_slices(slices)
        .batch(batch_size)
        .map(cast)
        .prefetch(tf.data.AUTOTUNE)
    )
