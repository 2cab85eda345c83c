"""`labels`: importing annotators' labels, idempotently.

Two inputs: a Label Studio JSON export of tasks made by `tasks` (see
`kerasll.project.labelstudio.parse_export`), or a CSV with columns
`project`, `item`, `label` and optionally `annotator` and `labeled_at` (the
`tasks --format csv` file with its `label` column filled in; rows with an
empty label are skipped).

The whole file is checked before anything is written: every class must be a
project class, every item a project item, and the project id the project's.
Then one transaction applies it. A label is kept per (item, annotator):
the same label again changes nothing, a different one replaces it unless
the stored one is newer. Importing the same file twice changes nothing.
"""

import csv
import dataclasses
import json
from pathlib import Path

from kerasll.project import labelstudio
from kerasll.project.errors import LabelsError
from kerasll.project.manifest import now
from kerasll.project.records import LabelRecord

CSV_REQUIRED = ("project", "item", "label")
DEFAULT_ANNOTATOR = "csv"


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


def read_labels(path, project_id):
    """Reads a labels file (`.json`: Label Studio export, `.csv`).

    Args:
        path: the file.
        project_id: the project's id (files of another project are refused).

    Returns:
        A list of `LabelRecord`.

    Raises:
        LabelsError: unreadable or malformed file, or another project's.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(
            f"Expected a readable labels file. Received {str(path)!r}: {error}"
        ) from error
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            tasks = json.loads(text)
        except ValueError as error:
            raise LabelsError(
                f"Expected a Label Studio JSON export. Received {str(path)!r}: {error}"
            ) from error
        return labelstudio.parse_export(tasks, project_id, path.name)
    if suffix == ".csv":
        return _read_csv(text, project_id, path.name)
    raise LabelsError(
        "Expected a Label Studio JSON export (.json) or a CSV (.csv). Received: "
        f"{str(path)!r}"
    )


def _read_csv(text, project_id, source):
    reader = csv.DictReader(text.splitlines())
    missing = [name for name in CSV_REQUIRED if name not in (reader.fieldnames or ())]
    if missing:
        raise LabelsError(
            f"Expected CSV columns {list(CSV_REQUIRED)} (plus optional annotator, "
            f"labeled_at) in {source!r}. Missing: {missing}"
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


def check_labels(manifest, records, source):
    """Refuses unknown classes and items not in the project.

    Args:
        manifest: the open `Manifest`.
        records: `LabelRecord`s.
        source: the file name, for messages.

    Raises:
        LabelsError: naming the first few offenders.
    """
    classes = set(manifest.config.classes)
    unknown = sorted({record.label for record in records} - classes)
    if unknown:
        raise LabelsError(
            f"Expected labels in the project's classes "
            f"{list(manifest.config.classes)}. Received {unknown[:5]} in {source!r}"
        )
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
        path: see `read_labels`.

    Returns:
        An `ImportResult`.

    Raises:
        LabelsError: see `read_labels` and `check_labels`; nothing is written.
    """
    path = Path(path)
    records = read_labels(path, manifest.config.project_id)
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
