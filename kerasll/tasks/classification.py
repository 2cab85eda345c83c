"""Image classification: the paper's CIFAR-10 task, behind the `Task` seam.

Data: an `ImageDataset` (`kerasll.data`). Models: the built-in classifiers
(`kerasll.models`). Loss: softmax cross-entropy per image. Metric: test
accuracy. Views: `KerasModelView`, whose uncertainty scores are computed
from the class probabilities.
"""

import keras
import numpy as np
from kerasll_serving.predictions import softmax

from kerasll.active.diagnostics import cross_entropy
from kerasll.active.task import Task
from kerasll.active.view import (
    FEATURES,
    GraphModelView,
    MissingOutputError,
    ProbabilityUncertainty,
)
from kerasll.models import MODELS, build_model
from kerasll.pools import class_recalls
from kerasll.tasks import SMALL_CLASSIFIER
from kerasll.tasks.metrics import ACCURACY


# The smallest image side ResNet-18 is the default model for (CIFAR-10's).
RESNET_MIN_SIDE = 32


class ClassificationTask(Task):
    """Classification of the images of an `ImageDataset`.

    Args:
        dataset: an `ImageDataset`; its `augmentation` is used in training.
    """

    kind = "classification"
    metric_name = ACCURACY.name
    metric_column = ACCURACY.column
    models = tuple(MODELS)

    def __init__(self, dataset):
        self.dataset = dataset
        self._channel_stats = None

    @property
    def name(self):
        return self.dataset.name

    @property
    def class_names(self):
        return self.dataset.class_names

    @property
    def pool_size(self):
        return len(self.dataset.x_train)

    def describe(self):
        return self.dataset.describe()

    def fingerprint(self):
        return self.dataset.fingerprint()

    def default_model(self):
        """ResNet-18 (the paper's) for images of at least 32x32, else small_cnn.

        ResNet-18's CIFAR stem downsamples by 8: below 32 pixels its last
        blocks see 1-3 pixels, and a short run on e.g. 8x8 digits stays at
        chance, while small_cnn fits them in seconds.

        Returns:
            (model name, the reason, naming the image size).
        """
        height, width = self.dataset.input_shape[:2]
        if min(height, width) < RESNET_MIN_SIDE:
            return SMALL_CLASSIFIER, (
                f"{height}x{width} images are below resnet18's {RESNET_MIN_SIDE}x"
                f"{RESNET_MIN_SIDE}"
            )
        return "resnet18", (
            f"the paper's model, for {height}x{width} images (at least "
            f"{RESNET_MIN_SIDE}x{RESNET_MIN_SIDE})"
        )

    def build_model(self, model, width, weight_decay):
        if self._channel_stats is None:
            self._channel_stats = self.dataset.channel_stats()
        mean, std = self._channel_stats
        return build_model(
            model,
            self.dataset.input_shape,
            self.num_classes,
            width=width,
            weight_decay=weight_decay,
            mean=mean,
            std=std,
        )

    def taps(self, backbone):
        return "auto"

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile_metrics(self):
        return ["accuracy"]

    def training_arrays(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        return self.dataset.x_train[indices], self.dataset.y_train[indices]

    @property
    def augmentation(self):
        return self.dataset.augmentation

    def view(self, model, split, batch_size):
        images, labels = self._split(split)
        return KerasModelView(model, images, batch_size, labels=labels)

    def evaluate(self, test_view):
        probabilities = test_view.probabilities(np.arange(len(test_view)))
        return float(np.mean(probabilities.argmax(axis=1) == self.dataset.y_test))

    def class_recalls(self, test_view):
        probabilities = test_view.probabilities(np.arange(len(test_view)))
        return class_recalls(
            self.dataset.y_test, probabilities.argmax(axis=1), self.num_classes
        ).per_class

    def item_groups(self):
        return self.dataset.groups

    def item_classes(self, indices):
        return self.dataset.y_train[np.asarray(indices, dtype=np.int64)]

    def _split(self, split):
        if split == "train":
            return self.dataset.x_train, self.dataset.y_train
        if split == "test":
            return self.dataset.x_test, self.dataset.y_test
        raise ValueError(f"Expected split 'train' or 'test'. Received: {split!r}")


def _feature_tensor(model):
    """The penultimate features: layer `features`, else the last layer's input."""
    names = [layer.name for layer in model.layers]
    if "features" in names:
        return model.get_layer("features").output
    return model.layers[-1].input


class KerasModelView(ProbabilityUncertainty, GraphModelView):
    """A model view backed by a trained single-output Keras classifier.

    Args:
        model: a functional classifier, or a `LossLearner` wrapping one.
        images: the pool's images, (N, H, W, C) raw pixels.
        batch_size: items per inference batch.
        from_logits: whether the classifier outputs logits (softmax applied
            here) rather than probabilities.
        labels: optional (N,) integer labels of the images, for `true_loss`.
    """

    def __init__(self, model, images, batch_size=256, from_logits=True, labels=None):
        super().__init__(model, images, batch_size, _feature_tensor)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.from_logits = from_logits

    def probabilities(self, indices):
        """(len(indices), classes) class probabilities."""
        task = np.asarray(self._outputs(indices)["task"], dtype=np.float64)
        return softmax(task) if self.from_logits else task

    def true_loss(self, indices):
        """(len(indices),) cross-entropy of the items' labels.

        Raises:
            MissingOutputError: the view was made without labels.
        """
        if self.labels is None:
            raise MissingOutputError(
                "Expected a view made with labels for true losses. Received none"
            )
        indices = np.asarray(indices, dtype=np.int64)
        return cross_entropy(self.probabilities(indices), self.labels[indices])

    def features(self, indices):
        """(len(indices), D) penultimate features."""
        features = np.asarray(self._outputs(indices)[FEATURES])
        return features.reshape(len(features), -1)
