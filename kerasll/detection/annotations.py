"""User detection data: the records VOC and COCO loaders return, and images."""

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from kerasll.detection.scenes import Scenes


class AnnotationError(ValueError):
    """An annotation file does not have the expected layout or values."""


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


def check_box(values, where):
    """Four finite numbers with xmax > xmin and ymax > ymin, as float32.

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
    return box


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
