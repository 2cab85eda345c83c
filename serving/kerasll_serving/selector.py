"""Selection from a stream: keep a target share of the items seen, one by one.

A device sees frames one at a time and cannot rank a pool it does not hold.
`StreamSelector` decides per item, with no second pass: an item is kept when
its predicted loss is above the current threshold. The threshold is

* during warm-up (the first `warmup` finite scores, by default
  `min(window, 1000)`: enough to place a top 1%), the export-time quantile
  at level `1 - rate` (`ModelContract.predicted_loss_quantiles`) when the
  model carries one; without it, nothing is kept while warming up;
* then the `1 - rate` quantile of the last `window` finite scores,
  recomputed every `refresh` items, so that drift in the stream keeps the
  rate: after a step change the threshold reaches the new distribution's
  quantile within `window + refresh` items (sooner upwards: once more than
  `rate * window` of the window's scores are new).

With `per_hour` instead of `rate`, the rate is `per_hour` divided by the
arrival rate over the window (items per hour, from their timestamps), capped
at 1, and updated at each refresh.

The selector also keeps a uniform audit sample of the stream
(`kerasll_serving.audit`, keyed by arrival number). Memory is constant:
the window, its timestamps and the audit sample, whatever the stream length.
Decisions depend only on the sequence of (loss, time) offered, so replaying a
journal of them rebuilds the same state (see `kerasll_serving.streaming`).
"""

import dataclasses
import math
from numbers import Integral, Real

import numpy as np

from kerasll_serving.audit import AuditSample
from kerasll_serving.contract import LossQuantiles
from kerasll_serving.errors import ServingError
from kerasll_serving.validation import Interval, validate_arguments

