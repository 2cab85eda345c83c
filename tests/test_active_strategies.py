"""Known-answer tests of the query strategies and greedy k-center."""

import re

import numpy as np
import pytest

from kerasll.active.errors import ProtocolError, UnknownStrategyError
from kerasll.active.kcenter import greedy_k_center, min_distances
from kerasll.active.batch_rules import Diverse
from kerasll.active.strategies import (
    DECOUPLED,
    JOINT,
    NAMED,
    PLAIN,
    STRATEGIES,
    RandomStrategy,
    Selection,
    get_strategy,
    parse_strategies,
)
from kerasll.active.view import ArrayModelView, MissingOutputError

RNG_SEED = 0


def _select(name, view, candidates, budget, labeled=(), **kwargs):
    strategy = get_strategy(name, **kwargs)
    return strategy.select(
        view,
        np.asarray(candidates),
        budget,
        np.asarray(labeled, dtype=np.int64),
        np.random.default_rng(RNG_SEED),
    )


# Pool of 6 items; item 5 is labeled, 0-4 are candidates.
PROBABILITIES = np.array(
    [
        [0.98, 0.01, 0.01],  # 0: confident everywhere
        [1 / 3, 1 / 3, 1 / 3],  # 1: uniform, most uncertain by every measure
        [0.50, 0.48, 0.02],  # 2: small margin, low entropy
        [0.40, 0.30, 0.30],  # 3: high entropy, larger margin
        [0.55, 0.25, 0.20],  # 4
        [1.00, 0.00, 0.00],  # 5 (labeled)
    ]
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("entropy", [1, 3, 4]),  # 1.099, 1.089, 0.997 (item 2: 0.777)
        ("margin", [1, 2, 3]),  # margins 0, 0.02, 0.10 (item 4: 0.30)
        ("least_confidence", [1, 3, 2]),  # 1 - max p: 0.67, 0.60, 0.50
    ],
)
def test_uncertainty_strategies_known_answers(name, expected):
    selection = _select(name, ArrayModelView(probabilities=PROBABILITIES), range(5), 3)
    assert selection.indices.tolist() == expected
    assert np.all(np.diff(selection.scores) <= 0)


def test_learning_loss_is_top_k_predicted_loss_with_stable_ties():
    losses = np.array([0.1, 2.0, 0.5, 2.0, 3.0, 9.0])
    view = ArrayModelView(predicted_loss=losses)
    selection = _select("learning_loss", view, [0, 1, 2, 3, 4], 3)
    assert selection.indices.tolist() == [4, 1, 3]  # tie 1/3 broken by order
    assert selection.scores.tolist() == [3.0, 2.0, 2.0]
    # Only candidates are eligible: item 5 has the highest loss but is not one.
    assert 5 not in selection.indices


def test_random_picks_distinct_candidates_reproducibly():
    view = ArrayModelView()
    first = _select("random", view, np.arange(10, 60), 20)
    second = _select("random", view, np.arange(10, 60), 20)
    assert len(set(first.indices.tolist())) == 20
    assert set(first.indices.tolist()) <= set(range(10, 60))
    np.testing.assert_array_equal(first.indices, second.indices)
    assert first.scores is None


def test_coreset_is_greedy_k_center_from_the_labeled_set():
    # 1-D features: labeled item at 0; candidates at 1, 2, 10, 11.
    features = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    view = ArrayModelView(features=features)
    selection = _select("coreset", view, [1, 2, 3, 4], 2, labeled=[0])
    # 11 is farthest from 0; then 2 is farthest from {0, 11} (2 vs 1, 1, ...).
    assert selection.indices.tolist() == [4, 2]
    np.testing.assert_allclose(selection.scores, [11.0, 2.0])


