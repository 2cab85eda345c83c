"""Per-sample task loss from whatever loss the user compiles with.

The loss head learns from the target model's loss on each sample, so the
compiled loss must be evaluated without Keras' batch reduction. Any Keras loss
object, loss name or callable `fn(y_true, y_pred)` works; multi-output models
sum the per-sample losses over outputs.
"""

import keras
from keras import ops


def _unreduced_fn(loss):
    if isinstance(loss, keras.losses.Loss):
        return loss.call
    if isinstance(loss, (str, dict)):
        return keras.losses.get(loss)
    if callable(loss):
        return loss
    raise TypeError(
        "Expected each loss to be a keras.losses.Loss, a loss name or a callable "
        f"fn(y_true, y_pred). Received: {loss!r} of type {type(loss).__name__}"
    )


def _per_output(value, count, what):
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(
                f"Expected one {what} per model output ({count}). "
                f"Received {len(value)}."
            )
        return list(value)
    return [value] * count


def _to_batch_vector(values, batch_size):
    values = ops.convert_to_tensor(values)
    if len(values.shape) == 1:
        return values
    return ops.mean(ops.reshape(values, (batch_size, -1)), axis=1)


class PerSampleLoss:
    """Evaluates a compiled loss per sample.

    Args:
        loss: what was passed to `compile(loss=...)`: a loss, a name, a
            callable, or a list/dict of those with one entry per output (dict
            keys sorted, as Keras flattens dict outputs).

    Raises:
        ValueError: `loss` is None.
        TypeError: an entry is not a loss.
    """

    def __init__(self, loss):
        if loss is None:
            raise ValueError(
                "Expected compile(loss=...) with a per-sample Keras loss, e.g. "
                "'sparse_categorical_crossentropy'. Received: loss=None"
            )
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Computes the per-sample loss.

        Args:
            y_true: targets, in the structure of the model outputs.
            y_pred: model outputs (a tensor, list or dict).
            sample_weight: None, a (B,) weight vector for all outputs, or one
                per output.

        Returns:
            Tuple `(unweighted, weighted)` of (B,) float tensors: the summed
            per-sample loss over outputs, without and with sample weights.

        Raises:
            ValueError: structures of targets, outputs and losses disagree.
        """
        predictions = keras.tree.flatten(y_pred)
        targets = keras.tree.flatten(y_true)
        if len(targets) != len(predictions):
            raise ValueError(
                f"Expected one target per model output ({len(predictions)}). "
                f"Received {len(targets)} targets."
            )
        count = len(predictions)
        losses = _per_output(self.loss, count, "loss")
        weights = _per_output(sample_weight, count, "sample weight")
        batch_size = ops.shape(predictions[0])[0]
        unweighted = weighted = 0.0
        for loss, target, prediction, weight in zip(
            losses, targets, predictions, weights
        ):
            prediction = ops.convert_to_tensor(prediction)
            target = ops.convert_to_tensor(target, dtype=prediction.dtype)
            values = _unreduced_fn(loss)(target, prediction)
            values = ops.cast(_to_batch_vector(values, batch_size), "float32")
            unweighted = unweighted + values
            if weight is not None:
                weight = ops.reshape(ops.cast(weight, "float32"), (batch_size,))
                values = values * weight
            weighted = weighted + values
        return unweighted, weighted
