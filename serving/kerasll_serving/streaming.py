"""`kerasll-score --stream`: select from image files as they arrive.

Arrivals come from a folder, polled for new image files (a file is taken
once its size and modification time are the same on two polls in a row, so
it is never read half-written; files are taken oldest first), or from paths
on standard input, one per line. Each batch of arrivals is scored and every
item is decided by a `StreamSelector` in arrival order. A folder run stops
after `idle_timeout` seconds without a new file; a stdin run at the end of
its input.

Every decision is appended to a journal, `<out>.journal.jsonl`, and synced
to disk (`fsync`) once per batch, before the next batch is read. A run
killed at any point (kill -9 included) and restarted with `resume=True`
replays the journal, which rebuilds the selector's exact state (window,
threshold, audit sample), skips every item the journal holds, and goes on:
no item is decided twice, no journaled pick is lost, and a batch that was
scored but not yet journaled is scored again and decided as it would have
been. At the end the picks file is written (atomically) from the journal:
every pick so far, then the audit sample. The journal stays: it is the
stream's record, and a later `resume=True` run continues the same stream.
Memory: the selector's is constant; the run also holds the set of item ids
seen (to tell new files from old) and, at the end, the picks.
"""

import contextlib
import dataclasses
import json
import math
import os
import queue
import sys
import threading
import time
from numbers import Real

import numpy as np

from kerasll_serving import atomic
from kerasll_serving.audit import AUDIT, BOTH, PICK
from kerasll_serving.errors import CheckpointError, OutputError, PoolError, ServingError
from kerasll_serving.locks import output_locks
from kerasll_serving.output import (
    STREAM_PICK_FIELDS,
    check_not_inputs,
    errors_path,
    output_format,
    write_errors,
    write_picks,
)
from kerasll_serving.predictions import describe, task_columns
from kerasll_serving.results import Pick, SkippedItem, StreamResult
from kerasll_serving.sources import IMAGE_EXTENSIONS, ImagePool
from kerasll_serving.validation import Interval, validate_arguments

JOURNAL_SUFFIX = ".journal.jsonl"
JOURNAL_FORMAT = 1
STDIN = "-"
# Journal records replayed per selector call (the audit sample is batched).
_REPLAY_BATCH = 1024
PARAMETER_CONSTRAINTS = {
    "poll": [Interval(Real, 0, None, closed="neither")],
    "idle_timeout": [Interval(Real, 0, None, closed="left")],
    "resume": ["boolean"],
}


def journal_path(out):
    """Returns the journal of a stream writing picks to `out`."""
    return os.fspath(out) + JOURNAL_SUFFIX


def run_stream(scorer, source, selector, *, out, resume=False, poll=1.0,
               idle_timeout=60.0, input_stream=None):
    """Scores arrivals and keeps what the selector keeps (see the module).

    Args:
        scorer: the `PoolScorer` (model, batch size).
        source: a folder to watch, or "-" for paths on `input_stream`.
        selector: a fresh `StreamSelector`.
        out: the picks file (`.csv` or `.jsonl`); the journal and the
            errors file live beside it.
        resume: continue the stream recorded in the journal.
        poll: seconds between two looks at the folder.
        idle_timeout: (folder) stop after this many seconds without a new
            file.
        input_stream: the text stream of paths for "-" (default stdin).

    Returns:
        A `StreamResult`.

    Raises:
        PoolError: `source` is neither a folder nor "-", or the model takes
            no images.
        CheckpointError: a journal exists without `resume`, or belongs to
            another model, source or selector.
        OutputError: `out` is unusable or another run writes it.
        ServingError: other invalid arguments.
    """
    checked = validate_arguments(
        PARAMETER_CONSTRAINTS,
        {"poll": poll, "idle_timeout": idle_timeout, "resume": resume},
        ServingError,
    )
    source = os.fspath(source)
    if source != STDIN and not os.path.isdir(source):
        raise PoolError(f"Expected a folder to watch or '-' for paths on stdin. "
                        f"Received: {source!r}")
    output_format(out)
    check_not_inputs({"out": out}, {"model": scorer.model.path})
    if source == STDIN:
        arrivals = LineArrivals(input_stream)
        identity = {"path": STDIN}
    else:
        arrivals = FolderArrivals(source, checked["poll"], checked["idle_timeout"])
        identity = {"path": os.path.abspath(source)}
    scorer.adapter.check_images(identity["path"])
    journal = Journal(journal_path(out), {
        "model": scorer.model.fingerprint(),
        "source": identity["path"],
        "selector": selector.config(),
    })
    with output_locks((out,)):
        return _Stream(scorer, selector, journal, out).run(
            arrivals, identity, checked["resume"])


