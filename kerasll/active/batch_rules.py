"""Batch rules: how a score's ranking becomes a batch of K picks.

- `Top`: the K highest scores (the paper).
- `Stochastic`: K drawn without replacement with probabilities from the
  scores (Kirsch et al., 2023, "Stochastic Batch Acquisition"), so a batch
  is not K near-duplicates of the single hardest item.
- `Balanced`: per-class quotas by the model's predicted class, filled by
  the score, against the class skew top-K shows.
- `Diverse`: a shortlist of the c*K highest scores thinned by greedy
  k-center on the view's features.
- `Safe`: the score's share of the batch is earned by its measured ranking
  of the true loss on random audit items; the rest is random.

Every rule takes its randomness from a `Draw` (common random numbers): its
random items are prefixes of the draw's order, its noise Gumbel noise of the
draw's keys.
"""

import abc
from numbers import Integral, Real

import numpy as np
from kerasll_serving.topk import top_indices
from kerasll_serving.validation import Interval, StrOptions, validate_arguments

from kerasll.active.batch import Selection
from kerasll.active.diagnostics import ranking_evidence
from kerasll.active.errors import ProtocolError
from kerasll.active.kcenter import greedy_k_center
from kerasll.active.scores import rank_fraction


# Stochastic acquisition's parameters, shared by `Stochastic`, `Balanced`
# and `sampling_logits`.
SAMPLING_CONSTRAINTS = {
    "mode": [StrOptions(("power", "softmax"))],
    "temperature": [Interval(Real, 0, None, closed="neither")],
}
_OPEN_FRACTION = [Interval(Real, 0, 1, closed="neither")]
# k-center's centers per distance block (`Diverse`, `coreset`).
CHUNK_SIZE = [Interval(Integral, 1, None, closed="left")]


class BatchRule(abc.ABC):
    """Base class: turns a score into `budget` distinct picks."""

    name = None

    @abc.abstractmethod
    def select(self, score, view, candidates, budget, labeled, draw, history):
        """Chooses `budget` of `candidates`.

        Args:
            score: a `kerasll.active.scores.Score`.
            view: a model view of this cycle's model.
            candidates: int64 pool indices that may be chosen.
            budget: K, already checked against the candidates.
            labeled: pool indices labeled so far.
            draw: the `Draw` aligned with `candidates`.
            history: `Audit`s of earlier selections (None where none).

        Returns:
            A `Selection`.
        """

    def get_config(self):
        """Constructor arguments."""
        return {}


class Top(BatchRule):
    """The `budget` highest scores, ties broken by candidate order."""

    name = "top"

    def select(self, score, view, candidates, budget, labeled, draw, history):
        scores = score(view, candidates)
        order = top_indices(scores, budget)
        return Selection(candidates[order], scores[order])


