"""`LossLearner`'s train and test steps, one set per Keras backend.

Keras 3 picks its `Trainer` by backend, and so does `LossLearner`: it
inherits the step mixin `steps_for_backend()` returns. Each step is written
the way the Keras guide "Customizing what happens in `fit()`" writes it for
its backend (TensorFlow: `GradientTape`; JAX: a stateless forward pass under
`jax.value_and_grad` that returns the updated state; PyTorch: `backward()`),
and all of them share the learner's loss code, written in `keras.ops`:

- `_forward_with_head(x, training)` -> `(y_pred, predicted_loss)`;
- `_loss_terms(y, y_pred, predicted_loss, sample_weight)` ->
  `(true_loss, task_loss, head_loss, total)`;
- `_update_trackers(true_loss, predicted_loss, task_loss, head_loss, total)`.

The head's gradient gate is a non-trainable variable, so every backend reads
it inside its compiled step (on JAX it travels in the state).

Distribution: on TensorFlow each replica sees its own slice of the batch and
gradients are summed over replicas, so the hand-added total is divided by the
replica count like Keras' own losses. On JAX with `keras.distribution`
(e.g. `DataParallel`) the step is written for the global batch and the
compiler shards it: no scaling, and the ranking pairs (i, B - 1 - i) are
formed over the global batch exactly as on one device.
"""

import keras

SUPPORTED_BACKENDS = ("jax", "tensorflow", "torch")


class _EagerTestStep:
    """The test step of the backends that evaluate the model statefully."""

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred, predicted_loss = self._forward_with_head(x, training=False)
        true_loss, task_loss, head_loss, total = self._loss_terms(
            y, y_pred, predicted_loss, sample_weight
        )
        self._update_trackers(true_loss, predicted_loss, task_loss, head_loss, total)
        return self.compute_metrics(x, y, y_pred, sample_weight)


def _per_replica_scale(value):
    """Divides by the number of `tf.distribute` replicas, as Keras does for
    compiled losses.

    Gradients are summed over replicas, so a term added by hand must be scaled
    like Keras' own losses or its weight grows with the replica count.
    """
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / float(replicas) if replicas > 1 else value


class TensorFlowSteps(_EagerTestStep):
    """Steps for the TensorFlow backend: `tf.GradientTape`."""

    def train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred, predicted_loss = self._forward_with_head(x, training=True)
            true_loss, task_loss, head_loss, total = self._loss_terms(
                y, y_pred, predicted_loss, sample_weight
            )
            scaled = self.optimizer.scale_loss(_per_replica_scale(total))
        variables = self.trainable_weights
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._update_trackers(true_loss, predicted_loss, task_loss, head_loss, total)
        return self.compute_metrics(x, y, y_pred, sample_weight)


class TorchSteps(_EagerTestStep):
    """Steps for the PyTorch backend: `loss.backward()`.

    Keras runs the test step under `torch.no_grad()`.
    """

    def train_step(self, data):
        import torch

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred, predicted_loss = self._forward_with_head(x, training=True)
        self.zero_grad()
        true_loss, task_loss, head_loss, total = self._loss_terms(
            y, y_pred, predicted_loss, sample_weight
        )
        self._update_trackers(true_loss, predicted_loss, task_loss, head_loss, total)
        self.optimizer.scale_loss(total).backward()
        variables = self.trainable_weights[:]
        gradients = [variable.value.grad for variable in variables]
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)
        return self.compute_metrics(x, y, y_pred, sample_weight)


def _current_values(scope, variables):
    """The values `variables` hold in a `keras.StatelessScope` after its body."""
    return [scope.get_current_value(variable) for variable in variables]


