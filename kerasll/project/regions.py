"""Boxes and keypoints between Label Studio and the manifest.

Label Studio places a region in percent of the image it shows: a rectangle
by its top-left corner `x`, `y` and its `width`, `height`, a keypoint by
its `x`, `y`, all in [0, 100] of the image's width or height. The manifest
stores an item's annotation in pixels of its image file, as canonical JSON
text in the `labels.label` column (the same annotation always gives the
same text, so importing it again changes nothing):

- detection: `{"boxes": [[xmin, ymin, xmax, ymax], ...], "classes": [...],
  "height": H, "width": W}`, corners in continuous pixel coordinates
  (0 at the image's left and top edges, W and H at the right and bottom
  ones), one class name per box; no boxes means no objects;
- keypoints: `{"height": H, "keypoints": [[x, y] or null, ...], "width":
  W}`, one entry per schema keypoint in schema order, null where it was not
  placed, coordinates as for boxes.

A prediction (a pick's `prediction` column) is the same in normalized
coordinates ([0, 1] of the width and height), so it fits any image size:
detection `{"boxes", "classes", "scores"}`, keypoints `{"keypoints",
"confidences"}`.

Pixels are rounded to `DECIMALS` places. Every region is checked before
anything is written: a rectangle with a missing or non-finite field, a
non-positive size, a rotation, a corner outside the image (beyond
`TOLERANCE` percent, Label Studio's own rounding, which is clipped), a
class the project does not have; a keypoint outside the image, a name the
schema does not have, or placed twice. One `LabelsError` line names the
task, the item and what is wrong.
"""

import json
import math

from kerasll.project.errors import LabelsError

DECIMALS = 2
TOLERANCE = 1e-6
RECTANGLES = "rectanglelabels"
KEYPOINTS = "keypointlabels"
# Keypoints are drawn as small circles; Label Studio reads their size, in
# percent of the image width, from `width`.
KEYPOINT_WIDTH = 0.75
# Percent coordinates of pre-annotations: 1e-4 % is far below a pixel.
PERCENT_DECIMALS = 4


def _percent(fraction):
    return round(100.0 * float(fraction), PERCENT_DECIMALS)


def to_pixels(percent, size):
    """A Label Studio percent coordinate in pixels.

    Args:
        percent: the coordinate, in [0, 100].
        size: the image's side along it, in pixels.

    Returns:
        The pixel coordinate, continuous (0 at the image's edge).
    """
    return float(percent) * float(size) / 100.0


def to_percent(pixels, size):
    """A continuous pixel coordinate in Label Studio's percent."""
    return 100.0 * float(pixels) / float(size)


def encode(annotation):
    """Canonical JSON text of an annotation or prediction dict."""
    return json.dumps(annotation, sort_keys=True, separators=(",", ":"))


def decode(text):
    """The dict of `encode`d text."""
    return json.loads(text)