def sampling_logits(scores, mode, temperature):
    """Log-probabilities (up to a constant) of stochastic acquisition.

    Args:
        scores: (n,) scores, higher = more wanted.
        mode: "power": p proportional to rank^(-1/temperature), rank 1 the
            highest score (Kirsch et al.'s softrank; any score scale, even
            negative predicted losses); "softmax": p proportional to
            exp(z / temperature), z the standardized scores.
        temperature: > 0; large values approach uniform (random) picks,
            small values top-K.

    Returns:
        (n,) float64 log-probabilities.

    Raises:
        ProtocolError: a mode or temperature outside `SAMPLING_CONSTRAINTS`.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    checked = validate_arguments(
        SAMPLING_CONSTRAINTS, {"mode": mode, "temperature": temperature}, ProtocolError
    )
    mode, temperature = checked["mode"], checked["temperature"]
    if mode == "power":
        # rank 1 = highest score; ties share their average rank.
        ranks = len(scores) + 1 - rank_fraction(scores) * len(scores)
        return -np.log(ranks) / temperature
    spread = scores.std()  # mode == "softmax"
    z = (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)
    return z / temperature


class Stochastic(BatchRule):
    """K picks sampled without replacement, with probability from the scores.

    Gumbel-top-k on the draw's keys: the K largest `log p + gumbel` are an
    exact sample without replacement from p (Kool et al., 2019). With a very
    high temperature it picks what `random` picks.

    Args:
        mode: "power" (softrank, Kirsch et al.'s default) or "softmax".
        temperature: 1/beta, > 0 (Kirsch et al.: beta = 1).

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    name = "stochastic"
    parameter_constraints = SAMPLING_CONSTRAINTS

    def __init__(self, mode="power", temperature=1.0):
        checked = validate_arguments(
            self.parameter_constraints,
            {"mode": mode, "temperature": temperature},
            ProtocolError,
        )
        self.mode, self.temperature = checked["mode"], checked["temperature"]

    def probabilities(self, scores):
        """The sampling distribution over candidates (sums to 1)."""
        logits = sampling_logits(scores, self.mode, self.temperature)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def select(self, score, view, candidates, budget, labeled, draw, history):
        scores = score(view, candidates)
        logits = sampling_logits(scores, self.mode, self.temperature)
        order = top_indices(logits + draw.gumbel(), budget)
        return Selection(candidates[order], scores[order])

    def get_config(self):
        return {"mode": self.mode, "temperature": self.temperature}


def predicted_classes(view, indices):
    """The model's predicted class of each item (argmax of its probabilities).

    Raises:
        ProtocolError: the view has no class probabilities per item.
    """
    if not hasattr(view, "probabilities"):
        raise ProtocolError(
            "Expected a view with class probabilities per item (classification). "
            f"Received: {type(view).__name__}"
        )
    return np.asarray(view.probabilities(indices)).argmax(axis=-1)


def class_quotas(classes, budget, num_classes):
    """Per-class quotas summing to `budget`, capped by what each class holds.

    Quotas are as equal as the candidates allow: every class gets
    floor(K / C) or one more (the lower class indices first), a class with
    fewer candidates gives its unused quota to the others, in turn.

    Args:
        classes: (n,) predicted class per candidate.
        budget: K <= n.
        num_classes: C.

    Returns:
        (C,) int64 quotas.
    """
    available = np.bincount(np.asarray(classes, dtype=np.int64), minlength=num_classes)
    quotas = np.zeros(num_classes, dtype=np.int64)
    remaining = int(budget)
    while remaining > 0:
        open_classes = np.flatnonzero(quotas < available)
        share, extra = divmod(remaining, len(open_classes))
        add = np.full(len(open_classes), share, dtype=np.int64)
        add[:extra] += 1
        add = np.minimum(add, available[open_classes] - quotas[open_classes])
        quotas[open_classes] += add
        remaining -= int(add.sum())
    return quotas


class Balanced(BatchRule):
    """Per-class quotas by the model's predicted class, filled by the score.

    Each predicted class gets an equal share of the batch (`class_quotas`);
    within a class the picks are the top scores, or a stochastic sample
    with `within="stochastic"`. Against the class skew of top-K picks (cats
    and dogs in, cars and trucks out), which costs most in long-tailed
    pools, where rare classes are rarely predicted and rarely picked.

    Args:
        within: "top" or "stochastic".
        temperature: the stochastic rule's temperature (power mode).

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    name = "balanced"
    parameter_constraints = {
        "within": [StrOptions(("top", "stochastic"))],
        "temperature": SAMPLING_CONSTRAINTS["temperature"],
    }

    def __init__(self, within="top", temperature=1.0):
        checked = validate_arguments(
            self.parameter_constraints,
            {"within": within, "temperature": temperature},
            ProtocolError,
        )
        self.within = checked["within"]
        self.sampler = Stochastic("power", checked["temperature"])

    def select(self, score, view, candidates, budget, labeled, draw, history):
        scores = score(view, candidates)
        classes = predicted_classes(view, candidates)
        num_classes = int(np.asarray(view.probabilities(candidates[:1])).shape[-1])
        quotas = class_quotas(classes, budget, num_classes)
        ranking = scores
        if self.within == "stochastic":
            ranking = np.empty_like(scores)
            gumbel = draw.gumbel()
            for label in np.flatnonzero(quotas):
                members = np.flatnonzero(classes == label)
                ranking[members] = sampling_logits(
                    scores[members], "power", self.sampler.temperature
                ) + gumbel[members]
        chosen = []
        for label in np.flatnonzero(quotas):
            members = np.flatnonzero(classes == label)
            chosen.append(members[top_indices(ranking[members], quotas[label])])
        chosen = np.concatenate(chosen)
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")]
        return Selection(candidates[chosen], scores[chosen])

    def get_config(self):
        return {"within": self.within, "temperature": self.sampler.temperature}


class Diverse(BatchRule):
    """The c*K highest scores, thinned to K by greedy k-center on features.

    Every pick is a high-score item far from what is labeled or picked;
    `shortlist_factor=1` is top-K, large values approach core-set.

    Args:
        shortlist_factor: c >= 1.
        chunk_size: centers per distance block.

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    name = "diverse"
    parameter_constraints = {
        "shortlist_factor": [Interval(Real, 1, None, closed="left")],
        "chunk_size": CHUNK_SIZE,
    }

    def __init__(self, shortlist_factor=3.0, chunk_size=1024):
        checked = validate_arguments(
            self.parameter_constraints,
            {"shortlist_factor": shortlist_factor, "chunk_size": chunk_size},
            ProtocolError,
        )
        self.shortlist_factor = checked["shortlist_factor"]
        self.chunk_size = checked["chunk_size"]

    def select(self, score, view, candidates, budget, labeled, draw, history):
        scores = score(view, candidates)
        size = min(len(candidates), int(np.ceil(self.shortlist_factor * budget)))
        shortlist = top_indices(scores, size)
        labeled = np.asarray(labeled, dtype=np.int64)
        centers = view.features(labeled) if len(labeled) else None
        chosen, _ = greedy_k_center(
            view.features(candidates[shortlist]), budget, centers, self.chunk_size
        )
        chosen = shortlist[chosen]
        return Selection(candidates[chosen], scores[chosen])

    def get_config(self):
        return {"shortlist_factor": self.shortlist_factor, "chunk_size": self.chunk_size}


class Safe(BatchRule):
    """Trusts the score only as far as it has shown it ranks the true loss.

    - Audit slice: each batch holds items that are a prefix of the draw's
      random order, i.e. exactly what `random` picks. Once labeled, they
      show how well the score that picked them ranks unseen items:
      Kendall's tau between that score and their true loss (0 for noise,
      1 for a perfect ranker).
    - Evidence-driven share: the score's share of the next batch is that
      tau when a one-sided test finds it above 0 at `significance`, else 0,
      and at most `1 - audit_share` so every batch keeps auditing. The first
      selection has nothing to judge the score on, so it is all audit.

    With a share of 0 the batch is `random`'s batch, item for item.

    Args:
        audit_share: smallest share of each batch drawn at random (0-1).
        significance: level of the one-sided Kendall test (0-1).

    Raises:
        ProtocolError: an argument outside `parameter_constraints`.
    """

    name = "safe"
    parameter_constraints = {
        "audit_share": _OPEN_FRACTION,
        "significance": _OPEN_FRACTION,
    }

    def __init__(self, audit_share=0.1, significance=0.05):
        checked = validate_arguments(
            self.parameter_constraints,
            {"audit_share": audit_share, "significance": significance},
            ProtocolError,
        )
        self.audit_share = checked["audit_share"]
        self.significance = checked["significance"]

    def share(self, history):
        """The share of the next batch given to the score's top items.

        Args:
            history: `Audit`s of earlier selections (None where none); only
                the latest one is used, as it judges the most recent model.

        Returns:
            A float in [0, 1 - audit_share].
        """
        audit = next((a for a in reversed(list(history)) if a is not None), None)
        if audit is None:
            return 0.0
        tau, p_value = ranking_evidence(audit.true_loss, audit.score)
        if not p_value < self.significance:
            return 0.0
        return float(min(max(tau, 0.0), 1.0 - self.audit_share))

    def select(self, score, view, candidates, budget, labeled, draw, history):
        from_score = int(round(self.share(history) * budget))
        scores = score(view, candidates)
        audited = draw.order()[: budget - from_score]
        rest = np.setdiff1d(np.arange(len(candidates)), audited)
        top = rest[top_indices(scores[rest], from_score)]
        chosen = np.concatenate([top, audited])
        return Selection(candidates[chosen], scores[chosen], audit=candidates[audited])

    def get_config(self):
        return {"audit_share": self.audit_share, "significance": self.significance}


RULES = {rule.name: rule for rule in (Top, Stochastic, Balanced, Diverse, Safe)}
