"""COCO keypoint JSON (`person_keypoints_*.json`): people and their joints.

Keypoint coordinates are read as COCO writes them, continuous pixel
coordinates within [0, width] x [0, height] (0 at the image's left edge); a
labeled keypoint up to `BOUND_TOLERANCE` pixels outside is clipped to the
image (a tool's rounding), further out is refused, as the detection loaders
treat boxes. `to_figures` crops each person into a `Figures` image, whose
coordinates put pixel centers at integers (see `kerasll.keypoints.figures`).
"""

import dataclasses
import math
from pathlib import Path

import numpy as np
from PIL import Image

from kerasll.detection.annotations import BOUND_TOLERANCE, AnnotationError
from kerasll.detection.coco import (
    check_annotation,
    coco_box,
    coco_images,
    read_coco_json,
)
from kerasll.keypoints.figures import Figures, Skeleton

# COCO's 17 person keypoints and their OKS sigmas (cocoapi, COCOeval.setKpParams).
COCO_SIGMAS = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035,
    "right_ear": 0.035, "left_shoulder": 0.079, "right_shoulder": 0.079,
    "left_elbow": 0.072, "right_elbow": 0.072, "left_wrist": 0.062,
    "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089,
    "right_ankle": 0.089,
}


@dataclasses.dataclass(frozen=True)
class ImageKeypoints:
    """The people of one image, in pixels.

    Attributes:
        file_name: image file, relative to the image folder.
        width, height: image size in pixels, as annotated.
        keypoints: (P, J, 2) float32 (x, y); (0, 0) where unlabeled.
        visibility: (P, J) int8 COCO flags (0 unlabeled, 1 hidden, 2 visible).
        boxes: (P, 4) float32 (xmin, ymin, xmax, ymax): the annotation's
            `bbox`, else the labeled keypoints' extent.
        areas: (P,) float32 the annotation's `area`, else its box's.
    """

    file_name: str
    width: int
    height: int
    keypoints: np.ndarray
    visibility: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray


@dataclasses.dataclass(frozen=True)
class KeypointAnnotationSet:
    """Annotated images and the skeleton their keypoints follow."""

    images: tuple
    skeleton: Skeleton

    def __len__(self):
        return len(self.images)


def skeleton_from_category(category, where):
    """The `Skeleton` of a COCO category with `keypoints` and `skeleton`.

    Flip pairs join names that differ only in "left"/"right"; sigmas are
    COCO's when every name is one of COCO's 17 person keypoints, else None.

    Raises:
        AnnotationError: names that are not a non-empty list of distinct
            strings, or skeleton edges that are not 1-based index pairs.
    """
    names = category.get("keypoints")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) for name in names)
        or len(set(names)) != len(names)
    ):
        raise AnnotationError(
            f"Expected 'keypoints' as a list of distinct names in {where}. "
            f"Received {names!r}."
        )
    edges = category.get("skeleton", [])
    valid = isinstance(edges, list) and all(
        isinstance(edge, list)
        and len(edge) == 2
        and all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= len(names)
            for i in edge
        )
        for edge in edges
    )
    if not valid:
        raise AnnotationError(
            f"Expected 'skeleton' as pairs of 1-based keypoint indices in "
            f"[1, {len(names)}] in {where}. Received {edges!r}."
        )
    index = {name: number for number, name in enumerate(names)}
    flip_pairs = tuple(
        (number, index[name.replace("left", "right")])
        for number, name in enumerate(names)
        if "left" in name and name.replace("left", "right") in index
    )
    sigmas = (
        tuple(COCO_SIGMAS[name] for name in names)
        if set(names) <= set(COCO_SIGMAS)
        else None
    )
    return Skeleton(
        names=tuple(names),
        edges=tuple((a - 1, b - 1) for a, b in edges),
        flip_pairs=flip_pairs,
        sigmas=sigmas,
    )


