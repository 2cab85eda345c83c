"""`kerasll simulate` end to end: outputs, kill and resume, bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from kerasll.active.experiment import ExperimentListener, run_experiment
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.records import read_results_csv
from kerasll.active.state import ExperimentState
from kerasll.active.training import TrainingConfig
from kerasll_cli import main
from kerasll.data import load_digits
from kerasll.tasks.classification import ClassificationTask

# Tiny settings: 2 trials x 2 strategies x 3 cycles of a few SGD steps each.
TINY = [
    "simulate",
    "--dataset",
    "digits",
    "--model",
    "small_cnn",
    "--width",
    "0.25",
    "--strategies",
    "learning_loss,random",
    "--initial",
    "30",
    "--budget",
    "30",
    "--subset",
    "90",
    "--cycles",
    "3",
    "--epochs",
    "2",
    "--trials",
    "2",
    "--batch-size",
    "32",
    "--seed",
    "7",
    "--run-eagerly",
]


def _simulate(*args):
    return CliRunner().invoke(main, [*TINY, *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted tiny run, shared by the tests that compare with it."""
    out = tmp_path_factory.mktemp("uninterrupted")
    result = _simulate("--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_simulate_writes_results_summary_and_curves(uninterrupted):
    out, output = uninterrupted
    records = read_results_csv(out / "results.csv")
    assert len(records) == 2 * 2 * 3
    assert {(r.strategy, r.trial) for r in records} == {
        (s, t) for s in ("learning_loss", "random") for t in (0, 1)
    }
    assert [r.labeled for r in records[:3]] == [30, 60, 90]
    assert all(0.0 <= r.metric <= 1.0 for r in records)
    assert all(
        (r.rank_accuracy is not None) == (r.strategy == "learning_loss")
        for r in records
    )
    summary = (out / "summary.md").read_text()
    assert "| learning_loss |" in summary and "Paired difference to `random`" in summary
    assert "trained from scratch each cycle" in summary
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".tmp-*"))
    # One line per cycle and the final table on stdout.
    assert "learning_loss          trial 1  cycle 2  labeled     90  accuracy" in output
    assert "| strategy | final (mean ± std) | trial 0 | trial 1 |" in output
    # Same initial set for every strategy within a trial; different across trials.
    state = ExperimentState.load(out)
    initial = {key: run["pool"]["labeled"][0] for key, run in state.runs.items()}
    assert initial["learning_loss/trial0"] == initial["random/trial0"]
    assert initial["learning_loss/trial0"] != initial["learning_loss/trial1"]


