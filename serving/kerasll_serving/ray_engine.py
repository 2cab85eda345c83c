"""The Ray engine: Ray Data reads the pool, ONNX Runtime actors score it.

Pipeline: `ray.data.range(len(pool))` -> read tasks (`pool.read`: rows of the
memory-mapped array, or decoded images) -> a pool of scoring actors (each holds
one onnxruntime session; `num_gpus=1` each when the cluster has GPUs) that
return, per batch, only that batch's top-K (and its audit candidates, see
`audit`) -> the driver merges those into the global top-K and audit sample
with the same `TopK` and `AuditSample` as the local engine, so both engines
pick the same items. (Without GPUs, Ray may fuse the read tasks into the actors.)

Needs the `ray` extra: `pip install "kerasll-serving[ray]"`. Every Ray worker
must be able to read the pool path (use shared storage on a multi-node
cluster); the model itself is shipped from the driver.
"""

import contextlib
import io
import os
import tempfile
import time

import numpy as np

from kerasll_serving import errors
from kerasll_serving.audit import AuditSample
from kerasll_serving.contract import ContractError
from kerasll_serving.errors import (
    EngineError,
    MissingDependencyError,
    PoolError,
    ServingError,
    first_line,
)
from kerasll_serving.model import ScoringModel
from kerasll_serving.output import ScoreStream, score_rows
from kerasll_serving.predictions import task_columns
from kerasll_serving.progress import Progress
from kerasll_serving.results import EngineOutput
from kerasll_serving.topk import TopK, select_top

INSTALL_HINT = 'pip install "kerasll-serving[ray]"'
# Typed errors a scoring actor reports back by name.
_ERROR_TYPES = {
    error_type.__name__: error_type
    for error_type in (ContractError, *vars(errors).values())
    if isinstance(error_type, type) and issubclass(error_type, ServingError)
}


def run_ray(scorer, pool, k, *, address=None, num_actors=None, all_scores=None,
            progress=None, audit=None):
    """Scores a pool on a Ray cluster.

    Args:
        scorer: the `PoolScorer` (model path, providers, batch size, threads).
        pool: an opened pool (see `sources.open_pool`).
        k: how many picks to keep.
        address: cluster address ("auto", "ray://host:10001"); None joins the
            Ray instance already initialised in this process, or starts a
            local one (shut down again at the end).
        num_actors: scoring actors; None means one per cluster GPU, or one.
        all_scores: path of the every-score file, or None.
        progress: see `local_engine.run_local`.
        audit: an empty `AuditSample` to fill, or None. Each actor also hands
            on its batch's audit candidates (smallest keys); the driver keeps
            the smallest of all, which is the single-pass sample.

    Returns:
        An `EngineOutput`.

    Raises:
        MissingDependencyError: Ray is not installed.
        EngineError: Ray cannot start, or the cluster cannot be reached.
        PoolError: the pool is a compressed `.npz` (it cannot be read in blocks).
        ServingError: also one raised inside a scoring actor (e.g. a
            `ProviderError` on a node without working GPU libraries).
    """
    ray = _import_ray()
    if pool.sequential:
        raise PoolError(
            "Expected a pool Ray can read in blocks. Received a compressed .npz "
            "(np.savez_compressed), which only streams forward; save it with "
            "np.save or np.savez, or use --engine local."
        )
    started_here = not ray.is_initialized()
    try:
        if started_here and address is None:
            ray.init(include_dashboard=False, log_to_driver=False)  # Local instance.
        elif started_here:
            ray.init(address=address)  # Shutting down then only disconnects.
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EngineError(
            f"Expected a Ray cluster to join at address={address!r}. Received: "
            f"{type(error).__name__}: {first_line(error)}"
        ) from error
    try:
        return _run(ray, scorer, pool, k, num_actors, all_scores, progress, audit)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray, scorer, pool, k, num_actors, all_scores, progress, audit):
    top, tally = TopK(k), {"scored": 0, "nan": 0, "batches": 0}
    errors, providers = [], set()
    stream = None if all_scores is None else ScoreStream(all_scores, scorer.contract)
    bar = Progress(len(pool), enabled=progress)
    started = time.monotonic()
    try:
        with _data_context(ray, preserve_order=stream is not None):
            dataset = _dataset(ray, scorer, pool, k, num_actors, stream is not None,
                               audit)
            for row in dataset.iter_rows():
                part = _unpack(row["result"])
                top.push(part["index"], part["loss"], part["columns"])
                if audit is not None:
                    audit.push(part["index"], part["loss"], part["columns"])
                errors.extend(part["errors"])
                tally["scored"] += part["scored"]
                tally["nan"] += part["nan"]
                tally["batches"] += 1
                providers.add(part["provider"])
                if stream is not None:
                    stream.write(score_rows(pool, part["index"], part["loss"],
                                            part["columns"], scorer.contract))
                bar.update(part["scored"] + len(part["errors"]))
        if stream is not None:
            stream.finish()
    except BaseException:
        if stream is not None:
            stream.close()
        raise
    finally:
        bar.close()
    return EngineOutput(
        top=top, audit=audit, scored=tally["scored"], nan=tally["nan"], errors=errors,
        provider=", ".join(sorted(providers)) or scorer.provider,
        seconds=time.monotonic() - started, scored_now=tally["scored"],
        batches_run=tally["batches"],
    )


