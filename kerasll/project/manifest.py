"""The project manifest: one SQLite file holding items, labels, models, rounds.

The manifest is `DIR/manifest.sqlite` (standard-library `sqlite3`, WAL
journal, `synchronous=FULL`). Every command that changes it does so inside a
single `Manifest.transaction()`: a crash or an error before the commit leaves
the previous state, and readers never see half a command. One command writes
at a time: another waits up to `timeout` seconds for the write lock, then
gets a `ProjectBusyError` naming the holder, which notes its pid and command
line in `DIR/.writer.json` while it writes.

Tables:
    meta: the project's settings (id, task, classes, keypoint schema, image
        size, color mode) and the current model version. A manifest without
        a task is a classification project's (it predates the key).
    items: id, path (absolute, or relative to the project folder), content
        hash (SHA-256 of the file, unique: items are deduplicated by it),
        source device, origin (the path inside the source, or the array row,
        which is how device picks name it) and when it was added.
    origins: every (device, origin) an item was added under, so picks of a
        device whose capture duplicates another device's still find it.
    labels: item, label, annotator, when it was labeled and imported, and
        the file it came from; one row per (item, annotator). A label is the
        class name, or for detection and keypoints the item's annotation as
        canonical JSON (`kerasll.project.regions`).
    models: each trained model version, its folder and training set size.
    rounds / picks: what each selection picked, by which model version, with
        which predicted losses (both NULL for a random cold-start round).
"""

import contextlib
import dataclasses
import datetime
import json
import os
import sqlite3
import sys
import uuid
from pathlib import Path

from kerasll_serving.atomic import atomic_path, write_text

from kerasll.project.errors import ManifestError, ProjectBusyError
from kerasll.project.kinds import project_kind

