"""Input pipelines feeding images to training, evaluation and scoring.

Images stay uint8 in memory and are cast to float32 batch by batch; the model
scales them itself. The training pipeline draws every epoch's order and every
image's augmentation up front from one numpy seed, so the batches of a cycle
are a pure function of (labeled images, seed).

On the TensorFlow backend the batches come from `tf.data` with TensorFlow's
stateless image ops; on the other backends from a `keras.utils.PyDataset`
with the same epoch orders and a numpy augmentation of the same kind
(`kerasll.augment.augment_batch`). Both are deterministic per seed; their
augmented pixels differ, since their random draws differ.
"""

import math

import keras
import numpy as np

from kerasll.augment import augment_batch, augment_image, draw_augmentations


def training_dataset(x, y, batch_size, epochs, augmentation, seed):
    """Shuffled, augmented batches for `epochs` epochs in one dataset.

    Each epoch is a fresh permutation of the items cut into
    `ceil(len(x) / batch_size)` batches (the last one may be short); pass the
    returned `steps_per_epoch` to `fit` together with `epochs`.

    Args:
        x: images, (N, H, W, C) numpy array (raw pixel values).
        y: targets, (N, ...): integer labels, or float arrays per item.
        batch_size: items per batch (paper: 128).
        epochs: number of epochs the dataset covers.
        augmentation: an `Augmentation`, or None for none.
        seed: integer seed of the orders and augmentations.

    Returns:
        Tuple `(dataset, steps_per_epoch)`: a `tf.data.Dataset` on the
        TensorFlow backend, a `TrainingBatches` on the others.

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
    if keras.backend.backend() != "tensorflow":
        batches = TrainingBatches(x, y, batch_size, epochs, augmentation, seed)
        return batches, batches.steps_per_epoch
    return _tf_training_dataset(x, y, batch_size, epochs, augmentation, seed)


def as_targets(y):
    """Training targets as Keras takes them: int32 class labels, else float32
    arrays of any shape (a detector's encoded boxes)."""
    y = np.asarray(y)
    return y.astype(np.int32 if np.issubdtype(y.dtype, np.integer) else np.float32)


def _epoch_orders(rng, count, epochs):
    """One permutation of the items per epoch, (epochs, count)."""
    return np.stack([rng.permutation(count) for _ in range(epochs)])


def _tf_training_dataset(x, y, batch_size, epochs, augmentation, seed):
    """The `tf.data` form of `training_dataset` (TensorFlow backend)."""
    import tensorflow as tf

    count = len(x)
    rng = np.random.default_rng(seed)
    orders = _epoch_orders(rng, count, epochs)
    seeds = rng.integers(0, 2**31 - 1, size=(epochs, count, 2), dtype=np.int64)
    images = tf.constant(x)
    labels = tf.constant(as_targets(y))

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


class TrainingBatches(keras.utils.PyDataset):
    """`training_dataset` as a `keras.utils.PyDataset` (non-TensorFlow backends).

    Batch `i` is step `i % steps_per_epoch` of epoch `i // steps_per_epoch`,
    so one instance covers all epochs, like the `tf.data` form. The epoch
    orders are the ones the `tf.data` form uses for the same seed; crops and
    flips are drawn after them from the same generator.

    Args:
        x, y, batch_size, epochs, augmentation, seed: as in
            `training_dataset`.
    """

    def __init__(self, x, y, batch_size, epochs, augmentation, seed):
        super().__init__()
        self.images = x
        self.labels = as_targets(y)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = math.ceil(len(x) / self.batch_size)
        self.epochs = int(epochs)
        enabled = augmentation is not None and augmentation.enabled
        self.augmentation = augmentation if enabled else None
        rng = np.random.default_rng(seed)
        self.orders = _epoch_orders(rng, len(x), self.epochs)
        if self.augmentation is not None:
            self.offsets, self.flips = draw_augmentations(
                rng, self.orders.shape, self.augmentation
            )

    def __len__(self):
        return self.steps_per_epoch * self.epochs

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"Expected a batch index in [0, {len(self)}). Received: {index}"
            )
        epoch, step = divmod(index, self.steps_per_epoch)
        positions = slice(step * self.batch_size, (step + 1) * self.batch_size)
        items = self.orders[epoch, positions]
        images = self.images[items].astype(np.float32)
        if self.augmentation is not None:
            images = augment_batch(
                images,
                self.offsets[epoch, positions],
                self.flips[epoch, positions],
                self.augmentation,
            )
        return images, self.labels[items]


class InferenceBatches(keras.utils.PyDataset):
    """`inference_dataset` as a `keras.utils.PyDataset` (non-TensorFlow backends).

    Args:
        x, y, batch_size: as in `inference_dataset`.
    """

    def __init__(self, x, y=None, batch_size=256):
        super().__init__()
        self.images = x
        self.labels = None if y is None else np.asarray(y, dtype=np.int32)
        self.batch_size = int(batch_size)

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"Expected a batch index in [0, {len(self)}). Received: {index}"
            )
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        images = np.asarray(self.images[rows], dtype=np.float32)
        if self.labels is None:
            return images
        return images, self.labels[rows]


def inference_dataset(x, y=None, batch_size=256):
    """Batches of float32 images (and labels), in order, for predict/evaluate.

    Args:
        x: images, (N, H, W, C) numpy array.
        y: optional labels, (N,).
        batch_size: items per batch.

    Returns:
        A `tf.data.Dataset` on the TensorFlow backend, an `InferenceBatches`
        on the others.
    """
    if keras.backend.backend() != "tensorflow":
        return InferenceBatches(x, y, batch_size)
    import tensorflow as tf

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
