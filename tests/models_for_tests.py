"""Tiny models, data sets and training shared by the tests."""

import keras
import numpy as np


def small_cnn(input_shape=(8, 8, 2), classes=2, name="small_cnn"):
    """Two-stage CNN with named stage outputs, for fast tests."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stage1")(
        inputs
    )
    x = keras.layers.Conv2D(
        16, 3, strides=2, padding="same", activation="relu", name="stage2"
    )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def marked_noise_data(count, seed, hard_fraction=0.25):
    """Images whose label is learnable, except on a marked hard subset.

    Channel 0 holds noise whose mean sign is the label; channel 1 is 1.0 on
    hard items, whose labels are random, so their loss stays high.

    Returns:
        Tuple (x, y, hard) with x float32 (count, 8, 8, 2), y int32, hard bool.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 8, 8, 2)).astype("float32")
    hard = rng.random(count) < hard_fraction
    x[..., 1] = hard[:, None, None].astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype("int32")
    y[hard] = rng.integers(0, 2, hard.sum())
    return x, y, hard


def auc(scores, positive):
    """Probability that a random positive scores above a random negative."""
    scores = np.asarray(scores)
    pos, neg = scores[positive], scores[~positive]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return greater + 0.5 * ties


def pair_accuracy(predicted, true):
    """Share of all pairs of items that `predicted` orders as `true` does.

    A pair counts when both say "the first is above the second", or both do
    not; 0.5 is chance for a score that carries no information.
    """
    first, second = np.triu_indices(len(true), 1)
    agree = (predicted[first] > predicted[second]) == (true[first] > true[second])
    return np.mean(agree)


def train_task_model(task, model_name, x, y, config, weight_decay=0.0):
    """Trains a task's model at width 0.25 with its loss head, seed 0.

    Args:
        task: a `kerasll.tasks` task (its model, loss and taps are used).
        model_name: the task's model name (e.g. "ssd", "hourglass").
        x, y: the task's training arrays.
        config: a `TrainingConfig`.
        weight_decay: the model's weight decay.

    Returns:
        The trained `LossLearner`.
    """
    from kerasll.active.training import train_model

    return train_model(
        lambda: task.build_model(model_name, 0.25, weight_decay),
        x,
        y,
        config,
        with_head=True,
        augmentation=None,
        seed=0,
        loss=task.loss(),
        metrics=[],
        taps=task.taps,
    )


def two_cycle_config(**arguments):
    """An `ExperimentConfig` of one trial and two cycles for a 60-item pool.

    20 labeled items to start, then 10 a cycle picked among 30 candidates, at
    width 0.25; `arguments` (task, dataset, strategies, training...) add to
    or override these.
    """
    from kerasll.active.protocol import ExperimentConfig

    sizes = dict(
        width=0.25, initial_size=20, budget=10, subset_size=30, cycles=2, trials=1
    )
    return ExperimentConfig(**{**sizes, **arguments})


PATCH_COLORS = ((220, 40, 40), (40, 200, 40), (40, 40, 220))


def colored_patches(count, classes=3, seed=0):
    """32x32 noise patches in one color per class: objects a detector learns.

    Returns:
        `(images, labels)`: (count, 32, 32, 3) uint8 and (count,) classes,
        to paste into scenes with `kerasll.detection.make_scenes`.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    colors = np.array(PATCH_COLORS[:classes])
    images = colors[labels][:, None, None, :] + rng.normal(0, 30, (count, 32, 32, 3))
    return np.clip(images, 0, 255).astype(np.uint8), labels