MANIFEST_NAME = "manifest.sqlite"
WRITER_NOTE = ".writer.json"
DEFAULT_TIMEOUT = 30.0
SCHEMA_VERSION = 3
# 2: rounds record the strategy that chose them; picks their role ("pick",
# or "audit": drawn at random to audit the score) and the strategy's score.
# A version-1 manifest gains these columns when it is opened.
# 3: detection and keypoint projects (meta keys `task`, `keypoints`; labels
# and predictions may be JSON annotations). A version-2 manifest is a
# classification project as it is; the version changes so that a kerasll
# knowing only version 2 refuses a detection project instead of reading its
# boxes as class names.
_MIGRATIONS = {
    1: (
        "ALTER TABLE rounds ADD COLUMN strategy TEXT",
        "ALTER TABLE picks ADD COLUMN role TEXT NOT NULL DEFAULT 'pick'",
        "ALTER TABLE picks ADD COLUMN score REAL",
    ),
    2: (),
}
COLOR_MODES = ("grayscale", "rgb")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    device TEXT NOT NULL,
    origin TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE origins (
    device TEXT NOT NULL,
    origin TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id),
    PRIMARY KEY (device, origin)
);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items (id),
    label TEXT NOT NULL,
    annotator TEXT NOT NULL,
    labeled_at TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (item_id, annotator)
);
CREATE TABLE models (
    version TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    backbone TEXT NOT NULL,
    epochs INTEGER NOT NULL,
    labeled INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY,
    model_version TEXT REFERENCES models (version),
    k INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    strategy TEXT
);
CREATE TABLE picks (
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    item_id INTEGER NOT NULL REFERENCES items (id),
    rank INTEGER NOT NULL,
    predicted_loss REAL,
    prediction TEXT,
    confidence REAL,
    device TEXT,
    role TEXT NOT NULL DEFAULT 'pick',
    score REAL,
    PRIMARY KEY (round_id, item_id)
);
"""


def now():
    """The current UTC time as an ISO-8601 string (seconds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    """Settings fixed when the project is created.

    Attributes:
        project_id: a random hex id; task and label files carry it, so a file
            of another project is recognised.
        classes: the class names, in model-output order (a keypoint
            project's one class is its figure, e.g. "person").
        image_size: (height, width) every image is resized to, or None until
            the first `add` fixes it from the first image.
        color_mode: "grayscale" or "rgb", or None until the first `add`.
        task: one of `kerasll.tasks.KINDS`.
        keypoints: a keypoint project's schema, a dict with `names`,
            `edges` and `flip_pairs` (0-based index pairs) and `sigmas`
            (OKS constants, or None); None for the other tasks.
    """

    project_id: str
    classes: tuple
    image_size: tuple = None
    color_mode: str = None
    task: str = "classification"
    keypoints: dict = None

    def to_meta(self):
        """The `meta` table rows (all values are JSON)."""
        return {
            "schema_version": json.dumps(SCHEMA_VERSION),
            "project_id": json.dumps(self.project_id),
            "task": json.dumps(self.task),
            "classes": json.dumps(list(self.classes)),
            "keypoints": json.dumps(self.keypoints),
            "image_size": json.dumps(
                None if self.image_size is None else list(self.image_size)
            ),
            "color_mode": json.dumps(self.color_mode),
        }

    @classmethod
    def from_meta(cls, rows):
        """Reads the `meta` table rows written by `to_meta` (without a task:
        classification)."""
        values = {key: json.loads(value) for key, value in rows.items()}
        size = values.get("image_size")
        return cls(
            project_id=values["project_id"],
            classes=tuple(values["classes"]),
            image_size=None if size is None else tuple(size),
            color_mode=values.get("color_mode"),
            task=values.get("task") or "classification",
            keypoints=values.get("keypoints"),
        )


class Manifest:
    """An open project manifest.

    Use `Manifest.create` or `Manifest.open`; change it only inside
    `transaction()`.

    Args:
        root: the project folder.
        connection: an open `sqlite3.Connection` in autocommit mode.
        timeout: the seconds `connection` waits for another writer's lock.

    Attributes:
        root: the project folder (a `Path`).
        config: the `ProjectConfig`.
    """

    def __init__(self, root, connection, timeout=DEFAULT_TIMEOUT):
        self.root = Path(root)
        self.connection = connection
        self.timeout = timeout
        self.config = ProjectConfig.from_meta(
            dict(connection.execute("SELECT key, value FROM meta"))
        )

    @classmethod
    def create(cls, root, classes, image_size=None, color_mode=None,
               task="classification", keypoints=None):
        """Creates a project folder's manifest atomically.

        The database is built in a temporary file and renamed into place, so
        a crash leaves either no project or a complete one.

        Args:
            root: the project folder; created when missing.
            classes: class names (distinct, non-empty; at least two for
                classification, one for detection, exactly one, the
                figure's, for keypoints).
            image_size: optional (height, width) images are resized to.
            color_mode: optional "grayscale" or "rgb".
            task: one of `kerasll.tasks.KINDS`.
            keypoints: the keypoint schema (see `ProjectConfig`), for
                keypoints only.

        Returns:
            The open `Manifest`.

        Raises:
            ManifestError: the folder already holds a project, or bad
                task, classes, schema, image size or color mode.
        """
        root = Path(root)
        if (keypoints is None) == project_kind(task).keypoint_schema:
            raise ManifestError(
                "Expected a keypoint schema for a keypoints project, and none for "
                f"another task. Received task={task!r}, keypoints={keypoints!r}"
            )
        config = ProjectConfig(
            uuid.uuid4().hex, _check_classes(classes, task), _check_size(image_size),
            _check_color(color_mode), task, keypoints,
        )
        path = root / MANIFEST_NAME
        if path.exists():
            raise ManifestError(
                f"Expected a folder without a project. Received {str(root)!r}, "
                f"which already holds {MANIFEST_NAME}"
            )
        root.mkdir(parents=True, exist_ok=True)
        # The file is created with the umask's mode, as every kerasll output.
        with atomic_path(path) as temporary:
            try:
                connection = _connect(temporary, DEFAULT_TIMEOUT)
                with connection:
                    connection.executescript(_SCHEMA)
                    connection.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        config.to_meta().items(),
                    )
                connection.close()
            finally:
                for suffix in ("-wal", "-shm"):
                    Path(f"{temporary}{suffix}").unlink(missing_ok=True)
            if path.exists():  # Created meanwhile by another process.
                raise ManifestError(
                    f"Expected a folder without a project. Received {str(root)!r}"
                )
        return cls.open(root)

    @classmethod
    def open(cls, root, timeout=DEFAULT_TIMEOUT):
        """Opens an existing project.

        Args:
            root: the project folder.
            timeout: seconds a change waits for another command's write lock
                before `transaction` raises `ProjectBusyError`.

        Returns:
            The open `Manifest`.

        Raises:
            ManifestError: no manifest in the folder, or one of another
                schema version.
            ProjectBusyError: an older manifest must be upgraded while
                another command holds its write lock.
        """
        path = Path(root) / MANIFEST_NAME
        if not path.is_file():
            raise ManifestError(
                f"Expected a project folder holding {MANIFEST_NAME} (create one "
                f"with `kerasll project init`). Received: {str(root)!r}"
            )
        connection = _connect(path, timeout)
        try:
            version = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise ManifestError(
                f"Expected a kerasll manifest in {str(path)!r}. Received: {error}"
            ) from error
        if version is not None and json.loads(version[0]) in _MIGRATIONS:
            manifest = cls(root, connection, timeout)
            try:
                manifest._upgrade(json.loads(version[0]))
            except BaseException:
                connection.close()
                raise
            return manifest
        if version is None or json.loads(version[0]) != SCHEMA_VERSION:
            connection.close()
            raise ManifestError(
                f"Expected manifest schema version {SCHEMA_VERSION} in "
                f"{str(path)!r}. Received: {None if version is None else version[0]}"
            )
        return cls(root, connection, timeout)

    def close(self):
        """Closes the database connection."""
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @contextlib.contextmanager
    def transaction(self):
        """One command's changes: all committed at the end, or none.

        While it is open, `DIR/.writer.json` names this process (pid and
        command line) for a command that finds the project busy.

        Yields:
            The connection, inside `BEGIN IMMEDIATE` (other writers wait).

        Raises:
            ProjectBusyError: another process held the write lock for longer
                than `timeout` seconds; nothing was changed.
        """
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            raise ProjectBusyError(
                f"Expected the project {str(self.root)!r} to be free within "
                f"{self.timeout:g} s. Received: busy, its manifest is being "
                f"changed by {self._writer()}; try again when it is done"
            ) from None
        note = self.root / WRITER_NOTE
        try:
            write_text(note, json.dumps({
                "pid": os.getpid(), "command": sys.argv, "since": now(),
            }) + "\n")
            yield self.connection
            self._commit()
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        finally:
            note.unlink(missing_ok=True)

    def _upgrade(self, version):
        """Brings a manifest of an older schema version to `SCHEMA_VERSION`,
        in one transaction (`ProjectBusyError` while another writes)."""
        with self.transaction() as connection:
            while version in _MIGRATIONS:
                for statement in _MIGRATIONS[version]:
                    connection.execute(statement)
                version += 1
            connection.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                (json.dumps(version),),
            )

    def _writer(self):
        """Who holds the write lock, from its note, when that process lives."""
        try:
            note = json.loads((self.root / WRITER_NOTE).read_text(encoding="utf-8"))
            pid, command = int(note["pid"]), " ".join(map(str, note["command"]))
        except (OSError, ValueError, TypeError, KeyError):
            return "another process (unknown)"
        if not _alive(pid):
            return "another process (unknown)"
        return f"pid {pid} ({command}) since {note.get('since')}"

    def _commit(self):
        self.connection.execute("COMMIT")

    def set_meta(self, connection, config):
        """Replaces the project settings (inside a transaction).

        Args:
            connection: the transaction's connection.
            config: the new `ProjectConfig` (same id and classes).
        """
        connection.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            config.to_meta().items(),
        )
        self.config = config

    def resolve(self, path):
        """The absolute path of an item's stored path."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path

    def query(self, sql, parameters=()):
        """Runs a read-only query and returns all rows."""
        return self.connection.execute(sql, parameters).fetchall()

    def current_model(self):
        """The last trained model as (version, folder), or None before `train`."""
        row = self.connection.execute(
            "SELECT version, folder FROM models WHERE version = "
            "(SELECT json_extract(value, '$') FROM meta WHERE key = 'current_model')"
        ).fetchone()
        return None if row is None else (row[0], self.root / row[1])

    def set_current_model(self, connection, version):
        """Makes `version` the model devices score with (inside a transaction).

        Args:
            connection: the transaction's connection.
            version: a version in the `models` table.
        """
        connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('current_model', ?)",
            (json.dumps(version),),
        )

    def training_labels(self):
        """The label of every labeled item: the newest among its annotators.

        Returns:
            A list of (item_id, path, label), ordered by item id.
        """
        rows = self.query(
            """
            SELECT items.id, items.path, labels.label FROM labels
            JOIN items ON items.id = labels.item_id
            WHERE labels.id = (
                SELECT newest.id FROM labels AS newest
                WHERE newest.item_id = labels.item_id
                ORDER BY newest.labeled_at DESC, newest.id DESC LIMIT 1
            )
            ORDER BY items.id
            """
        )
        return [(item_id, self.resolve(path), label) for item_id, path, label in rows]

    def pool(self):
        """Items neither labeled nor picked by an earlier round.

        Returns:
            A list of (item_id, absolute path), ordered by item id.
        """
        rows = self.query(
            """
            SELECT id, path FROM items
            WHERE id NOT IN (SELECT item_id FROM labels)
              AND id NOT IN (SELECT item_id FROM picks)
            ORDER BY id
            """
        )
        return [(item_id, self.resolve(path)) for item_id, path in rows]


def _busy(error):
    """Whether an `OperationalError` is SQLITE_BUSY (another connection holds
    the lock); Python 3.10 names it only in the message."""
    return (getattr(error, "sqlite_errorname", None) == "SQLITE_BUSY"
            or str(error) == "database is locked")


def _alive(pid):
    """Whether a process with this id runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, another user's.
        return True
    return True


def _connect(path, timeout):
    connection = sqlite3.connect(os.fspath(path), isolation_level=None,
                                 timeout=timeout)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def _check_classes(classes, task="classification"):
    if isinstance(classes, str):
        classes = classes.split(",")
    names = tuple(str(name).strip() for name in classes)
    kind = project_kind(task)
    low, high = kind.class_counts
    if (len(names) < low or (high is not None and len(names) > high)
            or not all(names) or len(set(names)) != len(names)):
        raise ManifestError(
            f"Expected {kind.classes_wanted} for a {task} project, e.g. --classes "
            f"{kind.classes_example}. Received: {list(names)}"
        )
    return names


def _check_size(image_size):
    if image_size is None:
        return None
    try:
        height, width = (int(side) for side in image_size)
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1:
        raise ManifestError(
            f"Expected image_size as (height, width) >= 1. Received: {image_size!r}"
        )
    return height, width


def _check_color(color_mode):
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ManifestError(
            f"Expected color_mode in {list(COLOR_MODES)}. Received: {color_mode!r}"
        )
    return color_mode
