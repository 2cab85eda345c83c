"""Reading the task prediction that goes next to each pick.

The one place that knows how each task type's output reads; the engines, the
output files and the picks image only call the functions below.

Classifiers give a class (name when the contract has class names, else the
index) and a confidence: the top probability, after a softmax (or a sigmoid for
a single-unit binary head) when the model outputs logits. Regressors give the
raw value. Detectors give the number of detections and the top detection's
class and score, after SSD's NMS (`detections.select_detections`) counting only
detections scoring above `DISPLAY_THRESHOLD`. Pose networks give their
keypoints and the mean of their confidences. Task type "other" gives nothing.
"""

import numpy as np

from kerasll_serving.contract import (
    BOXES_OUTPUT,
    CONFIDENCES_OUTPUT,
    KEYPOINTS_OUTPUT,
    SCORES_OUTPUT,
    ContractError,
)
from kerasll_serving.detections import select_detections

# A detector's boxes that count and are drawn: SSD's NMS threshold (0.01)
# keeps hundreds of near-background boxes, which says nothing in a summary.
DISPLAY_THRESHOLD = 0.5

# Output-file columns of a task's prediction -> the `Pick` attribute they show.
_FIELDS = (("prediction", "prediction"), ("confidence", "confidence"))
_TASK_FIELDS = {
    "detection": (
        ("detections", "detections"),
        ("top_class", "prediction"),
        ("top_score", "confidence"),
    ),
    "keypoints": (("keypoints", "prediction"), ("mean_confidence", "confidence")),
}


def task_columns(task_output, contract):
    """Turns a batch of task outputs into per-item columns.

    Args:
        task_output: what `ScoringModel.run` returns for a batch of B items:
            the task output, a detector's (boxes, scores) or a pose network's
            (keypoints, confidences) pair (the contract's `read_outputs`), or
            None for "other".
        contract: the model's `ModelContract`.

    Returns:
        A dict of arrays with B rows: `class_index` (int64) and `confidence`
        (float64) for classification, `value` (float64, shape (B,) or (B, D))
        for regression, `detections` (int64), `class_index` (int64, -1 when
        none) and `confidence` (float64, NaN when none) for detection,
        `keypoints` (float64, (B, J, 2)) and `confidence` (float64, the mean
        over the joints) for keypoints, empty for "other".

    Raises:
        ContractError: the output's shape does not fit the task type.
    """
    if contract.task_type == "other" or task_output is None:
        return {}
    return _READERS[contract.task_type](task_output, contract)


def describe(columns, row, contract):
    """Returns one item's prediction as `Pick` keyword arguments.

    Args:
        columns: columns from `task_columns` (possibly after top-K selection).
        row: the item's row in `columns`.
        contract: the model's `ModelContract`.

    Returns:
        A dict with `prediction` and `confidence`: for classifiers the class
        name (or index) and the confidence; for regressors the value (a float,
        or a list for vector outputs) and None; for detectors the top
        detection's class name (or index) and score (None for both when no
        detection passes `DISPLAY_THRESHOLD`), and `detections`, their count;
        for pose networks the keypoints (a list of [x, y]) and their mean
        confidence; None for both for "other".
    """
    if "detections" in columns:
        count = int(columns["detections"][row])
        if not count:
            return {"prediction": None, "confidence": None, "detections": 0}
        return {"prediction": label(columns["class_index"][row], contract),
                "confidence": float(columns["confidence"][row]),
                "detections": count}
    if "keypoints" in columns:
        return {"prediction": columns["keypoints"][row].tolist(),
                "confidence": float(columns["confidence"][row])}
    if "class_index" in columns:
        return {"prediction": label(columns["class_index"][row], contract),
                "confidence": float(columns["confidence"][row])}
    if "value" in columns:
        value = columns["value"][row]
        return {"prediction": float(value) if np.ndim(value) == 0 else value.tolist(),
                "confidence": None}
    return {"prediction": None, "confidence": None}


def task_fields(contract):
    """The output-file columns of a model's prediction.

    Args:
        contract: the model's `ModelContract`.

    Returns:
        `(column, attribute)` pairs: the column name in picks and every-score
        files, and the `describe` key (`Pick` attribute) it shows.
    """
    return _TASK_FIELDS.get(contract.task_type, _FIELDS)


