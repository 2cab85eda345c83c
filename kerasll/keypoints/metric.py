"""Pose metrics: PCKh (MPII's, as the paper reports) and OKS AP (pycocotools).

`pckh` counts a keypoint as correct when it lies within `threshold` head
segments of the truth (MPII: 0.5 of the head size). `oks_average_precision`
is pycocotools' `COCOeval` with `iouType="keypoints"`: one person per image,
the skeleton's own OKS sigmas, every object size, COCO's OKS thresholds
0.50:0.05:0.95 and its 101-point interpolated precision.
"""

import contextlib
import io
from numbers import Real

import numpy as np
from kerasll_serving.validation import Interval, validate_arguments
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kerasll.keypoints.heatmaps import MIN_VISIBILITY

OKS_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))
# `pckh`'s plain arguments, checked by `validate_arguments`.
PCKH_CONSTRAINTS = {
    "threshold": [Interval(Real, 0, None, closed="neither")],
    "min_visibility": MIN_VISIBILITY,
}


def _check_keypoints(true_keypoints, visibility, predicted_keypoints):
    true_keypoints = np.asarray(true_keypoints, dtype=np.float64)
    predicted_keypoints = np.asarray(predicted_keypoints, dtype=np.float64)
    visibility = np.asarray(visibility)
    if (
        true_keypoints.ndim != 3
        or true_keypoints.shape[-1] != 2
        or predicted_keypoints.shape != true_keypoints.shape
        or visibility.shape != true_keypoints.shape[:2]
    ):
        raise ValueError(
            "Expected true and predicted keypoints of one shape (n, J, 2) and "
            f"visibility (n, J). Received shapes {true_keypoints.shape}, "
            f"{predicted_keypoints.shape} and {visibility.shape}."
        )
    return true_keypoints, visibility, predicted_keypoints


def _per_image(values, count, what):
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) != count or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"Expected one positive finite {what} per image ({count}). Received "
            f"{values.tolist()[:8]}{'...' if len(values) > 8 else ''}."
        )
    return values


def pckh(
    true_keypoints, visibility, predicted_keypoints, head_sizes, threshold=0.5,
    min_visibility=1,
):
    """PCKh: the share of keypoints within `threshold` head sizes of the truth.

    Args:
        true_keypoints: (n, J, 2) pixel coordinates.
        visibility: (n, J) COCO flags; keypoints flagged below
            `min_visibility` are not scored (1: every keypoint in the image,
            as MPII scores its annotated joints; 2: visible ones only).
        predicted_keypoints: (n, J, 2) pixel coordinates.
        head_sizes: (n,) head-segment lengths in pixels (`Figures.head_sizes`).
        threshold: the share of the head size within which a keypoint is
            correct (PCKh@0.5: 0.5).
        min_visibility: 1 or 2.

    Returns:
        `(value, per_keypoint)`: the share over all scored keypoints, and a
        (J,) array of per-keypoint shares (NaN for a keypoint never scored).
        `value` is NaN when nothing is scored.

    Raises:
        ValueError: mismatched shapes, head sizes not positive, or an
            argument outside `PCKH_CONSTRAINTS` (a threshold not positive,
            min_visibility not 1 or 2).
    """
    true_keypoints, visibility, predicted_keypoints = _check_keypoints(
        true_keypoints, visibility, predicted_keypoints
    )
    head_sizes = _per_image(head_sizes, len(true_keypoints), "head size")
    threshold, min_visibility = validate_arguments(
        PCKH_CONSTRAINTS, {"threshold": threshold, "min_visibility": min_visibility}
    ).values()
    distance = np.linalg.norm(predicted_keypoints - true_keypoints, axis=-1)
    correct = distance <= threshold * head_sizes[:, None]
    scored = visibility >= min_visibility
    counts = scored.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_keypoint = np.where(
            counts > 0, (correct & scored).sum(axis=0) / np.maximum(counts, 1), np.nan
        )
    total = int(scored.sum())
    value = float((correct & scored).sum() / total) if total else float("nan")
    return value, per_keypoint


