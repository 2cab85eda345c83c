"""The picks image: a PNG grid of the top picks, as the model saw them.

Each cell shows one pick's input (decoded and resized as it was fed to the
graph), captioned with its rank and predicted loss, then its prediction: a
classifier's class and confidence, a regressor's value, a detector's
number of detections, whose boxes are drawn with class and score (those
above `predictions.DISPLAY_THRESHOLD`), or a pose network's mean keypoint
confidence, its keypoints drawn as dots (one color per joint, in the joints'
order). Only the first `MAX_IMAGES` picks are drawn. The picks are read
from the pool again and, for their boxes, run through the model again: at
most `MAX_IMAGES` items, whatever the pool size.
"""

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kerasll_serving import atomic
from kerasll_serving.errors import OutputError
from kerasll_serving.predictions import detected, label

MAX_IMAGES = 32
COLUMNS = 8
CELL = 160  # Side of a cell's image area, in pixels.
CAPTION = 28  # Two lines of the default font.
PAD = 6
_BACKGROUND = (255, 255, 255)
_EMPTY = (200, 200, 200)
_TEXT = (0, 0, 0)
KEYPOINT_RADIUS = 3  # Of a keypoint's dot, in picks-image pixels.
# One color per object class or joint, cycling (Tableau 10).
_PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
            (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
            (188, 189, 34), (23, 190, 207))


def grid_size(count):
    """The (width, height) in pixels of the picks image of `count` picks.

    Args:
        count: number of picks (only the first `MAX_IMAGES` are drawn).

    Returns:
        `(width, height)`.
    """
    shown = max(1, min(count, MAX_IMAGES))
    columns = min(shown, COLUMNS)
    rows = math.ceil(shown / columns)
    return (columns * (CELL + PAD) + PAD, rows * (CELL + CAPTION + PAD) + PAD)


def check_picks_image(path, pool, contract):
    """Checks a picks image path and model before anything is scored.

    Args:
        path: where the PNG will go.
        pool: the pool path.
        contract: the model's `ModelContract`.

    Raises:
        OutputError: the path does not end in `.png`, its directory does not
            exist, it lies inside a directory pool (it would become a pool
            item), or the model does not take 1- or 3-channel NHWC images.
    """
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise OutputError(f"Expected a picks image path ending in .png. Received: "
                          f"{path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"Expected an existing directory for {path!r}. Received: "
                          f"{directory!r} does not exist.")
    if os.path.isdir(pool) and _inside(path, pool):
        raise OutputError(
            f"Expected a picks image outside the pool directory {os.fspath(pool)!r}; "
            f"there it would be scored as a pool item. Received: {path!r}"
        )
    spec = contract.input
    if spec.layout != "NHWC" or len(spec.shape) != 4 or spec.shape[-1] not in (1, 3):
        raise OutputError(
            "Expected a model with a 1- or 3-channel NHWC image input for a picks "
            f"image. Received input {spec.name!r} of layout {spec.layout} and shape "
            f"{tuple(spec.shape)}."
        )


def draw_picks(model, pool, picks):
    """Draws the picks image.

    Args:
        model: the `ScoringModel` that scored the pool.
        pool: the opened pool (`sources.open_pool`).
        picks: the `Pick`s, best first.

    Returns:
        An RGB `PIL.Image.Image` of `grid_size(len(picks))`.
    """
    shown = picks[:MAX_IMAGES]
    pixels = _read(pool, [pick.index for pick in shown])
    readable = [row for row, item in enumerate(pixels) if item is not None]
    found = {}
    if readable and model.contract.task_type == "detection":  # boxes to draw
        _, task_output = model.run(np.stack([pixels[row] for row in readable]))
        found = dict(zip(readable, detected(task_output, model.contract)))
    grid = Image.new("RGB", grid_size(len(shown)), _BACKGROUND)
    for position, pick in enumerate(shown):
        _draw_cell(grid, position, pick, pixels[position], found.get(position),
                   model.contract)
    return grid


def write_picks_image(path, model, pool, picks):
    """Draws the picks image and writes it as a PNG, atomically.

    Args:
        path: the `.png` path (see `check_picks_image`).
        model: the `ScoringModel` that scored the pool.
        pool: the opened pool.
        picks: the `Pick`s, best first.

    Raises:
        OutputError: the file cannot be written.
    """
    image = draw_picks(model, pool, picks)
    try:
        with atomic.atomic_path(path) as temporary:
            image.save(temporary, format="PNG")
    except OSError as error:
        raise OutputError(f"Expected to write {os.fspath(path)!r}. Received: "
                          f"{error}") from error


def _inside(path, directory):
    """Whether `path` lies anywhere below `directory` (links resolved)."""
    root = os.path.realpath(directory)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def _read(pool, indices):
    """Each item's prepared input, or None when it cannot be read now.

    One item at a time, in pool order: an array pool reads a whole row range,
    and a compressed one only decompresses forward.
    """
    pixels = [None] * len(indices)
    for position in sorted(range(len(indices)), key=indices.__getitem__):
        batch = pool.read(np.asarray([indices[position]], dtype=np.int64))
        if batch.x is not None:
            pixels[position] = batch.x[0]
    return pixels