class _Stream:
    """One stream run: replay, score arrivals, journal, write the picks."""

    def __init__(self, scorer, selector, journal, out):
        self.scorer, self.selector, self.journal = scorer, selector, journal
        self.out = os.fspath(out)
        self.seen = set()
        self.counts = {"items": 0, "skipped": 0, "nan": 0}

    def run(self, arrivals, identity, resume):
        started = time.monotonic()
        replayed = self._replay() if resume and self.journal.exists() else 0
        if not replayed:
            self.journal.create(exist_ok=resume)
        with self.journal.appending():
            for paths in arrivals.batches(self.seen, self.scorer.batch_size):
                self._score(paths, identity)
        if not self.counts["items"]:
            os.remove(self.journal.path)  # Ours, and it holds no decision.
            raise PoolError("Expected at least one image to arrive. Received none "
                            "before the idle timeout (or the end of the input).")
        return self._finish(replayed, time.monotonic() - started)

    def _replay(self):
        """Feeds the journal back through the selector; returns its length."""
        pending = []
        for record in self.journal.records():
            self.seen.add(record["item"])
            self.counts["items"] += 1
            if "error" in record:
                self.counts["skipped"] += 1
                continue
            pending.append(record)
            if len(pending) == _REPLAY_BATCH:
                self._offer_again(pending)
                pending = []
        self._offer_again(pending)
        return self.counts["items"]

    def _offer_again(self, records):
        if not records:
            return
        losses = [_loss(record) for record in records]
        self.counts["nan"] += sum(math.isnan(loss) for loss in losses)
        decisions = self.selector.offer([record["index"] for record in records],
                                        losses, [record["time"] for record in records],
                                        records)
        for record, decision in zip(records, decisions):
            if decision.kept != record["kept"]:
                raise CheckpointError(
                    f"Expected the journal {self.journal.path!r} to replay to the "
                    f"same decisions. Received item {record['item']!r} journaled as "
                    f"kept={record['kept']} but decided kept={decision.kept} now; "
                    "the journal was edited or written by another version."
                )

    def _score(self, paths, identity):
        """Reads, scores, decides and journals one batch of arrivals."""
        first = self.counts["items"]
        pool = ImagePool(paths, paths, identity, self.scorer.adapter)
        batch = pool.read(np.arange(len(paths)))
        now = time.time()
        records = {position: {"index": first + position, "item": paths[position],
                              "time": now, "error": reason}
                   for position, reason in batch.errors}
        if batch.x is not None:
            loss, task_output = self.scorer.model.run(batch.x)
            columns = task_columns(task_output, self.scorer.contract)
            scored = []
            for row, position in enumerate(batch.indices.tolist()):
                value = float(loss[row])
                scored.append({"index": first + position, "item": paths[position],
                               "time": now, "predicted_loss": value,
                               "nan": math.isnan(value),
                               **describe(columns, row, self.scorer.contract)})
            decisions = self.selector.offer([r["index"] for r in scored],
                                            loss, now, scored)
            for record, decision in zip(scored, decisions):
                record.update(kept=decision.kept, threshold=decision.threshold,
                              percentile=decision.percentile)
                records[record["index"] - first] = record
            self.counts["nan"] += int(np.isnan(loss).sum())
        ordered = [records[position] for position in sorted(records)]
        self.journal.append(ordered)
        self.seen.update(paths)
        self.counts["items"] += len(paths)
        self.counts["skipped"] += len(batch.errors)

    def _finish(self, replayed, seconds):
        contract = self.scorer.contract
        audit_index, keys, _, audit_records = self.selector.audit_sample()
        keys = dict(zip(audit_index.tolist(), keys.tolist()))
        audited = self.selector.audit.size > 0
        picks, errors = [], []
        for record in self.journal.records():
            if "error" in record:
                errors.append(SkippedItem(record["index"], record["item"],
                                          record["error"]))
            elif record["kept"]:
                picks.append(_pick(record, keys, audited, PICK))
        audit = [_pick(record, keys, audited, AUDIT) for record in audit_records]
        write_errors(errors_path(self.out), errors)
        write_picks(self.out, picks, contract, audit, fields=STREAM_PICK_FIELDS)
        return StreamResult(
            picks=picks, audit=audit, seen=self.counts["items"],
            skipped=self.counts["skipped"], nan=self.counts["nan"],
            kept=len(picks), rate=self.selector.current_rate,
            threshold=self.selector.threshold, replayed=replayed,
            provider=self.scorer.provider, seconds=seconds, out=self.out,
            journal=self.journal.path, errors=errors,
        )


