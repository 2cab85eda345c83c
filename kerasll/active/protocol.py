"""The active-learning protocol of an experiment, validated before training.

Defaults are the paper's CIFAR-10 protocol: 1,000 random initial labels,
K = 1,000 labels per cycle chosen from a random subset of M = 10,000
unlabeled items, 10 cycles (1k -> 10k labels), mean over 5 trials.
"""

import dataclasses
from numbers import Integral

from kerasll_serving.validation import Interval, validate_arguments

from kerasll.active.errors import ProtocolError
from kerasll.active.strategies import DECOUPLED, get_strategy, parse_strategies
from kerasll.active.training import TrainingConfig
from kerasll.models import WIDTH

PAPER_STRATEGIES = ("learning_loss", "entropy", "coreset", "random")
_SIZE = [Interval(Integral, 1, None, closed="left")]


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines an experiment's results.

    Args:
        dataset: data set name ("digits", "cifar10", a file or folder name).
        model: built-in model name of the task ("resnet18", "small_cnn";
            "ssd" for detection); None: the task's `default_model()`,
            filled in by `with_task_defaults` when the experiment runs.
        width: channel multiplier of the model.
        strategies: strategy specs or `Strategy` instances, compared on
            common random numbers (`kerasll.active.strategies`); held as
            canonical specs, e.g. "learning_loss_safe:audit_share=0.2".
        initial_size: random labels before the first cycle (paper: 1,000).
        budget: K, items labeled per cycle (paper: 1,000).
        subset_size: M, random unlabeled items scored per cycle (paper:
            10,000); capped at the unlabeled pool when that is smaller.
        cycles: training cycles; cycle c trains on initial + c*K labels
            (paper: 10).
        trials: repetitions with different seeds; within a trial every
            strategy starts from the same initial set (paper's figure: 5).
        seed: the one seed all randomness derives from.
        warm_start: start each cycle from the previous cycle's weights (the
            paper's code) instead of from scratch.
        warm_start_epochs: epochs of a warm-started cycle (cycles after the
            first); None trains them as long as the first.
        training: a `TrainingConfig`; None: the paper's schedule with the
            task's `training_defaults` (detection: lr 0.1, batch 32, 20
            epochs), filled in by `with_task_defaults` when the experiment runs.
        task_kind: the `Task.kind` the experiment runs ("classification",
            "detection", "keypoints"); `run_experiment` refuses a `Task` of
            another kind.

    Raises:
        ProtocolError: a value outside `parameter_constraints` (bools, NaN,
            infinities and non-integral sizes included), an empty dataset
            name, or a subset smaller than the budget.
        UnknownStrategyError: unknown strategy names, or a `Strategy`
            instance its name does not rebuild from the registry.
    """

    parameter_constraints = {
        "dataset": [str],
        "model": [str, None],
        "width": WIDTH,
        "strategies": [str, list, tuple],
        "initial_size": _SIZE,
        "budget": _SIZE,
        "subset_size": _SIZE,
        "cycles": _SIZE,
        "trials": _SIZE,
        "seed": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "warm_start_epochs": [*_SIZE, None],
        "training": [TrainingConfig, None],
        "task_kind": [str],
    }

    dataset: str = "cifar10"
    model: str = None
    width: float = 1.0
    strategies: tuple = PAPER_STRATEGIES
    initial_size: int = 1000
    budget: int = 1000
    subset_size: int = 10000
    cycles: int = 10
    trials: int = 5
    seed: int = 0
    warm_start: bool = False
    warm_start_epochs: int = None
    training: TrainingConfig = None
    task_kind: str = "classification"

    def __post_init__(self):
        checked = validate_arguments(
            self.parameter_constraints,
            {name: getattr(self, name) for name in self.parameter_constraints},
            error=ProtocolError,
        )
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "strategies", tuple(parse_strategies(self.strategies)))
        if not self.dataset.strip():
            raise ProtocolError(
                "Expected dataset to be a non-empty name. "
                f"Received: dataset={self.dataset!r}"
            )
        if self.subset_size < self.budget:
            raise ProtocolError(
                "Expected the random subset M to hold at least the budget K. "
                f"Received: subset_size={self.subset_size} < budget={self.budget}"
            )

    def with_task_defaults(self, task):
        """This config with the task's defaults in place of None, checked.

        Args:
            task: the `kerasll.active.task.Task` the experiment runs.

        Returns:
            An `ExperimentConfig` whose `model` and `training` are set: the
            task's `default_model()` and `task.training_config()` where None.

        Raises:
            ValueError: a model the task does not build.
        """
        model = task.default_model()[0] if self.model is None else self.model
        task.check_model(model)
        training = task.training_config() if self.training is None else self.training
        return dataclasses.replace(self, model=model, training=training)

    def cycle_training(self, cycle, head_training):
        """The `TrainingConfig` of one cycle of a strategy.

        Args:
            cycle: cycle number.
            head_training: the strategy's `head_training` ("plain", "joint",
                "decoupled").

        Returns:
            `training`, with `warm_start_epochs` epochs for a warm-started
            cycle and the head detached from the first epoch when decoupled.
        """
        training = self.training
        if self.warm_start and cycle > 0 and self.warm_start_epochs is not None:
            training = dataclasses.replace(training, epochs=self.warm_start_epochs)
        if head_training == DECOUPLED:
            training = dataclasses.replace(training, detach_fraction=0.0)
        return training

    @property
    def final_labeled(self):
        """Labels in the last cycle: initial + (cycles - 1) x K."""
        return self.initial_size + (self.cycles - 1) * self.budget

    def check_pool(self, pool_size):
        """Raises unless the pool holds every label the protocol asks for.

        Args:
            pool_size: number of training items.

        Raises:
            ProtocolError: the budget is larger than the remaining pool.
        """
        if self.final_labeled > pool_size:
            raise ProtocolError(
                "Expected initial_size + (cycles - 1) x budget <= pool size. "
                f"Received: {self.initial_size} + {self.cycles - 1} x {self.budget} "
                f"= {self.final_labeled} labels for a pool of {pool_size} items. "
                "Lower the initial set, the budget or the number of cycles."
            )

    def to_dict(self):
        """JSON-friendly form (the record a resumed run must match)."""
        record = dataclasses.asdict(self)
        record["strategies"] = list(self.strategies)
        record["strategy_configs"] = {
            name: get_strategy(name).get_config() for name in self.strategies
        }
        return record

    @classmethod
    def from_dict(cls, record):
        """Inverse of `to_dict`."""
        record = dict(record)
        if record["training"] is not None:
            record["training"] = TrainingConfig(**record["training"])
        record["strategies"] = tuple(record["strategies"])
        record.pop("strategy_configs", None)  # Derived from the specs.
        return cls(**record)