def test_diverse_learning_loss_skips_near_duplicates():
    # Items 0-2: duplicate high-loss images; 3: distinct, slightly lower loss,
    # as far from the labeled item 5 as they are (a tie the higher loss wins);
    # 4: far away but low loss (outside the c*K shortlist).
    features = np.array(
        [[5.0, 0.0], [5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [-9.0, -9.0], [0.0, 0.0]]
    )
    losses = np.array([3.0, 2.9, 2.8, 2.5, 0.1, 0.0])
    view = ArrayModelView(features=features, predicted_loss=losses)
    plain = _select("learning_loss", view, range(5), 2)
    diverse = _select(
        "learning_loss_diverse", view, range(5), 2, labeled=[5], shortlist_factor=2
    )
    assert plain.indices.tolist() == [0, 1]
    assert diverse.indices.tolist() == [0, 3]
    np.testing.assert_allclose(diverse.scores, [3.0, 2.5])


def test_diverse_with_factor_one_equals_learning_loss_set():
    rng = np.random.default_rng(1)
    view = ArrayModelView(
        features=rng.normal(size=(50, 4)), predicted_loss=rng.random(50)
    )
    plain = _select("learning_loss", view, range(40), 10)
    diverse = _select(
        "learning_loss_diverse", view, range(40), 10, labeled=[45], shortlist_factor=1
    )
    assert set(plain.indices.tolist()) == set(diverse.indices.tolist())


def test_diverse_rejects_factor_below_one():
    with pytest.raises(ValueError, match="shortlist_factor=0.5"):
        Diverse(shortlist_factor=0.5)


def test_greedy_k_center_is_the_same_for_any_chunk_size():
    rng = np.random.default_rng(2)
    points, centers = rng.normal(size=(300, 8)), rng.normal(size=(257, 8))
    brute = np.sqrt(((points[:, None] - centers[None]) ** 2).sum(-1)).min(1)
    for chunk in (1, 10, 64, 10_000):
        np.testing.assert_allclose(
            min_distances(points, centers, chunk), brute, atol=1e-9
        )
    picks = [greedy_k_center(points, 25, centers, chunk)[0] for chunk in (7, 4096)]
    np.testing.assert_array_equal(*picks)
    assert len(set(picks[0].tolist())) == 25


def test_greedy_k_center_without_centers_and_with_duplicates():
    points = np.array([[0.0], [0.0], [0.0], [4.0]])
    chosen, distances = greedy_k_center(points, 3)
    assert chosen.tolist() == [0, 3, 1]  # never the same point twice
    assert distances[0] == np.inf and distances[2] == 0.0


def test_registry_lists_valid_names_for_unknown_ones():
    assert set(NAMED) == {
        "learning_loss",
        "learning_loss_balanced",
        "learning_loss_diverse",
        "learning_loss_decoupled",
        "learning_loss_safe",
        "learning_loss_stochastic",
        "random",
        "random_control",
        "entropy",
        "margin",
        "least_confidence",
        "coreset",
        "badge",
    }
    assert "predicted_loss+stochastic" in STRATEGIES and "hybrid+top" in STRATEGIES
    with pytest.raises(UnknownStrategyError, match="Received: 'entropyy'") as error:
        get_strategy("entropyy")
    assert f"Expected a strategy from {list(NAMED)}" in str(error.value)
    with pytest.raises(UnknownStrategyError, match=r"'coreset', 'entropy'"):
        parse_strategies("random,entropyy")
    assert parse_strategies(" learning_loss, random,learning_loss") == [
        "learning_loss",
        "random",
    ]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("learning_loss_safe:audit_shar=0.2", r"Received: \['audit_shar'\]"),
        ("learning_loss_safe:audit_share", "Expected parameters as key=value"),
        ("entropy+nothing", "Received: 'entropy\\+nothing'"),
    ],
)
def test_malformed_specs_are_refused_by_name(spec, match):
    with pytest.raises(UnknownStrategyError, match=match):
        get_strategy(spec)


@pytest.mark.parametrize(
    "spec, kwargs, accepted",
    [
        ("learning_loss_safe", {"audit_shar": 0.2}, "'audit_share'"),
        ("hybrid+stochastic:temp=2", {}, "'temperature'"),
        ("random", {"seed": 1}, "'stream'"),
    ],
)
def test_an_unknown_parameter_name_lists_the_accepted_ones(spec, kwargs, accepted):
    base = re.escape(spec.split(":")[0])
    with pytest.raises(
        UnknownStrategyError, match=f"^Expected parameters of '{base}' from \\[.*"
        f"{accepted}.*\\]. Received: \\['(audit_shar|temp|seed)'\\]"
    ):
        get_strategy(spec, **kwargs)