def _loss(record):
    value = record.get("predicted_loss")
    return math.nan if value is None else float(value)


def _pick(record, keys, audited, role):
    """A journal record as a `Pick` (role "pick+audit" when in both)."""
    key = keys.get(record["index"])
    if audited and key is not None and (role == PICK or record["kept"]):
        role = BOTH
    return Pick(rank=None, item=record["item"], index=record["index"],
                predicted_loss=_loss(record), nan=bool(record["nan"]),
                prediction=record.get("prediction"),
                confidence=record.get("confidence"),
                detections=record.get("detections"),
                role=role if audited else None, audit_key=key,
                percentile=record.get("percentile"),
                threshold=record.get("threshold"))


class Journal:
    """The append-only record of a stream's decisions, one JSON line each.

    The first line holds the format version and the run's fingerprint (model
    hash, source, selector parameters); a restart must match it.

    Args:
        path: the journal file (see `journal_path`).
        fingerprint: JSON-able dict identifying the stream.
    """

    def __init__(self, path, fingerprint):
        self.path = os.fspath(path)
        self.header = json.loads(json.dumps({"journal_format": JOURNAL_FORMAT,
                                             "fingerprint": fingerprint}))
        self._stream = None

    def exists(self):
        """Whether a journal file is present."""
        return os.path.exists(self.path)

    def create(self, exist_ok=False):
        """Starts a new journal holding only the header.

        Args:
            exist_ok: replace an existing journal that holds no decision
                (one a killed run left before deciding anything).

        Raises:
            CheckpointError: a journal exists (and `exist_ok` is False).
        """
        if self.exists() and not exist_ok:
            raise CheckpointError(
                f"Expected no stream journal at {self.path!r} without --resume. "
                "Received an existing one: pass --resume to continue that stream, "
                "or choose another --out."
            )
        try:
            atomic.write_text(self.path, json.dumps(self.header) + "\n")
        except OSError as error:
            raise OutputError(f"Expected to write {self.path!r}. Received: "
                              f"{error}") from error

    def records(self):
        """Yields the journaled decisions, checking the header first; a last
        line cut short by a kill is dropped (and truncated away).

        Yields:
            One dict per item, in arrival order.

        Raises:
            CheckpointError: unreadable, or written for another run.
        """
        try:
            with open(self.path, "rb") as stream:
                header = _parse(stream.readline(), self.path, 1)
                self._check(header)
                good = stream.tell()
                for number, line in enumerate(stream, 2):
                    if not line.endswith(b"\n"):
                        break  # Cut short by a kill: never synced as a batch.
                    record = _parse(line, self.path, number)
                    good += len(line)
                    yield record
            if os.path.getsize(self.path) > good:
                os.truncate(self.path, good)
        except OSError as error:
            raise CheckpointError(f"Expected a readable journal at {self.path!r}. "
                                  f"Received: {error}") from error

    @contextlib.contextmanager
    def appending(self):
        """Opens the journal for `append` for the duration of the block."""
        try:
            self._stream = open(self.path, "ab")
        except OSError as error:
            raise OutputError(f"Expected to append to {self.path!r}. Received: "
                              f"{error}") from error
        try:
            yield self
        finally:
            self._stream.close()
            self._stream = None

    def append(self, records):
        """Appends records and syncs them to disk.

        Args:
            records: JSON-able dicts (numpy scalars allowed).

        Raises:
            OutputError: the journal cannot be written.
        """
        text = "".join(json.dumps(record, default=_plain) + "\n" for record in records)
        try:
            self._stream.write(text.encode("utf-8"))
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise OutputError(f"Expected to append to {self.path!r}. Received: "
                              f"{error}") from error

    def _check(self, header):
        if header != self.header:
            different = sorted(
                key for key in set(header.get("fingerprint", {}))
                | set(self.header["fingerprint"])
                if header.get("fingerprint", {}).get(key)
                != self.header["fingerprint"].get(key)
            ) or ["journal_format"]
            raise CheckpointError(
                f"Expected the journal {self.path!r} to belong to this stream. "
                f"Received one written for a different {', '.join(different)}; "
                "choose another --out to start a new stream."
            )


