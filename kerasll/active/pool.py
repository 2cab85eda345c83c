"""The pool: which items are labeled, and in which cycle each was labeled."""

import numpy as np

from kerasll.active.errors import PoolError

UNLABELED = -1


class Pool:
    """Labeling record of a pool of `size` items.

    Each item holds the cycle in which it was labeled, or `UNLABELED`. The
    order in which items were labeled within a cycle is kept too, so the
    state round-trips exactly through `state_dict` / `load_state_dict`.

    Args:
        size: number of items in the pool.

    Raises:
        PoolError: a non-positive size.
    """

    def __init__(self, size):
        if int(size) < 1:
            raise PoolError(
                f"Expected a pool of at least 1 item. Received: size={size}"
            )
        self.size = int(size)
        self.labeled_cycle = np.full(self.size, UNLABELED, dtype=np.int64)
        self._order = []  # per cycle, the indices labeled in that cycle

    @property
    def num_labeled(self):
        """Number of labeled items."""
        return int(np.count_nonzero(self.labeled_cycle != UNLABELED))

    @property
    def num_unlabeled(self):
        """Number of unlabeled items."""
        return self.size - self.num_labeled

    @property
    def last_cycle(self):
        """Highest cycle that labeled items, or -1 for an empty pool."""
        return len(self._order) - 1

    def labeled_indices(self):
        """Indices of labeled items, in labeling order (cycle by cycle)."""
        if not self._order:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self._order)

    def unlabeled_indices(self):
        """Indices of unlabeled items, ascending."""
        return np.flatnonzero(self.labeled_cycle == UNLABELED)

    def labeled_at(self, cycle):
        """Indices labeled in `cycle`, in the order they were chosen."""
        if not 0 <= cycle < len(self._order):
            raise PoolError(
                f"Expected a cycle in [0, {len(self._order)}). Received: cycle={cycle}"
            )
        return self._order[cycle].copy()

    def label(self, indices, cycle):
        """Marks items as labeled in `cycle`.

        Cycles are labeled in order: `cycle` is the last labeled cycle or the
        next one.

        Args:
            indices: pool indices of the items to label.
            cycle: the cycle they are labeled in (0 = the initial set).

        Raises:
            PoolError: out-of-range, repeated or already labeled indices, or
                a cycle out of order.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if cycle not in (self.last_cycle, self.last_cycle + 1) or cycle < 0:
            raise PoolError(
                f"Expected cycle {max(self.last_cycle, 0)} or {self.last_cycle + 1}. "
                f"Received: cycle={cycle}"
            )
        outside = indices[(indices < 0) | (indices >= self.size)]
        if outside.size:
            raise PoolError(
                f"Expected indices in [0, {self.size}). Received {outside[:5].tolist()}"
            )
        if len(np.unique(indices)) != len(indices):
            raise PoolError("Expected distinct indices. Received repeated ones")
        already = indices[self.labeled_cycle[indices] != UNLABELED]
        if already.size:
            raise PoolError(
                "Expected unlabeled items. Received already labeled "
                f"{already[:5].tolist()}"
            )
        self.labeled_cycle[indices] = cycle
        if cycle == len(self._order):
            self._order.append(indices.copy())
        else:
            self._order[cycle] = np.concatenate([self._order[cycle], indices])

    def state_dict(self):
        """JSON-friendly state: the size and the indices labeled per cycle."""
        return {
            "size": self.size,
            "labeled": [order.tolist() for order in self._order],
        }

    def load_state_dict(self, state):
        """Restores the state written by `state_dict`.

        Args:
            state: a dict from `state_dict`.

        Raises:
            PoolError: a state for a pool of another size, or invalid indices.
        """
        if int(state["size"]) != self.size:
            raise PoolError(
                f"Expected a state for a pool of {self.size} items. "
                f"Received one for {state['size']}"
            )
        self.labeled_cycle[:] = UNLABELED
        self._order = []
        for cycle, indices in enumerate(state["labeled"]):
            self.label(indices, cycle)

    @classmethod
    def from_state_dict(cls, state):
        """A new pool from `state_dict` output."""
        pool = cls(state["size"])
        pool.load_state_dict(state)
        return pool
