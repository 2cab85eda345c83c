"""Known answers of the batch rules, BADGE, the hybrid score and the draw."""

import numpy as np
import pytest
from scipy import stats

from kerasll.active.badge import gradient_factors, kmeans_plus_plus
from kerasll.active.batch import Draw
from kerasll.active.batch_rules import (
    RULES,
    Balanced,
    Diverse,
    Safe,
    Stochastic,
    Top,
    class_quotas,
)
from kerasll.active.errors import ProtocolError
from kerasll.active.scores import SCORES, Hybrid, Uncertainty, rank_fraction
from kerasll.active.strategies import (
    ComposedStrategy,
    CoreSetStrategy,
    RandomStrategy,
    get_strategy,
)
from kerasll.active.view import ArrayModelView


def _select(spec, view, candidates, budget, draw, labeled=()):
    return get_strategy(spec).select(
        view, np.asarray(candidates), budget, np.asarray(labeled, dtype=np.int64), draw
    )


@pytest.mark.parametrize("mode", ["power", "softmax"])
def test_stochastic_first_pick_frequencies_match_its_probabilities(mode):
    # Over 20,000 draws the first pick of Gumbel-top-k is a sample of p:
    # a chi-square goodness-of-fit test must not reject at 0.1%.
    scores = np.array([3.0, 1.0, 0.5, -2.0, 0.0, 2.5])
    rule = Stochastic(mode, temperature=0.7)
    probabilities = rule.probabilities(scores)
    view = ArrayModelView(predicted_loss=scores)
    strategy = get_strategy(f"predicted_loss+stochastic:mode={mode}:temperature=0.7")
    rng = np.random.default_rng(0)
    draws = 20_000
    counts = np.zeros(len(scores))
    for _ in range(draws):
        pick = strategy.select(view, np.arange(6), 1, np.array([]), rng).indices[0]
        counts[pick] += 1
    assert stats.chisquare(counts, probabilities * draws).pvalue > 1e-3
    # Stated tolerance: every frequency within 0.015 of its probability.
    np.testing.assert_allclose(counts / draws, probabilities, atol=0.015)


def test_stochastic_power_probabilities_are_softrank():
    probabilities = Stochastic("power", 1.0).probabilities(np.array([5.0, 1.0, 3.0]))
    expected = np.array([1 / 1, 1 / 3, 1 / 2])
    np.testing.assert_allclose(probabilities, expected / expected.sum())


def test_stochastic_at_a_huge_temperature_picks_what_random_picks():
    view = ArrayModelView(predicted_loss=np.random.default_rng(1).normal(size=100))
    draw = Draw.from_rng(np.random.default_rng(2), 80)
    candidates = np.arange(10, 90)
    random = _select("random", view, candidates, 15, draw)
    hot = _select("predicted_loss+stochastic:temperature=1e9", view, candidates, 15, draw)
    np.testing.assert_array_equal(random.indices, hot.indices)
    cold = _select("predicted_loss+stochastic:temperature=1e-6", view, candidates, 15, draw)
    top = _select("learning_loss_decoupled", view, candidates, 15, draw)
    np.testing.assert_array_equal(cold.indices, top.indices)


def test_class_quotas_are_equal_and_give_away_what_a_class_lacks():
    classes = np.array([0] * 10 + [1] * 10 + [2] * 2)
    assert class_quotas(classes, 9, 3).tolist() == [4, 3, 2]
    assert class_quotas(classes, 12, 3).tolist() == [5, 5, 2]
    assert class_quotas(classes, 3, 4).tolist() == [1, 1, 1, 0]
    assert class_quotas(classes, 22, 3).tolist() == [10, 10, 2]


def test_balanced_fills_each_predicted_class_by_the_score():
    # Predicted classes: items 0-5 class 0, 6-8 class 1, 9 class 2.
    probabilities = np.eye(3)[[0, 0, 0, 0, 0, 0, 1, 1, 1, 2]]
    loss = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 1.0, 3.0, 2.0, 0.5])
    view = ArrayModelView(probabilities=probabilities, predicted_loss=loss)
    draw = Draw.from_rng(np.random.default_rng(0), 10)
    selection = _select("learning_loss_balanced", view, np.arange(10), 6, draw)
    # Quotas 2/2/2 -> class 2 holds one item, so 3/2/1 -> top 3 of class 0,
    # top 2 of class 1, the one item of class 2; sorted by score.
    assert selection.indices.tolist() == [0, 1, 2, 7, 8, 9]
    top = _select("learning_loss_decoupled", view, np.arange(10), 6, draw)
    assert top.indices.tolist() == [0, 1, 2, 3, 4, 5]  # all one class


def test_balanced_and_badge_need_class_probabilities():
    class HeadOnlyView:  # e.g. a detector's view: no per-item class probabilities
        def predicted_loss(self, indices):
            return np.zeros(len(indices))

    for spec in ("learning_loss_balanced", "badge"):
        with pytest.raises(ValueError, match="class probabilities .* HeadOnlyView"):
            _select(spec, HeadOnlyView(), np.arange(5), 2, np.random.default_rng(0))


