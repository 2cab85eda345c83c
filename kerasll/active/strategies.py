"""Query strategies: score the candidates of a cycle and pick a batch.

A strategy only scores and selects; it never trains. It reads the trained
model through a model view (`kerasll.active.view`): uncertainty scores,
features or predicted losses of pool items, by index. Views exist for every
task (`kerasll.tasks`), so the same strategies pick classification images
and detection scenes.

Every `select` call returns a `Selection` of `budget` (K) pool indices drawn
from `candidates` (the random subset of M unlabeled items), best first, and
the score each pick had. Ties are broken by candidate order, so a selection is
a pure function of the view, the candidates, the history and the seed.

How a strategy's model is trained is part of the strategy (`training`):
"plain" (no loss head), "joint" (the paper: the head's gradient reaches the
target network until the detach epoch) or "decoupled" (the head learns on
features whose gradient is stopped from the first step, so the target
network trains exactly as without a head).
"""

import abc
import dataclasses

import numpy as np
from kerasll_serving.topk import top_indices

from kerasll.active.diagnostics import ranking_evidence
from kerasll.active.errors import ProtocolError, UnknownStrategyError
from kerasll.active.kcenter import greedy_k_center

PLAIN, JOINT, DECOUPLED = "plain", "joint", "decoupled"


@dataclasses.dataclass(frozen=True)
class Selection:
    """The items a strategy chose.

    Attributes:
        indices: int64 pool indices, best first.
        scores: the strategy's score of each pick (higher = more wanted), or
            None when it has none (random).
        audit: the picks drawn uniformly at random from the candidates so
            that, once labeled, they measure how well the loss head ranks
            unseen items (None when the strategy audits nothing).
    """

    indices: np.ndarray
    scores: np.ndarray = None
    audit: np.ndarray = None


@dataclasses.dataclass(frozen=True)
class Audit:
    """What a labeled audit slice tells about the head that picked it.

    Attributes:
        predicted_loss: the picking model's predicted loss of each audit item,
            computed before the item was labeled.
        true_loss: the picking model's true loss of each item, computed once
            its label is known.
    """

    predicted_loss: np.ndarray
    true_loss: np.ndarray


def _check_request(candidates, budget):
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1)
    if not 0 < int(budget) <= len(candidates):
        raise ProtocolError(
            f"Expected a budget between 1 and the {len(candidates)} candidates. "
            f"Received: budget={budget}"
        )
    return candidates, int(budget)


def _top(candidates, scores, budget):
    """The `budget` highest scores, ties broken by candidate order."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = top_indices(scores, budget)
    return Selection(candidates[order], scores[order])


class Strategy(abc.ABC):
    """Base class: picks `budget` pool items among `candidates`.

    Subclasses set `name`, `training` (`PLAIN`, `JOINT` or `DECOUPLED`) and
    implement `select`.
    """

    name = None
    training = PLAIN

    @property
    def uses_loss_head(self):
        """Whether the model must be a `LossLearner`."""
        return self.training != PLAIN

    @abc.abstractmethod
    def select(self, view, candidates, budget, labeled, rng, history=()):
        """Chooses the items to label next.

        Args:
            view: a model view of the model trained this cycle.
            candidates: pool indices that may be chosen (the subset of M).
            budget: number of items to choose (K).
            labeled: pool indices labeled so far.
            rng: a `numpy.random.Generator` for strategies that draw at random.
            history: `Audit`s of this run's earlier selections, oldest first
                (None for a selection that audited nothing).

        Returns:
            A `Selection` of `budget` distinct candidates.
        """

    def get_config(self):
        """Constructor arguments, for the experiment's configuration record."""
        return {}

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class RandomStrategy(Strategy):
    """Uniformly random picks: the baseline every strategy must beat."""

    name = "random"

    def select(self, view, candidates, budget, labeled, rng, history=()):
        candidates, budget = _check_request(candidates, budget)
        return Selection(rng.choice(candidates, size=budget, replace=False))


class _UncertaintyStrategy(Strategy):
    """Top-K by an uncertainty measure (`kerasll.active.uncertainty`).

    The model view computes the measure: on a classifier's class
    probabilities, or per image over a detector's detections.
    """

    measure = None

    def select(self, view, candidates, budget, labeled, rng, history=()):
        candidates, budget = _check_request(candidates, budget)
        return _top(candidates, view.uncertainty(candidates, self.measure), budget)


