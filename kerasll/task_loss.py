"""Per-sample task loss from whatever loss the user compiles with.

The loss head learns from the target model's loss on each sample, so the
compiled loss must be evaluated without Keras' batch reduction. Any Keras loss
object, loss name or callable `fn(y_true, y_pred)` works; multi-output models
sum the per-sample losses over outputs (times `loss_weights`, as in Keras).
"""

import keras
from keras import ops


def _unreduced_fn(loss):
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        return loss.call
    if callable(loss):
        return loss
    raise TypeError(
        "Expected each loss to be a keras.losses.Loss, a loss name or a callable "
        f"fn(y_true, y_pred). Received: {loss!r} of type {type(loss).__name__}"
    )


def _per_output(value, names, what, default=None):
    """Lines `value` up with the outputs `names` (one entry per output)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(
                f"Expected {what} keys among the model outputs {names}. "
                f"Received: {sorted(value)}"
            )
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(
                f"Expected one {what} per model output ({len(names)}: {names}). "
                f"Received {len(value)}."
            )
        return list(value)
    return [value] * len(names)


def _to_batch_vector(values, batch_size, loss):
    """The loss per sample, averaged over any axes after the batch one.

    Raises:
        ValueError: the loss returned a scalar (already reduced over the batch).
    """
    values = ops.convert_to_tensor(values)
    if len(values.shape) == 0:
        name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
        raise ValueError(
            "Expected the loss to return one value per sample, of shape (batch,) "
            f"or (batch, ...). Received a scalar from loss {name or loss!r}: it "
            "reduces over the batch, so the loss head has nothing to learn from. "
            "Return the unreduced loss (no mean or sum over the batch)."
        )
    if len(values.shape) == 1:
        return values
    return ops.mean(ops.reshape(values, (batch_size, -1)), axis=1)


class PerSampleLoss:
    """Evaluates a compiled loss per sample.

    Args:
        loss: what was passed to `compile(loss=...)`: a loss, a name, a
            callable, or a list/dict of those with one entry per output (dict
            keys name outputs; an output without an entry has no loss).
        output_names: names of the model outputs, in model order; the keys of
            dict losses, targets and weights when outputs are a list.
        loss_weights: None, a list or a dict of per-output scalar weights.

    Raises:
        ValueError: `loss` is None.
        TypeError: an entry is not a loss.
    """

    def __init__(self, loss, output_names, loss_weights=None):
        if loss is None:
            raise ValueError(
                "Expected compile(loss=...) with a per-sample Keras loss, e.g. "
                "'sparse_categorical_crossentropy'. Received: loss=None"
            )
        self.loss = loss
        self.output_names = list(output_names)
        self.loss_weights = loss_weights

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Computes the per-sample loss.

        Args:
            y_true: targets, in the structure of the model outputs (or a dict
                keyed by output name).
            y_pred: model outputs (a tensor, list or dict).
            sample_weight: None, a (B,) weight vector for all outputs, or one
                per output.

        Returns:
            Tuple `(unweighted, weighted)` of (B,) float tensors: the summed
            per-sample loss over outputs (times `loss_weights`), without and
            with sample weights.

        Raises:
            ValueError: structures of targets, outputs and losses disagree, or
                a loss returns a scalar instead of one value per sample.
        """
        if isinstance(y_pred, dict):
            names = list(y_pred)
            predictions = [y_pred[name] for name in names]
        else:
            names = self.output_names
            predictions = keras.tree.flatten(y_pred)
        targets = _per_output(y_true, names, "target")
        if len(targets) != len(predictions) or any(t is None for t in targets):
            raise ValueError(
                f"Expected one target per model output {names}. Received: {y_true!r}"
            )
        losses = _per_output(self.loss, names, "loss")
        factors = _per_output(
            1.0 if self.loss_weights is None else self.loss_weights,
            names, "loss weight", default=1.0,
        )
        weights = _per_output(sample_weight, names, "sample weight")
        batch_size = ops.shape(predictions[0])[0]
        unweighted = weighted = 0.0
        for loss, factor, target, prediction, weight in zip(
            losses, factors, targets, predictions, weights
        ):
            if loss is None:
                continue
            prediction = ops.convert_to_tensor(prediction)
            target = ops.convert_to_tensor(target, dtype=prediction.dtype)
            values = _unreduced_fn(loss)(target, prediction)
            values = ops.cast(_to_batch_vector(values, batch_size, loss), "float32")
            values = values * float(factor)
            unweighted = unweighted + values
            if weight is not None:
                weight = ops.reshape(ops.cast(weight, "float32"), (batch_size,))
                values = values * weight
            weighted = weighted + values
        return unweighted, weighted