def detected(task_output, contract):
    """A detector's detections above `DISPLAY_THRESHOLD`, per item.

    What the detection columns count and the picks image draws: SSD's
    per-class NMS (`detections.select_detections`) with the display threshold
    as its score threshold, which keeps exactly the detections above it that
    SSD's 0.01 would.

    Args:
        task_output: as for `task_columns`.
        contract: the model's `ModelContract`.

    Returns:
        A list of B `Detections` scoring above `DISPLAY_THRESHOLD` for a
        detector; an empty list for other task types (nothing to draw).

    Raises:
        ContractError: a detector's outputs are not (B, N, 4) and (B, N, K).
    """
    if contract.task_type != "detection":
        return []
    boxes, scores = task_output  # The contract's `read_outputs` order.
    try:
        return select_detections(boxes, scores, score_threshold=DISPLAY_THRESHOLD)
    except ValueError as error:
        raise ContractError(
            f"Expected the detector outputs {BOXES_OUTPUT!r} and {SCORES_OUTPUT!r} "
            f"to be boxes and class probabilities. Received: {error}"
        ) from error


def label(class_index, contract):
    """A class index as its name when the contract has class names.

    Args:
        class_index: a 0-based class (background excluded for detectors).
        contract: the model's `ModelContract`.

    Returns:
        The class name, or the index (an int) when there are no names.
    """
    index = int(class_index)
    names = contract.class_names
    return names[index] if names and index < len(names) else index


def softmax(logits):
    """Softmax along the last axis, shifted so exp never overflows.

    Also used by `kerasll.active.view` and `kerasll.detection.postprocess`,
    so training-side code and the device scorer turn logits into
    probabilities the same way.
    """
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=-1, keepdims=True)


def _classifier_columns(task_output, contract):
    values = np.asarray(task_output, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ContractError(
            "Expected a classifier output of shape (batch, classes) or (batch,). "
            f"Received: shape {values.shape}."
        )
    rows = values.reshape(len(values), -1)
    if rows.shape[1] == 1:
        positive = _sigmoid(rows[:, 0]) if contract.from_logits else rows[:, 0]
        class_index = (positive >= 0.5).astype(np.int64)
        confidence = np.where(class_index == 1, positive, 1.0 - positive)
        return {"class_index": class_index, "confidence": confidence}
    probabilities = softmax(rows) if contract.from_logits else rows
    class_index = np.argmax(probabilities, axis=1).astype(np.int64)
    confidence = probabilities[np.arange(len(rows)), class_index]
    return {"class_index": class_index, "confidence": confidence}


def _regression_columns(task_output, contract):
    values = np.asarray(task_output, dtype=np.float64)
    rows = values.reshape(len(values), -1)
    return {"value": rows[:, 0] if rows.shape[1] == 1 else rows}


def _detector_columns(task_output, contract):
    found = detected(task_output, contract)  # Each highest score first.
    return {
        "detections": np.asarray([len(item) for item in found], dtype=np.int64),
        "class_index": np.asarray(
            [item.classes[0] if len(item) else -1 for item in found], dtype=np.int64
        ),
        "confidence": np.asarray(
            [item.scores[0] if len(item) else np.nan for item in found],
            dtype=np.float64,
        ),
    }


def _keypoint_columns(task_output, contract):
    keypoints, confidences = (np.asarray(value, dtype=np.float64)
                              for value in task_output)  # `read_outputs` order.
    if (keypoints.ndim != 3 or keypoints.shape[-1] != 2
            or confidences.shape != keypoints.shape[:2]):
        raise ContractError(
            f"Expected the pose outputs {KEYPOINTS_OUTPUT!r} of shape (batch, J, 2) "
            f"and {CONFIDENCES_OUTPUT!r} of shape (batch, J). Received shapes "
            f"{keypoints.shape} and {confidences.shape}."
        )
    return {"keypoints": keypoints, "confidence": confidences.mean(axis=-1)}


def _sigmoid(logits):
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # Never overflows, unlike exp.


_READERS = {
    "classification": _classifier_columns,
    "regression": _regression_columns,
    "detection": _detector_columns,
    "keypoints": _keypoint_columns,
}
