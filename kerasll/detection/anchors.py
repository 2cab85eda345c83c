"""SSD default boxes ("anchors") for a stack of feature maps."""

import dataclasses
import math
import numbers

import numpy as np


@dataclasses.dataclass(frozen=True)
class DefaultBoxes:
    """How default boxes tile each feature map (Liu et al., 2016, section 2.2).

    Feature map k of m (0-based) gets scale
    `s_k = min_scale + (max_scale - min_scale) * k / (m - 1)`; each cell gets
    one box per aspect ratio a (width `s_k * sqrt(a)`, height `s_k / sqrt(a)`)
    and, when 1 is among the ratios, one more square box of scale
    `sqrt(s_k * s_{k+1})` (with `s_m = 1`). Boxes are centered on the cells
    and clipped to the image. SSD300 uses ratios (1, 2, 1/2) on some maps and
    adds (3, 1/3) on others; one set of ratios for every map keeps the
    detector's head uniform.

    Args:
        min_scale: scale of the first (finest) map, as a fraction of the image
            side (SSD: 0.2).
        max_scale: scale of the last map (SSD: 0.9).
        aspect_ratios: width / height ratios (SSD: 1, 2, 1/2).
        clip: clip boxes to [0, 1].

    Raises:
        ValueError: scales outside (0, 1] or not increasing, or no or
            non-positive aspect ratios.
    """

    min_scale: float = 0.2
    max_scale: float = 0.9
    aspect_ratios: tuple = (1.0, 2.0, 0.5)
    clip: bool = True

    def __post_init__(self):
        if not 0.0 < self.min_scale <= self.max_scale <= 1.0:
            raise ValueError(
                "Expected 0 < min_scale <= max_scale <= 1. Received: "
                f"min_scale={self.min_scale!r}, max_scale={self.max_scale!r}."
            )
        ratios = tuple(float(ratio) for ratio in self.aspect_ratios)
        if not ratios or not all(math.isfinite(r) and r > 0 for r in ratios):
            raise ValueError(
                "Expected one or more positive aspect ratios. Received: "
                f"aspect_ratios={self.aspect_ratios!r}."
            )
        object.__setattr__(self, "aspect_ratios", ratios)

    @property
    def per_location(self):
        """Boxes per feature-map cell."""
        return len(self.aspect_ratios) + (1 if 1.0 in self.aspect_ratios else 0)

    def scales(self, count):
        """The scale of each of `count` feature maps, plus 1.0 after the last."""
        if count == 1:
            return [self.min_scale, 1.0]
        step = (self.max_scale - self.min_scale) / (count - 1)
        return [self.min_scale + step * k for k in range(count)] + [1.0]

    def generate(self, feature_map_sizes):
        """Default boxes for feature maps of the given sizes.

        Args:
            feature_map_sizes: (height, width) of each feature map, finest
                first.

        Returns:
            float32 array (N, 4) of corner boxes, ordered map by map, then row,
            column and box within a cell: the order of a (H, W, boxes, ...)
            reshape of each map's prediction.

        Raises:
            ValueError: no sizes, or a size that is not two positive integers.
        """
        sizes = [tuple(size) for size in feature_map_sizes]
        if not sizes or not all(
            len(size) == 2
            and all(isinstance(s, numbers.Integral) and s > 0 for s in size)
            for size in sizes
        ):
            raise ValueError(
                "Expected feature map sizes as (height, width) pairs of positive "
                f"integers. Received: {feature_map_sizes!r}."
            )
        scales = self.scales(len(sizes))
        boxes = []
        for k, (height, width) in enumerate(sizes):
            shapes = [
                (scales[k] * math.sqrt(r), scales[k] / math.sqrt(r))
                for r in self.aspect_ratios
            ]
            if 1.0 in self.aspect_ratios:
                extra = math.sqrt(scales[k] * scales[k + 1])
                shapes.append((extra, extra))
            cy, cx = np.meshgrid(
                (np.arange(height) + 0.5) / height,
                (np.arange(width) + 0.5) / width,
                indexing="ij",
            )
            centers = np.stack([cx, cy], axis=-1).reshape(-1, 1, 2)
            extents = np.asarray(shapes, dtype=np.float64).reshape(1, -1, 2)
            corners = np.concatenate(
                [centers - extents / 2.0, centers + extents / 2.0], axis=-1
            )
            boxes.append(corners.reshape(-1, 4))
        boxes = np.concatenate(boxes, axis=0)
        if self.clip:
            boxes = np.clip(boxes, 0.0, 1.0)
        return boxes.astype(np.float32)
