"""Gaussian heatmaps: keypoints in, heatmaps out, and back.

A heatmap cell of stride s covers s x s input pixels; with pixel centers at
integer coordinates (see `kerasll.keypoints.figures`), cell k is centered on
input coordinate `k * s + (s - 1) / 2`. A keypoint's target is an
unnormalized Gaussian (peak 1 at its exact sub-cell position, `sigma` in
cells); a keypoint left out of training has a map filled with `IGNORED`.

Decoding takes the argmax cell, then refines it with one Taylor (Newton)
step on the log heatmap along each axis, as in DARK (Zhang et al., CVPR
2020, without its blur): the log of a Gaussian is a parabola, so the vertex
of the parabola through three neighbouring cells is exact for a clean
Gaussian, anywhere in the map (at a border the three cells are shifted
inward). The step is kept within the argmax cell (+-0.5), and skipped where
the log heatmap is not curved downward (a flat or noisy peak). The
confidence of a keypoint is its map's peak value.
"""

from numbers import Integral, Real

import keras
import numpy as np
from keras import ops
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.keypoints.sizes import STRIDE

IGNORED = -1.0
SIGMA = 1.0
_FLOOR = 1e-10  # heatmap values are clipped here before the log

# The COCO flag a keypoint must reach to count, for every `min_visibility`
# argument (1: every keypoint in the image, hidden ones too; 2: visible ones).
MIN_VISIBILITY = [Interval(Integral, 1, 2, closed="both")]
PARAMETER_CONSTRAINTS = {
    "stride": [Interval(Integral, 1, None, closed="left")],
    "sigma": [Interval(Real, 0, None, closed="neither")],
    "min_visibility": MIN_VISIBILITY,
}


def check_stride(stride):
    """`stride` as an int.

    Raises:
        ValueError: not an integer >= 1.
    """
    return validate_arguments(PARAMETER_CONSTRAINTS, {"stride": stride})["stride"]


def as_heatmaps(heatmaps, dtype=np.float32):
    """`heatmaps` as an (n, h, w, J) array of `dtype`.

    Raises:
        ValueError: not 4-D.
    """
    heatmaps = np.asarray(heatmaps, dtype=dtype)
    if heatmaps.ndim != 4:
        raise ValueError(
            "Expected heatmaps of shape (n, h, w, J). Received: heatmaps of shape "
            f"{heatmaps.shape}"
        )
    return heatmaps


def heatmap_shape(image_size, stride=STRIDE):
    """(height, width) of the heatmaps of images of `image_size`.

    Raises:
        ValueError: a side not divisible by `stride`.
    """
    stride = check_stride(stride)
    height, width = (int(side) for side in image_size)
    if height % stride or width % stride or height < stride or width < stride:
        raise ValueError(
            f"Expected an image size divisible by the stride {stride}. Received: "
            f"image_size={tuple(image_size)}."
        )
    return height // stride, width // stride


