"""What the active-learning engine needs from a task, in one interface.

A task is everything that differs between, say, classification and
detection: its data (the pool and the test set), its models, its per-item
loss, its metric, and the model views through which strategies read a
trained model (`kerasll.active.view` describes a view). The engine owns this
interface and only talks to it; the tasks (`kerasll.tasks`) implement it and
import the engine, never the other way round.
"""

import abc

from kerasll.active.records import Metric
from kerasll.active.training import TrainingConfig


class Task(abc.ABC):
    """A data set with the models, loss, metric and views of one kind of task.

    Class attributes set by subclasses:
        kind: the task's name ("classification", "detection").
        metric_name: how summaries and plots name the metric.
        metric_column: the metric's column name in results.csv.
        secondary_metrics: other metrics reported every cycle, as
            `kerasll.active.records.Metric`s (`evaluate_secondary` computes
            them); none by default.
        models: model names `build_model` accepts; `default_model` picks
            one when none is named (the first, unless a task decides by
            its data).
        training_defaults: `TrainingConfig` arguments that differ from the
            paper's CIFAR-10 schedule for this task.
    """

    kind = None
    metric_name = None
    metric_column = None
    secondary_metrics = ()
    models = ()
    training_defaults = {}

    @property
    @abc.abstractmethod
    def name(self):
        """Short name of the data set."""

    @property
    @abc.abstractmethod
    def class_names(self):
        """One name per class."""

    @property
    def num_classes(self):
        """Number of classes."""
        return len(self.class_names)

    @property
    @abc.abstractmethod
    def pool_size(self):
        """Number of items in the unlabeled pool (the training split)."""

    @abc.abstractmethod
    def describe(self):
        """One line: name, sizes, item shape, classes."""

    @abc.abstractmethod
    def fingerprint(self):
        """A digest of the data and of the task's options that change results
        (not in the experiment's config), to recognise them on resume."""

    @classmethod
    def training_config(cls, **overrides):
        """A `TrainingConfig` with this task's defaults.

        Args:
            **overrides: `TrainingConfig` arguments; None values are left to
                the defaults.

        Returns:
            The paper's schedule, updated by `training_defaults`, then by the
            overrides.
        """
        given = {name: value for name, value in overrides.items() if value is not None}
        return TrainingConfig(**{**cls.training_defaults, **given})

    @classmethod
    def metric(cls):
        """The task's `kerasll.active.records.Metric` (name and CSV column)."""
        return Metric(cls.metric_name, cls.metric_column)

    def default_model(self):
        """The model to build when none is named, and why.

        Returns:
            (model name, a short reason for the user).
        """
        return self.models[0], f"the {self.kind} task's model"

    @classmethod
    def check_model(cls, model):
        """Raises unless `model` names one of this task's models.

        Raises:
            ValueError: an unknown model name.
        """
        if model not in cls.models:
            raise ValueError(
                f"Expected a {cls.kind} model in {sorted(cls.models)}. "
                f"Received: model={model!r}"
            )

    @abc.abstractmethod
    def build_model(self, model, width, weight_decay):
        """A freshly initialised target network.

        Args:
            model: one of `models`.
            width: channel multiplier.
            weight_decay: L2 weight decay of its kernels.

        Returns:
            A functional `keras.Model`.
        """

    @abc.abstractmethod
    def taps(self, backbone):
        """The loss head's taps on `backbone` ("auto" or layer names)."""

    @abc.abstractmethod
    def loss(self):
        """A fresh per-sample Keras loss of the model's output."""

    def compile_metrics(self):
        """Metrics Keras reports while training (a list for `compile`)."""
        return []

    @abc.abstractmethod
    def training_arrays(self, indices):
        """The inputs and training targets of pool items.

        Args:
            indices: labeled pool indices.

        Returns:
            `(x, y)`: raw inputs and targets (class labels, encoded boxes),
            as `kerasll.active.pipeline.training_dataset` takes them.
        """

    @property
    def augmentation(self):
        """The training-time `Augmentation`, or None for none."""
        return None

    @abc.abstractmethod
    def view(self, model, split, batch_size):
        """A model view of a trained model over the pool or the test set.

        Args:
            model: the trained model (plain or a `LossLearner`).
            split: "train" (the pool) or "test".
            batch_size: items per inference batch.

        Returns:
            A model view with labels known (true losses available).
        """

    @abc.abstractmethod
    def evaluate(self, test_view):
        """The task metric on the test set, from a "test" view."""

    def evaluate_secondary(self, test_view):
        """The `secondary_metrics` on the test set, from a "test" view.

        Returns:
            {results.csv column: value}, one entry per secondary metric.
        """
        return {}

    @abc.abstractmethod
    def item_classes(self, indices):
        """The class labels pool items hold (for the picks' histogram)."""

    def class_recalls(self, test_view):
        """Recall of each class on the test set, or None where items have no
        single class (detection).

        Args:
            test_view: a view of the trained model over the test set.

        Returns:
            (num_classes,) float64 recalls, or None.
        """
        return None

    def item_groups(self):
        """The original item of each pool item, where the pool holds
        near-duplicates of originals (`kerasll.pools`), else None.

        Returns:
            (pool_size,) int64 array, or None.
        """
        return None

    def deployable(self, model):
        """The trained model as a device runs it (what `kerasll export` takes).

        Args:
            model: a trained model of this task (plain or a `LossLearner`).

        Returns:
            The model itself; a task whose training graph differs from its
            inference graph returns the latter, sharing the weights.
        """
        return model