def _number(value, name, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabelsError(
            f"Expected a number as {name} of every region. Received {value!r} in "
            f"{where}"
        )
    if not math.isfinite(value):
        raise LabelsError(f"Expected a finite {name}. Received {value!r} in {where}")
    return float(value)


def _inside(value, name, where, low=0.0, high=100.0):
    """`value` clipped to [low, high] within `TOLERANCE`; refused beyond."""
    if value < low - TOLERANCE or value > high + TOLERANCE:
        raise LabelsError(
            f"Expected {name} within the image ([{low:g}, {high:g}] percent). "
            f"Received {value!r} in {where}"
        )
    return min(max(value, low), high)


def _one_label(value, key, where):
    labels = value.get(key)
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(
            labels[0], str):
        raise LabelsError(
            f"Expected one label in {key} of every region. Received {labels!r} in "
            f"{where}"
        )
    return labels[0]


def _value(region, width, height, where):
    """A region's `value` dict, once the region is known to be on the item's
    image (refused when annotated on an image of another size)."""
    given = (region.get("original_width"), region.get("original_height"))
    if given != (None, None) and given != (width, height):
        raise LabelsError(
            f"Expected regions on the item's {width}x{height} image. Received one "
            f"on a {given[0]}x{given[1]} image in {where}"
        )
    value = region.get("value")
    if not isinstance(value, dict):
        raise LabelsError(
            f"Expected a value in every region. Received none in {where}")
    return value


def _regions(result, kind):
    return [region for region in result
            if isinstance(region, dict) and region.get("type") == kind]


def read_boxes(result, classes, width, height, where):
    """An annotation's rectangles as a detection annotation in pixels.

    Args:
        result: the annotation's `result` list (other region types are
            ignored).
        classes: the project's class names.
        width, height: the item's image size in pixels.
        where: the task and item, for messages.

    Returns:
        The annotation dict (see the module docstring).

    Raises:
        LabelsError: a malformed rectangle, one outside the image, or an
            unknown class.
    """
    boxes, names = [], []
    for region in _regions(result, RECTANGLES):
        value = _value(region, width, height, where)
        x, y, w, h = (_number(value.get(key), key, where)
                      for key in ("x", "y", "width", "height"))
        rotation = _number(value.get("rotation", 0), "rotation", where)
        if w <= 0 or h <= 0 or rotation != 0:
            raise LabelsError(
                "Expected upright rectangles of positive width and height. Received "
                f"width {w:g}, height {h:g}, rotation {rotation:g} in {where}"
            )
        x0, y0 = _inside(x, "x", where), _inside(y, "y", where)
        x1, y1 = _inside(x + w, "x + width", where), _inside(y + h, "y + height", where)
        name = _one_label(value, RECTANGLES, where)
        if name not in classes:
            raise LabelsError(
                f"Expected box classes in the project's classes {list(classes)}. "
                f"Received {name!r} in {where}"
            )
        boxes.append([round(to_pixels(x0, width), DECIMALS),
                      round(to_pixels(y0, height), DECIMALS),
                      round(to_pixels(x1, width), DECIMALS),
                      round(to_pixels(y1, height), DECIMALS)])
        names.append(name)
    return {"boxes": boxes, "classes": names, "height": height, "width": width}


def read_keypoints(result, names, width, height, where):
    """An annotation's keypoints as a keypoint annotation in pixels.

    Args:
        result: the annotation's `result` list (other region types are
            ignored).
        names: the schema's keypoint names, in order.
        width, height: the item's image size in pixels.
        where: the task and item, for messages.

    Returns:
        The annotation dict (see the module docstring).

    Raises:
        LabelsError: a malformed keypoint, one outside the image, an unknown
            name, or a name placed twice.
    """
    points = [None] * len(names)
    index = {name: number for number, name in enumerate(names)}
    for region in _regions(result, KEYPOINTS):
        value = _value(region, width, height, where)
        x, y = (_number(value.get(key), key, where) for key in ("x", "y"))
        x, y = _inside(x, "keypoint x", where), _inside(y, "keypoint y", where)
        name = _one_label(value, KEYPOINTS, where)
        if name not in index:
            raise LabelsError(
                f"Expected keypoint names of the project's schema {list(names)}. "
                f"Received {name!r} in {where}"
            )
        if points[index[name]] is not None:
            raise LabelsError(
                f"Expected each keypoint placed at most once. Received {name!r} twice "
                f"in {where}"
            )
        points[index[name]] = [round(to_pixels(x, width), DECIMALS),
                               round(to_pixels(y, height), DECIMALS)]
    return {"height": height, "keypoints": points, "width": width}


def box_results(prediction, from_name, to_name):
    """A detection prediction as Label Studio rectangle results.

    Args:
        prediction: the dict (normalized boxes, classes, scores).
        from_name, to_name: the labeling config's tag names.

    Returns:
        A list of result dicts, in percent.
    """
    results = []
    for (x0, y0, x1, y1), name, score in zip(
            prediction["boxes"], prediction["classes"], prediction["scores"]):
        results.append({
            "from_name": from_name, "to_name": to_name, "type": RECTANGLES,
            "score": score,
            "value": {"x": _percent(x0), "y": _percent(y0),
                      "width": _percent(x1 - x0), "height": _percent(y1 - y0),
                      "rotation": 0, RECTANGLES: [name]},
        })
    return results


def keypoint_results(prediction, names, from_name, to_name):
    """A keypoint prediction as Label Studio keypoint results.

    Args:
        prediction: the dict (normalized keypoints, confidences).
        names: the schema's keypoint names, in order.
        from_name, to_name: the labeling config's tag names.

    Returns:
        A list of result dicts, in percent.
    """
    return [
        {
            "from_name": from_name, "to_name": to_name, "type": KEYPOINTS,
            "score": confidence,
            "value": {"x": _percent(x), "y": _percent(y), "width": KEYPOINT_WIDTH,
                      KEYPOINTS: [name]},
        }
        for name, (x, y), confidence in zip(
            names, prediction["keypoints"], prediction["confidences"])
    ]
