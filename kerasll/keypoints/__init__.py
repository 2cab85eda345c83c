"""Human pose with a learned loss: the pieces of a keypoint task.

- data: `make_figures` (stick figures with known joints on real
  backgrounds), `mirror` and `split_figures`, `Figures`, `Skeleton` and
  `FIGURE_SKELETON`; `load_coco_keypoints` for a user's COCO keypoint JSON,
  `to_figures` to crop its people into `Figures`;
- targets: `encode_heatmaps` (Gaussians at 1/4 resolution), and back:
  `decode_heatmaps` / `heatmap_peaks` (argmax with a Taylor sub-cell step);
- model: `build_hourglass`, `feature_map_names` (the taps), `HeatmapLoss`
  (the per-image loss over labeled joints);
- inference: `inference_model`, `inference_learner` (keypoints, confidences
  and `predicted_loss` for export);
- evaluation and selection: `pckh`, `oks_average_precision` (pycocotools),
  `heatmap_entropy`, `pose_feature_tensor` (core-set's embedding).

The names load on first use (`kerasll.lazy`), so importing one data module
(`figures`, `coco`, `sizes`) loads no Keras.
"""

from kerasll.lazy import lazy_names

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "COCO_SIGMAS": "kerasll.keypoints.coco",
    "CONFIDENCES_OUTPUT": "kerasll.keypoints.inference",
    "DecodeKeypoints": "kerasll.keypoints.inference",
    "FIGURE_SKELETON": "kerasll.keypoints.figures",
    "FigureDataError": "kerasll.keypoints.figures",
    "Figures": "kerasll.keypoints.figures",
    "HeatmapLoss": "kerasll.keypoints.loss",
    "IGNORED": "kerasll.keypoints.heatmaps",
    "ImageKeypoints": "kerasll.keypoints.coco",
    "KEYPOINTS_OUTPUT": "kerasll.keypoints.inference",
    "KeypointAnnotationSet": "kerasll.keypoints.coco",
    "Skeleton": "kerasll.keypoints.figures",
    "build_hourglass": "kerasll.keypoints.model",
    "decode_heatmaps": "kerasll.keypoints.heatmaps",
    "encode_heatmaps": "kerasll.keypoints.heatmaps",
    "feature_map_names": "kerasll.keypoints.model",
    "heatmap_entropy": "kerasll.keypoints.uncertainty",
    "heatmap_peaks": "kerasll.keypoints.heatmaps",
    "heatmap_shape": "kerasll.keypoints.heatmaps",
    "inference_learner": "kerasll.keypoints.inference",
    "inference_model": "kerasll.keypoints.inference",
    "load_coco_keypoints": "kerasll.keypoints.coco",
    "make_figures": "kerasll.keypoints.figures",
    "mirror": "kerasll.keypoints.figures",
    "oks_average_precision": "kerasll.keypoints.metric",
    "pckh": "kerasll.keypoints.metric",
    "pose_feature_tensor": "kerasll.keypoints.uncertainty",
    "split_figures": "kerasll.keypoints.figures",
    "to_figures": "kerasll.keypoints.coco",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
