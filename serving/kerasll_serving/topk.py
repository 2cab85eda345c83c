"""A running top-K by predicted loss over a stream of batches.

Order: higher predicted loss first; NaN losses rank after every number; ties
go to the lower pool index. That total order makes the picks independent of
batch boundaries, so streaming, resumed and Ray runs agree with a full sort.
Memory is K + one batch: each push selects with `np.argpartition`, never a
sort of the pool.
"""

import numpy as np


class TopK:
    """Keeps the K highest-loss items seen so far, with their task columns.

    Args:
        k: how many items to keep (>= 1).
    """

    def __init__(self, k):
        self.k = int(k)
        self.index = np.empty(0, dtype=np.int64)
        self.loss = np.empty(0, dtype=np.float64)
        self.columns = {}

    def __len__(self):
        return len(self.index)

    def push(self, index, loss, columns):
        """Adds a batch and drops everything outside the top K.

        Args:
            index: pool indices of the batch (int64, length B).
            loss: their predicted losses (length B; NaN allowed).
            columns: dict of per-item arrays (length B on axis 0) kept alongside.
        """
        if not len(index):
            return
        if not len(self.index):
            self.columns = {name: values[:0] for name, values in columns.items()}
        index = np.concatenate([self.index, np.asarray(index, dtype=np.int64)])
        loss = np.concatenate([self.loss, np.asarray(loss, dtype=np.float64)])
        merged = {
            name: np.concatenate([self.columns[name], columns[name]])
            for name in self.columns
        }
        keep = select_top(loss, index, self.k)
        self.index, self.loss = index[keep], loss[keep]
        self.columns = {name: values[keep] for name, values in merged.items()}

    def ranked(self):
        """Returns `(index, loss, columns)` of the kept items, best first."""
        order = rank_order(self.loss, self.index)
        columns = {name: values[order] for name, values in self.columns.items()}
        return self.index[order], self.loss[order], columns

    def state(self):
        """Returns the kept items as a dict of arrays (for checkpoints)."""
        state = {"index": self.index, "loss": self.loss}
        state.update({"column:" + name: values
                      for name, values in self.columns.items()})
        return state

    @classmethod
    def from_state(cls, k, state):
        """Rebuilds a `TopK` from `state()`.

        Args:
            k: how many items to keep.
            state: the dict returned by `state()`.

        Returns:
            The `TopK`.
        """
        top = cls(k)
        top.index = np.asarray(state["index"], dtype=np.int64)
        top.loss = np.asarray(state["loss"], dtype=np.float64)
        top.columns = {
            name[len("column:"):]: np.asarray(values)
            for name, values in state.items()
            if name.startswith("column:")
        }
        return top


def select_top(loss, index, k):
    """Positions of the K best items, in no particular order.

    Args:
        loss: predicted losses (NaN allowed).
        index: pool indices, the tie-breaker.
        k: how many to select.

    Returns:
        An int array of positions into `loss`.
    """
    if len(loss) <= k:
        return np.arange(len(loss))
    is_nan = np.isnan(loss)
    key = np.where(is_nan, -np.inf, loss)
    threshold = key[np.argpartition(-key, k - 1)[:k]].min()
    above = np.flatnonzero(key > threshold)
    tied = np.flatnonzero(key == threshold)
    tied = tied[np.lexsort((index[tied], is_nan[tied]))]
    return np.concatenate([above, tied[: k - len(above)]])


def rank_order(loss, index):
    """The permutation that sorts items best first (see the module docstring).

    Args:
        loss: predicted losses (NaN allowed).
        index: pool indices, the tie-breaker.

    Returns:
        An int array of positions, best first.
    """
    is_nan = np.isnan(loss)
    key = np.where(is_nan, -np.inf, loss)
    return np.lexsort((index, is_nan, -key))


def top_indices(scores, k):
    """Positions of the `k` highest scores, best first, in the order above.

    The one top-K of kerasll: strategies, export verification, the demo and
    the scorer rank the same way (NaN last, ties to the lower position).

    Args:
        scores: 1-D scores (NaN allowed).
        k: how many to return (all when there are fewer; none for k <= 0).

    Returns:
        An int64 array of at most `k` positions into `scores`.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if int(k) <= 0:
        return np.zeros(0, dtype=np.int64)
    positions = select_top(scores, np.arange(len(scores)), int(k))
    return positions[rank_order(scores[positions], positions)]