def _dataset(ray, scorer, pool, k, num_actors, keep_all, audit):
    """The lazy pipeline: ids -> read tasks -> scoring actors."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    threads = scorer.threads or 1
    with open(scorer.model.path, "rb") as stream:
        model_bytes = stream.read()
    # One block per batch, so actors see the local engine's batches.
    blocks = -(-len(pool) // scorer.batch_size)
    return ray.data.range(len(pool), override_num_blocks=blocks).map_batches(
        _read_batch, fn_kwargs={"pool": pool}, batch_size=scorer.batch_size,
        batch_format="numpy",
    ).map_batches(
        BatchScorer,
        fn_constructor_kwargs={
            "model_bytes": model_bytes, "providers": scorer.providers,
            "threads": threads, "k": k, "keep_all": keep_all,
            "audit": None if audit is None else (audit.size, audit.seed),
        },
        batch_size=scorer.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_actors or max(gpus, 1)),
        num_gpus=1 if gpus else 0,
        num_cpus=threads,
    )


def _read_batch(batch, pool):
    """Read stage (Ray tasks): one batch of ids -> prepared items + errors."""
    indices = np.sort(batch["id"].astype(np.int64))
    read = pool.read(indices)
    ok = np.isin(indices, read.indices)
    if read.x is not None:
        x = np.zeros((len(indices),) + read.x.shape[1:], dtype=read.x.dtype)
        x[ok] = read.x
    else:
        shape = (len(indices),) + pool.adapter.decoded_shape()
        x = np.zeros(shape, dtype=pool.adapter.dtype)
    reasons = dict(read.errors)
    error = np.array([reasons.get(int(index), "") for index in indices], dtype=object)
    return {"index": indices, "x": x, "error": error.astype(str)}


class BatchScorer:
    """Scoring actor: one onnxruntime session, one batch's top-K (and audit
    candidates) per call.

    Args:
        model_bytes: the `.onnx` file's bytes (shipped from the driver).
        providers: as for `PoolScorer`.
        threads: onnxruntime intra-op threads.
        k: how many items of each batch to return.
        keep_all: return every item (for the every-score file).
        audit: `(size, seed)` of the audit sample, or None.
    """

    def __init__(self, model_bytes, providers, threads, k, keep_all, audit=None):
        self.k = k
        self.keep_all = keep_all
        self.audit = None if audit is None else AuditSample(*audit)
        self.failure = None
        handle, path = tempfile.mkstemp(suffix=".onnx")
        with os.fdopen(handle, "wb") as stream:
            stream.write(model_bytes)
        try:
            self.model = ScoringModel(path, providers=providers, threads=threads)
        except ServingError as error:
            self.failure = error  # Reported by __call__, so the driver re-raises it.
        finally:
            os.remove(path)

    def __call__(self, batch):
        try:
            if self.failure is not None:
                raise self.failure
            part = self._score(batch)
        except ServingError as error:
            part = {"failure_type": np.array(type(error).__name__),
                    "failure_message": np.array(str(error))}
        return {"result": np.array([_pack(part)], dtype=object)}

    def _score(self, batch):
        ok = batch["error"] == ""
        index = batch["index"][ok]
        loss, columns = np.empty(0), {}
        if ok.any():
            loss, task_output = self.model.run(np.ascontiguousarray(batch["x"][ok]))
            columns = task_columns(task_output, self.model.contract)
        if self.keep_all:
            keep = np.arange(len(loss))
        else:
            keep = select_top(loss, index, self.k)
            if self.audit is not None:
                keep = np.union1d(keep, self.audit.candidates(index))
        part = {
            "index": index[keep],
            "loss": loss[keep],
            "error_index": batch["index"][~ok],
            "error_reason": batch["error"][~ok].astype(str),
            "counts": np.array([len(loss), int(np.isnan(loss).sum())]),
            "provider": np.array(self.model.provider),
        }
        part.update({"column:" + name: values[keep]
                     for name, values in columns.items()})
        return part


def _pack(arrays):
    """A batch's results as `.npz` bytes: one opaque, schema-free Ray cell."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if "failure_type" in arrays:
        raise _ERROR_TYPES[str(arrays["failure_type"])](str(arrays["failure_message"]))
    scored, nan = (int(count) for count in arrays["counts"])
    return {
        "index": arrays["index"].astype(np.int64),
        "loss": arrays["loss"].astype(np.float64),
        "columns": {name[len("column:"):]: values for name, values in arrays.items()
                    if name.startswith("column:")},
        "errors": list(zip(arrays["error_index"].tolist(),
                           arrays["error_reason"].tolist())),
        "scored": scored,
        "nan": nan,
        "provider": str(arrays["provider"]),
    }


@contextlib.contextmanager
def _data_context(ray, preserve_order):
    """Sets Ray Data options for this run only, restoring them afterwards."""
    context = ray.data.DataContext.get_current()
    saved = (context.enable_progress_bars, context.print_on_execution_start,
             context.execution_options.preserve_order)
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.preserve_order = preserve_order
    try:
        yield
    finally:
        (context.enable_progress_bars, context.print_on_execution_start,
         context.execution_options.preserve_order) = saved


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise MissingDependencyError(
            f"Expected Ray for engine='ray'. Received: {error}. Install it with "
            f"{INSTALL_HINT}."
        ) from error
    return ray