def test_badge_spreads_over_gradient_directions():
    # Four tight clusters of equally uncertain items in feature space: 4
    # picks land in the 4 clusters, one each, where top-K entropy takes them
    # all from one cluster.
    rng = np.random.default_rng(0)
    centers = 10.0 * np.eye(4)
    features = np.concatenate([c + rng.normal(scale=0.1, size=(25, 4)) for c in centers])
    probabilities = np.tile([0.4, 0.35, 0.25], (100, 1))
    probabilities[::7] = [0.45, 0.3, 0.25]  # a few less uncertain items
    view = ArrayModelView(probabilities=probabilities, features=features)
    for seed in range(10):
        picks = _select("badge", view, np.arange(100), 4, np.random.default_rng(seed))
        assert sorted(picks.indices // 25) == [0, 1, 2, 3]
    entropy = _select("entropy", view, np.arange(100), 4, np.random.default_rng(0))
    assert len(set(entropy.indices // 25)) == 1


def test_kmeans_plus_plus_distances_equal_explicit_embeddings():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(4), size=30)
    a, h = gradient_factors(probabilities, rng.normal(size=(30, 6)))
    embeddings = np.einsum("ic,id->icd", a, h).reshape(30, -1)
    chosen = kmeans_plus_plus(a, h, 10, np.random.default_rng(4))
    assert len(set(chosen.tolist())) == 10
    assert chosen[0] == np.argmax((embeddings**2).sum(axis=1))
    # The same seeding on explicit embeddings (identity factor) matches.
    explicit = kmeans_plus_plus(
        embeddings, np.ones((30, 1)), 10, np.random.default_rng(4)
    )
    np.testing.assert_array_equal(chosen, explicit)


def test_hybrid_is_the_rank_average_of_head_and_uncertainty():
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01]])
    loss = np.array([4.0, 1.0, 2.0, 3.0])
    view = ArrayModelView(probabilities=probabilities, predicted_loss=loss)
    score = Hybrid("entropy", head_weight=0.5)(view, np.arange(4))
    head = np.array([4, 1, 2, 3]) / 4
    entropy = np.array([2, 4, 3, 1]) / 4
    np.testing.assert_allclose(score, (head + entropy) / 2)
    np.testing.assert_allclose(rank_fraction([1.0, 1.0, 3.0]), [0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="head_weight"):
        Hybrid("entropy", head_weight=1.5)


# One bad value per parameter of every score, batch rule and strategy class.
PARAMETER_BAD = [
    (Uncertainty, "measure", "variance"),
    (Hybrid, "measure", None),
    (Hybrid, "head_weight", 1.5),
    (Stochastic, "mode", "linear"),
    (Stochastic, "temperature", True),
    (Balanced, "within", "bottom"),
    (Balanced, "temperature", "2"),
    (Diverse, "shortlist_factor", True),
    (Diverse, "chunk_size", 2.5),
    (Safe, "audit_share", 1.0),
    (Safe, "significance", float("nan")),
    (RandomStrategy, "stream", "other"),
    (CoreSetStrategy, "chunk_size", 0),
    (ComposedStrategy, "head_training", "sometimes"),
]
_COMPOSED = {"score": Uncertainty(), "rule": Top()}


@pytest.mark.parametrize("cls, name, value", PARAMETER_BAD)
def test_each_bad_parameter_is_refused_by_name(cls, name, value):
    arguments = {**(_COMPOSED if cls is ComposedStrategy else {}), name: value}
    with pytest.raises(
        ProtocolError, match=f"^Expected {name} to be .*Received: {name}="
    ):
        cls(**arguments)


def test_every_parameter_is_declared_and_has_a_bad_value():
    import inspect

    classes = [cls for cls, _ in SCORES.values()] + list(RULES.values())
    classes += [RandomStrategy, CoreSetStrategy, ComposedStrategy]
    declared = set()
    for cls in set(classes):
        parameters = inspect.signature(cls.__init__).parameters.values()
        names = {
            p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD
        } - {"self"}
        if cls is ComposedStrategy:
            names -= {"score", "rule", "base_name"}
        assert names == set(getattr(cls, "parameter_constraints", {})), cls
        declared |= {(cls, name) for name in names}
    assert declared == {(cls, name) for cls, name, _ in PARAMETER_BAD}


@pytest.mark.parametrize(
    "spec, arguments",
    [
        ("predicted_loss+stochastic", {"temperature": True}),
        ("predicted_loss+stochastic", {"temperature": "2"}),
        ("learning_loss_diverse", {"shortlist_factor": True}),
        ("learning_loss_safe:audit_share=0", {}),
    ],
)
def test_specs_reach_the_same_check(spec, arguments):
    with pytest.raises(ProtocolError, match="^Expected .* to be "):
        get_strategy(spec, **arguments)


@pytest.mark.parametrize("budget", [2.5, float("nan"), "3", True, 0, 6])
def test_a_budget_that_is_not_an_integer_in_range_is_refused(budget):
    view = ArrayModelView(predicted_loss=np.zeros(6))
    message = "^Expected budget to be .*Received: budget="
    with pytest.raises(ProtocolError, match=message):
        _select("random", view, range(5), budget, np.random.default_rng(0))
