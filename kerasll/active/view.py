"""What strategies may ask of a trained model, for any subset of the pool.

A strategy never sees the model itself: it asks a "model view" for class
probabilities, penultimate features or predicted losses of pool items by
index. `KerasModelView` answers from a trained Keras model (plain or a
`LossLearner`); `ArrayModelView` from fixed arrays (tests, cached scores).
"""

import keras
import numpy as np
from kerasll_serving.predictions import softmax

from kerasll.active.pipeline import inference_dataset
from kerasll.learner import PREDICTED_LOSS, LossLearner

PROBABILITIES = "probabilities"
FEATURES = "features"


class MissingOutputError(TypeError):
    """The model behind a view cannot provide the requested output."""


class ArrayModelView:
    """A model view over precomputed arrays covering the whole pool.

    Args:
        probabilities: optional (N, classes) class probabilities.
        features: optional (N, D) features.
        predicted_loss: optional (N,) predicted losses.
    """

    def __init__(self, probabilities=None, features=None, predicted_loss=None):
        self._arrays = {
            PROBABILITIES: probabilities,
            FEATURES: features,
            PREDICTED_LOSS: predicted_loss,
        }

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


def _feature_tensor(model):
    """The penultimate features: layer `features`, else the last layer's input."""
    names = [layer.name for layer in model.layers]
    if "features" in names:
        return model.get_layer("features").output
    return model.layers[-1].input


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


class KerasModelView:
    """A model view backed by a trained single-output Keras classifier.

    One forward pass per request computes logits, penultimate features and
    (for a `LossLearner`) predicted losses; the last request is cached, so
    asking for two outputs of the same items costs one pass.

    Args:
        model: a functional classifier, or a `LossLearner` wrapping one.
        images: the pool's images, (N, H, W, C) raw pixels.
        batch_size: items per inference batch.
        from_logits: whether the classifier outputs logits (softmax applied
            here) rather than probabilities.
    """

    def __init__(self, model, images, batch_size=256, from_logits=True):
        self.images = images
        self.batch_size = int(batch_size)
        self.from_logits = from_logits
        self._has_head = isinstance(model, LossLearner)
        backbone = model.backbone if self._has_head else model
        outputs = {"task": backbone.output, FEATURES: _feature_tensor(backbone)}
        if self._has_head:
            outputs[PREDICTED_LOSS] = _predicted_loss_tensor(model)
        self._graph = keras.Model(backbone.input, outputs, name="model_view")
        self._cache_key, self._cache = None, None

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

    def probabilities(self, indices):
        """(len(indices), classes) class probabilities."""
        task = np.asarray(self._outputs(indices)["task"], dtype=np.float64)
        return softmax(task) if self.from_logits else task

    def features(self, indices):
        """(len(indices), D) penultimate features."""
        features = np.asarray(self._outputs(indices)[FEATURES])
        return features.reshape(len(features), -1)

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
