"""One run at a time per output: an exclusive lock beside each output file.

A run holds `<path>.lock` for each path it writes (picks, and with them the
errors file and the checkpoint; the every-score file) from start to finish,
so two runs never interleave their outputs; the second one is refused at
once. When the run ends, finished or failed, it deletes its lock files while
still holding them, then releases them; only a killed run leaves one behind,
which the next run on that output takes over and deletes.

Deleting a `flock`ed file is safe only with a check on the taker's side: a
run B may open `<path>.lock` just before run A deletes it, then lock that
deleted file once A releases it, while a run C creates and locks a new file
at the same path; B and C would both hold "the" lock. So a run accepts a lock
only when the file it locked is still the one at the path (same device and
inode), and otherwise opens the path again. Runs never wait for a lock
(a second run is refused at once), so no run sleeps on a deleted file. The
lock needs `flock`: on a filesystem without it the run is refused with an
`OutputError`. On Windows a file open in another process cannot be deleted,
and filelock removes it after release itself.
"""

import contextlib
import errno
import os

import filelock

from kerasll_serving.errors import OutputError

LOCK_SUFFIX = ".lock"
# A lock file replaced this many times in a row while we take it: give up.
_MAX_TRIES = 20


class ReplacedLock(Exception):
    """The locked file is no longer the one at the lock path."""


def lock_path(path):
    """Returns the lock file guarding an output path."""
    return os.path.abspath(os.fspath(path)) + LOCK_SUFFIX


def check_still_linked(path):
    """Returns a check that the file behind a locked descriptor is at `path`.

    Args:
        path: the lock path.

    Returns:
        A callable taking the locked file descriptor; it raises `ReplacedLock`
        when `path` is gone or now names another file.
    """
    def check(descriptor):
        held = os.fstat(descriptor)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            raise ReplacedLock from None
        if (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            raise ReplacedLock
    return check


@contextlib.contextmanager
def output_locks(paths):
    """Holds the lock of every output path for the duration of the block,
    then deletes the lock files and releases them.

    Args:
        paths: output paths; None entries are skipped.

    Raises:
        OutputError: another run holds one of the locks.
    """
    locks = sorted({lock_path(path) for path in paths if path is not None})
    with contextlib.ExitStack() as stack:
        for path in locks:
            stack.enter_context(_held(path))
        yield


@contextlib.contextmanager
def _held(path):
    """Takes one lock (see the module docstring); deletes it, then releases."""
    for _ in range(_MAX_TRIES):
        lock = filelock.FileLock(path, timeout=0,
                                 on_acquired=check_still_linked(path))
        try:
            lock.acquire()
        except ReplacedLock:
            continue  # Deleted by the run that just ended: open the path again.
        except filelock.Timeout:
            raise OutputError(
                "Expected no other run writing "
                f"{path[: -len(LOCK_SUFFIX)]!r}. Received: its lock {path!r} "
                "is held by another kerasll-score run; wait for it to finish "
                "or choose another output."
            ) from None
        except OSError as error:
            if error.errno != errno.ENOSYS:
                raise
            raise OutputError(
                f"Expected a filesystem with file locks (flock) for {path!r}. "
                f"Received: {error.strerror}; write the outputs to a local disk."
            ) from None
        break
    else:
        raise OutputError(
            f"Expected to take the lock {path!r}. Received: it was replaced "
            f"{_MAX_TRIES} times in a row by other runs; try again."
        )
    try:
        yield
    finally:
        try:
            if os.name == "posix":
                with contextlib.suppress(OSError):  # A leftover lock is harmless.
                    os.remove(path)  # Still held: no run can take this file now.
        finally:
            lock.release()
