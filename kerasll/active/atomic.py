"""Atomic file writes: write a temporary file beside the target, then rename.

A reader (or a resumed run) sees either the old file or the new one, never a
half-written one, even if the process is killed mid-write.
"""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path that replaces `path` when the block succeeds.

    Args:
        path: the final file path; its folder must exist.

    Yields:
        A `Path` in the same folder to write to. Its name ends with the
        target's name, so libraries that pick a format by suffix (Keras'
        `.weights.h5`, matplotlib's `.png`) still work.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}"
    )
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically.

    Args:
        path: target file.
        text: the content.
    """
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
