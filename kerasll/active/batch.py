"""A selection's inputs and outputs: common random numbers, picks, audits.

`Draw` holds the random numbers of one cycle's selection. The engine draws
one uniform key per pool item per (seed, trial, cycle, stream), so every
strategy that reads the same stream sees the same random order of its
candidates: `random`'s picks, every strategy's random share (its audit
slice) and the diagnostics' comparison batch are prefixes of that order, and
stochastic rules perturb their scores with Gumbel noise made from the same
keys. Two strategies whose choices agree therefore pick identical items
(common random numbers), and their later differences come only from what
they chose.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Draw:
    """The random numbers of one selection, aligned with its candidates.

    Attributes:
        keys: (n,) uniform numbers in [0, 1), one per candidate.
        rng: a `numpy.random.Generator` for any further randomness (e.g.
            k-means++ seeding), from the same stream.
    """

    keys: np.ndarray
    rng: np.random.Generator

    @classmethod
    def from_rng(cls, rng, size):
        """A draw of `size` keys from a generator (tests, one-off calls)."""
        return cls(rng.random(size), rng)

    def order(self):
        """Candidate positions in the draw's random order (highest key first)."""
        return np.argsort(-np.asarray(self.keys, dtype=np.float64), kind="stable")

    def gumbel(self):
        """(n,) standard Gumbel noise, increasing in the keys.

        The Gumbel-top-k trick: `argsort(log p + gumbel)` samples without
        replacement with probabilities `p`; with equal `p` it is `order()`.
        """
        keys = np.clip(np.asarray(self.keys, dtype=np.float64), 1e-300, 1.0 - 1e-16)
        return -np.log(-np.log(keys))


def as_draw(draw, size):
    """A `Draw` as is, or one drawn from a `numpy.random.Generator`.

    Args:
        draw: a `Draw` or a `numpy.random.Generator`.
        size: number of candidates.

    Returns:
        A `Draw` with `size` keys.

    Raises:
        ValueError: a `Draw` of another size.
    """
    if isinstance(draw, Draw):
        if len(draw.keys) != size:
            raise ValueError(
                f"Expected a draw of {size} keys (one per candidate). "
                f"Received: {len(draw.keys)}"
            )
        return draw
    return Draw.from_rng(draw, size)


@dataclasses.dataclass(frozen=True)
class Selection:
    """The items a strategy chose.

    Attributes:
        indices: int64 pool indices, best first.
        scores: the strategy's score of each pick (higher = more wanted), or
            None when it has none (random).
        audit: the picks drawn uniformly at random from the candidates so
            that, once labeled, they measure how well the strategy's score
            ranks unseen items (None when the strategy audits nothing).
    """

    indices: np.ndarray
    scores: np.ndarray = None
    audit: np.ndarray = None


@dataclasses.dataclass(frozen=True)
class Audit:
    """What a labeled audit slice tells about the score that picked it.

    Attributes:
        score: the picking model's score of each audit item (its predicted
            loss, for the loss head), computed before the item was labeled.
        true_loss: the picking model's true loss of each item, computed once
            its label is known.
    """

    score: np.ndarray
    true_loss: np.ndarray