def _parse(line, path, number):
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except ValueError as error:
        raise CheckpointError(
            f"Expected a kerasll stream journal at {path!r}. Received line "
            f"{number}: {error}"
        ) from None
    return record


def _plain(value):
    """JSON for numpy scalars (class indices, confidences)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@dataclasses.dataclass
class FolderArrivals:
    """New image files of a folder, in arrival order, batch by batch.

    Args:
        root: the folder (walked recursively; names starting with "." are
            skipped, so a writer can use a dot-name and rename when done).
        poll: seconds between two looks.
        idle_timeout: stop after this many seconds without a new file.
        clock: monotonic clock (seconds).
        sleep: how to wait `poll` seconds.
    """

    root: str
    poll: float
    idle_timeout: float
    clock: object = time.monotonic
    sleep: object = time.sleep

    def batches(self, seen, batch_size):
        """Yields lists of at most `batch_size` settled, unseen file paths.

        Args:
            seen: item ids already decided (updated by the caller).
            batch_size: the largest batch.

        Yields:
            Lists of paths, oldest modification time first (then by path).
        """
        previous, last_new = {}, self.clock()
        while True:
            current = {}
            for path in self._images():
                if path not in seen:
                    with contextlib.suppress(OSError):  # Deleted meanwhile.
                        status = os.stat(path)
                        current[path] = (status.st_size, status.st_mtime_ns)
            if set(current) - set(previous):
                last_new = self.clock()
            ready = sorted((stamp[1], path) for path, stamp in current.items()
                           if previous.get(path) == stamp)
            previous = {path: stamp for path, stamp in current.items()
                        if previous.get(path) != stamp}
            for start in range(0, len(ready), batch_size):
                yield [path for _, path in ready[start:start + batch_size]]
            if ready:
                last_new = self.clock()
            elif not previous and self.clock() - last_new >= self.idle_timeout:
                return
            self.sleep(self.poll)

    def _images(self):
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories[:] = sorted(d for d in subdirectories
                                       if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                    yield os.path.join(directory, name)


class LineArrivals:
    """Image paths read from a text stream (stdin), one per line, until its end.

    A reader thread queues the lines, so a batch holds what has arrived
    (up to the batch size) and is scored without waiting for a full one.

    Args:
        stream: the text stream; None for `sys.stdin`.
    """

    def __init__(self, stream=None):
        self.stream = sys.stdin if stream is None else stream

    def batches(self, seen, batch_size):
        """Yields lists of at most `batch_size` unseen paths, as they come.

        Args:
            seen: item ids already decided (updated by the caller).
            batch_size: the largest batch.

        Yields:
            Lists of paths in input order (blank and repeated lines skipped).
        """
        lines = queue.Queue()
        threading.Thread(target=self._read, args=(lines,), daemon=True).start()
        finished = False
        while not finished:
            line = lines.get()
            batch = []
            while True:
                if line is None:
                    finished = True
                    break
                path = line.strip()
                if path and path not in seen and path not in batch:
                    batch.append(path)
                if len(batch) == batch_size:
                    break
                try:
                    line = lines.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield batch

    def _read(self, lines):
        for line in self.stream:
            lines.put(line)
        lines.put(None)
