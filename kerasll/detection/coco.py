"""COCO JSON annotations (one file with images, annotations, categories)."""

import json
from pathlib import Path

import numpy as np

from kerasll.detection.annotations import (
    AnnotationError,
    AnnotationSet,
    ImageAnnotation,
    check_box,
    check_image_size,
)

_REQUIRED = ("images", "annotations", "categories")


def load_coco(path):
    """Loads object detection annotations in COCO's JSON layout.

    Args:
        path: the JSON file (e.g. instances_val2017.json).

    Returns:
        An `AnnotationSet`: images in file order; class names from
        `categories` sorted by id, labels indexing them. Crowd annotations
        (`iscrowd: 1`) are left out, as COCO's evaluation ignores them.

    Raises:
        AnnotationError: unreadable or invalid JSON, a missing key, an image
            size below 1, an annotation of an unknown image or category, or
            a bad `bbox` ([x, y, width, height] with positive sizes, inside
            its image: see `check_box`); the message names the file and the
            entry.
    """
    path = Path(path)
    data = read_coco_json(path)
    records = coco_images(data, path)
    try:
        categories = sorted(data["categories"], key=lambda c: c["id"])
        names = tuple(str(c["name"]) for c in categories)
        label_of = {c["id"]: label for label, c in enumerate(categories)}
    except (KeyError, TypeError, ValueError) as error:
        raise AnnotationError(
            f"Expected categories with 'id' and 'name' in {path}. Received an "
            f"entry without {error}."
        ) from None
    objects = {image_id: [] for image_id in records}
    for number, annotation in enumerate(data["annotations"]):
        where = f"{path}, annotations[{number}]"
        check_annotation(annotation, where, records, label_of, extra=("bbox",))
        if annotation.get("iscrowd", 0):
            continue
        _, width, height = records[annotation["image_id"]]
        box = coco_box(annotation["bbox"], where, width, height)
        objects[annotation["image_id"]].append(
            (box, label_of[annotation["category_id"]])
        )
    images = tuple(
        ImageAnnotation(
            file_name=file_name,
            width=width,
            height=height,
            boxes=np.asarray([box for box, _ in objects[image_id]], np.float32).reshape(
                -1, 4
            ),
            labels=np.asarray([label for _, label in objects[image_id]], np.int64),
            difficult=np.zeros(len(objects[image_id]), dtype=bool),
        )
        for image_id, (file_name, width, height) in records.items()
    )
    return AnnotationSet(images, names)


def read_coco_json(path):
    """The object of a COCO JSON file, with its images, annotations, categories.

    Args:
        path: the JSON file.

    Returns:
        The decoded dict.

    Raises:
        AnnotationError: unreadable or invalid JSON, or a missing key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise AnnotationError(
            f"Expected a readable COCO JSON file. Received {str(path)!r} "
            f"({type(error).__name__}: {error})."
        ) from error
    except json.JSONDecodeError as error:
        raise AnnotationError(
            f"Expected valid JSON in {path}. Received a decode error: {error}."
        ) from None
    missing = [
        key for key in _REQUIRED if not isinstance(data, dict) or key not in data
    ]
    if missing:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise AnnotationError(
            f"Expected a COCO object with keys {list(_REQUIRED)} in {path}. "
            f"Received {keys} (missing {missing})."
        )
    return data


def coco_images(data, path):
    """The images of a COCO object, each with its checked size.

    Args:
        data: the object `read_coco_json` returned.
        path: its file, for messages.

    Returns:
        A dict, image id -> (file_name, width, height), in file order.

    Raises:
        AnnotationError: an image without 'id', 'file_name', 'width' or
            'height', or a size that is not two integers >= 1.
    """
    try:
        records = {
            image["id"]: (image["file_name"], image["width"], image["height"])
            for image in data["images"]
        }
    except (KeyError, TypeError) as error:
        raise AnnotationError(
            f"Expected images with 'id', 'file_name', 'width' and 'height' in "
            f"{path}. Received an entry without {error}."
        ) from None
    for image_id, (file_name, width, height) in records.items():
        where = f"{path}, image {image_id!r} ({file_name!r})"
        records[image_id] = (file_name, *check_image_size(width, height, where))
    return records


def check_annotation(annotation, where, images, categories, extra=()):
    """Refuses an annotation without its keys, or of an unknown image or category.

    Args:
        annotation: one entry of the COCO object's `annotations`.
        where: the file and entry, for messages.
        images: the known image ids (e.g. `coco_images`' dict).
        categories: the known category ids.
        extra: the keys it needs beside 'image_id' and 'category_id'.

    Raises:
        AnnotationError: naming `where` and what was received.
    """
    keys = ("image_id", "category_id", *extra)
    if not isinstance(annotation, dict) or not set(keys) <= set(annotation):
        names = ", ".join(repr(key) for key in keys[:-1])
        raise AnnotationError(
            f"Expected {names} and {keys[-1]!r} in {where}. Received {annotation!r}."
        )
    if annotation["image_id"] not in images:
        raise AnnotationError(
            f"Expected image_id among the images' ids in {where}. Received "
            f"{annotation['image_id']!r}."
        )
    if annotation["category_id"] not in categories:
        raise AnnotationError(
            f"Expected category_id among {sorted(categories)} in {where}. "
            f"Received {annotation['category_id']!r}."
        )


def coco_box(bbox, where, width, height):
    """A COCO `bbox` ([x, y, width, height]) as a checked corner box.

    Args:
        bbox: the annotation's `bbox`.
        where: the file and entry, for messages.
        width, height: the image's size in pixels.

    Returns:
        (xmin, ymin, xmax, ymax) as float32, as `check_box` returns it.

    Raises:
        AnnotationError: not four values, or a box `check_box` refuses.
    """
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise AnnotationError(
            f"Expected bbox as [x, y, width, height] in {where}. Received {bbox!r}."
        )
    try:
        x, y, w, h = (float(value) for value in bbox)
        corners = [x, y, x + w, y + h]
    except (TypeError, ValueError):
        corners = bbox  # check_box names the values that are not numbers
    return check_box(corners, where, width, height)
