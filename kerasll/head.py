"""The loss prediction module: tapped features in, one scalar per sample out."""

import keras
from keras import ops
from kerasll_serving.contract import PREDICTED_LOSS_OUTPUT

from kerasll.taps import needs_pooling

_POOLING = {
    3: keras.layers.GlobalAveragePooling1D,
    4: keras.layers.GlobalAveragePooling2D,
    5: keras.layers.GlobalAveragePooling3D,
}


@keras.saving.register_keras_serializable(package="kerasll")
class GradientGate(keras.layers.Layer):
    """Identity forward; the backward pass multiplies the gradient by `gate`.

    `gate` is a non-trainable scalar variable: 1.0 lets the loss head's
    gradient reach the backbone, 0.0 stops it exactly while the head's own
    weights keep learning. Being a variable, it is read inside the compiled
    train step and can be switched between epochs without retracing.
    """

    def build(self, input_shape):
        self.gate = self.add_weight(
            name="gate", shape=(), initializer="ones", trainable=False
        )

    def call(self, inputs):
        frozen = ops.stop_gradient(inputs)
        return frozen + ops.cast(self.gate, inputs.dtype) * (inputs - frozen)


def build_loss_head(feature_shapes, units=128, weight_decay=0.0, name="loss_head"):
    """Builds the paper's loss prediction module as a functional model.

    Per tapped feature: global average pooling (rank 3 to 5 only) -> Dense
    (`units`) -> ReLU. The branches are concatenated -> Dense(1). No
    BatchNorm, as in the paper. Widths are inferred from `feature_shapes`.
    A shared `GradientGate` layer named "gradient_gate" sits after the pooling
    (pooling is linear, so gating there stops the same gradient at the cost of
    a (B, C) instead of a (B, H, W, C) operation).

    Args:
        feature_shapes: shapes of the tapped tensors, batch axis included.
        units: width of each branch (paper: 128).
        weight_decay: L2 decay of the Dense kernels (regularizer coefficient
            `weight_decay / 2`); 0 adds none.
        name: name of the returned model.

    Returns:
        A `keras.Model` mapping the list of features to a (B,) tensor.

    Raises:
        ValueError: no feature shapes, or a non-positive `units`.
    """
    if not feature_shapes:
        raise ValueError("Expected at least one tapped feature. Received none.")
    if int(units) <= 0:
        raise ValueError(f"Expected head_units > 0. Received: head_units={units}")
    inputs, branches = [], []
    gate = GradientGate(name="gradient_gate")
    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    for index, shape in enumerate(feature_shapes):
        feature = keras.Input(shape=tuple(shape[1:]), name=f"tap_{index}")
        inputs.append(feature)
        x = feature
        if needs_pooling(shape):
            x = _POOLING[len(shape)](name=f"tap_{index}_pool")(x)
        x = gate(x)
        x = keras.layers.Dense(
            units, kernel_regularizer=regularizer, name=f"tap_{index}_dense"
        )(x)
        branches.append(keras.layers.ReLU(name=f"tap_{index}_relu")(x))
    merged = (
        branches[0]
        if len(branches) == 1
        else keras.layers.Concatenate(name="concat")(branches)
    )
    score = keras.layers.Dense(
        1, kernel_regularizer=regularizer, name="predicted_loss_dense"
    )(merged)
    score = keras.layers.Reshape((), name=PREDICTED_LOSS_OUTPUT)(score)
    return keras.Model(inputs, score, name=name)
