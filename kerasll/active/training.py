"""Training the target model of one active-learning cycle.

The schedule follows the paper (CIFAR-10: 200 epochs, batch 128, SGD lr 0.1,
momentum 0.9, weight decay 5e-4, lr x0.1 at epoch 160, head detached at
epoch 120). Epoch counts of the lr drop and the detach are fractions of
`epochs` (0.8 and 0.6), so short CPU runs keep the schedule's shape.
"""

import dataclasses
from numbers import Integral, Real

import keras
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.active.pipeline import training_dataset
from kerasll.learner import LossLearner

_AT_LEAST_ONE = [Interval(Integral, 1, None, closed="left")]
_FRACTION = [Interval(Real, 0, 1, closed="both")]
_HEAD = LossLearner.parameter_constraints


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the target model is trained in each cycle.

    Args:
        epochs: epochs per cycle (paper: 200).
        batch_size: mini-batch size B (paper: 128).
        learning_rate: initial SGD learning rate (paper: 0.1).
        momentum: SGD momentum (paper: 0.9).
        weight_decay: L2 weight decay of the built-in models' kernels and of
            the loss head's Dense kernels (paper: 5e-4 for both: the module
            shares the target's optimizer settings).
        lr_drop_fraction: share of epochs after which the learning rate is
            multiplied by `lr_drop_factor` (paper: 160/200 = 0.8).
        lr_drop_factor: the learning-rate multiplier (paper: 0.1).
        detach_fraction: share of epochs after which the loss head's gradient
            no longer reaches the target model (paper: 120/200 = 0.6).
        margin: ranking margin xi of the loss-prediction loss (paper: 1.0).
        weight: weight lambda of the loss-prediction loss (paper: 1.0).
        head_units: width of each loss-head branch (paper: 128).
        eval_batch_size: batch size for evaluation and scoring.
        run_eagerly: run train/test steps eagerly instead of tracing them.
            Only worth it for tiny smoke runs (a few steps per cycle), where
            tracing a fresh model every cycle costs more than the steps.

    Raises:
        ArgumentError: a value outside `parameter_constraints` (a
            `ValueError` naming it; NaN and infinities included).
    """

    parameter_constraints = {
        "epochs": _AT_LEAST_ONE,
        "batch_size": _AT_LEAST_ONE,
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": _HEAD["head_weight_decay"],
        "lr_drop_fraction": _FRACTION,
        "lr_drop_factor": [Interval(Real, 0, None, closed="neither")],
        "detach_fraction": _FRACTION,
        "margin": _HEAD["margin"],
        "weight": _HEAD["weight"],
        "head_units": _HEAD["head_units"],
        "eval_batch_size": _AT_LEAST_ONE,
        "run_eagerly": ["boolean"],
    }

    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_drop_fraction: float = 0.8
    lr_drop_factor: float = 0.1
    detach_fraction: float = 0.6
    margin: float = 1.0
    weight: float = 1.0
    head_units: int = 128
    eval_batch_size: int = 512
    run_eagerly: bool = False

    def __post_init__(self):
        checked = validate_arguments(
            self.parameter_constraints, dataclasses.asdict(self)
        )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def lr_drop_epoch(self):
        """0-based epoch from which the lower learning rate applies."""
        return int(round(self.lr_drop_fraction * self.epochs))

    @property
    def detach_epoch(self):
        """0-based epoch from which the loss head is detached."""
        return int(round(self.detach_fraction * self.epochs))

    def to_dict(self):
        """JSON-friendly form."""
        return dataclasses.asdict(self)


def make_model(backbone, config, with_head, taps="auto"):
    """Wraps the target network in a `LossLearner` when the strategy needs one.

    Args:
        backbone: a freshly built functional target network.
        config: a `TrainingConfig`.
        with_head: whether to attach the loss prediction module.
        taps: the loss head's taps ("auto" or layer names).

    Returns:
        `backbone` itself, or a `LossLearner` around it.
    """
    if not with_head:
        return backbone
    return LossLearner(
        backbone,
        taps=taps,
        head_units=config.head_units,
        margin=config.margin,
        weight=config.weight,
        detach_epoch=config.detach_epoch,
        head_weight_decay=config.weight_decay,
    )


def lr_schedule(config, steps_per_epoch):
    """The learning rate: `learning_rate`, times `lr_drop_factor` from the
    first step of epoch `lr_drop_epoch` on.

    The optimizer evaluates the schedule at its iteration count, which is 0
    for the first step, so epoch E starts at step `E * steps_per_epoch`; and
    `PiecewiseConstantDecay` keeps the first value while `step <= boundary`.
    The boundary is therefore the last step of epoch E - 1.

    Args:
        config: a `TrainingConfig`.
        steps_per_epoch: batches per epoch.

    Returns:
        A Keras learning-rate schedule, or a float when the rate is lowered
        from the very first step (`lr_drop_epoch == 0`).
    """
    dropped = config.learning_rate * config.lr_drop_factor
    boundary = config.lr_drop_epoch * steps_per_epoch - 1
    if boundary < 0:
        return dropped
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [boundary], [config.learning_rate, dropped]
    )


def compile_model(model, config, steps_per_epoch, loss=None, metrics=("accuracy",)):
    """Compiles with a fresh SGD and the step-wise learning-rate drop.

    Every cycle gets a new optimizer, as in the paper's reference code, also
    when the weights are warm-started.

    Args:
        model: the model from `make_model`.
        config: a `TrainingConfig`.
        steps_per_epoch: batches per epoch, to place the drop in steps.
        loss: the per-sample task loss (default: softmax cross-entropy of
            integer labels, from logits).
        metrics: metrics to report while training.
    """
    learning_rate = lr_schedule(config, steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=config.momentum),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
        run_eagerly=config.run_eagerly,
    )


def train_model(
    build_backbone,
    x,
    y,
    config,
    *,
    with_head,
    augmentation,
    seed,
    initial_weights=None,
    callbacks=(),
    loss=None,
    metrics=("accuracy",),
    taps="auto",
):
    """Builds, optionally warm-starts, and trains the model of one cycle.

    All randomness (weight initialisation, epoch orders, augmentation) comes
    from `seed`: the same call returns the same weights.

    Args:
        build_backbone: callable returning a fresh functional target network.
        x: labeled images, (N, H, W, C) raw pixels.
        y: their targets: integer labels, or arrays (a detector's encoded
            boxes).
        config: a `TrainingConfig`.
        with_head: whether to train with the loss prediction module.
        augmentation: an `Augmentation`, or None.
        seed: integer seed.
        initial_weights: optional `.weights.h5` path to start from (warm
            start); it must come from a model built the same way.
        callbacks: extra Keras callbacks.
        loss, metrics: as in `compile_model`.
        taps: the loss head's taps, as in `make_model`, or a callable
            giving them for the built network.

    Returns:
        The trained model (a `LossLearner` when `with_head`).
    """
    keras.utils.set_random_seed(seed)
    backbone = build_backbone()
    taps = taps(backbone) if callable(taps) else taps
    model = make_model(backbone, config, with_head, taps)
    if initial_weights is not None:
        model.load_weights(initial_weights)
    dataset, steps = training_dataset(
        x, y, config.batch_size, config.epochs, augmentation, seed
    )
    compile_model(model, config, steps, loss, metrics)
    model.fit(
        dataset,
        epochs=config.epochs,
        steps_per_epoch=steps,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    )
    return model
