"""Builds the `ModelContract` an exported graph carries in its metadata.

The contract is owned by `kerasll_serving.contract` (the device side); this
module only fills it in from a `LossLearner` and the export options.
"""

import numbers

import keras
from kerasll_serving.contract import (
    BOXES_OUTPUT,
    CONFIDENCES_OUTPUT,
    FORMAT_VERSION,
    KEYPOINTS_OUTPUT,
    PREDICTED_LOSS_OUTPUT,
    SCORES_OUTPUT,
    InputSpec,
    ModelContract,
    Preprocessing,
)

import kerasll
from kerasll.export.errors import ExportError
from kerasll.export.keras_internals import producing_operation

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")
_LOGIT_ACTIVATIONS = ("linear", "log_softmax")


def input_layout(shape):
    """"NHWC" for rank-4 channels-last images, "NC" for vectors, else "other"."""
    if len(shape) == 4 and keras.config.image_data_format() == "channels_last":
        return "NHWC"
    if len(shape) == 2:
        return "NC"
    return "other"


def color_mode(shape, layout):
    """"rgb" / "grayscale" for 3- / 1-channel NHWC inputs, else None."""
    if layout != "NHWC":
        return None
    return {1: "grayscale", 3: "rgb"}.get(shape[-1])


def task_type(outputs):
    """Task type from the task outputs.

    "detection" for outputs named "boxes" (B, N, 4) and "scores" (B, N, K), as
    `kerasll.detection.inference_learner` exports; "keypoints" for outputs
    named "keypoints" (B, J, 2) and "confidences" (B, J), as
    `kerasll.keypoints.inference_learner` exports; "classification" for a
    single (B, C) output with C > 1, "regression" for a single (B, 1) output,
    "other" for anything else (the device would not know how to read it).

    Args:
        outputs: task output name -> shape (batch axis included).

    Returns:
        The task type.

    Raises:
        ExportError: "boxes" and "scores", or "keypoints" and "confidences",
            outputs of other shapes.
    """
    if set(outputs) == {BOXES_OUTPUT, SCORES_OUTPUT}:
        boxes, scores = outputs[BOXES_OUTPUT], outputs[SCORES_OUTPUT]
        if (len(boxes) != 3 or boxes[-1] != 4 or len(scores) != 3
                or scores[1] != boxes[1] or scores[-1] is None):
            raise ExportError(
                f"Expected detector outputs {BOXES_OUTPUT!r} of shape (batch, N, 4) "
                f"and {SCORES_OUTPUT!r} of shape (batch, N, classes). Received "
                f"shapes {boxes} and {scores}."
            )
        return "detection"
    if set(outputs) == {KEYPOINTS_OUTPUT, CONFIDENCES_OUTPUT}:
        keypoints, confidences = outputs[KEYPOINTS_OUTPUT], outputs[CONFIDENCES_OUTPUT]
        if (len(keypoints) != 3 or keypoints[-1] != 2
                or tuple(confidences) != tuple(keypoints[:2])):
            raise ExportError(
                f"Expected pose outputs {KEYPOINTS_OUTPUT!r} of shape (batch, J, 2) "
                f"and {CONFIDENCES_OUTPUT!r} of shape (batch, J). Received shapes "
                f"{keypoints} and {confidences}."
            )
        return "keypoints"
    if len(outputs) != 1:
        return "other"
    (shape,) = outputs.values()
    if len(shape) != 2 or shape[-1] is None:
        return "other"
    return "classification" if shape[-1] > 1 else "regression"


def class_count(kind, outputs):
    """How many class names a model of this task type takes, or None.

    Args:
        kind: the task type.
        outputs: task output name -> shape.

    Returns:
        A classifier's units, a detector's object classes (its scores
        without the background), else None.
    """
    if kind == "classification":
        (shape,) = outputs.values()
        return int(shape[-1])
    if kind == "detection":
        return int(outputs[SCORES_OUTPUT][-1]) - 1
    return None


def final_activation(tensor):
    """Name of the activation that produces a functional model's output.

    Returns:
        e.g. "softmax", "sigmoid", "linear", or None when it cannot be told.
    """
    operation = producing_operation(tensor)
    if operation is None:
        return None
    if isinstance(operation, keras.layers.Softmax):
        return "softmax"
    activation = getattr(operation, "activation", None)
    if activation is not None:
        return getattr(activation, "__name__", None)
    name = type(operation).__name__.lower()
    if name in _PROBABILITY_ACTIVATIONS or name in _LOGIT_ACTIVATIONS:
        return name
    return None


def guess_from_logits(learner):
    """Whether the (first) task output is logits, from its final activation.

    softmax/sigmoid -> probabilities (False); linear (or log_softmax) -> logits
    (True). Undecidable activations fall back to the compiled loss's
    `from_logits` when it has one, else True: a softmax over scores always
    gives the device a valid confidence.
    """
    activation = final_activation(learner.backbone.outputs[0])
    if activation in _PROBABILITY_ACTIVATIONS:
        return False
    if activation in _LOGIT_ACTIVATIONS:
        return True
    loss = getattr(learner, "loss", None)
    if isinstance(getattr(loss, "from_logits", None), bool):
        return loss.from_logits
    return True