SECONDS_PER_HOUR = 3600.0
_REFRESHES_PER_WINDOW = 20
_DEFAULT_WARMUP = 1000


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the selector decided for one item.

    Attributes:
        kept: whether the item is picked.
        threshold: the threshold it was compared with (kept when above).
        percentile: its predicted loss's percentile in the export-time
            distribution (0-100), or None without one (NaN for a NaN loss).
    """

    kept: bool
    threshold: float
    percentile: float = None


class StreamSelector:
    """Keeps a target share of a stream of predicted losses (see the module).

    Args:
        rate: share of items to keep, in (0, 1]; give it or `per_hour`.
        per_hour: items to keep per hour of stream time; give it or `rate`.
        window: how many recent finite scores the threshold is the quantile of.
        refresh: recompute the threshold every this many items; None:
            `window // 20` (at least 1).
        warmup: finite scores seen before the window decides; None:
            `min(window, 1000)`.
        reference: the export-time `LossQuantiles`, or None.
        audit: size of the uniform audit sample (0 for none).
        seed: the audit sample's seed.

    Raises:
        ServingError: an argument outside `parameter_constraints`, or both or
            neither of `rate` and `per_hour`.
    """

    parameter_constraints = {
        "rate": [Interval(Real, 0, 1, closed="right"), None],
        "per_hour": [Interval(Real, 0, None, closed="neither"), None],
        "window": [Interval(Integral, 2, None, closed="left")],
        "refresh": [Interval(Integral, 1, None, closed="left"), None],
        "warmup": [Interval(Integral, 1, None, closed="left"), None],
        "reference": [LossQuantiles, None],
    }

    def __init__(self, rate=None, *, per_hour=None, window=2000, refresh=None,
                 warmup=None, reference=None, audit=0, seed=0):
        checked = validate_arguments(
            self.parameter_constraints,
            {"rate": rate, "per_hour": per_hour, "window": window,
             "refresh": refresh, "warmup": warmup, "reference": reference},
            ServingError,
        )
        if (checked["rate"] is None) == (checked["per_hour"] is None):
            raise ServingError(
                "Expected exactly one of rate and per_hour. Received: "
                f"rate={rate!r}, per_hour={per_hour!r}"
            )
        self.rate, self.per_hour = checked["rate"], checked["per_hour"]
        self.window = checked["window"]
        self.refresh = checked["refresh"] or max(1, self.window // _REFRESHES_PER_WINDOW)
        self.warmup = checked["warmup"] or min(self.window, _DEFAULT_WARMUP)
        if self.warmup > self.window:
            raise ServingError(
                "Expected warmup <= window (the window holds the warm-up scores). "
                f"Received: warmup={warmup!r}, window={window!r}"
            )
        self.reference = reference
        self.audit = AuditSample(audit, seed)
        self._scores = np.empty(self.window, dtype=np.float64)
        self._times = np.empty(self.window, dtype=np.float64)
        self._filled = 0
        self._position = 0
        self._since_refresh = 0
        self.seen = 0
        self.kept = 0
        self.current_rate = self.rate
        self.threshold = math.inf
        self._refresh()

    def config(self):
        """The selector's parameters, JSON-able (what a journal records)."""
        return {"rate": self.rate, "per_hour": self.per_hour, "window": self.window,
                "refresh": self.refresh, "warmup": self.warmup,
                "audit": self.audit.size, "seed": self.audit.seed,
                "reference": None if self.reference is None
                else dataclasses.asdict(self.reference)}

    def offer(self, index, losses, times, records=None):
        """Decides, item by item, which of a batch of arrivals to keep.

        Args:
            index: the items' arrival numbers (int, increasing).
            losses: their predicted losses (NaN is never kept).
            times: their arrival times in seconds (used with `per_hour`).
            records: per-item objects kept with audit-sample items (e.g.
                what to write for them), or None.

        Returns:
            A list of `Decision`s, one per item.
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        losses = np.asarray(losses, dtype=np.float64).reshape(-1)
        times = np.broadcast_to(np.asarray(times, dtype=np.float64), losses.shape)
        decisions = [self._decide(loss, when) for loss, when in
                     zip(losses.tolist(), times.tolist())]
        if records is None:
            records = [None] * len(index)
        column = np.empty(len(index), dtype=object)
        column[:] = list(records)
        self.audit.push(index, losses, {"record": column})
        return decisions

    def audit_sample(self):
        """The audit sample: `(index, key, loss, records)`, smallest key first."""
        index, keys, loss, columns = self.audit.ranked()
        return index, keys, loss, list(columns.get("record", ()))

    def _decide(self, loss, when):
        finite = math.isfinite(loss)
        kept = finite and loss > self.threshold
        percentile = None if self.reference is None else self.reference.percentile(loss)
        decision = Decision(kept, self.threshold, percentile)
        self.seen += 1
        self.kept += kept
        if finite:
            self._scores[self._position] = loss
            self._times[self._position] = when
            self._position = (self._position + 1) % self.window
            self._filled = min(self._filled + 1, self.window)
        self._since_refresh += 1
        warmed = not self._warm and self._filled >= self.warmup
        if warmed or self._since_refresh >= self.refresh:
            self._refresh()
        return decision

    def _refresh(self):
        """Recomputes the rate (per-hour mode) and the threshold."""
        self._since_refresh = 0
        self._warm = self._filled >= self.warmup
        if self.per_hour is not None:
            self.current_rate = self._arrival_rate()
        if self.current_rate is None:
            self.threshold = math.inf  # Per-hour mode before two arrivals.
        elif self._warm:
            level = 1.0 - self.current_rate
            scores = self._scores[: self._filled]
            # The p(n + 1) plotting position: a new item from the window's
            # distribution exceeds it with probability `rate`, unbiased (the
            # default "linear" one keeps about 5% too many at rate 0.01).
            self.threshold = -math.inf if level <= 0 else float(
                np.quantile(scores, level, method="weibull"))
        elif self.reference is not None:
            self.threshold = self.reference.value_at(1.0 - self.current_rate)
        else:
            self.threshold = math.inf

    def _arrival_rate(self):
        """`per_hour` over the arrivals per hour in the window, capped at 1."""
        if self._filled < 2:
            return None
        times = self._times[: self._filled]
        span = float(times.max() - times.min())
        if span <= 0:
            return None
        arrivals_per_hour = (self._filled - 1) * SECONDS_PER_HOUR / span
        return min(1.0, self.per_hour / arrivals_per_hour)
