"""Per-image scores for detection strategies: entropy and pooled features."""

import keras
import numpy as np

from kerasll.detection.model import feature_map_names

REDUCTIONS = ("mean", "max")


def detection_entropy(probabilities, detections, reduction="mean"):
    """Entropy of an image's detections, one score per image.

    Each detection's entropy is that of the full class distribution (K
    classes, background included) at its default box; an image's score is
    the mean (default) or the max over its detections. An image without
    detections is scored by its single most confident foreground default box,
    so that it is not taken for a certain one.

    Args:
        probabilities: (B, N, K) class probabilities (`decode_predictions`, or
            the exported graph's "scores").
        detections: B `postprocess.Detections` (from `select_detections`).
        reduction: "mean" or "max".

    Returns:
        float32 array (B,), in nats; higher is more uncertain.

    Raises:
        ValueError: unknown `reduction`, or as many detection lists as images.
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
    entropy = -np.sum(
        probabilities * np.log(np.clip(probabilities, 1e-12, 1.0)), axis=-1
    )
    reduce = np.mean if reduction == "mean" else np.max
    scores = np.empty(len(probabilities), dtype=np.float32)
    for image, found in enumerate(detections):
        rows = found.indices
        if len(rows) == 0:
            rows = [int(np.argmax(probabilities[image, :, 1:].max(axis=-1)))]
        scores[image] = reduce(entropy[image, rows])
    return scores


def pooled_features(model, images, layers=None, batch_size=32):
    """Global-average-pooled feature maps, concatenated: core-set's embedding.

    Args:
        model: a `build_ssd` model (or a `LossLearner`'s `backbone`).
        images: inputs as the model takes them.
        layers: names of 4-D layers to pool; default `feature_map_names(model)`.
        batch_size: prediction batch size.

    Returns:
        float32 array (n, sum of the layers' channels).
    """
    names = list(layers or feature_map_names(model))
    pooled = [
        keras.layers.GlobalAveragePooling2D(name=f"{name}_pooled")(
            model.get_layer(name).output
        )
        for name in names
    ]
    merged = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate()(pooled)
    embedder = keras.Model(model.input, merged, name=f"{model.name}_features")
    return np.asarray(embedder.predict(images, batch_size=batch_size, verbose=0))