def check_keypoints(values, count, where, width, height):
    """A COCO `keypoints` list as (count, 2) coordinates and (count,) flags.

    Unlabeled keypoints (flag 0) get (0, 0); labeled ones must lie in
    [0, width] x [0, height] (within `BOUND_TOLERANCE`, then clipped).

    Raises:
        AnnotationError: naming `where`: not 3 * count numbers, a flag not
            in {0, 1, 2}, or a labeled keypoint outside the image.
    """
    numbers = None
    if isinstance(values, list) and len(values) == 3 * count:
        try:
            numbers = np.asarray([float(v) for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            numbers = None
    if numbers is None or not np.all(np.isfinite(numbers)):
        length = len(values) if isinstance(values, list) else type(values).__name__
        raise AnnotationError(
            f"Expected 'keypoints' as {3 * count} numbers [x, y, v] * {count} in "
            f"{where}. Received {length} values."
        )
    triples = numbers.reshape(count, 3)
    flags = triples[:, 2]
    if not np.all(np.isin(flags, (0, 1, 2))):
        raise AnnotationError(
            f"Expected visibility flags in {{0, 1, 2}} in {where}. Received "
            f"{flags.tolist()}."
        )
    points = np.where(flags[:, None] > 0, triples[:, :2], 0.0)
    limit = np.array([width, height], dtype=np.float64)
    outside = (flags > 0) & np.any(
        (points < -BOUND_TOLERANCE) | (points > limit + BOUND_TOLERANCE), axis=-1
    )
    if outside.any():
        joint = int(np.argmax(outside))
        raise AnnotationError(
            f"Expected labeled keypoints inside their {width}x{height} image in "
            f"{where}. Received keypoint {joint} at (x, y)="
            f"{points[joint].tolist()}."
        )
    return np.clip(points, 0.0, limit).astype(np.float32), flags.astype(np.int8)


def load_coco_keypoints(path):
    """Loads person keypoints in COCO's JSON layout.

    Args:
        path: the JSON file (e.g. person_keypoints_val2017.json).

    Returns:
        A `KeypointAnnotationSet`: images in file order with their people;
        the skeleton of the one category that names keypoints. Annotations
        of other categories and crowd annotations (`iscrowd: 1`, which
        COCO's evaluation ignores) are left out.

    Raises:
        AnnotationError: unreadable or invalid JSON, a missing key, not
            exactly one category with `keypoints`, an image size below 1, an
            annotation of an unknown image or category, `keypoints` of the
            wrong length or with a keypoint outside the image, or a bad
            `bbox` or `area`; the message names the file and the entry.
    """
    path = Path(path)
    data = read_coco_json(path)
    records = coco_images(data, path)
    try:
        people = [c for c in data["categories"] if "keypoints" in c]
        categories = {c["id"] for c in data["categories"]}
    except (KeyError, TypeError) as error:
        raise AnnotationError(
            f"Expected categories with 'id' in {path}. Received an entry without "
            f"{error}."
        ) from None
    if len(people) != 1:
        raise AnnotationError(
            f"Expected exactly one category with 'keypoints' in {path}. Received "
            f"{len(people)}: {[c.get('name', c['id']) for c in people]}."
        )
    (person,) = people
    skeleton = skeleton_from_category(person, f"{path}, category {person['id']!r}")
    joints = len(skeleton)
    found = {image_id: [] for image_id in records}
    for number, annotation in enumerate(data["annotations"]):
        where = f"{path}, annotations[{number}]"
        check_annotation(annotation, where, records, categories)
        if annotation["category_id"] != person["id"] or annotation.get("iscrowd", 0):
            continue
        file_name, width, height = records[annotation["image_id"]]
        where = f"{where} (image {file_name!r})"
        points, flags = check_keypoints(
            annotation.get("keypoints"), joints, where, width, height
        )
        box, area = _box_and_area(annotation, points, flags, where, width, height)
        found[annotation["image_id"]].append((points, flags, box, area))
    images = tuple(
        ImageKeypoints(
            file_name=file_name,
            width=width,
            height=height,
            keypoints=np.asarray([p[0] for p in found[i]], np.float32).reshape(
                -1, joints, 2
            ),
            visibility=np.asarray([p[1] for p in found[i]], np.int8).reshape(
                -1, joints
            ),
            boxes=np.asarray([p[2] for p in found[i]], np.float32).reshape(-1, 4),
            areas=np.asarray([p[3] for p in found[i]], np.float32).reshape(-1),
        )
        for i, (file_name, width, height) in records.items()
    )
    return KeypointAnnotationSet(images, skeleton)


def _box_and_area(annotation, points, flags, where, width, height):
    """The person's corner box and area (given, or from its keypoints)."""
    if "bbox" in annotation:
        box = coco_box(annotation["bbox"], where, width, height)
    else:
        labeled = points[flags > 0]
        box = (
            np.concatenate([labeled.min(axis=0), labeled.max(axis=0)])
            if len(labeled)
            else np.zeros(4, np.float32)
        )
    area = annotation.get("area", float((box[2] - box[0]) * (box[3] - box[1])))
    try:
        area = float(area)
    except (TypeError, ValueError):
        area = math.nan
    if not (math.isfinite(area) and area >= 0.0):
        raise AnnotationError(
            f"Expected 'area' as a finite number >= 0 in {where}. Received "
            f"{annotation.get('area')!r}."
        )
    return box, area


def to_figures(annotations, image_dir, image_size=64, padding=0.25, min_keypoints=1):
    """Crops every annotated person into a square image of one figure.

    Each person's box, widened by `padding` of its longer side on every
    side and made square around its center, is cut from its image (black
    beyond the image's edges) and resized to `image_size`. Keypoints move
    with the crop; a labeled keypoint that falls outside it is flagged 0.

    Args:
        annotations: a `KeypointAnnotationSet` (`load_coco_keypoints`).
        image_dir: folder the `file_name`s are relative to.
        image_size: side of the square crops, in pixels.
        padding: margin around the box, as a fraction of its longer side.
        min_keypoints: people with fewer labeled keypoints are left out
            (COCO's evaluation ignores people without any).

    Returns:
        `Figures` with the set's skeleton, people in file order. Head sizes
        are NaN: COCO's skeleton has no head segment, so PCKh does not
        apply (OKS AP does, with the crops' `areas`).

    Raises:
        AnnotationError: an image file is missing or unreadable.
        ValueError: image_size < 1, a negative padding or min_keypoints < 1.
    """
    if int(image_size) < 1 or not float(padding) >= 0.0 or int(min_keypoints) < 1:
        raise ValueError(
            "Expected image_size >= 1, padding >= 0 and min_keypoints >= 1. "
            f"Received: image_size={image_size!r}, padding={padding!r}, "
            f"min_keypoints={min_keypoints!r}."
        )
    size = int(image_size)
    crops, keypoints, visibility, areas = [], [], [], []
    for record in annotations.images:
        people = [
            person
            for person in range(len(record.keypoints))
            if int(np.sum(record.visibility[person] > 0)) >= int(min_keypoints)
        ]
        if not people:
            continue
        path = Path(image_dir) / record.file_name
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except OSError as error:
            raise AnnotationError(
                f"Expected a readable image at {str(path)!r} (annotated as "
                f"{record.file_name!r}). Received {type(error).__name__}: {error}."
            ) from error
        for person in people:
            box = record.boxes[person].astype(np.float64)
            center = (box[:2] + box[2:]) / 2.0
            side = max(float(np.max(box[2:] - box[:2])) * (1.0 + 2.0 * padding), 1.0)
            corner = center - side / 2.0
            crops.append(
                np.asarray(
                    image.transform(
                        (size, size),
                        Image.Transform.EXTENT,
                        (*corner, *(corner + side)),
                        Image.BILINEAR,
                    )
                )
            )
            scale = size / side
            points = (record.keypoints[person] - corner) * scale - 0.5
            inside = np.all((points >= -0.5) & (points < size - 0.5), axis=-1)
            flags = np.where(inside, record.visibility[person], 0)
            keypoints.append(points)
            visibility.append(flags)
            areas.append(max(float(record.areas[person]) * scale**2, 1.0))
    joints = len(annotations.skeleton)
    return Figures(
        images=np.asarray(crops, dtype=np.uint8).reshape(-1, size, size, 3),
        keypoints=np.asarray(keypoints, dtype=np.float32).reshape(-1, joints, 2),
        visibility=np.asarray(visibility, dtype=np.int8).reshape(-1, joints),
        head_sizes=np.full(len(crops), np.nan, dtype=np.float32),
        areas=np.asarray(areas, dtype=np.float32),
        skeleton=annotations.skeleton,
    )
