"""Object detection with a learned loss: the pieces of a detection task.

- data: `make_scenes` / `load_cifar_scenes` (synthetic scenes of real CIFAR-10
  images), `load_voc`, `load_coco` and `to_scenes` for a user's data,
  `split_scenes`; `augment.mirror` (a scene and its targets, mirrored);
- model: `build_ssd`, `DefaultBoxes`, `default_boxes_for`, `feature_map_names`
  (the taps), `encode_batch` (targets), `MultiBoxLoss` (the per-image loss);
- inference: `decode_predictions`, `select_detections` (numpy NMS),
  `inference_learner` (boxes, scores and `predicted_loss` for export);
- evaluation and selection: `mean_average_precision` (pycocotools),
  `detection_uncertainty`, `pooled_features`, and `view.DetectionModelView`
  (what strategies ask of a detector).

`kerasll.tasks.detection.DetectionTask` puts these pieces behind the task
seam that `kerasll simulate --task detection` runs.
"""

from kerasll.detection.anchors import DefaultBoxes
from kerasll.detection.annotations import (
    AnnotationError,
    AnnotationSet,
    ImageAnnotation,
    to_scenes,
)
from kerasll.detection.coco import load_coco
from kerasll.detection.inference import DecodeBoxes, inference_learner, inference_model
from kerasll.detection.loss import MultiBoxLoss, hard_negative_mask
from kerasll.detection.matching import encode_batch, encode_targets, match
from kerasll.detection.metric import mean_average_precision
from kerasll.detection.model import build_ssd, default_boxes_for, feature_map_names
from kerasll.detection.postprocess import (
    Detections,
    decode_predictions,
    non_max_suppression,
    select_detections,
)
from kerasll.detection.scenes import (
    SceneDataError,
    Scenes,
    load_cifar_scenes,
    make_scenes,
    split_scenes,
)
from kerasll.detection.uncertainty import detection_uncertainty, pooled_features
from kerasll.detection.voc import load_voc

__all__ = [
    "AnnotationError",
    "AnnotationSet",
    "DecodeBoxes",
    "DefaultBoxes",
    "Detections",
    "ImageAnnotation",
    "MultiBoxLoss",
    "SceneDataError",
    "Scenes",
    "build_ssd",
    "decode_predictions",
    "default_boxes_for",
    "detection_uncertainty",
    "encode_batch",
    "encode_targets",
    "feature_map_names",
    "hard_negative_mask",
    "inference_learner",
    "inference_model",
    "load_cifar_scenes",
    "load_coco",
    "load_voc",
    "make_scenes",
    "split_scenes",
    "mean_average_precision",
    "match",
    "non_max_suppression",
    "pooled_features",
    "select_detections",
    "to_scenes",
]