def _wait_for_cycles(state_path, process, cycles, timeout=240):
    """Polls the saved state until run 0 completed `cycles` cycles.

    results.csv is rewritten just after state.json, so it is waited for too:
    a kill between the two writes would leave it one cycle behind.
    """
    results_path = state_path.parent / "results.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if state_path.exists() and results_path.exists():
            runs = json.loads(state_path.read_text())["runs"]
            done = len(runs.get("learning_loss/trial0", {}).get("cycles", []))
            if done >= cycles and len(read_results_csv(results_path)) >= cycles:
                return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_run_killed_during_cycle_2_resumes_to_identical_results(
    uninterrupted, tmp_path
):
    reference, _ = uninterrupted
    out = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [
        sys.executable,
        "-c",
        "from kerasll_cli import main; main()",
        *TINY,
        "--out",
        str(out),
    ]
    with open(tmp_path / "log.txt", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        try:
            reached = _wait_for_cycles(out / "state.json", process, cycles=2)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert reached, (tmp_path / "log.txt").read_text()
    partial = read_results_csv(out / "results.csv")
    assert 2 <= len(partial) < 12  # killed mid-run, after cycle 1 was saved
    assert not (out / "summary.md").exists()

    refused = CliRunner().invoke(main, [*TINY, "--out", str(out)])
    assert refused.exit_code == 1 and "--resume" in refused.output

    resumed = _simulate("--out", str(out), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed" in resumed.output
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()
    assert (out / "summary.md").read_text() == (reference / "summary.md").read_text()
    saved, expected = ExperimentState.load(out), ExperimentState.load(reference)
    assert {k: r["pool"] for k, r in saved.runs.items()} == {
        k: r["pool"] for k, r in expected.runs.items()
    }


class _CrashAt(ExperimentListener):
    def __init__(self, cycle):
        self.cycle = cycle

    def cycle_started(self, strategy, trial, cycle, labeled, epochs):
        if cycle == self.cycle:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_warm_start_resume_matches_an_uninterrupted_run(tmp_path):
    digits = ClassificationTask(load_digits())
    config = ExperimentConfig(
        dataset="digits",
        model="small_cnn",
        width=0.25,
        strategies=("learning_loss",),
        initial_size=30,
        budget=30,
        subset_size=60,
        cycles=3,
        trials=1,
        seed=3,
        warm_start=True,
        training=TrainingConfig(
            epochs=1, batch_size=32, head_units=8, run_eagerly=True
        ),
    )
    full = run_experiment(config, digits, tmp_path / "full")
    assert [r.warm_start for r in full.records] == [False, True, True]
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, digits, tmp_path / "crashed", listener=_CrashAt(2))
    assert (
        tmp_path / "crashed" / "weights" / "learning_loss-trial0-cycle1.weights.h5"
    ).exists()
    resumed = run_experiment(config, digits, tmp_path / "crashed", resume=True)
    assert resumed.records == [
        type(r)(**{**r.to_dict(), "seconds": s.seconds})
        for r, s in zip(full.records, resumed.records)
    ]
    assert (tmp_path / "crashed" / "results.csv").read_text() == (
        tmp_path / "full" / "results.csv"
    ).read_text()
    assert not list((tmp_path / "crashed" / "weights").iterdir())  # cleaned up


def _write_npz(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8),
        "y_train": np.arange(40) % 2,
        "x_test": rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8),
        "y_test": np.arange(10) % 2,
        "class_names": np.array(["even", "odd"]),
    }
    arrays.update(changes)
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--initial", "1000", "--budget", "500", "--subset", "500"],
            "1000 + 2 x 500 = 2000 labels for a pool of 1437",
        ),
        (["--subset", "20"], "subset_size=20 < budget=30"),
        (["--strategies", "learning_loss,bald"], "Received: 'bald'"),
        (
            ["--model", "vgg"],
            "['mobilenet_v2', 'resnet18', 'small_cnn']. Received: model='vgg'",
        ),
        (["--dataset", "cifar10", "--data", "/nonexistent/c.npz"], "No such file"),
        (["--resume"], "start without --resume"),
    ],
)
def test_bad_inputs_fail_with_one_line_before_training(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [*TINY, "--out", str(out), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert "cycle 0" not in result.output
    assert not (out / "state.json").exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"y_train": np.array([0, 1, 2, 1] * 10)}, "Expected y_train labels in [0, 2)"),
        ({"y_test": np.arange(9) % 2}, "10 x_test images and 9 y_test labels"),
        (
            {"x_train": np.zeros((0, 8, 8, 1), np.uint8), "y_train": np.zeros(0, int)},
            "Expected a non-empty train split",
        ),
    ],
)
def test_bad_data_fails_before_training(tmp_path, changes, message):
    path = _write_npz(tmp_path / "data.npz", **changes)
    result = CliRunner().invoke(
        main,
        [
            *TINY,
            "--dataset",
            path,
            "--out",
            str(tmp_path / "o"),
            "--initial",
            "4",
            "--budget",
            "2",
            "--subset",
            "4",
        ],
    )
    assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.slow
def test_resume_with_a_different_configuration_is_refused(uninterrupted, tmp_path):
    reference, _ = uninterrupted
    out = tmp_path / "copy"
    out.mkdir()
    before = (reference / "state.json").read_text()
    (out / "state.json").write_text(before)
    result = CliRunner().invoke(
        main, [*TINY, "--out", str(out), "--resume", "--budget", "20"]
    )
    assert result.exit_code == 1
    assert "budget=20 (saved: 30)" in result.output and "--overwrite" in result.output
    assert (out / "state.json").read_text() == before


@pytest.mark.slow
def test_existing_results_are_never_silently_overwritten(uninterrupted, tmp_path):
    reference, _ = uninterrupted
    out = tmp_path / "existing"
    out.mkdir()
    (out / "results.csv").write_text("precious\n")
    result = CliRunner().invoke(main, [*TINY, "--out", str(out)])
    assert (
        result.exit_code == 1
        and "pass --resume to continue it or --overwrite" in result.output
    )
    both = CliRunner().invoke(
        main, [*TINY, "--out", str(out), "--resume", "--overwrite"]
    )
    assert both.exit_code == 1 and "not both" in both.output
    assert (out / "results.csv").read_text() == "precious\n"


