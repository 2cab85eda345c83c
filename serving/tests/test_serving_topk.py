"""The running top-K equals a full sort, whatever the batch boundaries."""

import numpy as np
import pytest

from kerasll_serving import topk
from kerasll_serving.topk import TopK, rank_order, select_top


def brute_force(loss, k):
    """Full sort: loss descending, NaN last, ties by lower index."""
    order = sorted(range(len(loss)),
                   key=lambda i: (np.isnan(loss[i]), -np.nan_to_num(loss[i], nan=0), i))
    return order[:k]


def stream(loss, k, batch_size):
    top = TopK(k)
    for start in range(0, len(loss), batch_size):
        index = np.arange(start, min(start + batch_size, len(loss)))
        top.push(index, loss[index], {"twice": 2 * index})
    return top


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("k", [1, 5, 50])
def test_streaming_top_k_equals_full_sort_with_ties_and_nan(batch_size, k):
    rng = np.random.default_rng(batch_size * 100 + k)
    loss = rng.integers(0, 20, size=300).astype(np.float64)  # Many ties.
    loss[rng.choice(300, size=30, replace=False)] = np.nan
    index, ranked_loss, columns = stream(loss, k, batch_size).ranked()
    assert index.tolist() == brute_force(loss, k)
    np.testing.assert_array_equal(ranked_loss, loss[index])
    np.testing.assert_array_equal(columns["twice"], 2 * index)


def test_nan_ranks_after_minus_infinity_and_fills_only_when_needed():
    loss = np.array([np.nan, -np.inf, 1.0, np.nan, 0.5])
    top = stream(loss, k=4, batch_size=2)
    index, _, _ = top.ranked()
    assert index.tolist() == [2, 4, 1, 0]
    assert len(top) == 4


def test_pool_smaller_than_k_keeps_everything_in_rank_order():
    loss = np.array([0.1, 0.9, 0.5])
    index, _, _ = stream(loss, k=10, batch_size=2).ranked()
    assert index.tolist() == [1, 2, 0]


def test_state_round_trip_then_more_batches_equals_uninterrupted():
    rng = np.random.default_rng(3)
    loss = rng.normal(size=500)
    first = stream(loss[:250], k=20, batch_size=50)
    restored = TopK.from_state(20, {name: np.array(values)
                                    for name, values in first.state().items()})
    for start in range(250, 500, 50):
        index = np.arange(start, start + 50)
        restored.push(index, loss[index], {"twice": 2 * index})
    expected = stream(loss, k=20, batch_size=50).ranked()
    actual = restored.ranked()
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_array_equal(actual[2]["twice"], expected[2]["twice"])


def test_memory_is_k_plus_one_batch(monkeypatch):
    merged_rows = []  # Rows of the K + batch buffer each push selects from.

    def spy(loss, index, k):
        assert len(loss) == len(index)
        merged_rows.append(len(loss))
        return select_top(loss, index, k)

    monkeypatch.setattr(topk, "select_top", spy)
    k, top, start = 5, TopK(5), 0
    sizes = [100, 1, 37, 100, 3] * 20
    for batch in sizes:
        index = np.arange(start, start + batch)
        loss = np.random.default_rng(start).random(batch)
        top.push(index, loss, {"twice": 2 * index, "vector": np.zeros((batch, 3))})
        start += batch
        kept = min(k, start)
        state = top.state()  # Everything the object holds between pushes.
        assert sorted(state) == ["column:twice", "column:vector", "index", "loss"]
        assert all(len(values) == kept for values in state.values()), {
            name: len(values) for name, values in state.items()}
        assert merged_rows[-1] <= k + batch
    assert len(merged_rows) == len(sizes)
    assert max(merged_rows) == k + max(sizes)  # Never the whole stream so far.


def test_select_top_and_rank_order_helpers_agree():
    loss = np.array([3.0, 1.0, 3.0, np.nan, 2.0])
    index = np.array([10, 11, 12, 13, 14])
    chosen = select_top(loss, index, 3)
    assert sorted(index[chosen].tolist()) == [10, 12, 14]
    assert index[rank_order(loss, index)].tolist() == [10, 12, 14, 11, 13]


@pytest.mark.parametrize("k", [0, 1, 5, 50, 400])
def test_top_indices_equals_full_sort_with_ties_and_nan(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 20, size=300).astype(np.float64)
    scores[rng.choice(300, size=30, replace=False)] = np.nan
    assert topk.top_indices(scores, k).tolist() == brute_force(scores, k)
