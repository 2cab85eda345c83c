"""`PoolScorer`: score an unlabeled pool with an exported model, keep the top-K
(and, on request, a uniform random audit sample beside it)."""

import math
import os
import warnings
from numbers import Integral

from kerasll_serving.audit import AUDIT, BOTH, PICK, AuditSample
from kerasll_serving.checkpoint import Checkpoint, checkpoint_path
from kerasll_serving.errors import OutputError, PoolError, ServingError
from kerasll_serving.gallery import check_picks_image, write_picks_image
from kerasll_serving.local_engine import run_local
from kerasll_serving.locks import output_locks
from kerasll_serving.model import ScoringModel
from kerasll_serving.output import (
    PICK_FIELDS,
    check_not_inputs,
    errors_path,
    output_format,
    same_file,
    write_errors,
    write_picks,
)
from kerasll_serving.predictions import describe
from kerasll_serving.preprocess import InputAdapter
from kerasll_serving.results import Pick, ScoreResult, SkippedItem
from kerasll_serving.sources import open_pool
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

ENGINES = ("local", "ray")
_POSITIVE = [Interval(Integral, 1, None, closed="left")]


class PoolScorer:
    """Scores pools with one exported model.

    Args:
        model_path: the `.onnx` file exported by kerasll (with its metadata).
        providers: "auto" (a GPU provider that actually loads, else the CPU),
            "cpu", "cuda", "tensorrt", or an ONNX Runtime provider name.
        batch_size: items per inference call.
        threads: onnxruntime intra-op threads; None lets it decide.
        decode_workers: threads reading/decoding the next batches.

    Attributes:
        model: the `ScoringModel` (session, contract, provider).

    Raises:
        ModelError: the model file is missing or not loadable.
        ProviderError: a requested provider is missing or fails to load.
        ContractError: the model carries no (or bad) kerasll metadata.
        ServingError: an argument outside `parameter_constraints`.
    """

    parameter_constraints = {
        "batch_size": _POSITIVE,
        "decode_workers": _POSITIVE,
        "k": _POSITIVE,
        "checkpoint_every": _POSITIVE,
        "resume": ["boolean"],
        "progress": ["boolean", None],
        "engine": [StrOptions(ENGINES)],
        "ray_address": [str, None],
        "num_actors": [*_POSITIVE, None],
    }

    def __init__(self, model_path, providers="auto", batch_size=256, threads=None,
                 decode_workers=2):
        checked = validate_arguments(
            self.parameter_constraints,
            {"batch_size": batch_size, "decode_workers": decode_workers},
            ServingError,
        )
        self.batch_size = checked["batch_size"]
        self.decode_workers = checked["decode_workers"]
        self.threads = threads
        self.providers = providers
        self.model = ScoringModel(model_path, providers=providers, threads=threads)
        self.adapter = InputAdapter(self.model.contract)

    @property
    def provider(self):
        """The ONNX Runtime provider running the model."""
        return self.model.provider

    @property
    def contract(self):
        """The model's `ModelContract`."""
        return self.model.contract

    def score(self, pool, k=100, *, out=None, all_scores=None, picks_image=None,
              resume=False, checkpoint_every=10, progress=None, engine="local",
              ray_address=None, num_actors=None, audit=0, seed=0):
        """Scores every item of a pool and returns the K highest predicted losses.

        Args:
            pool: a directory of images (`sources.IMAGE_EXTENSIONS`), a
                `.npy`/`.npz` array or a text file listing image paths.
            k: how many picks to return (all items, with a warning, when the
                pool is smaller).
            out: picks file (`.csv` or `.jsonl`), or None to only return them.
                Skipped items go to `<out>.errors.csv`, the checkpoint to
                `<out>.ckpt.npz`.
            all_scores: also write every item's score here (`.csv`/`.jsonl`).
            picks_image: also draw the picks (the first
                `gallery.MAX_IMAGES`) as a PNG grid here, with a detector's
                boxes (see `gallery`).
            resume: continue from the checkpoint next to `out` (local engine).
            checkpoint_every: save the checkpoint every this many batches.
            progress: True/False forces the progress bar; None draws it only
                when stderr is a terminal.
            engine: "local" or "ray".
            ray_address: Ray cluster to join ("auto", "ray://host:10001"); None
                starts a local Ray instance unless one is running.
            num_actors: Ray scoring actors; None means one per GPU, or one.
            audit: also keep a uniform random sample of this many items of
                the whole pool (0 for none; see `kerasll_serving.audit`),
                written to `out` with the picks and returned as
                `ScoreResult.audit`.
            seed: the audit sample's seed: the same seed and pool give the
                same sample, resumed or on Ray.

        Returns:
            A `ScoreResult`.

        Raises:
            PoolError: the pool is missing, empty, does not fit the model, or
                no item could be read.
            OutputError: an output path is unusable, is the model or the pool
                file, `all_scores` is the picks or errors file, `picks_image`
                lies in the pool directory or the model takes no images, or
                another run is writing an output.
            CheckpointError: `resume` with a checkpoint of another run.
            MissingDependencyError: `engine="ray"` without Ray installed.
            ServingError: other invalid arguments.
        """
        checked = validate_arguments(
            self.parameter_constraints,
            {"k": k, "checkpoint_every": checkpoint_every, "resume": resume,
             "progress": progress, "engine": engine, "ray_address": ray_address,
             "num_actors": num_actors},
            ServingError,
        )
        k, checkpoint_every = checked["k"], checked["checkpoint_every"]
        num_actors = checked["num_actors"]
        check_not_inputs({"out": out, "all_scores": all_scores,
                          "picks_image": picks_image},
                         {"model": self.model.path, "pool": pool})
        for path in (out, all_scores):
            if path is not None:
                output_format(path)
        if picks_image is not None:
            check_picks_image(picks_image, pool, self.contract)
        _check_distinct(out, all_scores)
        if resume and out is None:
            raise ServingError("Expected out= with resume=True: the checkpoint lives "
                               "next to the picks file. Received out=None.")
        if resume and engine == "ray":
            raise ServingError("Expected engine='local' with resume=True. "
                               "Received engine='ray', which does not resume.")
        sample = AuditSample(audit, seed)
        with output_locks((out, all_scores, picks_image)):
            return self._score(pool, k, out, all_scores, picks_image, resume,
                               checkpoint_every, progress, engine, ray_address,
                               num_actors, sample)

    def _score(self, pool, k, out, all_scores, picks_image, resume, checkpoint_every,
               progress, engine, ray_address, num_actors, sample):
        """`score` once its arguments are valid and its outputs are locked."""
        opened = open_pool(pool, self.adapter)
        notes = []
        if k > len(opened):
            notes.append(f"k={k} is larger than the pool ({len(opened)} items); "
                         f"returning all {len(opened)}.")
            warnings.warn(notes[-1], UserWarning, stacklevel=3)
        keep = min(k, len(opened))
        checkpoint = None
        audit = sample if sample.size else None
        if engine == "ray":
            from kerasll_serving.ray_engine import run_ray

            output = run_ray(self, opened, keep, address=ray_address,
                             num_actors=num_actors, all_scores=all_scores,
                             progress=progress, audit=audit)
        else:
            checkpoint = self._checkpoint(out, opened, k, all_scores, audit)
            output = run_local(
                self.model, opened, keep, batch_size=self.batch_size,
                decode_workers=self.decode_workers, checkpoint=checkpoint,
                resume=resume, checkpoint_every=checkpoint_every,
                all_scores=all_scores, progress=progress, audit=audit,
            )
        try:
            result = self._finish(opened, output, out, picks_image, notes, engine)
        except PoolError:  # Nothing could be read: the run is over all the same.
            if checkpoint is not None:
                checkpoint.remove()
            raise
        if checkpoint is not None:
            checkpoint.remove()  # Last: the picks file is complete.
        return result

    def _checkpoint(self, out, pool, k, all_scores, audit):
        if out is None:
            return None
        fingerprint = {
            "model": self.model.fingerprint(),
            "pool": pool.identity(),
            "batch_size": self.batch_size,
            "k": k,
            "all_scores": None if all_scores is None else os.path.abspath(all_scores),
        }
        if audit is not None:  # Absent without one: older checkpoints still match.
            fingerprint.update(audit=audit.size, seed=audit.seed)
        return Checkpoint(checkpoint_path(out), fingerprint)

    def _finish(self, pool, output, out, picks_image, notes, engine):
        errors = [SkippedItem(index, pool.item_id(index), reason)
                  for index, reason in sorted(output.errors)]
        if out is not None:
            write_errors(errors_path(out), errors)
        if output.scored == 0:
            where = f"; see {errors_path(out)}" if out is not None else ""
            raise PoolError(f"Expected at least one readable item. Received a pool "
                            f"of {len(pool)} where every item was skipped{where}.")
        picks, audit = self._picks(pool, output)
        if out is not None:
            reference = self.contract.predicted_loss_quantiles is not None
            write_picks(out, picks, self.contract, audit,
                        fields=PICK_FIELDS + (("percentile",) if reference else ()))
        if picks_image is not None:
            write_picks_image(picks_image, self.model, pool, picks)
        seconds = output.seconds
        return ScoreResult(
            picks=picks,
            total=len(pool),
            scored=output.scored,
            skipped=len(errors),
            nan=output.nan,
            errors=errors,
            provider=output.provider,
            engine=engine,
            seconds=seconds,
            items_per_second=output.scored_now / seconds if seconds > 0 else 0.0,
            batches_run=output.batches_run,
            resumed_from=output.resumed_from,
            warnings=tuple(notes),
            out=None if out is None else os.fspath(out),
            picks_image=None if picks_image is None else os.fspath(picks_image),
            audit=audit,
        )

    def stream(self, source, selector, *, out, resume=False, poll=1.0,
               idle_timeout=60.0, input_stream=None):
        """Selects from a stream of image files as they arrive.

        See `kerasll_serving.streaming.run_stream` (which this calls) for the
        arguments, return value and errors.
        """
        from kerasll_serving.streaming import run_stream

        return run_stream(self, source, selector, out=out, resume=resume, poll=poll,
                          idle_timeout=idle_timeout, input_stream=input_stream)

    def _picks(self, pool, output):
        """The top-K `Pick`s and the audit sample's, roles marked when audited."""
        ranked = output.top.ranked()
        ranks = {item: row + 1 for row, item in enumerate(ranked[0].tolist())}
        if output.audit is None:
            return self._records(pool, ranked, ranks, None), []
        index, keys, loss, columns = output.audit.ranked()
        keys = dict(zip(index.tolist(), keys.tolist()))
        return (self._records(pool, ranked, ranks, keys),
                self._records(pool, (index, loss, columns), ranks, keys))

    def _records(self, pool, ranked, ranks, keys):
        """`Pick`s of `(index, loss, columns)`; `keys` None when not audited."""
        index, loss, columns = ranked
        reference = self.contract.predicted_loss_quantiles
        records = []
        for row, (item_index, value) in enumerate(zip(index.tolist(), loss.tolist())):
            rank = ranks.get(item_index)
            key = None if keys is None else keys.get(item_index)
            role = None
            if keys is not None:
                role = PICK if key is None else (AUDIT if rank is None else BOTH)
            records.append(Pick(rank=rank, item=pool.item_id(item_index),
                                index=item_index, predicted_loss=value,
                                nan=math.isnan(value), role=role, audit_key=key,
                                percentile=None if reference is None
                                else reference.percentile(value),
                                **describe(columns, row, self.contract)))
        return records


def _check_distinct(out, all_scores):
    """Refuses an every-score file that is the picks or the errors file."""
    if out is None or all_scores is None:
        return
    for what, path in (("out", out), ("the errors file", errors_path(out))):
        if same_file(all_scores, path):
            raise OutputError(
                f"Expected all_scores to be a different file from {what}. "
                f"Received: all_scores={os.fspath(all_scores)!r}, the same file as "
                f"{os.fspath(path)!r}; one would overwrite the other."
            )