def oks_average_precision(
    true_keypoints, visibility, areas, predicted_keypoints, scores, sigmas,
    thresholds=OKS_THRESHOLDS,
):
    """COCO keypoint AP (OKS), one person per image, through pycocotools.

    The ground truth is one person per image with its labeled keypoints
    (flag > 0) and `areas` as OKS's scale s^2. A person without labeled
    keypoints is ignored, as COCO ignores such people: pycocotools then
    matches a prediction against the box of the person's keypoints, and one
    inside it is ignored too, one far from it is a false positive. The
    predictions are one person per image, ranked by `scores` across images.

    Args:
        true_keypoints: (n, J, 2) pixel coordinates.
        visibility: (n, J) COCO flags.
        areas: (n,) person areas in square pixels (`Figures.areas`).
        predicted_keypoints: (n, J, 2) pixel coordinates.
        scores: (n,) confidence of each prediction (e.g. the mean keypoint
            confidence).
        sigmas: (J,) per-keypoint OKS constants (`Skeleton.sigmas`); they are
            set on pycocotools' `params.kpt_oks_sigmas`.
        thresholds: OKS thresholds AP is averaged over (COCO: 0.50:0.95).

    Returns:
        `(ap, per_threshold)`: the mean AP over `thresholds`, and a
        (len(thresholds),) array of APs. NaN when no image has a labeled
        keypoint.

    Raises:
        ValueError: mismatched shapes or lengths, areas not positive, or
            thresholds outside (0, 1].
    """
    true_keypoints, visibility, predicted_keypoints = _check_keypoints(
        true_keypoints, visibility, predicted_keypoints
    )
    count, joints = true_keypoints.shape[:2]
    areas = _per_image(areas, count, "area")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if len(scores) != count or not np.all(np.isfinite(scores)):
        raise ValueError(
            f"Expected one finite score per image ({count}). Received {len(scores)} "
            "scores or non-finite ones."
        )
    if len(sigmas) != joints or np.any(~(sigmas > 0)):
        raise ValueError(
            f"Expected one positive OKS sigma per keypoint ({joints}). Received: "
            f"sigmas={sigmas.tolist()}."
        )
    if not len(thresholds) or np.any(~((thresholds > 0) & (thresholds <= 1))):
        raise ValueError(
            "Expected OKS thresholds in (0, 1]. Received: "
            f"thresholds={thresholds.tolist()}."
        )
    per_threshold = np.full(len(thresholds), np.nan)
    labeled = visibility > 0
    if not labeled.any():
        return float("nan"), per_threshold
    images, truths, predictions = [], [], []
    for image_id in range(1, count + 1):
        index = image_id - 1
        images.append({"id": image_id})
        flags = np.where(labeled[index], 2, 0)
        # The box of the labeled keypoints, else of all: pycocotools matches
        # a prediction against it when the person has no labeled keypoint.
        seen = true_keypoints[index][labeled[index]] if labeled[index].any() else (
            true_keypoints[index]
        )
        corner = seen.min(axis=0)
        size = seen.max(axis=0) - corner
        truths.append({
            "id": image_id,
            "image_id": image_id,
            "category_id": 1,
            "keypoints": _coco_keypoints(true_keypoints[index], flags),
            "num_keypoints": int(labeled[index].sum()),
            "area": float(areas[index]),
            "bbox": [float(value) for value in (*corner, *size)],
            "iscrowd": 0,
        })
        predictions.append({
            "image_id": image_id,
            "category_id": 1,
            "keypoints": _coco_keypoints(predicted_keypoints[index], np.ones(joints)),
            "score": float(scores[index]),
        })
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": images,
        "annotations": truths,
        "categories": [{"id": 1, "name": "person"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        ground_truth.createIndex()
        evaluation = COCOeval(
            ground_truth, ground_truth.loadRes(predictions), "keypoints"
        )
        evaluation.params.kpt_oks_sigmas = sigmas
        evaluation.params.iouThrs = thresholds
        evaluation.params.maxDets = [1]
        evaluation.params.areaRng = [[0.0, float("inf")]]
        evaluation.params.areaRngLbl = ["all"]
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: (thresholds, recall points, categories, areas, max dets)
    precision = evaluation.eval["precision"][:, :, 0, 0, 0]
    for row, values in enumerate(precision):
        if np.any(values > -1):
            per_threshold[row] = float(np.mean(values[values > -1]))
    return float(np.nanmean(per_threshold)), per_threshold


def _coco_keypoints(points, flags):
    """[x1, y1, v1, x2, ...] as COCO stores a person's keypoints."""
    return [
        value
        for (x, y), flag in zip(points, flags)
        for value in (float(x), float(y), int(flag))
    ]
