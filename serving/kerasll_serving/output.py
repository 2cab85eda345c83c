"""Writing picks, skipped items and every score to disk.

Picks and errors are written with the one atomic writer
(`kerasll_serving.atomic`), so a reader never sees half a file. Every-score
files stream to `<path>.partial` and are renamed when the run completes; a
resumed run truncates the partial file back to its checkpointed size.
"""

import contextlib
import csv
import io
import json
import math
import os

from kerasll_serving import atomic
from kerasll_serving.errors import OutputError
from kerasll_serving.predictions import describe, task_fields

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
# Then the task's prediction columns (`predictions.task_fields`).
PICK_FIELDS = ("rank", "item", "index", "predicted_loss", "nan")
# A stream's picks (`kerasll_serving.streaming`) have no rank: they are in
# arrival order, with the percentile in the export-time distribution and the
# threshold each was kept over.
STREAM_PICK_FIELDS = ("item", "index", "predicted_loss", "nan", "percentile",
                      "threshold")
# Last, only in runs that kept an audit sample (see `kerasll_serving.audit`).
AUDIT_FIELDS = ("role", "audit_key")
SCORE_FIELDS = ("index", "item", "predicted_loss", "nan")
ERROR_FIELDS = ("index", "item", "error")


def output_format(path):
    """Returns "csv" or "jsonl" from a path's extension.

    Args:
        path: an output path.

    Returns:
        The format name.

    Raises:
        OutputError: the extension is neither `.csv` nor `.jsonl`, or the
            directory does not exist.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise OutputError(
            f"Expected an output path ending in {' or '.join(FORMATS)}. "
            f"Received: {path!r}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(
            f"Expected an existing directory for {path!r}. Received: "
            f"{directory!r} does not exist."
        )
    return FORMATS[extension]


def same_file(first, second):
    """Whether two paths name one file (existing or not, links resolved).

    Args:
        first, second: paths.

    Returns:
        True when they resolve to the same file.
    """
    if os.path.exists(first) and os.path.exists(second):
        return os.path.samefile(first, second)
    return os.path.realpath(first) == os.path.realpath(second)


def check_not_inputs(outputs, inputs):
    """Refuses an output path that names one of the run's input files.

    Args:
        outputs: output name -> path (None entries are skipped).
        inputs: input name -> path (directories are skipped).

    Raises:
        OutputError: an output is the same file as an input.
    """
    for what, path in outputs.items():
        for source, given in inputs.items():
            if path is not None and os.path.isfile(given) and same_file(path, given):
                raise OutputError(
                    f"Expected {what} to be a new file, not the {source}. Received: "
                    f"{what}={os.fspath(path)!r}, the {source} file "
                    f"{os.fspath(given)!r}; writing it would destroy the {source}."
                )


def errors_path(out):
    """Returns where the skipped items of a run writing `out` are listed."""
    return os.fspath(out) + ".errors.csv"


def write_picks(path, picks, contract, audit=(), fields=PICK_FIELDS):
    """Writes picks atomically as CSV or JSONL (by extension).

    With an audit sample, the file has two more columns, `role` ("pick",
    "audit" or "pick+audit") and `audit_key`, and after the picks come the
    audit items that are not picks (role "audit", empty `rank`), smallest key
    first. An item is written once; one in both has role "pick+audit".

    Args:
        path: the output path.
        picks: `Pick`s, best first (a stream's: in arrival order).
        contract: the model's `ModelContract` (which prediction columns).
        audit: the audit sample's `Pick`s (see `ScoreResult.audit`).
        fields: the leading columns, `Pick` attributes: `PICK_FIELDS`, or
            `STREAM_PICK_FIELDS` for a stream.
    """
    task = task_fields(contract)
    extra = AUDIT_FIELDS if any(pick.role for pick in (*picks, *audit)) else ()
    attributes = tuple(fields) + tuple(attribute for _, attribute in task) + extra
    rows = [[getattr(pick, name) for name in attributes]
            for pick in (*picks, *(pick for pick in audit if pick.role == "audit"))]
    fields = tuple(fields) + tuple(column for column, _ in task) + extra
    _write(path, _format_rows(output_format(path), fields, rows, True))


def write_errors(path, errors):
    """Writes skipped items atomically as CSV (a header only when none).

    Args:
        path: the errors path.
        errors: `SkippedItem`s.
    """
    rows = [[error.index, error.item, error.error] for error in errors]
    _write(path, _format_rows("csv", ERROR_FIELDS, rows, True))


def score_rows(pool, indices, loss, columns, contract):
    """Rows for a `ScoreStream`, one per scored item.

    Args:
        pool: the pool (for item ids).
        indices: pool indices of the items.
        loss: their predicted losses.
        columns: their task columns (see `predictions.task_columns`).
        contract: the model's `ModelContract`.

    Returns:
        A list of rows.
    """
    keys = [key for _, key in task_fields(contract)]
    rows = []
    for row, (index, value) in enumerate(zip(indices.tolist(), loss.tolist())):
        prediction = describe(columns, row, contract)
        rows.append([index, pool.item_id(index), value, math.isnan(value),
                     *(prediction.get(key) for key in keys)])
    return rows


def _write(path, text):
    """Writes `text` through the one atomic writer; OSError -> OutputError."""
    try:
        atomic.write_text(path, text)
    except OSError as error:
        raise OutputError(f"Expected to write {os.fspath(path)!r}. Received: "
                          f"{error}") from error


class ScoreStream:
    """Appends every scored item to `<path>.partial`; `finish()` renames it.

    Args:
        path: the final path (`.csv` or `.jsonl`).
        contract: the model's `ModelContract` (which prediction columns).
        resume_at: byte size to truncate the partial file to when resuming,
            or None to start a new file.

    Raises:
        OutputError: bad extension, nothing to resume from, or the file cannot
            be written (every method raises it for an `OSError`).
    """

    def __init__(self, path, contract, resume_at=None):
        self.path = os.fspath(path)
        self.format = output_format(self.path)
        self.fields = SCORE_FIELDS + tuple(
            column for column, _ in task_fields(contract)
        )
        self.partial = self.path + ".partial"
        self._stream = None
        with self._writing(self.partial):
            if resume_at is None:
                self._stream = open(self.partial, "wb")
                self._stream.write(_format_rows(self.format, self.fields, [], True)
                                   .encode("utf-8"))
                return
            if not os.path.exists(self.partial) and os.path.exists(self.path):
                os.replace(self.path, self.partial)  # Killed right after finishing.
            size = os.path.getsize(self.partial) if os.path.exists(self.partial) \
                else -1
            if size < resume_at:
                raise OutputError(
                    f"Expected {self.partial!r} of at least {resume_at} bytes to "
                    "resume the every-score file. Received a missing or shorter "
                    "file; rerun without --resume."
                )
            self._stream = open(self.partial, "r+b")
            self._stream.truncate(resume_at)
            self._stream.seek(resume_at)

    def write(self, rows):
        """Appends rows of `score_rows` values."""
        with self._writing(self.partial):
            self._stream.write(
                _format_rows(self.format, self.fields, rows, False).encode("utf-8")
            )

    def offset(self):
        """Flushes to disk and returns the file size (saved in checkpoints)."""
        with self._writing(self.partial):
            self._stream.flush()
            os.fsync(self._stream.fileno())
            return self._stream.tell()

    def finish(self):
        """Closes the stream and moves it to its final path."""
        self.offset()
        with self._writing(self.path):
            self._stream.close()
            os.replace(self.partial, self.path)

    def close(self):
        """Closes the stream without finishing (after an error)."""
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError:  # Already failing; the first error is the one shown.
                pass

    @staticmethod
    @contextlib.contextmanager
    def _writing(path):
        try:
            yield
        except OSError as error:
            raise OutputError(
                f"Expected to write the every-score file {path!r}. Received: {error}"
            ) from error


def _format_rows(format_name, fields, rows, header):
    if format_name == "jsonl":
        return "".join(
            json.dumps(dict(zip(fields, map(_json_value, row)))) + "\n" for row in rows
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(fields)
    writer.writerows([_csv_value(value) for value in row] for row in rows)
    return buffer.getvalue()


def _json_value(value):
    """JSON has no NaN or infinity: they become null (for a NaN loss the
    `nan` column says why; an infinite threshold means none was set yet)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_value(element) for element in value]
    return value


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value
