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
"""

from kerasll.keypoints.coco import (
    COCO_SIGMAS,
    ImageKeypoints,
    KeypointAnnotationSet,
    load_coco_keypoints,
    to_figures,
)
from kerasll.keypoints.figures import (
    FIGURE_SKELETON,
    FigureDataError,
    Figures,
    Skeleton,
    make_figures,
    mirror,
    split_figures,
)
from kerasll.keypoints.heatmaps import (
    IGNORED,
    decode_heatmaps,
    encode_heatmaps,
    heatmap_peaks,
    heatmap_shape,
)
from kerasll.keypoints.inference import (
    CONFIDENCES_OUTPUT,
    KEYPOINTS_OUTPUT,
    DecodeKeypoints,
    inference_learner,
    inference_model,
)
from kerasll.keypoints.loss import HeatmapLoss
from kerasll.keypoints.metric import oks_average_precision, pckh
from kerasll.keypoints.model import build_hourglass, feature_map_names
from kerasll.keypoints.uncertainty import heatmap_entropy, pose_feature_tensor

__all__ = [
    "COCO_SIGMAS",
    "CONFIDENCES_OUTPUT",
    "DecodeKeypoints",
    "FIGURE_SKELETON",
    "FigureDataError",
    "Figures",
    "HeatmapLoss",
    "IGNORED",
    "ImageKeypoints",
    "KEYPOINTS_OUTPUT",
    "KeypointAnnotationSet",
    "Skeleton",
    "build_hourglass",
    "decode_heatmaps",
    "encode_heatmaps",
    "feature_map_names",
    "heatmap_entropy",
    "heatmap_peaks",
    "heatmap_shape",
    "inference_learner",
    "inference_model",
    "load_coco_keypoints",
    "make_figures",
    "mirror",
    "oks_average_precision",
    "pckh",
    "pose_feature_tensor",
    "split_figures",
    "to_figures",
]
