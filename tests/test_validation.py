"""Each entry point's parameters refused by name, by the one validator
(`kerasll_serving.validation`; its known answers are in
serving/tests/test_serving_validation.py)."""

import numpy as np
import pytest

NAN, INF = float("nan"), float("inf")


# Every parameter of every entry point -----------------------------------------


def _learner_model():
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


TRAINING_BAD = {
    "epochs": [0, 2.5, True, None],
    "batch_size": [0, -1, 1.5],
    "learning_rate": [0, NAN, INF, -0.1],
    "momentum": [1.0, -0.1, NAN],
    "weight_decay": [-1e-4, NAN, INF],
    "lr_drop_fraction": [1.5, NAN],
    "lr_drop_factor": [0, INF],
    "detach_fraction": [-0.1, NAN],
    "margin": [-1, NAN, INF],
    "weight": [-1, NAN, INF, "heavy"],
    "head_units": [0, 1.5, True],
    "eval_batch_size": [0, 2.5],
    "run_eagerly": [1, "yes", None],
}


def test_every_training_parameter_is_declared():
    import dataclasses

    from kerasll.active.training import TrainingConfig

    names = {field.name for field in dataclasses.fields(TrainingConfig)}
    assert names == set(TrainingConfig.parameter_constraints) == set(TRAINING_BAD)


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in TRAINING_BAD.items() for value in values],
)
def test_training_config_refuses_each_bad_value_by_name(name, value):
    from kerasll.active.training import TrainingConfig

    with pytest.raises(ValueError, match=f"^Expected {name} to be .*Received: {name}="):
        TrainingConfig(**{name: value})


def test_training_config_stores_plain_numbers():
    from kerasll.active.training import TrainingConfig

    config = TrainingConfig(epochs=np.int64(3), margin=np.float32(0.5))
    assert type(config.epochs) is int and type(config.margin) is float


EXPERIMENT_BAD = {
    "dataset": [None, 3, "", " "],
    "model": [5],
    "width": [0, -1, NAN, INF, True],
    "strategies": [5, None],
    "initial_size": [0, 2.5, True],
    "budget": [0, -1, 1.5],
    "subset_size": [0, NAN],
    "cycles": [2.5, True, 0, "10"],
    "trials": [0, 1.0],
    "seed": [-1, 0.5, False],
    "warm_start": [1, "yes"],
    "warm_start_epochs": [0, 2.5],
    "training": [{"epochs": 2}],
    "task_kind": [None, 1],
}


def test_every_experiment_parameter_is_declared():
    import dataclasses

    from kerasll.active.protocol import ExperimentConfig

    names = {field.name for field in dataclasses.fields(ExperimentConfig)}
    assert names == set(ExperimentConfig.parameter_constraints)
    assert set(EXPERIMENT_BAD) == set(ExperimentConfig.parameter_constraints)


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in EXPERIMENT_BAD.items() for value in values],
)
def test_experiment_config_refuses_each_bad_value_by_name(name, value):
    from kerasll.active.errors import ProtocolError
    from kerasll.active.protocol import ExperimentConfig

    with pytest.raises(
        ProtocolError, match=f"^Expected {name} to be .*Received: {name}="
    ):
        ExperimentConfig(**{name: value})


LEARNER_BAD = {
    "taps": [5, None],
    "head_units": [0, 2.5, True],
    "margin": [-1, NAN, INF],
    "weight": [-0.1, INF, "heavy"],
    "objective": ["hinge", None],
    "detach_epoch": [-3, 1.5, True],
    "head_weight_decay": [-1e-4, NAN],
}


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in LEARNER_BAD.items() for value in values],
)
def test_loss_learner_refuses_each_bad_value_by_name(name, value):
    from kerasll.learner import LossLearner

    with pytest.raises(ValueError, match=f"^Expected {name} to be .*Received: {name}="):
        LossLearner(_learner_model(), **{name: value})


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model": "model.keras"}, TypeError, "model"),
        ({"taps": ["nope"]}, ValueError, "taps"),
    ],
)
def test_loss_learner_refuses_a_bad_model_or_taps(kwargs, error, match):
    from kerasll.learner import LossLearner

    arguments = {"model": _learner_model(), **kwargs}
    with pytest.raises(error, match=match):
        LossLearner(**arguments)


def test_every_learner_hyper_parameter_is_declared():
    import inspect

    from kerasll.learner import LossLearner

    names = set(inspect.signature(LossLearner.__init__).parameters)
    assert names - {"self", "model", "kwargs"} == set(LEARNER_BAD)
    assert set(LossLearner.parameter_constraints) == set(LEARNER_BAD)


def test_training_config_and_learner_share_one_declaration():
    from kerasll.active.training import TrainingConfig
    from kerasll.learner import LossLearner

    for name in ("margin", "weight", "head_units"):
        assert (TrainingConfig.parameter_constraints[name]
                is LossLearner.parameter_constraints[name])


def test_every_weight_decay_has_one_declaration():
    from kerasll.active.training import TrainingConfig
    from kerasll.detection import model as detection
    from kerasll.keypoints import model as keypoints
    from kerasll.learner import LossLearner
    from kerasll.models import WEIGHT_DECAY

    declared = [
        TrainingConfig.parameter_constraints["weight_decay"],
        LossLearner.parameter_constraints["head_weight_decay"],
        detection.PARAMETER_CONSTRAINTS["weight_decay"],
        keypoints.PARAMETER_CONSTRAINTS["weight_decay"],
    ]
    assert all(constraints is WEIGHT_DECAY for constraints in declared)


