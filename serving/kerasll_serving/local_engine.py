"""The in-process engine: decode ahead on threads, infer, keep a top-K.

A small thread pool reads and decodes the next batches while onnxruntime runs
the current one (both release the GIL). At most `decode_workers + 1` batches
are in flight, so memory does not grow with the pool. Batch `b` always covers
items `[b * batch_size, (b + 1) * batch_size)`, which is what makes a
checkpoint's "next batch" meaningful.
"""

import collections
import concurrent.futures
import logging
import time

import numpy as np

from kerasll_serving.output import ScoreStream, score_rows
from kerasll_serving.predictions import task_columns
from kerasll_serving.progress import Progress
from kerasll_serving.results import EngineOutput
from kerasll_serving.topk import TopK

logger = logging.getLogger(__name__)


def run_local(model, pool, k, *, batch_size, decode_workers, checkpoint=None,
              resume=False, checkpoint_every=10, all_scores=None, progress=None,
              audit=None):
    """Scores a pool in this process.

    Args:
        model: the `ScoringModel`.
        pool: an opened pool (see `sources.open_pool`).
        k: how many picks to keep.
        batch_size: items per inference call.
        decode_workers: threads that read/decode ahead.
        checkpoint: a `Checkpoint` to save progress to, or None.
        resume: continue from `checkpoint` when it exists.
        checkpoint_every: save the checkpoint every this many batches.
        all_scores: path of the every-score file, or None.
        progress: True/False to force the progress bar on/off; None draws it
            only when stderr is a terminal.
        audit: an empty `AuditSample` to fill (saved in checkpoints), or None.

    Returns:
        An `EngineOutput`.

    Raises:
        CheckpointError: the checkpoint belongs to another run.
    """
    state = _Tally(k, audit)
    start_batch, stream_offset = 0, None
    if checkpoint is not None and resume and checkpoint.exists():
        saved, arrays = checkpoint.load()
        state = _Tally.from_checkpoint(k, audit, saved, arrays)
        start_batch, stream_offset = saved["next_batch"], saved["all_scores_offset"]
        logger.info("Resuming at batch %d from %s", start_batch, checkpoint.path)
    elif checkpoint is not None:
        if checkpoint.exists() and not resume:
            logger.info("Starting over; replacing the checkpoint %s", checkpoint.path)
        checkpoint.remove()
    stream = None
    if all_scores is not None:
        stream = ScoreStream(all_scores, model.contract, stream_offset)
    total_batches = -(-len(pool) // batch_size)
    bar = Progress(len(pool), done=min(len(pool), start_batch * batch_size),
                   enabled=progress)
    workers = 1 if pool.sequential else decode_workers
    started = time.monotonic()
    executor = concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix="kerasll-decode"
    )
    try:
        pending = collections.deque()
        submitted = start_batch
        for batch_number in range(start_batch, total_batches):
            while submitted < total_batches and len(pending) <= workers:
                indices = np.arange(submitted * batch_size,
                                    min(len(pool), (submitted + 1) * batch_size))
                pending.append(executor.submit(pool.read, indices))
                submitted += 1
            batch = pending.popleft().result()
            state.add(model, pool, batch, stream)
            bar.update(len(batch.indices) + len(batch.errors))
            done = batch_number + 1
            if checkpoint is not None and done % checkpoint_every == 0 \
                    and done < total_batches:
                offset = None if stream is None else stream.offset()
                checkpoint.save(state.progress(done, offset), state.arrays())
        if stream is not None:
            stream.finish()
    except BaseException:
        if stream is not None:
            stream.close()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return EngineOutput(
        top=state.top,
        audit=state.audit,
        scored=state.scored,
        nan=state.nan,
        errors=state.errors,
        provider=model.provider,
        seconds=time.monotonic() - started,
        scored_now=state.scored_now,
        batches_run=total_batches - start_batch,
        resumed_from=start_batch,
    )


class _Tally:
    """The running top-K, audit sample and counts of one run."""

    def __init__(self, k, audit=None):
        self.top = TopK(k)
        self.audit = audit
        self.scored = 0
        self.nan = 0
        self.errors = []
        self.scored_now = 0

    @classmethod
    def from_checkpoint(cls, k, audit, saved, arrays):
        tally = cls(k, audit)
        tally.top = TopK.from_state(k, arrays)
        if audit is not None:
            audit.load_state(arrays)
        tally.scored, tally.nan = saved["scored"], saved["nan"]
        tally.errors = [tuple(error) for error in saved["errors"]]
        return tally

    def add(self, model, pool, batch, stream):
        self.errors.extend(batch.errors)
        if batch.x is None:
            return
        loss, task_output = model.run(batch.x)
        columns = task_columns(task_output, model.contract)
        self.top.push(batch.indices, loss, columns)
        if self.audit is not None:
            self.audit.push(batch.indices, loss, columns)
        self.scored += len(loss)
        self.scored_now += len(loss)
        self.nan += int(np.isnan(loss).sum())
        if stream is not None:
            stream.write(score_rows(pool, batch.indices, loss, columns, model.contract))

    def arrays(self):
        """The running top-K and audit sample as checkpoint arrays."""
        audit = {} if self.audit is None else self.audit.state()
        return {**self.top.state(), **audit}

    def progress(self, next_batch, stream_offset):
        return {
            "next_batch": next_batch,
            "scored": self.scored,
            "nan": self.nan,
            "errors": [list(error) for error in self.errors],
            "all_scores_offset": stream_offset,
        }
