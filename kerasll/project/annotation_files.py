"""Annotation files: a round's picks as tasks for annotators (`kerasll project
tasks`), and a new project's Label Studio labeling config.

Two formats: "label-studio" (a JSON list of import tasks with the model's
class, boxes or keypoints as a pre-annotation, see
`kerasll.project.labelstudio`) and, for classification, "csv" (one row per
pick with an empty `label` column; the same file, filled in, is a labels
file for `kerasll project labels`). Images are referred to by URL:
Label Studio serves local files under `/data/local-files/?d=<path relative
to LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT>`, the default here, and only to a
project with a Local Storage connection of the images' folder:
`publish_round` makes the connection and imports the tasks
(`kerasll.project.labelstudio_api`).
"""

import csv
import io
import json
import os
import urllib.parse
from pathlib import Path

from kerasll_serving.atomic import write_text

from kerasll.project import labelstudio
from kerasll.project.errors import ProjectError
from kerasll.project.kinds import project_kind
from kerasll.project.rows import AnnotationFileRow

FORMATS = ("label-studio", "csv")
CSV_FIELDS = ("project", "round", "item", "path", "image", "model_version",
              "predicted_loss", "prediction", "confidence", "label")
TASKS_FOLDER = "tasks"
LOCAL_FILES_PREFIX = "/data/local-files/?d="


def image_url(path, url_prefix=LOCAL_FILES_PREFIX, document_root="/"):
    """The URL an annotation tool opens for an image file.

    Args:
        path: the absolute image path.
        url_prefix: prepended to the (URL-quoted) path relative to
            `document_root`.
        document_root: the folder the tool serves files from.

    Returns:
        The URL.

    Raises:
        ProjectError: the image is outside `document_root`.
    """
    relative = os.path.relpath(path, document_root)
    if relative.startswith(os.pardir):
        raise ProjectError(
            f"Expected images under the document root {document_root!r}. "
            f"Received {path!r}; pass --document-root"
        )
    return url_prefix + urllib.parse.quote(Path(relative).as_posix())


def round_rows(manifest, round_id=None, url_prefix=LOCAL_FILES_PREFIX,
               document_root="/"):
    """The picks of a round as `AnnotationFileRow`s, best first.

    Args:
        manifest: the open `Manifest`.
        round_id: the round; default the newest.
        url_prefix, document_root: see `image_url`.

    Returns:
        (round id, list of `AnnotationFileRow`).

    Raises:
        ProjectError: no rounds, or an unknown round.
    """
    if round_id is None:
        newest = manifest.query("SELECT MAX(id) FROM rounds")[0][0]
        if newest is None:
            raise ProjectError(
                "Expected a round of picks. Received a project with none; run "
                "`kerasll project select` first"
            )
        round_id = newest
    found = manifest.query("SELECT model_version FROM rounds WHERE id = ?", (round_id,))
    if not found:
        known = [row[0] for row in manifest.query("SELECT id FROM rounds")]
        raise ProjectError(f"Expected a round in {known}. Received: {round_id}")
    rows = manifest.query(
        "SELECT items.id, items.path, picks.predicted_loss, picks.prediction, "
        "picks.confidence FROM picks JOIN items ON items.id = picks.item_id "
        "WHERE picks.round_id = ? ORDER BY picks.rank",
        (round_id,),
    )
    picked = []
    for item_id, path, loss, prediction, confidence in rows:
        path = os.fspath(manifest.resolve(path))
        picked.append(AnnotationFileRow(
            manifest.config.project_id, round_id, item_id, path,
            image_url(path, url_prefix, document_root), found[0][0], loss,
            prediction, confidence,
        ))
    return round_id, picked


def format_annotation_file(rows, format_name, config):
    """The text of an annotation file.

    Args:
        rows: `AnnotationFileRow`s.
        format_name: one of `FORMATS`.
        config: the `ProjectConfig` (its task and names).

    Returns:
        The text.

    Raises:
        ProjectError: unknown format, or "csv" for detection or keypoints
            (a class column cannot hold boxes or keypoints).
    """
    if format_name == "label-studio":
        return json.dumps([labelstudio.import_task(row, config) for row in rows],
                          indent=2) + "\n"
    if format_name == "csv" and not project_kind(config.task).one_class_per_image:
        raise ProjectError(
            f"Expected --format label-studio for a {config.task} project (a CSV "
            "has one class per image). Received: --format csv"
        )
    if format_name == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for row in rows:
            writer.writerow([
                row.project_id, row.round_id, row.item_id, row.path, row.image,
                row.model_version, row.predicted_loss, row.prediction or "",
                "" if row.confidence is None else row.confidence, "",
            ])
        return buffer.getvalue()
    raise ProjectError(f"Expected format in {list(FORMATS)}. Received: {format_name!r}")


