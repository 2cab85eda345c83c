"""Known answers of the selection diagnostics on hand-made picks."""

import numpy as np
import pytest

from kerasll.active.diagnostics import (
    class_balance,
    cross_entropy,
    describe_selection,
    describe_test_set,
    mean_pairwise_distance,
    pair_rank_accuracy,
    ranking_evidence,
    spearman,
)
from kerasll.active.view import ArrayModelView


def test_class_balance_of_uniform_one_class_and_skewed_picks():
    histogram, balance = class_balance([0, 1, 2, 3], 4)
    assert histogram.tolist() == [1, 1, 1, 1] and balance == pytest.approx(1.0)
    histogram, balance = class_balance([2, 2, 2], 4)
    assert histogram.tolist() == [0, 0, 3, 0] and balance == pytest.approx(0.0)
    # Two classes of four, equally often: log(2) / log(4) = 0.5.
    assert class_balance([0, 1, 0, 1], 4)[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"labels in \[0, 4\)"):
        class_balance([0, 4], 4)
    # One class (a one-class detector): counts, but no balance to speak of.
    histogram, balance = class_balance([0, 0], 1)
    assert histogram.tolist() == [2] and np.isnan(balance)


def test_cross_entropy_and_mean_pairwise_distance_known_answers():
    probabilities = np.array([[0.5, 0.5], [0.9, 0.1]])
    np.testing.assert_allclose(
        cross_entropy(probabilities, [0, 1]), [np.log(2), -np.log(0.1)]
    )
    # A 3-4-5 triangle: distances 3, 4 and 5, mean 4.
    assert mean_pairwise_distance([[0, 0], [3, 0], [0, 4]]) == pytest.approx(4.0)
    assert np.isnan(mean_pairwise_distance([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="n labels"):
        cross_entropy(probabilities, [0])


def test_rank_quality_of_perfect_reversed_and_constant_scores():
    loss = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.7])
    assert pair_rank_accuracy(loss, loss) == 1.0
    assert pair_rank_accuracy(loss, -loss) == 0.0
    assert spearman(loss, 2 * loss + 1) == pytest.approx(1.0)
    assert np.isnan(spearman(loss, np.ones(6)))
    tau, p_value = ranking_evidence(loss, loss)
    assert tau == pytest.approx(1.0) and p_value < 0.01
    tau, p_value = ranking_evidence(loss, -loss)
    assert tau == pytest.approx(-1.0) and p_value > 0.99


def test_describe_selection_on_hand_made_picks():
    # Items 0-3 are hard (loss log 2) and clustered; items 4-7 easy and spread.
    probabilities = np.array([[0.5, 0.5]] * 4 + [[0.99, 0.01]] * 4)
    features = np.array([[0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [10, 0], [0, 10], [10, 10]])
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 0])
    view = ArrayModelView(
        probabilities=probabilities,
        features=features,
        true_loss=cross_entropy(probabilities, labels),
    )
    result = describe_selection(view, [0, 1, 2, 3], [4, 5, 6, 7], labels[:4], 2)
    assert result["pick_histogram"] == [2, 2]
    assert result["pick_class_entropy"] == pytest.approx(1.0)
    assert result["pick_loss"] == pytest.approx(np.log(2))
    assert result["random_loss"] == pytest.approx(-np.log(0.99))
    assert result["pick_distance"] == 0.0
    assert result["random_distance"] == pytest.approx((10 * 4 + 2 * 10 * np.sqrt(2)) / 6)


def test_describe_test_set_with_and_without_a_head():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    true_loss = cross_entropy(probabilities, labels)
    plain = describe_test_set(
        ArrayModelView(probabilities=probabilities, true_loss=true_loss), 0.5
    )
    assert plain["metric"] == 0.5
    assert plain["rank_accuracy"] is None and plain["head_spearman"] is None
    # Entropy orders the four items 0 < 2 < 1 < 3; the true loss 0 < 2 < 3 < 1.
    assert plain["entropy_spearman"] == pytest.approx(0.8)
    with_head = describe_test_set(
        ArrayModelView(
            probabilities=probabilities, predicted_loss=true_loss, true_loss=true_loss
        ),
        0.5,
    )
    assert with_head["rank_accuracy"] == 1.0
    assert with_head["head_spearman"] == pytest.approx(1.0)
