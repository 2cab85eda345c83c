"""Atomic file writes: the one writer every kerasll output goes through.

A file is written to a temporary file with a unique name in the target's
folder, flushed to disk, then renamed over the target. A reader (or a resumed
run) sees the old file or the new one, never half of one, even if the process
is killed mid-write; two processes writing the same target never share a
temporary file. The temporary file is created with the mode of an ordinary
new file (0666 minus the umask), so the renamed result is too.
"""

import contextlib
import os
import uuid
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"


def _create_temporary(path):
    """Creates an empty, uniquely named file beside `path` and returns it."""
    while True:
        unique = uuid.uuid4().hex[:12]
        temporary = path.with_name(f"{TEMPORARY_PREFIX}{unique}-{path.name}")
        try:
            # 0o666 goes through the umask, as for open(path, "w").
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return temporary
        except FileExistsError:  # pragma: no cover - a 48-bit collision
            continue


def _fsync(path):
    with open(path, "r+b") as stream:
        os.fsync(stream.fileno())


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path that replaces `path` when the block succeeds.

    Args:
        path: the final file path; its folder must exist.

    Yields:
        A `Path` in the same folder to write to. Its name ends with the
        target's name, so libraries that pick a format by suffix (Keras'
        `.weights.h5`, matplotlib's `.png`) still work.

    Raises:
        OSError: the temporary file cannot be created, synced or renamed.
    """
    path = Path(path)
    temporary = _create_temporary(path)
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_leftovers(path):
    """Deletes temporary files a killed writer of `path` left beside it.

    Only call it while no other process writes `path` (under its lock, or in
    a folder this run owns).

    Args:
        path: the target file whose temporaries to delete.
    """
    path = Path(path)
    for leftover in path.parent.glob(f"{TEMPORARY_PREFIX}*-{path.name}"):
        leftover.unlink(missing_ok=True)


def write_bytes(path, data):
    """Writes `data` to `path` atomically.

    Args:
        path: target file.
        data: the content (bytes).

    Raises:
        OSError: the file cannot be written.
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path, text):
    """Writes `text` (UTF-8, newlines as given) to `path` atomically.

    Args:
        path: target file.
        text: the content.

    Raises:
        OSError: the file cannot be written.
    """
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
