"""`labels`: importing annotators' labels, idempotently.

Four inputs (detection and keypoint projects: the first only):
- a Label Studio JSON export of tasks made by `tasks` (see
  `kerasll.project.labelstudio.parse_export`; boxes and keypoints are
  stored in pixels, `kerasll.project.regions`);
- a CSV with columns `project`, `item`, `label` and optionally `annotator`
  and `labeled_at` (the `tasks --format csv` file with its `label` column
  filled in; rows with an empty label are skipped);
- labels the user already has, for images already added: a CSV with columns
  `path`, `label` (optionally `annotator`, `labeled_at`; relative paths are
  relative to the CSV's folder), or a folder with one sub-folder of images
  per class (`cat/001.jpg`). Each image is matched to an item by its path,
  else by its content (the SHA-256 the manifest stores), so a copy of an
  added image finds its item too.

The whole input is checked before anything is written: every class must be a
project class, every item a project item (every path an added image), and
the project id the project's.
Then one transaction applies it. A label is kept per (item, annotator):
the same label again changes nothing, a different one replaces it unless
the stored one is newer. Importing the same file twice changes nothing.
"""

import csv
import dataclasses
import json
import os
from pathlib import Path

from kerasll_serving.sources import IMAGE_EXTENSIONS

from kerasll.project import images, labelstudio
from kerasll.project.errors import LabelsError
from kerasll.project.kinds import project_kind
from kerasll.project.manifest import now
from kerasll.project.rows import LabelRecord

