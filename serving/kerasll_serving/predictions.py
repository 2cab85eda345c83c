"""Reading the task prediction that goes next to each pick.

Classifiers give a class (name when the contract has class names, else the
index) and a confidence: the top probability, after a softmax (or a sigmoid for
a single-unit binary head) when the model outputs logits. Regressors give the
raw value. Task type "other" gives nothing.
"""

import numpy as np

from kerasll_serving.contract import ContractError


def task_columns(task_output, contract):
    """Turns a batch of task outputs into per-item columns.

    Args:
        task_output: the model's first task output for a batch of B items, or
            None for task type "other".
        contract: the model's `ModelContract`.

    Returns:
        A dict of arrays with B rows: `class_index` (int64) and `confidence`
        (float64) for classification, `value` (float64, shape (B,) or (B, D))
        for regression, empty for "other".

    Raises:
        ContractError: a classifier output is not (B, classes) or (B,).
    """
    if contract.task_type == "other" or task_output is None:
        return {}
    values = np.asarray(task_output, dtype=np.float64)
    rows = values.reshape(len(values), -1)
    if contract.task_type == "regression":
        return {"value": rows[:, 0] if rows.shape[1] == 1 else rows}
    if values.ndim not in (1, 2):
        raise ContractError(
            "Expected a classifier output of shape (batch, classes) or (batch,). "
            f"Received: shape {values.shape}."
        )
    if rows.shape[1] == 1:
        positive = _sigmoid(rows[:, 0]) if contract.from_logits else rows[:, 0]
        class_index = (positive >= 0.5).astype(np.int64)
        confidence = np.where(class_index == 1, positive, 1.0 - positive)
        return {"class_index": class_index, "confidence": confidence}
    probabilities = softmax(rows) if contract.from_logits else rows
    class_index = np.argmax(probabilities, axis=1).astype(np.int64)
    confidence = probabilities[np.arange(len(rows)), class_index]
    return {"class_index": class_index, "confidence": confidence}


def describe(columns, row, contract):
    """Returns `(prediction, confidence)` of one item for the output files.

    Args:
        columns: columns from `task_columns` (possibly after top-K selection).
        row: the item's row in `columns`.
        contract: the model's `ModelContract`.

    Returns:
        For classifiers, the class name (or index) and the confidence; for
        regressors, the value (a float, or a list for vector outputs) and None;
        `(None, None)` for "other".
    """
    if "class_index" in columns:
        index = int(columns["class_index"][row])
        names = contract.class_names
        label = names[index] if names and index < len(names) else index
        return label, float(columns["confidence"][row])
    if "value" in columns:
        value = columns["value"][row]
        return (float(value) if np.ndim(value) == 0 else value.tolist()), None
    return None, None


def softmax(logits):
    """Row-wise softmax of a (B, classes) array, shifted so exp never overflows.

    Also used by `kerasll.active.view`, so training-side strategies and the
    device scorer turn logits into probabilities the same way.
    """
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=1, keepdims=True)


def _sigmoid(logits):
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # Never overflows, unlike exp.
