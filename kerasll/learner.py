"""`LossLearner`: a user's model plus the paper's loss prediction module."""

from numbers import Integral, Real

import keras
import numpy as np
from keras import ops
from kerasll_serving.contract import PREDICTED_LOSS_OUTPUT as PREDICTED_LOSS
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

from kerasll.backend_steps import steps_for_backend
from kerasll.callbacks import DetachHead
from kerasll.head import build_loss_head
from kerasll.losses import OBJECTIVES, loss_prediction_loss, pair_agreement
from kerasll.models import WEIGHT_DECAY
from kerasll.taps import functional_model, resolve_taps, tapped_graph
from kerasll.task_loss import PerSampleLoss



@keras.saving.register_keras_serializable(package="kerasll")
class LossLearner(steps_for_backend(), keras.Model):
    """Wraps a functional Keras model with a learned loss predictor.

    Intermediate layer outputs ("taps") of `model` feed the loss prediction
    module of Yoo & Kweon (2019): per tap global average pooling -> Dense ->
    ReLU, concatenated -> Dense(1). `fit` trains both with
    `mean(task loss) + weight * loss-prediction loss`, where the task loss is
    whatever per-sample loss was passed to `compile`. It trains on the
    TensorFlow, JAX and PyTorch backends, each with its own step
    (`kerasll.backend_steps`) around the same loss code.

    `predict` returns the task outputs; `predict_loss` the predicted losses.

    Args:
        model: a functional or built Sequential `keras.Model` (the target
            network; a Sequential one is kept as a functional model of the
            same layers). It may use a functional model as a layer (a
            pretrained backbone); taps reach inside it.
        taps: "auto" (last feature map of each spatial-resolution stage) or a
            list of layer names of `model`, "<nested model>/<layer>" for a
            layer inside a functional model used as a layer.
        head_units: width of each branch of the head (paper: 128).
        margin: ranking margin xi (paper: 1.0).
        weight: weight lambda of the loss-prediction loss (paper: 1.0; 1e-4
            for pose estimation).
        objective: "ranking" (the paper's method) or "mse" (its comparison).
        detach_epoch: from this 0-based epoch on, no gradient flows from the
            head into `model` (paper: 120 of 200 epochs); None never detaches.
            `fit` applies it through a `DetachHead` callback.
        head_weight_decay: L2 weight decay of the head's Dense kernels, as
            a regularizer with coefficient `head_weight_decay / 2` (the
            paper trains the head with the target's optimizer settings,
            5e-4 on CIFAR-10); 0 adds none.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Raises:
        TypeError: `model` is not a functional/Sequential model.
        ValueError: taps or a hyper-parameter outside
            `parameter_constraints` (NaN and infinities included), each
            named in its own message, or taps naming no tappable layer.
    """

    # The one declaration of the head's hyper-parameters; `TrainingConfig`
    # checks its `margin`, `weight`, `head_units` and `weight_decay` by it.
    parameter_constraints = {
        "taps": [str, list, tuple],
        "head_units": [Interval(Integral, 1, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "weight": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions(OBJECTIVES)],
        "detach_epoch": [Interval(Integral, 0, None, closed="left"), None],
        "head_weight_decay": WEIGHT_DECAY,
    }

    def __init__(
        self,
        model,
        taps="auto",
        head_units=128,
        margin=1.0,
        weight=1.0,
        objective="ranking",
        detach_epoch=120,
        head_weight_decay=0.0,
        **kwargs,
    ):
        checked = validate_arguments(
            self.parameter_constraints,
            {
                "taps": taps,
                "head_units": head_units,
                "margin": margin,
                "weight": weight,
                "objective": objective,
                "detach_epoch": detach_epoch,
                "head_weight_decay": head_weight_decay,
            },
        )
        super().__init__(**kwargs)
        model = functional_model(model)
        self.head_units = checked["head_units"]
        self.margin = checked["margin"]
        self.weight = checked["weight"]
        self.objective = checked["objective"]
        self.detach_epoch = checked["detach_epoch"]
        self.head_weight_decay = checked["head_weight_decay"]
        self.backbone = model
        self.taps = resolve_taps(model, checked["taps"])
        self._per_sample_loss = None
        graph, features = tapped_graph(model, self.taps)
        self._output_count = len(graph.outputs)
        self.feature_extractor = keras.Model(
            graph.input, [*graph.outputs, *features], name="feature_extractor"
        )
        self.loss_head = build_loss_head(
            [feature.shape for feature in features],
            units=self.head_units,
            weight_decay=self.head_weight_decay,
        )
        self._scoring_graph = self._build_scoring_graph()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_tracker = keras.metrics.Mean(name="task_loss")
        self.head_loss_tracker = keras.metrics.Mean(name="head_loss")
        self.rank_accuracy_tracker = keras.metrics.Mean(name="rank_accuracy")
        self.built = True

    # Forward passes -------------------------------------------------------

    def _forward_with_head(self, inputs, training=False):
        flat = self.feature_extractor(inputs, training=training)
        outputs = keras.tree.pack_sequence_as(
            self.backbone.output, flat[: self._output_count]
        )
        features = flat[self._output_count:]
        return outputs, self.loss_head(features, training=training)

    @property
    def head_gradient_gate(self):
        """Scalar variable: 1.0 while the head's gradient reaches the backbone."""
        return self.loss_head.get_layer("gradient_gate").gate

    def call(self, inputs, training=None):
        """Returns the task outputs of the wrapped model."""
        return self.backbone(inputs, training=training)

    # Training hooks -------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, **kwargs):
        """`keras.Model.compile`; `loss` is evaluated per sample for the head.

        Args:
            optimizer: as in Keras; it trains the model and the head.
            loss: any Keras loss, loss name or callable `fn(y_true, y_pred)`;
                a list or dict of them for multi-output models.
            loss_weights: per-output weights of a multi-output loss.
            **kwargs: passed to `keras.Model.compile` (metrics, ...).
        """
        super().compile(
            optimizer=optimizer, loss=loss, loss_weights=loss_weights, **kwargs
        )
        self._per_sample_loss = (
            None
            if loss is None
            else PerSampleLoss(loss, self.task_output_names, loss_weights)
        )

    def compile_from_config(self, config):
        """Recompiles a loaded learner through the `compile` above."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _loss_terms(self, y, y_pred, predicted_loss, sample_weight):
        """Returns (true per-sample loss, task loss, head loss, total loss)."""
        if self._per_sample_loss is None:
            raise ValueError(
                "Expected compile(loss=...) with a per-sample Keras loss, e.g. "
                "'sparse_categorical_crossentropy', before training or "
                "evaluating. Received: loss=None"
            )
        true_loss, weighted_loss = self._per_sample_loss(y, y_pred, sample_weight)
        task_loss = ops.mean(weighted_loss)
        head_loss = loss_prediction_loss(
            true_loss,
            ops.cast(predicted_loss, "float32"),
            objective=self.objective,
            margin=self.margin,
        )
        total = task_loss + self.weight * head_loss
        if self.losses:  # regularization, e.g. weight decay
            total = total + ops.sum(self.losses)
        return true_loss, task_loss, head_loss, total

    def _update_trackers(self, true_loss, predicted_loss, task_loss, head_loss, total):
        self.loss_tracker.update_state(total)
        self.task_loss_tracker.update_state(task_loss)
        self.head_loss_tracker.update_state(head_loss)
        self.rank_accuracy_tracker.update_state(
            pair_agreement(true_loss, predicted_loss)
        )

    @property
    def metrics(self):
        """The metrics logged by `fit` and `evaluate`, reset every epoch.

        "loss" is `loss_tracker`: the total this learner minimises (task loss,
        weighted head loss and regularization). It stands in for Keras' own
        "loss" tracker, which sees only the compiled loss.
        """
        others = [metric for metric in super().metrics if metric.name != "loss"]
        return [self.loss_tracker, *others]

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, plus the head's gradient stop at `detach_epoch`.

        A `DetachHead(detach_epoch)` callback is added unless `callbacks`
        already holds one.
        """
        callbacks = list(callbacks or [])
        if not any(isinstance(callback, DetachHead) for callback in callbacks):
            callbacks.append(DetachHead(self.detach_epoch))
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # Scoring --------------------------------------------------------------

    def scoring_model(self):
        """The combined inference graph: task outputs and predicted loss.

        Returns:
            A functional `keras.Model` sharing this learner's layers whose
            outputs are a dict: the task output(s) under the wrapped model's
            output names (`task_output_names`), and `"predicted_loss"` of
            shape (B,).
        """
        return self._scoring_graph

    @property
    def task_output_names(self):
        """Names of the wrapped model's outputs, in its order."""
        return list(self.backbone.output_names)

    def _build_scoring_graph(self):
        names = self.task_output_names
        if PREDICTED_LOSS in names:
            raise ValueError(
                f"Expected no model output named {PREDICTED_LOSS!r}; it is "
                f"reserved for the loss head. Received outputs: {names}"
            )
        flat = self.feature_extractor.outputs
        outputs = dict(zip(names, flat[: self._output_count]))
        outputs[PREDICTED_LOSS] = self.loss_head(flat[self._output_count:])
        return keras.Model(
            self.feature_extractor.input, outputs, name="scoring_graph"
        )

    def predict_loss(self, x, batch_size=None, verbose=0, steps=None):
        """Predicted task loss for each input.

        Args:
            x: inputs as accepted by `keras.Model.predict` (arrays, or a
                `tf.data.Dataset` of inputs or of (inputs, targets) pairs).
            batch_size: batch size for array inputs (Keras default 32).
            verbose: Keras verbosity.
            steps: number of batches for datasets.

        Returns:
            1-D float numpy array, one predicted loss per input (empty for
            an empty array).
        """
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) > 0 and shape[0] == 0:
            return np.zeros((0,), dtype=np.float32)
        predictions = self._scoring_graph.predict(
            x, batch_size=batch_size, verbose=verbose, steps=steps
        )
        return np.asarray(predictions[PREDICTED_LOSS]).reshape(-1)

    def with_backbone(self, model, name):
        """This learner's settings and trained head around another model.

        For export graphs that rewire the wrapped model's layers to other
        outputs (decoded boxes, keypoints): every constructor argument comes
        from `get_config`, so none can be dropped, and `model` is passed as
        an instance (as `from_config` would build it), so its layers are
        shared, not copied.

        Args:
            model: a functional model that has the layers `taps` names.
            name: the new learner's name.

        Returns:
            A learner of this class with the same taps and hyper-parameters
            and a copy of the loss head's weights.

        Raises:
            ValueError: `model` lacks a tapped layer.
        """
        config = self.get_config()
        config.update(model=model, name=name)
        learner = type(self)(**config)
        learner.loss_head.set_weights(self.loss_head.get_weights())
        return learner

    # Serialization --------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.backbone),
                "taps": list(self.taps),
                "head_units": self.head_units,
                "margin": self.margin,
                "weight": self.weight,
                "objective": self.objective,
                "detach_epoch": self.detach_epoch,
                "head_weight_decay": self.head_weight_decay,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(**config)

