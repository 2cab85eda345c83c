"""A uniform random audit sample of a pool or stream, kept while it streams.

Each item gets a random key in [0, 1) that depends only on the seed and the
item's pool index (its arrival number in a stream): the first 64-bit word of
Philox block `index` under key `seed` (numpy's counter-based generator, whose
bit stream numpy keeps stable across versions). The audit sample is the
`size` items with the smallest keys, a bottom-k sample: every subset of
`size` items is equally likely, as with reservoir sampling (Algorithm R), but
the sample is a function of the items, not of the order they arrive in. So a
resumed run, the Ray engine (each batch keeps its own smallest keys, the
driver keeps the smallest of those) and a single pass all keep the same
items, and two devices' samples merge by the same rule. Memory: `size` items
plus one batch.
"""

from numbers import Integral

import numpy as np

from kerasll_serving.errors import ServingError
from kerasll_serving.topk import TopK, select_top
from kerasll_serving.validation import Interval, validate_arguments

# Philox yields four 64-bit words per counter block; an item takes the first.
_WORDS_PER_BLOCK = 4
_MANTISSA_BITS = 53
_LOSS_COLUMN = "audit_loss"
# Picks-file roles: top-K items, audit items, and items that are both.
PICK, AUDIT, BOTH = "pick", "audit", "pick+audit"


PARAMETER_CONSTRAINTS = {
    "audit": [Interval(Integral, 0, None, closed="left")],
    "seed": [Interval(Integral, 0, 2 ** 64 - 1, closed="both")],
}


def check_audit(audit, seed):
    """Validates the audit size and seed (see `PARAMETER_CONSTRAINTS`).

    Args:
        audit: how many items to sample (0 for none).
        seed: the random seed (an integer in [0, 2**64 - 1]).

    Returns:
        `(audit, seed)` as ints.

    Raises:
        ServingError: either is outside its constraints.
    """
    checked = validate_arguments(PARAMETER_CONSTRAINTS,
                                 {"audit": audit, "seed": seed}, ServingError)
    return checked["audit"], checked["seed"]


def item_keys(seed, index):
    """The random keys of items: uniform in [0, 1), fixed per (seed, index).

    Args:
        seed: the audit seed (an integer >= 0).
        index: pool indices (any order; int array).

    Returns:
        A float64 array, one key per index.
    """
    index = np.asarray(index, dtype=np.int64).reshape(-1)
    if not len(index):
        return np.empty(0, dtype=np.float64)
    low, high = int(index.min()), int(index.max()) + 1
    words = np.random.Philox(key=seed, counter=low).random_raw(
        _WORDS_PER_BLOCK * (high - low))[::_WORDS_PER_BLOCK]
    keys = (words >> np.uint64(64 - _MANTISSA_BITS)).astype(np.float64)
    return keys[index - low] * 2.0 ** -_MANTISSA_BITS


class AuditSample:
    """The `size` items with the smallest keys seen so far (see the module).

    Args:
        size: how many items to keep (0 keeps none).
        seed: the audit seed.
    """

    def __init__(self, size, seed):
        self.size, self.seed = check_audit(size, seed)
        self._top = TopK(max(self.size, 1))

    def __len__(self):
        return len(self._top) if self.size else 0

    def push(self, index, loss, columns):
        """Offers a batch of scored items to the sample.

        Args:
            index: pool indices (int64, length B).
            loss: their predicted losses (length B).
            columns: dict of per-item task columns (length B on axis 0).
        """
        if not self.size or not len(index):
            return
        index = np.asarray(index, dtype=np.int64)
        keys = item_keys(self.seed, index)
        columns = {**columns, _LOSS_COLUMN: np.asarray(loss)}
        if len(self._top) >= self.size:  # Full: only smaller keys can enter.
            entering = keys <= -self._top.loss.min()
            if not entering.any():
                return
            index, keys = index[entering], keys[entering]
            columns = {name: values[entering] for name, values in columns.items()}
        self._top.push(index, -keys, columns)

    def candidates(self, index):
        """Positions of a batch's items that could enter any sample of this
        size and seed (its `size` smallest keys): what a shard must hand on.

        Args:
            index: pool indices of the batch.

        Returns:
            An int array of positions into `index`.
        """
        if not self.size or not len(index):
            return np.zeros(0, dtype=np.int64)
        return select_top(-item_keys(self.seed, index), np.asarray(index), self.size)

    def ranked(self):
        """Returns `(index, key, loss, columns)` of the sample, smallest key first."""
        if not len(self):
            return (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), {})
        index, negative, columns = self._top.ranked()
        loss = columns.pop(_LOSS_COLUMN).astype(np.float64)
        return index, -negative, loss, columns

    def state(self):
        """Returns the sample as a dict of arrays (for checkpoints)."""
        return {"audit:" + name: values for name, values in self._top.state().items()}

    def load_state(self, state):
        """Restores the sample from `state()` entries (other keys are ignored).

        Args:
            state: a dict holding the arrays `state()` returned.
        """
        ours = {name[len("audit:"):]: values for name, values in state.items()
                if name.startswith("audit:")}
        if ours:
            self._top = TopK.from_state(max(self.size, 1), ours)