def _draw_cell(grid, position, pick, item, detections, contract):
    """Draws one pick (`item` None: it could not be read again) in its cell."""
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    left = PAD + (position % COLUMNS) * (CELL + PAD)
    top = PAD + (position // COLUMNS) * (CELL + CAPTION + PAD)
    if item is None:
        draw.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=_EMPTY)
        lines = (_headline(pick), "unreadable now")
    else:
        area = _paste(grid, _display(item, contract), left, top)
        for box, score, object_class in _boxes(detections):
            _draw_box(draw, font, area, box,
                      f"{label(object_class, contract)} {score:.2f}",
                      _PALETTE[object_class % len(_PALETTE)])
        if contract.task_type == "keypoints" and pick.prediction is not None:
            _draw_keypoints(draw, area, item.shape[:2], pick.prediction)
        lines = (_headline(pick), _prediction(pick, contract))
    draw.multiline_text((left, top + CELL + 2),
                        "\n".join(_fit(draw, font, line) for line in lines),
                        fill=_TEXT, font=font, spacing=2)


def _display(item, contract):
    """A prepared input as an RGB image of the raw values it was made from."""
    values = np.asarray(item, dtype=np.float32)
    preprocessing = contract.preprocessing
    if not preprocessing.in_graph:  # Undo `InputAdapter.prepare`.
        values = (values - preprocessing.offset) / preprocessing.scale
    pixels = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels
                           ).convert("RGB")


def _paste(grid, image, left, top):
    """Pastes `image` scaled to fit the cell; returns its (x, y, w, h) there."""
    scale = CELL / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR
    x, y = left + (CELL - size[0]) // 2, top + (CELL - size[1]) // 2
    grid.paste(image.resize(size, resample), (x, y))
    return x, y, size[0], size[1]


def _boxes(detections):
    if detections is None:
        return []
    return zip(detections.boxes.tolist(), detections.scores.tolist(),
               detections.classes.tolist())


def _draw_box(draw, font, area, box, text, color):
    """Draws one normalized corner box, clipped to the image, with its label."""
    x, y, width, height = area
    xmin, ymin, xmax, ymax = (min(max(value, 0.0), 1.0) for value in box)
    corners = (x + xmin * (width - 1), y + ymin * (height - 1),
               x + xmax * (width - 1), y + ymax * (height - 1))
    draw.rectangle(corners, outline=color, width=2)
    left, top, right, bottom = draw.textbbox(corners[:2], text, font=font)
    draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=color)
    draw.text(corners[:2], text, fill=_BACKGROUND, font=font)


def keypoint_centers(keypoints, area, input_size):
    """Where keypoints fall in the picks image.

    Args:
        keypoints: (J, 2) [x, y] in the model's input pixels (0 is the
            center of the first pixel), as `Pick.prediction` holds them.
        area: the pasted image's (x, y, width, height) in the picks image.
        input_size: the model input's (height, width).

    Returns:
        A (J, 2) float64 array of picks-image coordinates.
    """
    x, y, width, height = area
    scale = np.array([width / input_size[1], height / input_size[0]])
    return np.array([x, y]) + (np.asarray(keypoints, dtype=np.float64) + 0.5) * scale


def _draw_keypoints(draw, area, input_size, keypoints):
    """Draws each keypoint as a dot in its joint's color, outlined in white."""
    for joint, (x, y) in enumerate(keypoint_centers(keypoints, area, input_size)):
        draw.ellipse(
            (x - KEYPOINT_RADIUS, y - KEYPOINT_RADIUS,
             x + KEYPOINT_RADIUS, y + KEYPOINT_RADIUS),
            fill=_PALETTE[joint % len(_PALETTE)], outline=_BACKGROUND,
        )


def _headline(pick):
    return f"#{pick.rank}  loss {pick.predicted_loss:.4g}"


def _prediction(pick, contract):
    """A pick's prediction in a few words (nothing for task type "other")."""
    if contract.task_type == "keypoints" and pick.prediction is not None:
        # The keypoints are drawn on the image.
        return f"{len(pick.prediction)} keypoints, conf. {pick.confidence:.2f}"
    if pick.detections is not None:  # Each box is labeled on the image.
        return f"{pick.detections} detection{'' if pick.detections == 1 else 's'}"
    if pick.confidence is not None:
        return f"{pick.prediction} {pick.confidence:.2f}"
    if isinstance(pick.prediction, float):
        return f"value {pick.prediction:.4g}"
    if pick.prediction is not None:
        return f"value {pick.prediction}"
    return ""


def _fit(draw, font, text):
    """`text`, cut with an ellipsis where it would overflow a cell."""
    if draw.textlength(text, font=font) <= CELL:
        return text
    while text and draw.textlength(text + "...", font=font) > CELL:
        text = text[:-1]
    return text + "..."