# kerasll simulate: one line, exit code 1, and no --out folder ------------------

SIMULATE_BAD = [
    (["--cycles", "0"], "Expected cycles to be an integer >= 1. Received: cycles=0"),
    (["--width", "nan"], "Expected width to be a finite number > 0"),
    (["--width", "inf"], "Received: width=inf"),
    (["--margin", "inf"], "Expected margin to be a finite number >= 0"),
    (["--margin", "nan"], "Received: margin=nan"),
    (["--weight", "-1"], "Expected weight to be a finite number >= 0"),
    (["--epochs", "0"], "Expected epochs to be an integer >= 1"),
    (["--learning-rate", "nan"], "Expected learning_rate to be a finite number > 0"),
    (["--learning-rate", "-inf"], "Received: learning_rate=-inf"),
    (["--batch-size", "0"], "Expected batch_size to be an integer >= 1"),
    (["--initial", "0"], "Expected initial_size to be an integer >= 1"),
    (["--budget", "-1"], "Expected budget to be an integer >= 1"),
    (["--subset", "0"], "Expected subset_size to be an integer >= 1"),
    (["--trials", "0"], "Expected trials to be an integer >= 1"),
    (["--seed", "-1"], "Expected seed to be an integer >= 0"),
    (["--warm-start-epochs", "0"], "Expected warm_start_epochs to be an integer"),
]


@pytest.mark.parametrize("extra, message", SIMULATE_BAD)
def test_simulate_refuses_bad_numbers_in_one_line_before_writing(
    tmp_path, extra, message
):
    from click.testing import CliRunner
    from kerasll_cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["simulate", "--dataset", "digits", *extra, "--out", str(out)]
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: Expected"), result.output
    assert message in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("dataset", ["cifar10", "missing.npz"])
def test_simulate_checks_the_protocol_before_loading_any_data(
    tmp_path, monkeypatch, dataset
):
    """No download and no data error before a protocol refusal; then the data."""
    import kerasll.data
    from click.testing import CliRunner
    from kerasll_cli import main

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the protocol was checked")

    monkeypatch.delenv("KERASLL_DATA", raising=False)
    monkeypatch.setattr(kerasll.data, "load_cifar10", no_loading)
    monkeypatch.setattr(kerasll.data, "load_npz", no_loading)
    out = tmp_path / "out"
    args = ["simulate", "--dataset", str(tmp_path / dataset), "--out", str(out)]
    if dataset == "cifar10":
        args[2] = "cifar10"
    result = CliRunner().invoke(main, [*args, "--width", "nan", "--cycles", "0"])
    assert result.exit_code == 1, result.output
    assert _lines(result) == [
        "Error: Expected width to be a finite number > 0. Received: width=nan"]
    assert not out.exists()


def test_simulate_refuses_a_missing_dataset_before_writing(tmp_path):
    from click.testing import CliRunner
    from kerasll_cli import main

    out = tmp_path / "out"
    missing = tmp_path / "none.npz"
    result = CliRunner().invoke(
        main, ["simulate", "--dataset", str(missing), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert _lines(result) == [
        f"Error: Expected an existing .npz file. Received: '{missing}'"]
    assert not out.exists()


NON_INTEGERS = [["--cycles", "2.5"], ["--cycles", "True"], ["--trials", "1e3"],
                ["--trials", "many"]]


def _lines(result):
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.mark.parametrize("extra", NON_INTEGERS)
def test_simulate_non_integers_are_refused_by_click_before_writing(tmp_path, extra):
    from click.testing import CliRunner
    from kerasll_cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["simulate", "--dataset", "digits", *extra, "--out", str(out)]
    )
    assert result.exit_code == 2
    assert _lines(result) == [
        f"Error: Invalid value for '{extra[0]}': '{extra[1]}' is not a valid "
        "integer."
    ], result.output
    assert not out.exists()


# Every command's usage errors (click's and the commands' own): one line, exit 2.
USAGE_ERRORS = [
    (["nope"], "Error: No such command 'nope'."),
    (["simulate", "--out"], "Error: Option '--out' requires an argument."),
    (["simulate", "--task", "sorting", "--out", "o"], "Invalid value for '--task'"),
    (["export", "m.keras", "--out", "m.onnx"], "Invalid value for 'MODEL'"),
    (["project", "init"], "Error: Missing argument 'DIRECTORY'."),
    (["project", "init", "p", "--task", "detection", "--keypoints", "figure"],
     "Error: Expected --classes"),
    (["project", "select", ".", "--k", "x"], "Invalid value for '--k'"),
    (["project", "--wait", "soon", "status", "."], "Invalid value for '--wait'"),
    (["score", "m.onnx", "pool", "--k", "2.5"], "Invalid value for '--k'"),
]


@pytest.mark.parametrize("args, message", USAGE_ERRORS)
def test_usage_errors_are_one_line_with_exit_code_2(tmp_path, monkeypatch, args,
                                                    message):
    from click.testing import CliRunner
    from kerasll_cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert len(_lines(result)) == 1 and message in result.output, result.output
    assert sorted(tmp_path.iterdir()) == []


def test_help_still_shows_usage():
    from click.testing import CliRunner
    from kerasll_cli import main

    for args in ([], ["--help"], ["project"], ["project", "init", "--help"]):
        result = CliRunner().invoke(main, args, prog_name="kerasll")
        assert result.output.startswith("Usage: kerasll"), (args, result.output)