def _mixed_size_folder(root):
    from PIL import Image

    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(20):
            size = (8, 8) if index % 2 else (10, 12)
            Image.new("L", size, color=10 * index).save(root / label / f"{index}.png")
    return str(root)


def _one_line_error(result, message):
    assert result.exit_code == 1, result.output
    assert message in result.output, result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_corrupt_npz_is_one_line_before_training(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"PK\x03\x04 this zip stops here")
    result = CliRunner().invoke(
        main, [*TINY, "--dataset", str(path), "--out", str(tmp_path / "o")]
    )
    _one_line_error(result, "Expected a readable .npz archive (np.savez) at")
    assert "data.npz" in result.output


def test_image_size_option_reaches_the_folder_loader(tmp_path):
    folder = _mixed_size_folder(tmp_path / "mixed")
    out = str(tmp_path / "o")
    unsized = CliRunner().invoke(main, [*TINY, "--dataset", folder, "--out", out])
    _one_line_error(unsized, "(--image-size HEIGHT WIDTH, or image_size=")
    # Resized, the folder loads; the run then stops at the next check (M < K).
    sized = CliRunner().invoke(
        main,
        [
            *TINY,
            "--dataset",
            folder,
            "--out",
            out,
            "--image-size",
            "8",
            "8",
            "--subset",
            "20",
        ],
    )
    _one_line_error(sized, "subset_size=20 < budget=30")
    digits = CliRunner().invoke(main, [*TINY, "--out", out, "--image-size", "8", "8"])
    _one_line_error(digits, "only with a folder of images")
    assert not (tmp_path / "o" / "state.json").exists()


class _EpochLog(ExperimentListener):
    def __init__(self):
        self.epochs = []

    def cycle_started(self, strategy, trial, cycle, labeled, epochs):
        self.epochs.append((strategy, cycle, epochs))


def _shared_config(strategies):
    return ExperimentConfig(
        dataset="digits",
        model="small_cnn",
        width=0.25,
        strategies=strategies,
        initial_size=30,
        budget=30,
        subset_size=90,
        cycles=3,
        trials=1,
        seed=5,
        warm_start=True,
        warm_start_epochs=1,
        training=TrainingConfig(epochs=2, batch_size=32, head_units=8, run_eagerly=True),
    )


@pytest.mark.slow
def test_shared_first_cycle_diagnostics_and_warm_start_epochs(tmp_path):
    digits = ClassificationTask(load_digits())
    log = _EpochLog()
    together = run_experiment(
        _shared_config(("learning_loss_safe", "random", "entropy")),
        digits,
        tmp_path / "together",
        listener=log,
    )
    alone = run_experiment(_shared_config(("entropy",)), digits, tmp_path / "alone")
    # entropy reuses random's first-cycle model (both train plainly): same numbers
    # as when it trains its own.
    entropy = [r for r in together.records if r.strategy == "entropy"]
    assert [(r.metric, r.pick_histogram) for r in entropy] == [
        (r.metric, r.pick_histogram) for r in alone.records
    ]
    assert [epochs for _, cycle, epochs in log.epochs] == [2, 1, 1] * 3
    by_cycle = {(r.strategy, r.cycle): r for r in together.records}
    safe_first = by_cycle[("learning_loss_safe", 0)]
    assert safe_first.head_share == 0.0  # no evidence yet: all audit
    assert safe_first.head_spearman is not None and safe_first.rank_accuracy is not None
    assert by_cycle[("random", 0)].head_share is None
    assert sum(by_cycle[("random", 0)].pick_histogram) == 30
    assert by_cycle[("random", 2)].pick_histogram is None  # the last cycle picks nothing
    # The selection and the random batch it is compared with share the subset.
    assert by_cycle[("random", 0)].random_loss == by_cycle[("entropy", 0)].random_loss
    audits = together.state.run("learning_loss_safe", 0)["audits"]
    assert [len(a["true_loss"]) for a in audits[:1]] == [30]
    assert read_results_csv(together.paths["results"]) == [
        type(r)(**{**r.to_dict(), "seconds": 0.0}) for r in together.records
    ]