def encode_heatmaps(
    keypoints, visibility, image_size, stride=STRIDE, sigma=SIGMA, min_visibility=1
):
    """Gaussian target heatmaps at 1/`stride` resolution.

    Args:
        keypoints: (n, J, 2) (x, y) pixel coordinates.
        visibility: (n, J) COCO flags (0 outside, 1 hidden, 2 visible).
        image_size: (height, width) of the images.
        stride: input pixels per heatmap cell (4: heatmaps at 1/4).
        sigma: the Gaussian's standard deviation, in heatmap cells.
        min_visibility: keypoints flagged at least this get a Gaussian (1:
            every keypoint in the image, hidden ones too, as COCO trains;
            2: visible ones only); the others a map of `IGNORED`.

    Returns:
        float32 (n, height / stride, width / stride, J).

    Raises:
        ValueError: mismatched shapes, an argument outside
            `PARAMETER_CONSTRAINTS` (sigma <= 0, min_visibility not 1 or 2),
            or an image size not divisible by the stride.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visibility = np.asarray(visibility)
    if (
        keypoints.ndim != 3
        or keypoints.shape[-1] != 2
        or visibility.shape != keypoints.shape[:2]
    ):
        raise ValueError(
            "Expected keypoints (n, J, 2) and visibility (n, J). Received shapes "
            f"{keypoints.shape} and {visibility.shape}."
        )
    sigma, min_visibility = validate_arguments(
        PARAMETER_CONSTRAINTS, {"sigma": sigma, "min_visibility": min_visibility}
    ).values()
    height, width = heatmap_shape(image_size, stride)
    centers = to_heatmap_coordinates(keypoints, stride)
    rows = np.arange(height, dtype=np.float64)[None, :, None, None]
    columns = np.arange(width, dtype=np.float64)[None, None, :, None]
    squared = (columns - centers[:, None, None, :, 0]) ** 2 + (
        rows - centers[:, None, None, :, 1]
    ) ** 2
    maps = np.exp(-squared / (2.0 * sigma**2))
    labeled = (visibility >= min_visibility)[:, None, None, :]
    return np.where(labeled, maps, IGNORED).astype(np.float32)


def to_heatmap_coordinates(points, stride=STRIDE):
    """Input pixel coordinates -> heatmap cell coordinates."""
    stride = check_stride(stride)
    return (points - (stride - 1) / 2.0) / stride


def to_input_coordinates(points, stride=STRIDE):
    """Heatmap cell coordinates -> input pixel coordinates (arrays or tensors)."""
    stride = check_stride(stride)
    return points * float(stride) + (stride - 1) / 2.0


def _vertex(profile, peak, size):
    """Sub-cell position of the peak of 1-D log profiles (..., size) at `peak`.

    The parabola through three cells around `peak` (shifted inward at a
    border), its vertex kept within `peak` +- 0.5; `peak` itself where the
    parabola opens upward or is flat, or the profile has fewer than 3 cells.
    """
    peak_float = ops.cast(peak, "float32")
    if size < 3:
        return peak_float
    center = ops.clip(peak, 1, size - 2)

    def at(index):
        return ops.sum(profile * ops.one_hot(index, size, dtype=profile.dtype), axis=-1)

    before, middle, after = at(center - 1), at(center), at(center + 1)
    curvature = before - 2.0 * middle + after
    curved = curvature < -1e-6
    step = -0.5 * (after - before) / ops.where(curved, curvature, -1.0)
    vertex = ops.cast(center, "float32") + step
    vertex = ops.clip(vertex, peak_float - 0.5, peak_float + 0.5)
    return ops.where(curved, vertex, peak_float)


def _first_maximum(values):
    """Index of the first maximum along the last axis (int32)."""
    size = int(values.shape[-1])
    positions = ops.arange(size, dtype="int32")
    is_maximum = values >= ops.max(values, axis=-1, keepdims=True)
    first = ops.min(ops.where(is_maximum, positions, size), axis=-1)
    return ops.minimum(first, size - 1)  # NaN maps: no maximum, last cell


def heatmap_peaks(heatmaps):
    """Refined peak positions and peak values of heatmaps, in `keras.ops`.

    Args:
        heatmaps: (B, h, w, J) tensor or array (static h and w).

    Returns:
        `(points, confidences)`: (B, J, 2) float32 (x, y) in heatmap cells
        (see the module docstring for the refinement), and (B, J) peak
        values.
    """
    heatmaps = ops.cast(ops.convert_to_tensor(heatmaps), "float32")
    height, width = int(heatmaps.shape[1]), int(heatmaps.shape[2])
    maps = ops.transpose(heatmaps, (0, 3, 1, 2))  # (B, J, h, w)
    # The first row holding the maximum, then its first column holding it:
    # the row-major argmax, without the integer division and the bitcast of
    # Keras' float argmax (which tf2onnx cannot convert).
    row_maxima = ops.max(maps, axis=-1)
    row = _first_maximum(row_maxima)
    confidences = ops.max(row_maxima, axis=-1)
    row_values = ops.sum(maps * ops.one_hot(row, height)[..., :, None], axis=-2)
    column = _first_maximum(row_values)
    logs = ops.log(ops.maximum(maps, _FLOOR))
    row_profile = ops.sum(logs * ops.one_hot(row, height)[..., :, None], axis=-2)
    column_profile = ops.sum(logs * ops.one_hot(column, width)[..., None, :], axis=-1)
    x = _vertex(row_profile, column, width)
    y = _vertex(column_profile, row, height)
    return ops.stack([x, y], axis=-1), confidences


def decode_heatmaps(heatmaps, stride=STRIDE):
    """Keypoints and confidences from heatmaps, at input resolution.

    Args:
        heatmaps: (n, h, w, J) array.
        stride: input pixels per heatmap cell.

    Returns:
        `(keypoints, confidences)`: float32 (n, J, 2) (x, y) input pixel
        coordinates and (n, J) peak values.

    Raises:
        ValueError: heatmaps not 4-D.
    """
    heatmaps = as_heatmaps(heatmaps)
    points, confidences = heatmap_peaks(heatmaps)
    points = to_input_coordinates(keras.ops.convert_to_numpy(points), stride)
    return points.astype(np.float32), keras.ops.convert_to_numpy(confidences)
