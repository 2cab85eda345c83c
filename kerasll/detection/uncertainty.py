"""Per-image scores for detection strategies: uncertainty and pooled features."""

import keras
import numpy as np

from kerasll.active.uncertainty import uncertainty
from kerasll.detection.model import feature_map_names

REDUCTIONS = ("mean", "max")


def detection_uncertainty(
    probabilities, detections, measure="entropy", reduction="mean"
):
    """Uncertainty of an image's detections, one score per image.

    Each detection is scored on the full class distribution (K classes,
    background included) at its default box, with an uncertainty measure of
    `kerasll.active.uncertainty`; an image's score is the mean (default, as
    the paper's entropy baseline for detection averages over the detected
    boxes) or the max over its detections. An image without detections is
    scored by its single most confident foreground default box, so that it
    is not taken for a certain one.

    Args:
        probabilities: (B, N, K) class probabilities (`decode_predictions`, or
            the exported graph's "scores").
        detections: B `postprocess.Detections` (from `select_detections`).
        measure: "entropy", "margin" or "least_confidence".
        reduction: "mean" or "max".

    Returns:
        float32 array (B,); higher is more uncertain.

    Raises:
        ValueError: unknown `reduction`, or not one detection list per image.
        UnknownStrategyError: unknown `measure`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Expected reduction in {list(REDUCTIONS)}. Received: "
            f"reduction={reduction!r}."
        )
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(detections) != len(probabilities):
        raise ValueError(
            f"Expected one Detections per image ({len(probabilities)}). Received "
            f"{len(detections)}."
        )
    reduce = np.mean if reduction == "mean" else np.max
    scores = np.empty(len(probabilities), dtype=np.float32)
    for image, found in enumerate(detections):
        rows = np.asarray(found.indices, dtype=np.int64)
        if len(rows) == 0:
            rows = np.array([np.argmax(probabilities[image, :, 1:].max(axis=-1))])
        scores[image] = reduce(uncertainty(probabilities[image, rows], measure))
    return scores


def pooled_feature_tensor(model, layers=None):
    """Global-average-pooled feature maps, concatenated, as a tensor of `model`.

    Args:
        model: a `build_ssd` model (or a `LossLearner`'s `backbone`).
        layers: names of 4-D layers to pool; default `feature_map_names(model)`.

    Returns:
        A (B, sum of the layers' channels) tensor on the model's graph.
    """
    names = list(layers or feature_map_names(model))
    pooled = [
        keras.layers.GlobalAveragePooling2D(name=f"{name}_pooled")(
            model.get_layer(name).output
        )
        for name in names
    ]
    return pooled[0] if len(pooled) == 1 else keras.layers.Concatenate()(pooled)


def pooled_features(model, images, layers=None, batch_size=32):
    """Pooled feature maps per image: core-set's embedding of a scene.

    Args:
        model: a `build_ssd` model (or a `LossLearner`'s `backbone`).
        images: inputs as the model takes them.
        layers: as in `pooled_feature_tensor`.
        batch_size: prediction batch size.

    Returns:
        float32 array (n, sum of the layers' channels).
    """
    embedder = keras.Model(
        model.input, pooled_feature_tensor(model, layers), name=f"{model.name}_features"
    )
    return np.asarray(embedder.predict(images, batch_size=batch_size, verbose=0))