def write_annotation_file(manifest, format_name, out=None, round_id=None,
                          **url_options):
    """Writes a round's annotation file atomically.

    Args:
        manifest: the open `Manifest`.
        format_name: one of `FORMATS`.
        out: the file to write; it must not exist. Default
            `tasks/round-<N>.json` (or `.csv`) in the project, which this
            command owns and rewrites.
        round_id: the round; default the newest.
        **url_options: `url_prefix`, `document_root` (see `image_url`).

    Returns:
        (path written, number of rows).

    Raises:
        ProjectError: see `round_rows`, `format_annotation_file`; or `out`
            exists.
    """
    round_id, rows = round_rows(manifest, round_id, **url_options)
    text = format_annotation_file(rows, format_name, manifest.config)
    if out is None:
        suffix = ".json" if format_name == "label-studio" else ".csv"
        out = manifest.root / TASKS_FOLDER / f"round-{round_id}{suffix}"
        out.parent.mkdir(exist_ok=True)
    else:
        out = Path(out)
        if out.exists():
            raise ProjectError(
                f"Expected a new file for the tasks. Received {str(out)!r}, which "
                "exists; choose another --out or remove it"
            )
        if not out.parent.is_dir():
            raise ProjectError(
                f"Expected an existing folder for {str(out)!r}. Received: "
                f"{str(out.parent)!r} does not exist"
            )
    write_text(out, text)
    return out, len(rows)


def publish_round(manifest, url, token, project, round_id=None, **url_options):
    """Sets up a Label Studio project for a round and imports its tasks.

    Args:
        manifest: the open `Manifest`.
        url, token: the Label Studio server and a legacy API token.
        project: the Label Studio project id.
        round_id: the round; default the newest.
        **url_options: `url_prefix`, `document_root` (see `image_url`); the
            document root must be the server's
            LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT.

    Returns:
        A `kerasll.project.labelstudio_api.PublishResult`.

    Raises:
        ProjectError: see `round_rows` and
            `kerasll.project.labelstudio_api.publish_tasks`.
    """
    from kerasll.project.labelstudio_api import publish_tasks

    _, rows = round_rows(manifest, round_id, **url_options)
    tasks = [labelstudio.import_task(row, manifest.config) for row in rows]
    return publish_tasks(url, token, project, tasks, [row.path for row in rows])


LABEL_CONFIG = "label_config.xml"


def create_project(directory, classes, image_size=None, color_mode=None,
                   task="classification", keypoints=None):
    """Creates a project: its manifest and Label Studio's `label_config.xml`.

    Args:
        directory: the project folder (created when missing).
        classes, image_size, color_mode, task: see `Manifest.create`;
            detection and keypoint projects resize images to 64x64 unless
            told otherwise (their models' default scene size).
        keypoints: a keypoints project's schema: "figure" (the stick
            figures' 14 keypoints, `kerasll.keypoints.FIGURE_SKELETON`) or
            a COCO keypoint JSON file (its first category with keypoints:
            names, skeleton; left/right names are flip pairs; COCO's person
            names get COCO's OKS sigmas). See `kerasll.project.schema`.

    Returns:
        (the open `Manifest`, the labeling config's path).

    Raises:
        ProjectError: the folder holds a project or a `label_config.xml`
            already (neither is overwritten), or bad settings.
    """
    from kerasll.project.manifest import MANIFEST_NAME, Manifest

    config = Path(directory) / LABEL_CONFIG
    if config.exists() and not Path(directory, MANIFEST_NAME).exists():
        raise ProjectError(
            f"Expected a folder without {LABEL_CONFIG}. Received {str(directory)!r}, "
            "which has one; choose another folder"
        )
    image_size, keypoints = project_kind(task).init_settings(image_size, keypoints)
    manifest = Manifest.create(directory, classes, image_size, color_mode, task,
                               keypoints)
    write_text(config, labelstudio.label_config(manifest.config))
    return manifest, config
