"""Common random numbers every cycle, the A/A control, strategy parameters.

Tiny `kerasll simulate` runs on the embedded digits: the pairing must hold
in every cycle, not only the first, and a strategy's parameters must travel
from the command line to the state, the summary and `--resume`.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerasll.active.seeds import generator
from kerasll.active.strategies import get_strategy
from kerasll_cli import main

SAFE_WITHOUT_SHARE = "learning_loss_safe:significance=1e-12"  # never earns a share
STRATEGIES = f"random,random_control,{SAFE_WITHOUT_SHARE}"
TINY = [
    "simulate", "--dataset", "digits", "--model", "small_cnn", "--width", "0.25",
    "--strategies", STRATEGIES, "--initial", "30", "--budget", "20",
    "--subset", "60", "--cycles", "4", "--epochs", "1", "--trials", "1",
    "--batch-size", "32", "--seed", "3", "--run-eagerly",
]


def _simulate(out, *args, tiny=TINY):
    return CliRunner().invoke(main, [*tiny, "--out", str(out), *args])


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("paired")
    result = _simulate(out)
    assert result.exit_code == 0, result.output
    return out


def _labeled_per_cycle(state, strategy):
    return state["runs"][f"{strategy}/trial0"]["pool"]["labeled"]


@pytest.mark.slow
def test_a_strategy_without_head_share_picks_what_random_picks_every_cycle(paired_run):
    state = json.loads((paired_run / "state.json").read_text())
    random = _labeled_per_cycle(state, "random")
    safe = _labeled_per_cycle(state, get_strategy(SAFE_WITHOUT_SHARE).name)
    assert len(random) == 4  # the initial set and 3 selections
    for cycle, (ours, theirs) in enumerate(zip(safe, random)):
        assert sorted(ours) == sorted(theirs), f"cycle {cycle} differs"
    metrics = {
        run["strategy"]: [c["metric"] for c in run["cycles"]]
        for run in state["runs"].values()
    }
    assert metrics["random"] == metrics[get_strategy(SAFE_WITHOUT_SHARE).name]


@pytest.mark.slow
def test_the_control_differs_from_random_only_by_its_stream(paired_run):
    state = json.loads((paired_run / "state.json").read_text())
    random = _labeled_per_cycle(state, "random")
    control = _labeled_per_cycle(state, "random_control")
    assert random[0] == control[0]  # the same initial set
    assert sorted(random[1]) != sorted(control[1])
    # Cycle 0's candidates are the first 60 unlabeled items in the trial's
    # pool order, shared; each arm takes the 20 with its stream's highest keys.
    pool_size = state["runs"]["random/trial0"]["pool"]["size"]
    order = generator(3, "pool-order", 0).permutation(pool_size)
    candidates = order[~np.isin(order, random[0])][:60]
    for stream, picks in (("shared", random[1]), ("control", control[1])):
        keys = generator(3, "keys", stream, 0, 0).random(pool_size)[candidates]
        expected = candidates[np.argsort(-keys, kind="stable")[:20]]
        assert picks == expected.tolist()


@pytest.mark.slow
def test_a_rerun_is_identical(paired_run, tmp_path):
    result = _simulate(tmp_path / "again")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "results.csv").read_text() == (
        paired_run / "results.csv"
    ).read_text()


@pytest.mark.slow
def test_strategy_parameters_reach_state_summary_and_resume(tmp_path):
    tiny = list(TINY)
    tiny[tiny.index("--strategies") + 1] = "random,learning_loss_safe:audit_share=0.2"
    tiny[tiny.index("--cycles") + 1] = "2"
    out = tmp_path / "run"
    result = _simulate(out, tiny=tiny)
    assert result.exit_code == 0, result.output
    state = json.loads((out / "state.json").read_text())
    name = "learning_loss_safe:audit_share=0.2"
    assert state["config"]["strategies"] == ["random", name]
    assert state["config"]["strategy_configs"][name] == {
        "head_training": "decoupled", "audit_share": 0.2, "significance": 0.05,
    }
    summary = (out / "summary.md").read_text()
    assert f"`{name}` (head_training decoupled, audit_share 0.2, significance 0.05)" in (
        summary
    )
    assert (out / "results.csv").read_text().count(name) == 2
    # The same spec resumes (nothing left to run); another value is refused.
    assert _simulate(out, "--resume", tiny=tiny).exit_code == 0
    tiny[tiny.index("--strategies") + 1] = "random,learning_loss_safe:audit_share=0.3"
    before = (out / "state.json").read_text()
    refused = _simulate(out, "--resume", tiny=tiny)
    assert refused.exit_code == 1
    assert "Expected the configuration of the results being resumed" in refused.output
    assert "audit_share=0.3" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert (out / "state.json").read_text() == before


def test_a_malformed_strategy_spec_is_one_line_before_any_output(tmp_path):
    tiny = list(TINY)
    tiny[tiny.index("--strategies") + 1] = "random,learning_loss_safe:audit_shar=0.2"
    result = _simulate(tmp_path / "out", tiny=tiny)
    assert result.exit_code == 1
    assert "Received: ['audit_shar']" in result.output
    assert not (tmp_path / "out").exists()