def check_class_names(class_names, kind, outputs):
    """Validates class names against the task outputs.

    Args:
        class_names: the names given, or None.
        kind: the task type.
        outputs: task output name -> shape.

    Returns:
        A tuple of names, or None.

    Raises:
        ExportError: names for a model that takes none, the wrong count, or
            duplicate or empty names (`checks.parameter_constraints` refuses
            what is not a list or tuple).
    """
    if class_names is None:
        return None
    names = tuple(str(name) for name in class_names)
    classes = class_count(kind, outputs)
    if classes is None:
        raise ExportError(
            "Expected class names only for a classifier (one task output of "
            "shape (batch, classes>1)) or a detector (outputs 'boxes' and "
            f"'scores'). Received class_names={list(names)} for a model of task "
            f"type {kind!r}."
        )
    if len(names) != classes:
        each = (
            "unit of the task output"
            if kind == "classification"
            else "object class (background excluded)"
        )
        raise ExportError(
            f"Expected {classes} class names, one per {each}. "
            f"Received {len(names)}: {list(names)}."
        )
    if len(set(names)) != len(names) or not all(names):
        raise ExportError(
            f"Expected distinct, non-empty class names. Received: {list(names)}."
        )
    return names


def check_resize(resize, shape, layout):
    """Turns the `resize` option into the contract's [height, width] or None.

    Args:
        resize: None/False (images must already have the graph's size), True
            (the device resizes images to the graph's fixed size), or a
            (height, width) pair.
        shape: the graph input shape, batch axis included.
        layout: the input layout.
    """
    if resize is None or resize is False:
        return None
    if layout != "NHWC":
        raise ExportError(
            "Expected resize only for an NHWC image input. Received "
            f"resize={resize!r} for input of shape {shape} ({layout})."
        )
    fixed = tuple(shape[1:3])
    if resize is True:
        if None in fixed:
            raise ExportError(
                "Expected resize=(height, width) for an input of dynamic spatial "
                f"size {shape}. Received resize=True."
            )
        return tuple(int(size) for size in fixed)
    try:
        height, width = resize
    except (TypeError, ValueError):
        height = width = None
    if not all(isinstance(size, numbers.Integral) and not isinstance(size, bool)
               for size in (height, width)):
        raise ExportError(
            "Expected resize as True or (height, width) integers. Received: "
            f"{resize!r}."
        )
    height, width = int(height), int(width)
    if height <= 0 or width <= 0 or any(
        want is not None and want != got for want, got in zip(fixed, (height, width))
    ):
        raise ExportError(
            f"Expected resize to positive sizes matching the input's spatial size "
            f"{fixed}. Received: ({height}, {width})."
        )
    return height, width


def build_contract(
    learner,
    *,
    input_name,
    input_shape,
    input_dtype,
    precision,
    class_names=None,
    from_logits=None,
    resize=None,
):
    """The metadata contract of an exported learner.

    Args:
        learner: the `LossLearner`.
        input_name: the ONNX input name.
        input_shape: graph input shape, None for the batch axis.
        input_dtype: numpy dtype name the graph takes ("uint8", "float32").
        precision: "fp32", "fp16" or "int8".
        class_names: class labels of a classifier or of a detector's object
            classes (background excluded), or None.
        from_logits: whether the classifier output is logits; None guesses it
            from the final activation (see `guess_from_logits`).
        resize: see `check_resize`.

    Returns:
        A `kerasll_serving.contract.ModelContract`.

    Raises:
        ExportError: class names or resize do not fit the model, or its
            "boxes" and "scores" outputs are not a detector's ("keypoints"
            and "confidences" not a pose network's).
    """
    shape = tuple(input_shape)
    layout = input_layout(shape)
    outputs = {
        name: tuple(output.shape)
        for name, output in zip(learner.task_output_names, learner.backbone.outputs)
    }
    kind = task_type(outputs)
    names = check_class_names(class_names, kind, outputs)
    if kind == "classification":
        logits = (
            guess_from_logits(learner) if from_logits is None else bool(from_logits)
        )
    else:
        logits = False
    return ModelContract(
        input=InputSpec(
            name=input_name,
            shape=tuple(None if size is None else int(size) for size in shape),
            dtype=str(input_dtype),
            layout=layout,
        ),
        task_outputs=tuple(learner.task_output_names),
        predicted_loss_output=PREDICTED_LOSS_OUTPUT,
        # Casting and any scale/offset the model was trained with live in the
        # graph, so the device feeds raw values as they were captured.
        preprocessing=Preprocessing(
            in_graph=True,
            scale=1.0,
            offset=0.0,
            resize=check_resize(resize, shape, layout),
            color_mode=color_mode(shape, layout),
        ),
        task_type=kind,
        class_names=names,
        from_logits=logits,
        taps=tuple(learner.taps),
        training={
            "objective": learner.objective,
            "margin": learner.margin,
            "weight": learner.weight,
            "head_units": learner.head_units,
            "detach_epoch": learner.detach_epoch,
        },
        precision=precision,
        kerasll_version=kerasll.__version__,
        format_version=FORMAT_VERSION,
    )
