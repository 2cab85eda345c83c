"""What strategies may ask of a trained model, for any subset of the pool.

A strategy never sees the model itself: it asks a "model view" about pool
items by index:

- `uncertainty(indices, measure)`: an uncertainty score per item
  (`kerasll.active.uncertainty.MEASURES`);
- `features(indices)`: an embedding per item (core-set, diagnostics);
- `predicted_loss(indices)`: the loss head's output (`has_predicted_loss`);
- `true_loss(indices)`: the task loss under the model, where labels are known
  (audits and diagnostics).

Every task provides views of this shape (`kerasll.tasks`). Here are the
task-neutral pieces: `GraphModelView`, the base of views backed by a trained
Keras model (a task's view, e.g. the classification task's
`KerasModelView`, adds its outputs); `TargetLossView`, one whose true loss
is a per-item Keras loss against encoded targets (the detection and
keypoint views build on it); `ArrayModelView`, a view over fixed
arrays (tests, cached scores); `ProbabilityUncertainty`, uncertainty scores
from a view's class probabilities.
"""

import keras
import numpy as np

from kerasll.active.pipeline import inference_dataset
from kerasll.active.uncertainty import uncertainty
from kerasll.learner import PREDICTED_LOSS, LossLearner

PROBABILITIES = "probabilities"
FEATURES = "features"
TRUE_LOSS = "true_loss"


class MissingOutputError(TypeError):
    """The model behind a view cannot provide the requested output."""


class ProbabilityUncertainty:
    """`uncertainty` from the view's class probabilities (classification)."""

    def uncertainty(self, indices, measure):
        """(len(indices),) uncertainty of the class probabilities."""
        return uncertainty(self.probabilities(indices), measure)


class ArrayModelView(ProbabilityUncertainty):
    """A model view over precomputed arrays covering the whole pool.

    Args:
        probabilities: optional (N, classes) class probabilities.
        features: optional (N, D) features.
        predicted_loss: optional (N,) predicted losses.
        true_loss: optional (N,) true losses.
    """

    def __init__(
        self, probabilities=None, features=None, predicted_loss=None, true_loss=None
    ):
        self._arrays = {
            PROBABILITIES: probabilities,
            FEATURES: features,
            PREDICTED_LOSS: predicted_loss,
            TRUE_LOSS: true_loss,
        }

    def __len__(self):
        sizes = [len(array) for array in self._arrays.values() if array is not None]
        return sizes[0] if sizes else 0

    def _get(self, name, indices):
        array = self._arrays[name]
        if array is None:
            raise MissingOutputError(
                f"Expected {name} in this ArrayModelView. Received none"
            )
        return np.asarray(array)[np.asarray(indices, dtype=np.int64)]

    @property
    def has_predicted_loss(self):
        """Whether predicted losses are available."""
        return self._arrays[PREDICTED_LOSS] is not None

    def probabilities(self, indices):
        """(len(indices), classes) class probabilities."""
        return self._get(PROBABILITIES, indices)

    def features(self, indices):
        """(len(indices), D) features."""
        return self._get(FEATURES, indices)

    def predicted_loss(self, indices):
        """(len(indices),) predicted losses."""
        return self._get(PREDICTED_LOSS, indices)

    def true_loss(self, indices):
        """(len(indices),) true losses."""
        return self._get(TRUE_LOSS, indices)


def _predicted_loss_tensor(learner):
    """The head's predicted loss on the backbone's own graph (one forward pass).

    Taps inside a nested model are not tensors of that graph; then the
    learner's scoring graph is called on the backbone's input instead (a
    second pass through the backbone).
    """
    backbone = learner.backbone
    if any("/" in name for name in learner.taps):
        return learner.scoring_model()(backbone.input)[PREDICTED_LOSS]
    taps = [backbone.get_layer(name).output for name in learner.taps]
    return learner.loss_head(taps)


class GraphModelView:
    """Base of the views backed by a trained Keras model.

    One forward pass per request computes the task output, the features and
    (for a `LossLearner`) the predicted losses; the last request is cached,
    so asking for two outputs of the same items costs one pass.

    Args:
        model: the trained network, or a `LossLearner` wrapping one.
        images: the items' inputs, (N, ...) raw values.
        batch_size: items per inference batch.
        feature_tensor: callable giving the features tensor of the network.
    """

    def __init__(self, model, images, batch_size, feature_tensor):
        self.images = images
        self.batch_size = int(batch_size)
        self._has_head = isinstance(model, LossLearner)
        backbone = model.backbone if self._has_head else model
        outputs = {"task": backbone.output, FEATURES: feature_tensor(backbone)}
        if self._has_head:
            outputs[PREDICTED_LOSS] = _predicted_loss_tensor(model)
        self._graph = keras.Model(backbone.input, outputs, name="model_view")
        self._cache_key, self._cache = None, None

    def __len__(self):
        return len(self.images)

    @property
    def has_predicted_loss(self):
        """Whether the model has a loss head."""
        return self._has_head

    def _outputs(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        key = indices.tobytes()
        if key != self._cache_key:
            dataset = inference_dataset(
                self.images[indices], batch_size=self.batch_size
            )
            self._cache = self._graph.predict(dataset, verbose=0)
            self._cache_key = key
        return self._cache

    def predicted_loss(self, indices):
        """(len(indices),) losses predicted by the loss head.

        Raises:
            MissingOutputError: the model has no loss head.
        """
        outputs = self._outputs(indices)
        if PREDICTED_LOSS not in outputs:
            raise MissingOutputError(
                "Expected a LossLearner for predicted losses. Received a model "
                "without a loss head; train the strategy with a loss head."
            )
        return np.asarray(outputs[PREDICTED_LOSS]).reshape(-1)


class TargetLossView(GraphModelView):
    """A `GraphModelView` with features and a true loss against encoded targets.

    Args:
        model: the trained network, or a `LossLearner` wrapping one.
        images: the items' inputs, (N, ...) raw values.
        batch_size: items per inference batch.
        feature_tensor: callable giving the features tensor of the network.
        loss: the task's per-item Keras loss of (targets, task output).
        targets: optional (N, ...) encoded targets of the items, for
            `true_loss`.
    """

    def __init__(self, model, images, batch_size, feature_tensor, loss, targets=None):
        super().__init__(model, images, batch_size, feature_tensor)
        self.loss, self.targets = loss, targets

    def features(self, indices):
        """(len(indices), D) features."""
        return np.asarray(self._outputs(indices)[FEATURES])

    def true_loss(self, indices):
        """(len(indices),) task loss of each item under the model.

        Raises:
            MissingOutputError: the view was made without targets.
        """
        if self.targets is None:
            raise MissingOutputError(
                "Expected a view made with targets for true losses. Received none"
            )
        indices = np.asarray(indices, dtype=np.int64)
        loss = self.loss.call(self.targets[indices], self._outputs(indices)["task"])
        return np.asarray(keras.ops.convert_to_numpy(loss), dtype=np.float64)
