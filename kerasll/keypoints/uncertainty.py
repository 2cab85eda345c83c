"""Per-image scores for pose strategies: heatmap entropy and pooled features."""

import numpy as np

from kerasll.detection.uncertainty import pooled_feature_tensor
from kerasll.keypoints.heatmaps import as_heatmaps
from kerasll.keypoints.model import feature_map_names


def heatmap_entropy(heatmaps, normalize=True):
    """Uncertainty of an image: its joints' heatmap entropies, averaged.

    Each joint's heatmap, clipped at 0, is normalized to a distribution over
    its cells (an all-zero map counts as uniform), and its Shannon entropy
    taken; an image's score is the mean over its joints. A sharp single
    peak scores near 0, a flat or multi-modal map high.

    Args:
        heatmaps: (n, h, w, J) predicted heatmaps.
        normalize: divide by log(h * w), the entropy of a uniform map, so
            that scores lie in [0, 1]; otherwise nats.

    Returns:
        float32 array (n,); higher is more uncertain.

    Raises:
        ValueError: heatmaps not 4-D.
    """
    heatmaps = as_heatmaps(heatmaps, np.float64)
    count, height, width, joints = heatmaps.shape
    mass = np.maximum(heatmaps, 0.0).reshape(count, height * width, joints)
    mass = mass + np.where(mass.sum(axis=1, keepdims=True) > 0, 0.0, 1.0)
    probabilities = mass / mass.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    entropy = -terms.sum(axis=1).mean(axis=-1)
    if normalize and height * width > 1:
        entropy = entropy / np.log(height * width)
    return entropy.astype(np.float32)


def pose_feature_tensor(model, layers=None):
    """Pooled hourglass features per image: core-set's embedding of a figure.

    Args:
        model: a `build_hourglass` model (or a `LossLearner`'s `backbone`).
        layers: names of 4-D layers to pool; default `feature_map_names(model)`.

    Returns:
        A (B, sum of the layers' channels) tensor on the model's graph
        (`kerasll.detection.uncertainty.pooled_feature_tensor`).
    """
    return pooled_feature_tensor(model, list(layers or feature_map_names(model)))