class EntropyStrategy(_UncertaintyStrategy):
    """Top-K by predictive entropy -sum_c p_c log p_c."""

    name = measure = "entropy"


class MarginStrategy(_UncertaintyStrategy):
    """Top-K by smallest margin between the two most probable classes."""

    name = measure = "margin"


class LeastConfidenceStrategy(_UncertaintyStrategy):
    """Top-K by lowest probability of the predicted class (1 - max p)."""

    name = measure = "least_confidence"


class CoreSetStrategy(Strategy):
    """Greedy k-center on the view's features (Sener & Savarese, 2018).

    The features are a classifier's penultimate layer, or a detector's
    feature maps pooled per image.

    The labeled items are the initial centers; each pick is the candidate
    farthest from every center so far. Distances are computed in blocks of
    `chunk_size` centers, so memory stays bounded for 50,000 x 10,000.

    Args:
        chunk_size: centers per distance block.
    """

    name = "coreset"

    def __init__(self, chunk_size=1024):
        self.chunk_size = int(chunk_size)

    def get_config(self):
        return {"chunk_size": self.chunk_size}

    def select(self, view, candidates, budget, labeled, rng, history=()):
        candidates, budget = _check_request(candidates, budget)
        labeled = np.asarray(labeled, dtype=np.int64)
        centers = view.features(labeled) if len(labeled) else None
        chosen, distances = greedy_k_center(
            view.features(candidates), budget, centers, self.chunk_size
        )
        return Selection(candidates[chosen], distances)


class LearningLossStrategy(Strategy):
    """The paper: top-K candidates by the loss head's predicted loss."""

    name = "learning_loss"
    training = JOINT

    def select(self, view, candidates, budget, labeled, rng, history=()):
        candidates, budget = _check_request(candidates, budget)
        return _top(candidates, view.predicted_loss(candidates), budget)


class DiverseLearningLossStrategy(Strategy):
    """Top-K by predicted loss, made non-redundant by greedy k-center.

    Top-K by predicted loss tends to pick near-duplicates from one confusing
    region. This strategy shortlists the `shortlist_factor * K` (c*K)
    candidates with the highest predicted loss, then picks K of them by
    greedy k-center on the view's features, with the labeled items as the
    initial centers: every pick is a high-loss item far from what is already
    labeled or picked. `shortlist_factor=1` is the paper's strategy; large
    values approach core-set. The default c = 3 sits in the useful 2-4 range.

    Args:
        shortlist_factor: c, the shortlist size as a multiple of K (>= 1).
        chunk_size: centers per distance block.

    Raises:
        ValueError: `shortlist_factor` below 1.
    """

    name = "learning_loss_diverse"
    training = JOINT

    def __init__(self, shortlist_factor=3.0, chunk_size=1024):
        if float(shortlist_factor) < 1.0:
            raise ValueError(
                "Expected shortlist_factor >= 1. "
                f"Received: shortlist_factor={shortlist_factor}"
            )
        self.shortlist_factor = float(shortlist_factor)
        self.chunk_size = int(chunk_size)

    def get_config(self):
        return {
            "shortlist_factor": self.shortlist_factor,
            "chunk_size": self.chunk_size,
        }

    def select(self, view, candidates, budget, labeled, rng, history=()):
        candidates, budget = _check_request(candidates, budget)
        size = min(len(candidates), int(np.ceil(self.shortlist_factor * budget)))
        shortlist = _top(candidates, view.predicted_loss(candidates), size)
        labeled = np.asarray(labeled, dtype=np.int64)
        centers = view.features(labeled) if len(labeled) else None
        chosen, _ = greedy_k_center(
            view.features(shortlist.indices), budget, centers, self.chunk_size
        )
        return Selection(shortlist.indices[chosen], shortlist.scores[chosen])


class DecoupledLearningLossStrategy(LearningLossStrategy):
    """Top-K by predicted loss, from a head that never trains the target.

    The head learns from the first step on features whose gradient is
    stopped, so the classifier is the one plain training gives; only the
    picks differ from `random`. It isolates the picks from the cost of joint
    training, which the paper's schedule pays at small budgets.
    """

    name = "learning_loss_decoupled"
    training = DECOUPLED


