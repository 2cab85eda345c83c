import numpy as np
import pytest
import tensorflow as tf

from kerasll.losses import (
    loss_prediction_loss,
    margin_ranking_loss,
    mse_loss,
    pair_agreement,
    split_pairs,
)


def _value(tensor):
    return float(np.asarray(tensor))


def test_pairs_are_first_with_last():
    first, second = split_pairs(tf.constant([0.0, 1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(first, [0.0, 1.0])
    np.testing.assert_array_equal(second, [4.0, 3.0])


def test_ranking_loss_matches_hand_computation():
    true = tf.constant([3.0, 1.0, 2.0, 0.5])
    pred = tf.constant([0.2, 0.9, 0.4, 0.1])
    # Pairs (0, 3): l0 > l3 -> sign +1: max(0, -(0.2 - 0.1) + 1) = 0.9
    #       (1, 2): l1 < l2 -> sign -1: max(0, (0.9 - 0.4) + 1) = 1.5
    assert _value(margin_ranking_loss(true, pred)) == pytest.approx((0.9 + 1.5) / 2)


def test_ranking_loss_margin_and_satisfied_pairs():
    true = tf.constant([2.0, 0.0])
    pred = tf.constant([5.0, 1.0])  # correctly ordered by 4 > margin
    assert _value(margin_ranking_loss(true, pred, margin=1.0)) == 0.0
    assert _value(margin_ranking_loss(true, pred, margin=6.0)) == pytest.approx(2.0)


def test_ties_count_as_minus_one():
    true = tf.constant([1.0, 1.0])
    pred = tf.constant([0.5, 0.0])
    # sign -1: max(0, (0.5 - 0.0) + 1) = 1.5
    assert _value(margin_ranking_loss(true, pred)) == pytest.approx(1.5)


def test_odd_batch_drops_the_middle_sample():
    true = tf.constant([3.0, 100.0, 1.0])
    pred = tf.constant([0.0, -50.0, 0.0])
    # Only pair (0, 2): sign +1, max(0, -(0 - 0) + 1) = 1.0; the middle is ignored.
    assert _value(margin_ranking_loss(true, pred)) == pytest.approx(1.0)


@pytest.mark.parametrize("objective", ["ranking", "mse"])
def test_batch_of_one_and_empty_batch_give_zero_not_nan(objective):
    for size in (1, 0):
        true = tf.ones((size,))
        pred = tf.ones((size,)) * 3.0
        value = _value(loss_prediction_loss(true, pred, objective=objective))
        if objective == "ranking" or size == 0:
            assert value == 0.0
        else:
            assert value == pytest.approx(4.0)


def test_true_loss_receives_no_gradient():
    true = tf.Variable([3.0, 1.0])
    pred = tf.Variable([0.0, 0.5])
    with tf.GradientTape() as tape:
        value = margin_ranking_loss(true, pred)
    grad_true, grad_pred = tape.gradient(value, [true, pred])
    assert grad_true is None
    np.testing.assert_allclose(grad_pred, [-1.0, 1.0])


def test_mse_objective_known_answer():
    assert _value(mse_loss(tf.constant([1.0, 2.0]), tf.constant([2.0, 0.0]))) == (
        pytest.approx(2.5)
    )


def test_unknown_objective_is_rejected():
    with pytest.raises(ValueError, match="objective"):
        loss_prediction_loss(tf.ones(2), tf.ones(2), objective="hinge")


def test_pair_agreement_uses_the_same_tie_rule():
    true = tf.constant([3.0, 1.0, 1.0, 1.0, 0.0, 2.0])
    pred = tf.constant([1.0, 0.0, 0.0, 0.0, 5.0, 2.0])
    # Pairs (0,5): l 3>2, lhat 1<2 -> wrong; (1,4): l 1>0, lhat 0<5 -> wrong;
    #       (2,3): tie in l, lhat tie -> both "not greater" -> right.
    np.testing.assert_array_equal(pair_agreement(true, pred), [0.0, 0.0, 1.0])