CSV_REQUIRED = ("project", "item", "label")
PATH_CSV_REQUIRED = ("path", "label")
DEFAULT_ANNOTATOR = "csv"
FOLDER_ANNOTATOR = "folder"


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What `import_labels` did.

    Attributes:
        read: labels in the file.
        added: new (item, annotator) labels.
        changed: labels replaced by a newer, different one.
        unchanged: labels the manifest already had (or newer ones).
    """

    read: int
    added: int
    changed: int
    unchanged: int

    def summary(self):
        """One line for the CLI."""
        return (
            f"Imported {self.read} label(s): {self.added} new, {self.changed} "
            f"changed, {self.unchanged} unchanged"
        )


def read_labels(path, manifest):
    """Reads a labels file or a folder of class sub-folders.

    Args:
        path: a `.json` Label Studio export, a `.csv` (item ids, or image
            paths), or a folder with one sub-folder per class.
        manifest: the open `Manifest` (its project id; its items, to match
            image paths).

    Returns:
        A list of `LabelRecord`.

    Raises:
        LabelsError: unreadable or malformed file, another project's, or
            images that are not in the project.
    """
    path = Path(path)
    kind = project_kind(manifest.config.task)
    if not kind.one_class_per_image and (path.is_dir()
                                         or path.suffix.lower() != ".json"):
        raise LabelsError(
            f"Expected a Label Studio JSON export (.json) for a {kind.name} project "
            f"(CSVs and folders hold one class per image). Received: {str(path)!r}"
        )
    if path.is_dir():
        return _read_folder(path, manifest)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(
            f"Expected a readable labels file. Received {str(path)!r}: {error}"
        ) from error
    project_id = manifest.config.project_id
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            tasks = json.loads(text)
        except ValueError as error:
            raise LabelsError(
                f"Expected a Label Studio JSON export. Received {str(path)!r}: {error}"
            ) from error
        return labelstudio.parse_export(tasks, manifest, path.name)
    if suffix == ".csv":
        header = next(csv.reader(text.splitlines()), [])
        if "item" not in header and set(PATH_CSV_REQUIRED) <= set(header):
            return _read_path_csv(text, path, manifest)
        return _read_csv(text, project_id, path.name)
    raise LabelsError(
        "Expected a Label Studio JSON export (.json), a CSV (.csv) or a folder of "
        f"class sub-folders. Received: {str(path)!r}"
    )


def _read_csv(text, project_id, source):
    reader = csv.DictReader(text.splitlines())
    missing = [name for name in CSV_REQUIRED if name not in (reader.fieldnames or ())]
    if missing:
        raise LabelsError(
            f"Expected CSV columns {list(CSV_REQUIRED)} or {list(PATH_CSV_REQUIRED)} "
            f"(plus optional annotator, labeled_at) in {source!r}. Missing: {missing}"
        )
    records = []
    for number, row in enumerate(reader, 2):
        label = (row.get("label") or "").strip()
        if not label:
            continue
        if row["project"] != project_id:
            raise LabelsError(
                f"Expected labels of project {project_id}. Received {source!r}, "
                f"whose line {number} is of project {row['project']!r}"
            )
        try:
            item_id = int(row["item"])
        except (TypeError, ValueError):
            raise LabelsError(
                f"Expected integer item ids in {source!r}. Received "
                f"{row['item']!r} on line {number}"
            ) from None
        records.append(LabelRecord(
            item_id, label, (row.get("annotator") or "").strip() or DEFAULT_ANNOTATOR,
            (row.get("labeled_at") or "").strip(),
        ))
    return records


def _read_path_csv(text, path, manifest):
    rows = []
    for number, row in enumerate(csv.DictReader(text.splitlines()), 2):
        label = (row.get("label") or "").strip()
        image = (row.get("path") or "").strip()
        if not label:
            continue
        if not image:
            raise LabelsError(
                f"Expected an image path on every labeled line of {path.name!r}. "
                f"Received none on line {number}"
            )
        rows.append((path.parent / image, label,
                     (row.get("annotator") or "").strip() or DEFAULT_ANNOTATOR,
                     (row.get("labeled_at") or "").strip()))
    items = match_items(manifest, [image for image, _, _, _ in rows], path.name)
    return [LabelRecord(item_id, label, annotator, labeled_at)
            for item_id, (_, label, annotator, labeled_at) in zip(items, rows)]


def _read_folder(root, manifest):
    rows = []
    for folder in sorted(child for child in root.iterdir() if child.is_dir()):
        for directory, subdirectories, files in os.walk(folder):
            subdirectories.sort()
            rows.extend((Path(directory, name), folder.name) for name in sorted(files)
                        if name.lower().endswith(IMAGE_EXTENSIONS)
                        and not name.startswith("."))
    if not rows:
        raise LabelsError(
            f"Expected a folder with one sub-folder of images per class. Received "
            f"{str(root)!r}, which has no images in sub-folders"
        )
    check_classes(manifest, {label for _, label in rows}, root.name)
    items = match_items(manifest, [image for image, _ in rows], root.name)
    return [LabelRecord(item_id, label, FOLDER_ANNOTATOR)
            for item_id, (_, label) in zip(items, rows)]


def match_items(manifest, paths, source):
    """The project item of each image: the one added from the same path, or
    else the one with the same content.

    Args:
        manifest: the open `Manifest`.
        paths: image files (absolute, or relative to the working folder).
        source: the file or folder name, for messages.

    Returns:
        The item ids, in the order of `paths`.

    Raises:
        LabelsError: images the project does not have (or cannot read),
            naming the first few.
    """
    by_path, by_hash = {}, {}
    for item_id, stored, sha in manifest.query("SELECT id, path, sha256 FROM items"):
        by_path[os.path.realpath(manifest.resolve(stored))] = item_id
        by_hash[sha] = item_id
    found, strangers = [], []
    for path in paths:
        item_id = by_path.get(os.path.realpath(path))
        if item_id is None:
            try:
                item_id = by_hash.get(images.content_hash(Path(path).read_bytes()))
            except OSError:
                item_id = None
        if item_id is None:
            strangers.append(os.fspath(path))
        found.append(item_id)
    if strangers:
        raise LabelsError(
            f"Expected images already in the project (add them first with "
            f"`kerasll project add`). Received {len(strangers)} in {source!r} that "
            f"it does not have, e.g. {strangers[:3]}"
        )
    return found


def check_classes(manifest, labels, source):
    """Refuses class names that are not the project's.

    Args:
        manifest: the open `Manifest`.
        labels: the class names found.
        source: the file name, for messages.

    Raises:
        LabelsError: naming the first few unknown classes.
    """
    unknown = sorted(set(labels) - set(manifest.config.classes))
    if unknown:
        raise LabelsError(
            f"Expected labels in the project's classes "
            f"{list(manifest.config.classes)}. Received {unknown[:5]} in {source!r}"
        )


def check_labels(manifest, records, source):
    """Refuses unknown classes and items not in the project (the classes of
    boxes are checked as they are read).

    Args:
        manifest: the open `Manifest`.
        records: `LabelRecord`s.
        source: the file name, for messages.

    Raises:
        LabelsError: naming the first few offenders.
    """
    project_kind(manifest.config.task).check_labels(manifest, records, source)
    items = {item_id for (item_id,) in manifest.query("SELECT id FROM items")}
    strangers = sorted({record.item_id for record in records} - items)
    if strangers:
        raise LabelsError(
            f"Expected items of the project. Received item id(s) {strangers[:5]} "
            f"in {source!r}, which the project does not have"
        )


def import_labels(manifest, path):
    """Imports a labels file in one transaction.

    Args:
        manifest: the open `Manifest`.
        path: a labels file or a folder of class sub-folders (see
            `read_labels`).

    Returns:
        An `ImportResult`.

    Raises:
        LabelsError: see `read_labels` and `check_labels`; nothing is written.
    """
    path = Path(path)
    records = read_labels(path, manifest)
    check_labels(manifest, records, path.name)
    imported_at = now()
    latest = {}
    for record in records:  # One label per (item, annotator): the newest wins.
        key = (record.item_id, record.annotator)
        if key not in latest or record.labeled_at >= latest[key].labeled_at:
            latest[key] = record
    added = changed = 0
    with manifest.transaction() as connection:
        for (item_id, annotator), record in latest.items():
            stored = connection.execute(
                "SELECT id, label, labeled_at FROM labels "
                "WHERE item_id = ? AND annotator = ?",
                (item_id, annotator),
            ).fetchone()
            labeled_at = record.labeled_at or imported_at
            if stored is None:
                connection.execute(
                    "INSERT INTO labels (item_id, label, annotator, labeled_at, "
                    "imported_at, source) VALUES (?, ?, ?, ?, ?, ?)",
                    (item_id, record.label, annotator, labeled_at, imported_at,
                     path.name),
                )
                added += 1
            elif stored[1] != record.label and labeled_at >= stored[2]:
                connection.execute(
                    "UPDATE labels SET label = ?, labeled_at = ?, imported_at = ?, "
                    "source = ? WHERE id = ?",
                    (record.label, labeled_at, imported_at, path.name, stored[0]),
                )
                changed += 1
    return ImportResult(len(records), added, changed,
                        len(records) - added - changed)