class SafeLearningLossStrategy(Strategy):
    """Learning loss that trusts the head only as far as it has shown it ranks.

    Two failures make the paper's strategy lose to random at small budgets:
    joint training costs the classifier accuracy, and a weak head's top-K
    picks hard, redundant items. This strategy removes the first and guards
    against the second, with no per-data-set tuning:

    - Decoupled head: the head trains on stopped-gradient features from the
      first step, so the delivered classifier is exactly what training
      without a head gives.
    - Audit slice: each batch mixes the head's top predicted losses with
      items drawn uniformly at random from the candidates. The random items
      are labeled like the others and, once labeled, show how well the head
      that picked them ranks unseen items: Kendall's tau between its
      predicted loss and their true loss, P(concordant pair) - P(discordant
      pair), 0 for noise and 1 for a perfect ranker.
    - Evidence-driven share: the head's share of the next batch is that tau
      when a one-sided test finds it above 0 at `significance`, else 0, and
      at most `1 - audit_share` so every batch keeps auditing. The first
      selection has no unseen labeled items to judge the head on, so it is
      random (and is all audit).

    A perfect head therefore gets `1 - audit_share` of every batch after the
    first; a head whose ranking cannot be told from noise gets none, and the
    strategy is `random`.

    Args:
        audit_share: smallest share of each batch drawn at random (0-1).
        significance: level of the one-sided Kendall test (0-1).

    Raises:
        ValueError: a share or level outside (0, 1).
    """

    name = "learning_loss_safe"
    training = DECOUPLED

    def __init__(self, audit_share=0.1, significance=0.05):
        for argument, value in (
            ("audit_share", audit_share),
            ("significance", significance),
        ):
            if not 0.0 < float(value) < 1.0:
                raise ValueError(
                    f"Expected {argument} in (0, 1). Received: {argument}={value}"
                )
        self.audit_share = float(audit_share)
        self.significance = float(significance)

    def get_config(self):
        return {"audit_share": self.audit_share, "significance": self.significance}

    def head_share(self, history):
        """The share of the next batch given to the head's top predicted losses.

        Args:
            history: `Audit`s of earlier selections (None where none); only
                the latest one is used, as it judges the most recent head.

        Returns:
            A float in [0, 1 - audit_share].
        """
        audit = next((a for a in reversed(list(history)) if a is not None), None)
        if audit is None:
            return 0.0
        tau, p_value = ranking_evidence(audit.true_loss, audit.predicted_loss)
        if not p_value < self.significance:
            return 0.0
        return float(min(max(tau, 0.0), 1.0 - self.audit_share))

    def select(self, view, candidates, budget, labeled, rng, history=()):
        candidates, budget = _check_request(candidates, budget)
        from_head = int(round(self.head_share(history) * budget))
        scores = np.asarray(view.predicted_loss(candidates), dtype=np.float64)
        audited = rng.choice(len(candidates), size=budget - from_head, replace=False)
        rest = np.setdiff1d(np.arange(len(candidates)), audited)
        top = rest[top_indices(scores[rest], from_head)]
        chosen = np.concatenate([top, audited])
        return Selection(
            candidates[chosen], scores[chosen], audit=candidates[audited]
        )


STRATEGIES = {
    strategy.name: strategy
    for strategy in (
        LearningLossStrategy,
        DiverseLearningLossStrategy,
        DecoupledLearningLossStrategy,
        SafeLearningLossStrategy,
        RandomStrategy,
        EntropyStrategy,
        MarginStrategy,
        LeastConfidenceStrategy,
        CoreSetStrategy,
    )
}


def get_strategy(name, **kwargs):
    """A strategy instance from its registry name.

    Args:
        name: one of `STRATEGIES`.
        **kwargs: constructor arguments of that strategy.

    Returns:
        A `Strategy`.

    Raises:
        UnknownStrategyError: the name is not registered.
    """
    if name not in STRATEGIES:
        raise UnknownStrategyError(
            f"Expected strategies from {sorted(STRATEGIES)}. Received: {name!r}"
        )
    return STRATEGIES[name](**kwargs)


def parse_strategies(names):
    """Validates a list (or comma-separated string) of strategy names.

    Args:
        names: e.g. "learning_loss,random" or ["learning_loss", "random"].

    Returns:
        List of distinct names, in the given order.

    Raises:
        UnknownStrategyError: an unknown name, or none at all.
    """
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    names = list(dict.fromkeys(names))
    if not names:
        raise UnknownStrategyError(
            f"Expected at least one strategy from {sorted(STRATEGIES)}. Received none"
        )
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown:
        raise UnknownStrategyError(
            f"Expected strategies from {sorted(STRATEGIES)}. Received unknown {unknown}"
        )
    return names
