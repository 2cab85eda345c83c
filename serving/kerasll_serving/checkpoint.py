"""Resume checkpoints: what a run has scored so far, saved atomically.

A checkpoint lives next to the picks file (`<out>.ckpt.npz`) and holds the next
batch to score, the running top-K, the skipped items, the counts and the size
of the every-score file. It is tied to the run by a fingerprint (model hash and
size, pool identity, batch size, K, every-score path): resuming with anything
else is a `CheckpointError`, never a silent mix of two runs.
"""

import json
import os
import zipfile

import numpy as np

from kerasll_serving import atomic
from kerasll_serving.errors import CheckpointError

FORMAT_VERSION = 1
_META = "meta"


def checkpoint_path(out):
    """Returns the checkpoint path of a run writing picks to `out`."""
    return os.fspath(out) + ".ckpt.npz"


class Checkpoint:
    """Saves and loads the progress of one run.

    Args:
        path: where the checkpoint lives (see `checkpoint_path`).
        fingerprint: JSON-able dict identifying the run.
    """

    def __init__(self, path, fingerprint):
        self.path = os.fspath(path)
        # A JSON round trip, so that it compares equal to a loaded one.
        self.fingerprint = json.loads(
            json.dumps({"format_version": FORMAT_VERSION, **fingerprint})
        )

    def exists(self):
        """Returns True when a checkpoint file is present."""
        return os.path.exists(self.path)

    def save(self, progress, arrays):
        """Writes the checkpoint atomically.

        Args:
            progress: JSON-able dict (next batch, counts, skipped items...).
            arrays: dict of numpy arrays (the running top-K).

        Raises:
            CheckpointError: the file cannot be written.
        """
        meta = json.dumps({"fingerprint": self.fingerprint, "progress": progress})
        try:
            with atomic.atomic_path(self.path) as temporary:
                with open(temporary, "wb") as stream:
                    np.savez(stream, **{_META: np.array(meta)}, **arrays)
        except OSError as error:
            raise CheckpointError(
                f"Expected to write the checkpoint {self.path!r}. Received: {error}"
            ) from error

    def load(self):
        """Reads the checkpoint and checks that it belongs to this run.

        Returns:
            `(progress, arrays)`.

        Raises:
            CheckpointError: the file is unreadable, or was written for a
                different model, pool, batch size, K or every-score path.
        """
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(str(arrays.pop(_META)))
            saved, progress = meta["fingerprint"], meta["progress"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise CheckpointError(
                f"Expected a readable checkpoint at {self.path!r}. Received: "
                f"{type(error).__name__}: {error}. Delete it or rerun without "
                "--resume."
            ) from error
        different = sorted(
            key
            for key in set(saved) | set(self.fingerprint)
            if saved.get(key) != self.fingerprint.get(key)
        )
        if different:
            details = "; ".join(
                f"{key}: checkpoint {_short(saved.get(key))}, this run "
                f"{_short(self.fingerprint.get(key))}"
                for key in different
            )
            raise CheckpointError(
                f"Expected the checkpoint {self.path!r} to match this run. Received "
                f"one written for a different {', '.join(different)} ({details}). "
                "Rerun without --resume to start over."
            )
        return progress, arrays

    def remove(self):
        """Deletes the checkpoint and any half-written one."""
        if os.path.exists(self.path):
            os.remove(self.path)
        atomic.remove_leftovers(self.path)


def _short(value, limit=120):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
