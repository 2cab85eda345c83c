"""Callbacks that drive the loss head's training schedule."""

import keras


class DetachHead(keras.callbacks.Callback):
    """Stops the head's gradient into the backbone from `epoch` on.

    Before `epoch` the loss-prediction loss also trains the backbone; from
    `epoch` on the head keeps learning but the backbone no longer receives its
    gradient (the paper detaches after epoch 120 of 200). The switch is a
    variable read inside the compiled train step, so it takes effect without
    retracing. Each epoch sets it afresh, so a second `fit` starting at epoch 0
    (a warm-started active-learning cycle) opens the gradient again.

    Args:
        epoch: 0-based epoch from which the gradient is stopped; None never
            stops it.

    Raises:
        ValueError: a negative epoch.
    """

    def __init__(self, epoch=120):
        super().__init__()
        if epoch is not None and int(epoch) < 0:
            raise ValueError(f"Expected epoch >= 0 or None. Received: epoch={epoch}")
        self.epoch = None if epoch is None else int(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        gate = self.model.head_gradient_gate
        detached = self.epoch is not None and epoch >= self.epoch
        gate.assign(0.0 if detached else 1.0)
