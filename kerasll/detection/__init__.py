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

The names load on first use (`kerasll.lazy`), so importing one data module
(`scenes`, `annotations`, `voc`, `coco`) loads no Keras.
"""

from kerasll.lazy import lazy_names

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "AnnotationError": "kerasll.detection.annotations",
    "AnnotationSet": "kerasll.detection.annotations",
    "DecodeBoxes": "kerasll.detection.inference",
    "DefaultBoxes": "kerasll.detection.anchors",
    "Detections": "kerasll.detection.postprocess",
    "ImageAnnotation": "kerasll.detection.annotations",
    "MultiBoxLoss": "kerasll.detection.loss",
    "SceneDataError": "kerasll.detection.scenes",
    "Scenes": "kerasll.detection.scenes",
    "build_ssd": "kerasll.detection.model",
    "decode_predictions": "kerasll.detection.postprocess",
    "default_boxes_for": "kerasll.detection.model",
    "detection_uncertainty": "kerasll.detection.uncertainty",
    "encode_batch": "kerasll.detection.matching",
    "encode_targets": "kerasll.detection.matching",
    "feature_map_names": "kerasll.detection.model",
    "hard_negative_mask": "kerasll.detection.loss",
    "inference_learner": "kerasll.detection.inference",
    "inference_model": "kerasll.detection.inference",
    "load_cifar_scenes": "kerasll.detection.scenes",
    "load_coco": "kerasll.detection.coco",
    "load_voc": "kerasll.detection.voc",
    "make_scenes": "kerasll.detection.scenes",
    "match": "kerasll.detection.matching",
    "mean_average_precision": "kerasll.detection.metric",
    "non_max_suppression": "kerasll.detection.postprocess",
    "pooled_features": "kerasll.detection.uncertainty",
    "select_detections": "kerasll.detection.postprocess",
    "split_scenes": "kerasll.detection.scenes",
    "to_scenes": "kerasll.detection.annotations",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
