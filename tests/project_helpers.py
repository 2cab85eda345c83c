"""Helpers of the `kerasll project` tests: digits as PNG files, a simulated
annotator (CSV and Label Studio export), manifest snapshots, the CLI."""

import csv
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

CLASSES = ",".join(str(digit) for digit in range(10))
TABLES = ("meta", "items", "origins", "labels", "models", "rounds", "picks")
# Tiny training: a few epochs of a narrow small_cnn, seconds on a CPU.
TRAIN_ARGS = ["--epochs", "3", "--width", "0.25", "--batch-size", "32"]


def write_digits(root, devices):
    """Writes scikit-learn digits as 8x8 grayscale PNGs, one folder per device.

    Args:
        root: folder to write into.
        devices: {device name: range of digit indices}.

    Returns:
        {file name: true label} (file names are unique across devices).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    truth = {}
    for device, indices in devices.items():
        folder = Path(root, device)
        folder.mkdir(parents=True, exist_ok=True)
        for index in indices:
            name = f"digit_{index:04d}.png"
            Image.fromarray(images[index]).save(folder / name)
            truth[name] = str(digits.target[index])
    return truth


def true_label(truth, path):
    """The true label of an item from its path (a digit file, or an array
    row the project wrote as `items/<content hash>.png`)."""
    return truth[re.search(r"(digit_\d{4}|[0-9a-f]{64})\.png", str(path)).group(0)]


def annotate_csv(tasks_csv, out, truth, annotator="sim"):
    """A simulated annotator fills in the `label` column of a tasks CSV."""
    with open(tasks_csv, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row["label"] = true_label(truth, row["path"])
        row["annotator"] = annotator
    with open(out, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def label_studio_export(tasks_json, out, truth, user_id=1):
    """What Label Studio exports after a user annotated every imported task."""
    tasks = json.loads(Path(tasks_json).read_text())
    exported = []
    for number, task in enumerate(tasks, 1):
        path = task["data"]["image"]
        label = true_label(truth, path)
        exported.append({
            "id": number,
            "data": task["data"],
            "annotations": [{
                "id": number,
                "completed_by": user_id,
                "was_cancelled": False,
                "result": [{"from_name": "label", "to_name": "image",
                            "type": "choices", "value": {"choices": [label]}}],
                "created_at": "2026-01-01T00:00:00.000000Z",
                "updated_at": "2026-01-01T00:00:00.000000Z",
            }],
            "predictions": [],
        })
    Path(out).write_text(json.dumps(exported))
    return out


def snapshot(project):
    """Every row of every manifest table, for "untouched" comparisons."""
    connection = sqlite3.connect(Path(project, "manifest.sqlite"))
    try:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(),
                          key=repr)
            for table in TABLES
        }
    finally:
        connection.close()


def integrity(project):
    """SQLite's integrity check of the manifest ("ok" when sound)."""
    connection = sqlite3.connect(Path(project, "manifest.sqlite"))
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def cli(*args):
    """Runs `kerasll project ARGS...` in this process; returns the result."""
    from kerasll_cli import main

    return CliRunner().invoke(main, ["project", *map(str, args)])


def ok(result):
    """Asserts a command succeeded; returns its output, stripped."""
    assert result.exit_code == 0, result.output
    return result.output.strip()


def refused(result, *fragments):
    """Asserts a command failed with one `Error: ` line holding `fragments`."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def rows(project, sql):
    """All rows of a query on a project's manifest."""
    connection = sqlite3.connect(Path(project, "manifest.sqlite"))
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


# Detection and keypoint projects: small synthetic scenes and figures.
SHAPES = ("red", "blue")


def _sources(count, seed):
    """Plain-colored 16x16 source images with noise: red ones (class 0) and
    blue ones (class 1), the objects and backgrounds of the scenes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(count, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(count) % 2
    images[labels == 0, :, :, 0] += 190
    images[labels == 1, :, :, 2] += 190
    return images, labels


def write_scenes(root, count, seed=0, size=64):
    """Writes detection scenes (`kerasll.detection.scenes.make_scenes` on
    synthetic sources) as PNGs.

    Returns:
        {file name: (boxes (k, 4) in pixels, class names)}.
    """
    from kerasll.detection.scenes import make_scenes

    images, labels = _sources(40, seed)
    scenes = make_scenes(images, labels, count, scene_size=size, max_objects=2,
                         seed=seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    truth = {}
    for index in range(count):
        name = f"scene_{seed}_{index:04d}.png"
        Image.fromarray(scenes.images[index]).save(Path(root, name))
        truth[name] = (scenes.boxes[index] * size,
                       [SHAPES[label] for label in scenes.labels[index]])
    return truth


def write_figures(root, count, seed=0, size=64):
    """Writes stick figures (`kerasll.keypoints.figures.make_figures` on
    synthetic backgrounds) as PNGs.

    Returns:
        {file name: (keypoints (J, 2) in continuous pixels, flags (J,))}.
    """
    from kerasll.keypoints.figures import make_figures

    images, _ = _sources(40, seed)
    figures = make_figures(images, count, image_size=size, occlusion=0.0, seed=seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    truth = {}
    for index in range(count):
        name = f"figure_{seed}_{index:04d}.png"
        Image.fromarray(figures.images[index]).save(Path(root, name))
        truth[name] = (figures.keypoints[index] + 0.5, figures.visibility[index])
    return truth


def region_results(truth, path, task, names, size=64):
    """An annotator's Label Studio results for an image: its true boxes or its
    keypoints inside the image, in percent."""
    name = re.search(r"(scene|figure)_\d+_\d{4}\.png", str(path)).group(0)
    if task == "detection":
        boxes, classes = truth[name]
        return [{"from_name": "label", "to_name": "image", "type": "rectanglelabels",
                 "original_width": size, "original_height": size,
                 "value": {"x": 100 * x0 / size, "y": 100 * y0 / size,
                           "width": 100 * (x1 - x0) / size,
                           "height": 100 * (y1 - y0) / size, "rotation": 0,
                           "rectanglelabels": [label]}}
                for (x0, y0, x1, y1), label in zip(boxes.tolist(), classes)]
    points, flags = truth[name]
    return [{"from_name": "label", "to_name": "image", "type": "keypointlabels",
             "original_width": size, "original_height": size,
             "value": {"x": 100 * x / size, "y": 100 * y / size, "width": 0.75,
                       "keypointlabels": [joint]}}
            for joint, (x, y), flag in zip(names, points.tolist(), flags) if flag > 0]


def region_export(tasks_json, out, truth, task, names, user_id=1):
    """What Label Studio exports after a user drew every task's boxes or
    keypoints."""
    tasks = json.loads(Path(tasks_json).read_text())
    exported = [{
        "id": number,
        "data": entry["data"],
        "annotations": [{
            "id": number, "completed_by": user_id, "was_cancelled": False,
            "result": region_results(truth, entry["data"]["image"], task, names),
            "created_at": "2026-01-01T00:00:00.000000Z",
            "updated_at": "2026-01-01T00:00:00.000000Z",
        }],
        "predictions": entry.get("predictions", []),
    } for number, entry in enumerate(tasks, 1)]
    Path(out).write_text(json.dumps(exported))
    return out
