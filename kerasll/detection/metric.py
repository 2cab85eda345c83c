"""Mean average precision at IoU 0.5 through pycocotools.

The evaluation is pycocotools' `COCOeval` restricted to one IoU threshold
(0.5, PASCAL VOC's criterion), all object sizes and `max_detections` per
image. Its precision is interpolated at 101 recall points (COCO) rather than
VOC2010+'s every recall point, so on a handful of detections the two can
differ in the third decimal (see the test's hand-made case).
"""

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kerasll.detection.boxes import check_boxes


def mean_average_precision(
    true_boxes,
    true_labels,
    detections,
    num_classes,
    iou_threshold=0.5,
    max_detections=100,
):
    """mAP over object classes with ground truth, and the AP of each class.

    Args:
        true_boxes: per image, (G_i, 4) corner boxes (any consistent unit).
        true_labels: per image, (G_i,) 0-based classes.
        detections: per image, a `postprocess.Detections` (boxes in the same
            unit as `true_boxes`).
        num_classes: object classes.
        iou_threshold: a detection is a true positive from this IoU (VOC: 0.5).
        max_detections: detections per image considered, highest score first.

    Returns:
        `(map, per_class)`: the mean of the per-class APs over classes with at
        least one ground-truth box, and a (num_classes,) float array of APs,
        NaN for classes without ground truth. 0.0 when there are detections
        but nothing to find, NaN when no image holds an object.

    Raises:
        ValueError: the three sequences differ in length, or a label is not
            in [0, num_classes).
    """
    if not len(true_boxes) == len(true_labels) == len(detections):
        raise ValueError(
            "Expected ground truth and detections for the same images. Received "
            f"{len(true_boxes)} box arrays, {len(true_labels)} label arrays and "
            f"{len(detections)} detections."
        )
    ground_truth = _coco_ground_truth(true_boxes, true_labels, num_classes)
    per_class = np.full(num_classes, np.nan)
    if not ground_truth.dataset["annotations"]:
        return float("nan"), per_class
    results = [
        {
            "image_id": image_id,
            "category_id": int(label) + 1,
            "bbox": _xywh(box),
            "score": float(score),
        }
        for image_id, found in enumerate(detections, start=1)
        for box, label, score in zip(
            check_boxes(found.boxes, "detection boxes"), found.classes, found.scores
        )
    ]
    present = sorted(
        {ann["category_id"] - 1 for ann in ground_truth.dataset["annotations"]}
    )
    if not results:
        per_class[present] = 0.0
        return 0.0, per_class
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
        evaluation.params.iouThrs = np.array([float(iou_threshold)])
        evaluation.params.maxDets = [int(max_detections)]
        evaluation.params.areaRng = [[0.0, float("inf")]]
        evaluation.params.areaRngLbl = ["all"]
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: (iou thresholds, recall points, categories, areas, max dets)
    precision = evaluation.eval["precision"][0, :, :, 0, 0]
    for column, category in enumerate(evaluation.params.catIds):
        values = precision[:, column]
        if np.any(values > -1):
            per_class[category - 1] = float(np.mean(values[values > -1]))
    return float(np.nanmean(per_class[present])), per_class


def _xywh(box):
    return [
        float(box[0]),
        float(box[1]),
        float(box[2] - box[0]),
        float(box[3] - box[1]),
    ]


def _coco_ground_truth(true_boxes, true_labels, num_classes):
    images, annotations = [], []
    for image_id, (boxes, labels) in enumerate(zip(true_boxes, true_labels), start=1):
        boxes = check_boxes(boxes, "true boxes")
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(boxes) or np.any((labels < 0) | (labels >= num_classes)):
            raise ValueError(
                f"Expected one label in [0, {num_classes}) per true box. Received "
                f"{len(boxes)} boxes and labels {labels.tolist()} for image "
                f"{image_id - 1}."
            )
        images.append({"id": image_id})
        for box, label in zip(boxes, labels):
            x, y, width, height = _xywh(box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x, y, width, height],
                    "area": width * height,
                    "iscrowd": 0,
                }
            )
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c + 1} for c in range(num_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
    return ground_truth