def test_a_type_error_inside_a_strategy_surfaces_as_a_bug(monkeypatch):
    from kerasll.active import strategies

    class Broken(RandomStrategy):
        def __init__(self, stream=0):
            raise TypeError("a bug in the constructor")

    monkeypatch.setitem(strategies._OWN, "random", (Broken, {}))
    with pytest.raises(TypeError, match="a bug in the constructor"):
        get_strategy("random")


def test_a_spec_configures_the_strategy_and_names_what_differs():
    strategy = get_strategy("learning_loss_safe:audit_share=0.2")
    assert strategy.name == "learning_loss_safe:audit_share=0.2"
    assert strategy.get_config() == {
        "head_training": "decoupled", "audit_share": 0.2, "significance": 0.05,
    }
    assert get_strategy("learning_loss_safe:audit_share=0.1").name == (
        "learning_loss_safe"
    )
    composed = get_strategy("hybrid+stochastic:measure=margin:temperature=2")
    assert composed.name == "hybrid+stochastic:measure=margin:temperature=2.0"
    assert get_strategy(composed.name).get_config() == composed.get_config()
    with pytest.raises(ProtocolError, match="Received: temperature=0$"):
        get_strategy("predicted_loss+stochastic:temperature=0")


class _Mine(RandomStrategy):
    """A strategy of the user's own, under an unregistered name."""

    base_name = "mine"


class _Reversed(RandomStrategy):
    """A strategy of the user's own under a registered name: the registry
    would rebuild `random`, not this."""

    def _select(self, view, candidates, budget, labeled, draw, history):
        return Selection(candidates[draw.order()[::-1][:budget]])


def test_only_instances_the_registry_rebuilds_reach_the_config():
    from kerasll.active.protocol import ExperimentConfig

    safe = get_strategy("learning_loss_safe:audit_share=0.3")
    config = ExperimentConfig(strategies=[RandomStrategy(), safe])
    assert config.strategies == ("random", "learning_loss_safe:audit_share=0.3")
    assert config.to_dict()["strategy_configs"][safe.name] == safe.get_config()
    for strategy in (_Mine(), _Reversed()):
        with pytest.raises(UnknownStrategyError, match="rebuilds from the registry"):
            ExperimentConfig(strategies=[strategy])


def test_budget_larger_than_candidates_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="budget=6"):
        _select(
            "learning_loss", ArrayModelView(predicted_loss=np.zeros(6)), range(5), 6
        )


def test_strategy_asking_for_a_missing_output_says_so():
    with pytest.raises(MissingOutputError, match="predicted_loss"):
        _select(
            "learning_loss", ArrayModelView(probabilities=PROBABILITIES), range(5), 2
        )


def test_how_each_strategy_trains_its_model():
    trainings = {name: get_strategy(name).head_training for name in NAMED}
    assert {name for name, how in trainings.items() if how == JOINT} == {
        "learning_loss",
        "learning_loss_diverse",
    }
    assert {name for name, how in trainings.items() if how == DECOUPLED} == {
        "learning_loss_decoupled",
        "learning_loss_safe",
        "learning_loss_stochastic",
        "learning_loss_balanced",
    }
    assert get_strategy("learning_loss_safe").uses_loss_head
    assert not get_strategy("entropy").uses_loss_head
    assert get_strategy("predicted_loss+top:head_training=joint").head_training == JOINT
    assert get_strategy("entropy+stochastic").head_training == PLAIN
    with pytest.raises(ProtocolError, match="head_training='plain'"):
        get_strategy("predicted_loss+top:head_training=plain")
    with pytest.raises(UnknownStrategyError, match=r"Received: \['training'\]"):
        get_strategy("predicted_loss+top:training=joint")
