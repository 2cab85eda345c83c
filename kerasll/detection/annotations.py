"""User detection data: the records VOC and COCO loaders return, and images.

Loaders refuse bad objects rather than skip them: an image size that is not
a positive integer, a box that is degenerate or lies outside its image, or
an object of an unknown class raises `AnnotationError` with one line naming
the file and the object. Training on a silently shortened set would change
results without a word; fixing the file is the user's call.
"""

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from kerasll.detection.scenes import Scenes


class AnnotationError(ValueError):
    """An annotation file does not have the expected layout or values."""


# Pixels a box corner may lie outside its image (rounding in exports); such a
# corner is clipped to the image, one further out refuses the file.
BOUND_TOLERANCE = 1.0


@dataclasses.dataclass(frozen=True)
class ImageAnnotation:
    """The objects of one image, in pixels.

    Attributes:
        file_name: image file, relative to the image folder.
        width, height: image size in pixels, as annotated.
        boxes: (k, 4) float32 (xmin, ymin, xmax, ymax) in pixels.
        labels: (k,) int64 indices into the set's `class_names`.
        difficult: (k,) bool, VOC's "difficult" flag (False for COCO).
    """

    file_name: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray

    def normalized_boxes(self):
        """`boxes` divided by the image width and height."""
        scale = np.array([self.width, self.height] * 2, dtype=np.float32)
        return self.boxes / scale


@dataclasses.dataclass(frozen=True)
class AnnotationSet:
    """Annotated images and the class names their labels index."""

    images: tuple
    class_names: tuple

    def __len__(self):
        return len(self.images)


def check_image_size(width, height, where):
    """An image's annotated (width, height) as two positive ints.

    Raises:
        AnnotationError: naming `where` and the values received.
    """
    try:
        size = (int(width), int(height))
    except (TypeError, ValueError):
        size = None
    if size is None or size != (width, height) or min(size) < 1:
        raise AnnotationError(
            f"Expected an image width and height as integers >= 1 in {where}. "
            f"Received (width, height)={(width, height)!r}."
        )
    return size


def check_box(values, where, width, height):
    """A box that lies inside its image, as float32 pixels.

    Four finite numbers with xmax > xmin, ymax > ymin, and every corner
    within [0, width] x [0, height]. Up to `BOUND_TOLERANCE` pixels outside
    (rounding in a tool's export) is clipped to the image; more is refused.

    Args:
        values: (xmin, ymin, xmax, ymax) in pixels.
        where: the file and object, for messages.
        width, height: the image's annotated size in pixels.

    Returns:
        The box as a float32 array of 4.

    Raises:
        AnnotationError: naming `where` and the values received.
    """
    try:
        box = np.asarray([float(value) for value in values], dtype=np.float32)
    except (TypeError, ValueError):
        box = None
    if box is None or box.shape != (4,) or not np.all(np.isfinite(box)):
        raise AnnotationError(
            f"Expected four numbers for a box in {where}. Received: {values!r}."
        )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise AnnotationError(
            f"Expected a box with xmax > xmin and ymax > ymin in {where}. "
            f"Received (xmin, ymin, xmax, ymax)={box.tolist()}."
        )
    limit = np.array([width, height, width, height], dtype=np.float32)
    if np.any(box < -BOUND_TOLERANCE) or np.any(box > limit + BOUND_TOLERANCE):
        raise AnnotationError(
            f"Expected a box inside its {width}x{height} image in {where}. "
            f"Received (xmin, ymin, xmax, ymax)={box.tolist()}."
        )
    return np.clip(box, 0, limit)


def to_scenes(annotations, image_dir, image_size=(64, 64), skip_difficult=True):
    """Reads and resizes the annotated images, for training or scoring.

    Args:
        annotations: an `AnnotationSet` (`load_voc`, `load_coco`).
        image_dir: folder the `file_name`s are relative to.
        image_size: (height, width) every image is resized to.
        skip_difficult: leave out objects flagged difficult (VOC's protocol).

    Returns:
        `Scenes` with normalized boxes (resizing keeps them valid).

    Raises:
        AnnotationError: an image file is missing or unreadable.
    """
    height, width = (int(size) for size in image_size)
    images = np.empty((len(annotations), height, width, 3), dtype=np.uint8)
    boxes, labels = [], []
    for index, record in enumerate(annotations.images):
        path = Path(image_dir) / record.file_name
        try:
            with Image.open(path) as image:
                images[index] = np.asarray(
                    image.convert("RGB").resize((width, height), Image.BILINEAR)
                )
        except OSError as error:
            raise AnnotationError(
                f"Expected a readable image at {str(path)!r} (annotated as "
                f"{record.file_name!r}). Received {type(error).__name__}: {error}."
            ) from error
        keep = (
            ~record.difficult if skip_difficult else np.ones(len(record.labels), bool)
        )
        boxes.append(record.normalized_boxes()[keep])
        labels.append(record.labels[keep])
    return Scenes(images, tuple(boxes), tuple(labels), annotations.class_names)
