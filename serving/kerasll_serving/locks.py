"""One run at a time per output: an exclusive lock beside each output file.

A run holds `<path>.lock` for each path it writes (picks, and with them the
errors file and the checkpoint; the every-score file) from start to finish,
so two runs never interleave their outputs; the second one is refused at
once. The lock is released when the run ends, even by an error; the empty
`.lock` file stays (deleting it would let a third run lock a different file).
"""

import contextlib
import os

import filelock

from kerasll_serving.errors import OutputError

LOCK_SUFFIX = ".lock"


def lock_path(path):
    """Returns the lock file guarding an output path."""
    return os.path.abspath(os.fspath(path)) + LOCK_SUFFIX


@contextlib.contextmanager
def output_locks(paths):
    """Holds the lock of every output path for the duration of the block.

    Args:
        paths: output paths; None entries are skipped.

    Raises:
        OutputError: another run holds one of the locks.
    """
    locks = sorted({lock_path(path) for path in paths if path is not None})
    with contextlib.ExitStack() as stack:
        for path in locks:
            try:
                stack.enter_context(filelock.FileLock(path, timeout=0))
            except filelock.Timeout:
                raise OutputError(
                    "Expected no other run writing "
                    f"{path[: -len(LOCK_SUFFIX)]!r}. Received: its lock {path!r} "
                    "is held by another kerasll-score run; wait for it to finish "
                    "or choose another output."
                ) from None
        yield