class JaxSteps:
    """Steps for the JAX backend: stateless, they take and return the state.

    The forward pass and the loss run in a `keras.StatelessScope` mapping the
    learner's variables to the traced values of the state (what
    `Layer.stateless_call` does for `call`; here for the forward pass with
    the head), so `jax.value_and_grad` differentiates them with respect to
    the trainable values; the optimizer and the metrics are then updated
    with `stateless_apply` and a scope over the metrics variables.
    """

    def _stateless_loss(
        self, trainable_values, non_trainable_values, x, y, sample_weight, training
    ):
        """Forward pass and loss terms as a pure function of the values.

        Args:
            trainable_values: values of `self.trainable_variables`.
            non_trainable_values: values of `self.non_trainable_variables`.
            x, y, sample_weight: the batch.
            training: whether layers run in training mode.

        Returns:
            Tuple `(total, aux)`: the unscaled total loss, and
            `((true_loss, task_loss, head_loss, total), y_pred,
            predicted_loss, new_non_trainable_values)`.
        """
        mapping = [
            *zip(self.trainable_variables, trainable_values),
            *zip(self.non_trainable_variables, non_trainable_values),
        ]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            y_pred, predicted_loss = self._forward_with_head(x, training=training)
            terms = self._loss_terms(y, y_pred, predicted_loss, sample_weight)
        non_trainable_values = _current_values(scope, self.non_trainable_variables)
        return terms[-1], (terms, y_pred, predicted_loss, non_trainable_values)

    def _stateless_metrics(
        self, metrics_values, terms, predicted_loss, x, y, y_pred, sample_weight
    ):
        """Updates the trackers and compiled metrics from their values.

        Returns:
            Tuple `(logs, new_metrics_values)`.
        """
        true_loss, task_loss, head_loss, total = terms
        mapping = list(zip(self.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._update_trackers(
                true_loss, predicted_loss, task_loss, head_loss, total
            )
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        return logs, _current_values(scope, self.metrics_variables)

    def train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        def scaled_loss(trainable_values):
            total, aux = self._stateless_loss(
                trainable_values, non_trainable, x, y, sample_weight, training=True
            )
            optimizer_mapping = list(zip(self.optimizer.variables, optimizer_values))
            with keras.StatelessScope(state_mapping=optimizer_mapping):
                return self.optimizer.scale_loss(total), aux

        (_, aux), gradients = jax.value_and_grad(scaled_loss, has_aux=True)(
            trainable
        )
        terms, y_pred, predicted_loss, non_trainable = aux
        trainable, optimizer_values = self.optimizer.stateless_apply(
            optimizer_values, gradients, trainable
        )
        logs, metrics_values = self._stateless_metrics(
            metrics_values, terms, predicted_loss, x, y, y_pred, sample_weight
        )
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        _, (terms, y_pred, predicted_loss, non_trainable) = self._stateless_loss(
            trainable, non_trainable, x, y, sample_weight, training=False
        )
        logs, metrics_values = self._stateless_metrics(
            metrics_values, terms, predicted_loss, x, y, y_pred, sample_weight
        )
        return logs, (trainable, non_trainable, metrics_values)


class UnsupportedBackendSteps:
    """Stands in on backends that cannot train (e.g. numpy, openvino).

    Such a learner still predicts and scores; `fit` and `evaluate` raise.
    """

    def _unsupported(self, *args, **kwargs):
        raise TypeError(
            f"Expected a Keras backend among {list(SUPPORTED_BACKENDS)} to train "
            f"or evaluate a LossLearner. Received: {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND before keras is imported."
        )

    train_step = test_step = _unsupported


_STEPS = {"jax": JaxSteps, "tensorflow": TensorFlowSteps, "torch": TorchSteps}


def steps_for_backend(backend=None):
    """The step mixin of a Keras backend.

    Args:
        backend: a Keras backend name; None: the backend in use.

    Returns:
        A mixin class defining `train_step` and `test_step`;
        `UnsupportedBackendSteps` for a backend that cannot train.
    """
    backend = keras.backend.backend() if backend is None else backend
    return _STEPS.get(backend, UnsupportedBackendSteps)
