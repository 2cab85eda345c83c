"""Reusing a results folder never deletes a file the experiment did not write."""

import pytest
from click.testing import CliRunner

from kerasll.active import folder
from kerasll_cli.demo import check_demo_folder, demo_config
from kerasll.active.errors import OutputExistsError
from kerasll.active.state import CycleRecord, ExperimentState, run_key
from kerasll_cli import main


def _save_state(out, config, runs):
    """Saves a state.json recording `runs`: (strategy, trial, completed cycles)."""
    state = ExperimentState(config, fingerprint="f")
    for strategy, trial, cycles in runs:
        records = [
            CycleRecord(strategy, trial, cycle, labeled=10, metric=0.5)
            for cycle in range(cycles)
        ]
        state.runs[run_key(strategy, trial)] = {
            "strategy": strategy,
            "trial": trial,
            "cycles": [record.to_dict() for record in records],
        }
    out.mkdir(exist_ok=True)
    state.save(out)


def _touch(out, *names):
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(name)


def _listing(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_overwrite_removes_only_what_the_saved_experiment_wrote(tmp_path):
    out = tmp_path / "results"
    _save_state(out, {"dataset": "digits"}, [("random", 0, 2), ("entropy", 1, 1)])
    written = [
        "results.csv",
        "summary.md",
        "curves.png",
        "models/random-trial0.keras",
        "models/entropy-trial1.keras",
        "weights/random-trial0-cycle1.weights.h5",
        "weights/entropy-trial1-cycle0.weights.h5",
    ]
    users = [
        "models/my-model.keras",
        "models/random-trial7.keras",
        "weights/pretrained.weights.h5",
        "notes.txt",
    ]
    _touch(out, *written, *users)
    folder.prepare(out, overwrite=True)
    assert _listing(out) == sorted(users)


def test_overwrite_without_a_readable_state_keeps_every_model(tmp_path):
    out = tmp_path / "results"
    _touch(out, "results.csv", "models/my-model.keras", "weights/w.weights.h5")
    (out / "state.json").write_text("{not json")
    folder.prepare(out, overwrite=True)
    assert _listing(out) == ["models/my-model.keras", "weights/w.weights.h5"]


def test_an_empty_or_new_folder_is_fine_for_the_demo(tmp_path):
    (tmp_path / "empty").mkdir()
    assert check_demo_folder(tmp_path / "empty") is False
    assert check_demo_folder(tmp_path / "new") is False


def test_an_earlier_demo_output_is_recognised(tmp_path):
    out = tmp_path / "demo-output"
    _save_state(out, demo_config(cycles=2, epochs=1).to_dict(), [])
    _touch(out, "picks.png", "my-notes.txt")
    assert check_demo_folder(out) is True


@pytest.mark.parametrize("config", [None, {"dataset": "cifar10", "strategies": []}])
def test_the_demo_refuses_a_folder_that_is_not_its_output(tmp_path, config):
    out = tmp_path / "work"
    out.mkdir()
    if config is not None:
        _save_state(out, config, [])
    _touch(out, "thesis.tex", "models/best.keras")
    before = _listing(out)
    with pytest.raises(OutputExistsError, match="earlier demo's output"):
        check_demo_folder(out)
    result = CliRunner().invoke(
        main, ["demo", "--out", str(out), "--cycles", "2", "--epochs", "1"]
    )
    assert result.exit_code == 1
    assert "Error: Expected a new or empty folder" in result.output
    assert _listing(out) == before


@pytest.mark.parametrize(
    "command, message",
    [
        (["simulate", "--dataset", "digits", "--budget", "0"],
         "Expected budget to be an integer >= 1. Received: budget=0"),
        (["simulate", "--epochs", "0"], "Received: epochs=0"),
        (["demo", "--cycles", "1"],
         "Expected cycles to be an integer >= 2. Received: cycles=1"),
        (["demo", "--epochs", "0"], "Received: epochs=0"),
    ],
)
def test_numbers_are_checked_once_by_the_library(tmp_path, command, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*command, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert not out.exists()
