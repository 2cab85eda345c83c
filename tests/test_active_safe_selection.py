"""Known answers of `learning_loss_safe`: it trusts the head as far as its audit shows.

A synthetic pool with a known true loss per item: a "perfect" head predicts
exactly that loss, a "noise" head predicts values independent of it. The
audit of the previous selection (the head's predicted and true losses of
random, unseen items) is built from the same head.
"""

import numpy as np
import pytest

from kerasll.active.batch import Audit
from kerasll.active.batch_rules import Safe
from kerasll.active.strategies import get_strategy
from kerasll.active.view import ArrayModelView

POOL, CANDIDATES, BUDGET, AUDIT_SIZE = 5000, 2000, 200, 200


def _heads(seed=0):
    rng = np.random.default_rng(seed)
    true_loss = rng.exponential(size=POOL)
    return true_loss, {"perfect": true_loss, "noise": rng.normal(size=POOL)}


def _audit(true_loss, predicted, rng):
    items = rng.choice(POOL, size=AUDIT_SIZE, replace=False)
    return Audit(score=predicted[items], true_loss=true_loss[items])


def _select(strategy, predicted, history, seed):
    rng = np.random.default_rng(seed)
    candidates = np.sort(rng.choice(POOL, size=CANDIDATES, replace=False))
    view = ArrayModelView(predicted_loss=predicted)
    selection = strategy.select(view, candidates, BUDGET, np.array([]), rng, history)
    top_k = candidates[np.argsort(-predicted[candidates], kind="stable")[:BUDGET]]
    return selection, top_k, candidates


def test_with_a_perfect_head_it_picks_like_learning_loss_but_for_the_audit():
    true_loss, heads = _heads()
    strategy = get_strategy("learning_loss_safe")
    rng = np.random.default_rng(1)
    history = [_audit(true_loss, heads["perfect"], rng)]
    assert strategy.rule.share(history) == pytest.approx(0.9)  # tau = 1, capped
    selection, top_k, candidates = _select(strategy, heads["perfect"], history, seed=2)
    # 20 picks are the random audit slice; the other 180 are the top 180 by
    # predicted loss among the remaining candidates, all in learning_loss's top K.
    assert len(selection.audit) == 20
    rest = np.setdiff1d(candidates, selection.audit)
    expected = rest[np.argsort(-heads["perfect"][rest], kind="stable")[:180]]
    np.testing.assert_array_equal(selection.indices[:180], expected)
    assert np.isin(selection.indices[:180], top_k).all()
    assert len(np.unique(selection.indices)) == BUDGET


def test_with_a_noise_head_it_picks_like_random():
    true_loss, heads = _heads()
    strategy = get_strategy("learning_loss_safe")
    overlaps, shares = [], []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        history = [_audit(true_loss, heads["noise"], rng)]
        shares.append(strategy.rule.share(history))
        selection, top_k, _ = _select(strategy, heads["noise"], history, seed)
        overlaps.append(len(np.intersect1d(selection.indices, top_k)) / BUDGET)
    # A one-sided test at 5%: the head gets a share in about 1 audit in 20,
    # and then a small one (tau near 0).
    assert sum(share > 0 for share in shares) <= 3
    assert max(shares) < 0.2
    # Random picks share K/M = 10% with the top-K on average.
    assert np.mean(overlaps) == pytest.approx(BUDGET / CANDIDATES, abs=0.03)


def test_first_selection_without_evidence_is_all_audit():
    _, heads = _heads()
    strategy = get_strategy("learning_loss_safe")
    for history in ([], [None]):
        selection, _, candidates = _select(strategy, heads["perfect"], history, 3)
        np.testing.assert_array_equal(np.sort(selection.audit), np.sort(selection.indices))
        assert np.isin(selection.indices, candidates).all()


def test_share_follows_the_latest_audit_and_a_partly_informative_head():
    true_loss, heads = _heads()
    rng = np.random.default_rng(4)
    informative = true_loss + rng.normal(scale=1.0, size=POOL)
    strategy = get_strategy("learning_loss_safe")
    audits = [_audit(true_loss, heads["noise"], rng), _audit(true_loss, informative, rng)]
    share = strategy.rule.share(audits)
    assert 0.2 < share < 0.8  # tau of a noisy but real ranker
    assert strategy.rule.share(audits + [None]) == share
    assert strategy.rule.share(list(reversed(audits))) < 0.2


@pytest.mark.parametrize(
    "arguments, match",
    [
        ({"audit_share": 0.0}, "audit_share"),
        ({"audit_share": 1.0}, "audit_share"),
        ({"significance": float("nan")}, "significance"),
    ],
)
def test_bad_arguments_are_refused(arguments, match):
    with pytest.raises(ValueError, match=f"Expected {match} to be .* in \\(0, 1\\)"):
        Safe(**arguments)


def test_with_no_share_it_picks_exactly_what_random_picks():
    _, heads = _heads()
    safe, random = get_strategy("learning_loss_safe"), get_strategy("random")
    for seed in range(3):
        picks = [_select(s, heads["perfect"], [], seed)[0].indices for s in (safe, random)]
        np.testing.assert_array_equal(np.sort(picks[0]), np.sort(picks[1]))


def test_selection_is_a_pure_function_of_view_candidates_history_and_seed():
    true_loss, heads = _heads()
    history = [_audit(true_loss, heads["perfect"], np.random.default_rng(5))]
    strategy = get_strategy("learning_loss_safe")
    first, _, _ = _select(strategy, heads["perfect"], history, seed=6)
    second, _, _ = _select(strategy, heads["perfect"], history, seed=6)
    np.testing.assert_array_equal(first.indices, second.indices)
