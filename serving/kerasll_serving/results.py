"""What a scoring run returns."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Pick:
    """One selected item.

    Attributes:
        rank: 1 for the highest predicted loss; None for an item that is
            only in the audit sample.
        item: the item id: its path (image pools) or index (array pools).
        index: its position in the pool.
        predicted_loss: the model's predicted loss (NaN when the model gave NaN).
        nan: True when the predicted loss is NaN (such items rank last).
        prediction: the class name (or index) for classifiers, the raw value
            (a float, or a list) for regressors, the top detection's class
            name (or index) for detectors, the keypoints (a list of [x, y]
            input pixels) for pose networks, None otherwise.
        confidence: the classifier's top probability, the top detection's
            score or the keypoints' mean confidence, else None.
        detections: a detector's number of detections above
            `predictions.DISPLAY_THRESHOLD`, else None.
        role: with an audit sample, "pick", "audit" or "pick+audit" (see
            `audit`); None without one.
        audit_key: the item's audit key (in [0, 1); the sample holds the
            smallest) when it is in the audit sample, else None.
        percentile: the predicted loss's percentile (0-100) in the
            export-time distribution (`ModelContract.predicted_loss_quantiles`),
            None when the model carries none.
        threshold: the threshold a stream pick was decided against, else None.
    """

    rank: int
    item: object
    index: int
    predicted_loss: float
    nan: bool
    prediction: object = None
    confidence: float = None
    detections: int = None
    role: str = None
    audit_key: float = None
    percentile: float = None
    threshold: float = None


@dataclasses.dataclass(frozen=True)
class SkippedItem:
    """An item that could not be read (and so was not scored).

    Attributes:
        index: its position in the pool.
        item: its id (the path).
        error: why it was skipped.
    """

    index: int
    item: object
    error: str


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring a pool.

    Attributes:
        picks: the top-K `Pick`s, best first.
        audit: the audit sample's `Pick`s, smallest audit key first (empty
            without `audit=`); those also in `picks` have role "pick+audit".
        total: items in the pool.
        scored: items scored (in this run and, after `resume`, before it).
        skipped: items that could not be read.
        nan: scored items whose predicted loss is NaN.
        errors: the `SkippedItem`s.
        provider: the ONNX Runtime provider that ran the model.
        engine: "local" or "ray".
        seconds: wall time of this run's scoring.
        items_per_second: items scored by this run per second.
        batches_run: batches this run sent through the model (a resumed run
            does not re-run batches its checkpoint already holds).
        resumed_from: first batch of this run (0 unless resumed).
        warnings: notes such as K larger than the pool.
        out: the picks file written, or None.
        picks_image: the picks image written, or None.
    """

    picks: list
    total: int
    scored: int
    skipped: int
    nan: int
    errors: list
    provider: str
    engine: str
    seconds: float
    items_per_second: float
    batches_run: int
    resumed_from: int = 0
    warnings: tuple = ()
    out: str = None
    picks_image: str = None
    audit: list = ()

    def summary(self):
        """Returns the one-line summary the CLI prints at the end."""
        line = (
            f"Scored {self.scored:,} of {self.total:,} items ({self.skipped:,} "
            f"skipped, {self.nan:,} NaN) with {self.provider} [{self.engine}] "
            f"in {self.seconds:.1f} s: {self.items_per_second:,.0f} items/s"
        )
        if self.resumed_from:
            line += f"; resumed at batch {self.resumed_from}"
        if self.audit:
            line += f"; audit sample of {len(self.audit):,}"
        if self.out:
            line += f". Picks: {self.out}"
        if self.picks_image:
            line += f". Picks image: {self.picks_image}"
        return line


@dataclasses.dataclass
class EngineOutput:
    """What an engine hands back to `PoolScorer` before files are written.

    Attributes:
        top: the final `TopK`.
        audit: the final `AuditSample`, or None.
        scored: items scored, including those a resumed checkpoint held.
        nan: scored items with a NaN predicted loss.
        errors: `(index, reason)` of skipped items.
        provider: the provider that ran the model.
        seconds: wall time of this run.
        scored_now: items this run scored itself.
        batches_run: batches this run processed.
        resumed_from: first batch of this run.
    """

    top: object
    audit: object
    scored: int
    nan: int
    errors: list
    provider: str
    seconds: float
    scored_now: int
    batches_run: int
    resumed_from: int = 0


@dataclasses.dataclass(frozen=True)
class StreamResult:
    """The outcome of a stream run (`kerasll_serving.streaming`).

    Attributes:
        picks: every kept item of the stream so far, as `Pick`s in arrival
            order (`rank` None; `percentile` and `threshold` set).
        audit: the audit sample's `Pick`s, smallest key first.
        seen: items the stream has delivered (replayed ones included).
        skipped: items that could not be read.
        nan: scored items with a NaN predicted loss.
        kept: how many were kept.
        rate: the share the selector aims at now (per-hour mode: its
            current estimate; None before one).
        threshold: the selector's current threshold.
        replayed: items the journal held when this run started.
        provider: the ONNX Runtime provider that ran the model.
        seconds: wall time of this run.
        out: the picks file.
        journal: the journal file.
        errors: the `SkippedItem`s.
    """

    picks: list
    audit: list
    seen: int
    skipped: int
    nan: int
    kept: int
    rate: float
    threshold: float
    replayed: int
    provider: str
    seconds: float
    out: str
    journal: str
    errors: list = ()

    def summary(self):
        """Returns the one-line summary the CLI prints at the end."""
        share = self.kept / self.seen if self.seen else 0.0
        line = (
            f"Streamed {self.seen:,} items ({self.skipped:,} skipped, {self.nan:,} "
            f"NaN) with {self.provider}: kept {self.kept:,} ({share:.2%}), "
            f"threshold {self.threshold:.4g}"
        )
        if self.replayed:
            line += f"; resumed after {self.replayed:,}"
        if self.audit:
            line += f"; audit sample of {len(self.audit):,}"
        return line + f". Picks: {self.out} (journal {self.journal})"
