"""`kerasll export`: CLI round trip, bad input, and export in a fresh process."""

import os
import subprocess
import sys

import keras
import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner
from kerasll_serving.contract import ModelContract

from kerasll import LossLearner
from kerasll_cli import main

SHAPE = (12, 12, 3)


def _cnn():
    inputs = keras.Input(SHAPE, name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(
        16, 3, strides=2, padding="same", activation="relu", name="c2"
    )(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs, name="cli_cnn")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A briefly trained learner saved as .keras, plus raw pixel data files."""
    directory = tmp_path_factory.mktemp("saved")
    keras.utils.set_random_seed(0)
    learner = LossLearner(_cnn(), head_units=8, detach_epoch=None)
    learner.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (96, *SHAPE)).astype("uint8")
    learner.fit(pixels.astype("float32"), rng.integers(0, 3, 96), epochs=1, verbose=0)
    model_path = directory / "learner.keras"
    learner.save(model_path)
    np.save(directory / "pixels.npy", pixels)
    np.savez(directory / "pixels.npz", x=pixels, y=np.zeros(len(pixels)))
    np.save(directory / "wrong.npy", pixels[:, :8])
    plain = _cnn()
    plain.save(directory / "plain.keras")
    return {"dir": directory, "model": model_path, "learner": learner, "pixels": pixels}


def _outputs(path, x):
    session = onnxruntime.InferenceSession(
        os.fspath(path), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    values = session.run(None, {session.get_inputs()[0].name: x})
    return session, dict(zip(names, values))


def _assert_matches_keras(learner, path, pixels):
    _, got = _outputs(path, pixels)
    expected = learner.scoring_model().predict(pixels.astype("float32"), verbose=0)
    assert set(got) == {"logits", "predicted_loss"}
    for name, value in expected.items():
        value = np.asarray(value)
        allowed = 1e-4 * max(1.0, float(np.abs(value).max()))
        assert float(np.abs(got[name] - value).max()) <= allowed


def test_cli_round_trip(saved, tmp_path):
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(
        main,
        [
            "export", str(saved["model"]), "--out", str(out),
            "--verify", str(saved["dir"] / "pixels.npy"),
            "--input-dtype", "uint8", "--class-names", "cat, dog,bird",
        ],
    )
    assert result.exit_code == 0, result.output
    print("\n" + result.output)
    assert "max |diff|" in result.output and "predicted_loss" in result.output
    assert "96 items (verify_data)" in result.output
    session, _ = _outputs(out, saved["pixels"])
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert contract.class_names == ("cat", "dog", "bird")
    assert contract.input.dtype == "uint8" and contract.input.name == "pixels"
    _assert_matches_keras(saved["learner"], out, saved["pixels"])


@pytest.mark.slow
def test_cli_int8_with_npz_calibration(saved, tmp_path):
    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(
        main,
        [
            "export", str(saved["model"]), "--out", str(out), "--precision", "int8",
            "--calibration", str(saved["dir"] / "pixels.npz"), "--input-dtype", "uint8",
            "--min-top-overlap", "0.5", "--min-kendall-tau", "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "top-10% overlap" in result.output and "(min 0.50)" in result.output
    assert out.exists()


def _export(model, out, *extra):
    return CliRunner().invoke(main, ["export", str(model), "--out", str(out), *extra])


def _error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--precision", "int8"], "Expected --calibration for --precision int8"),
        (
            ["--verify", "{dir}/wrong.npy"],
            "Expected verify_data of shape (N, 12, 12, 3)",
        ),
        (["--opset", "7"], "Expected opset to be an integer in [13,"),
        (["--class-names", "a,b"], "Expected 3 class names"),
        (
            ["--input-dtype", "uint8", "--verify", "{dir}/pixels.npz",
             "--input-scale", "nan"],
            "Expected input_scale to be a finite number",
        ),
        (["--calibration", "{dir}/learner.keras", "--precision", "int8"],
         "Expected --calibration as a .npy or .npz file"),
    ],
)
def test_cli_bad_input_exits_1_with_one_line(saved, tmp_path, extra, match):
    out = tmp_path / "model.onnx"
    extra = [arg.format(dir=saved["dir"]) for arg in extra]
    result = _export(saved["model"], out, *extra)
    assert result.exit_code == 1, result.output
    assert match in _error_line(result)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "option, value, match",
    [
        # The ranges are to_onnx's, not a second rule in the CLI.
        ("--min-top-overlap", "1.5",
         "Expected min_top_overlap to be a finite number in [0, 1]"),
        ("--min-kendall-tau", "nan", "Received: min_kendall_tau=nan"),
    ],
)
def test_cli_bad_threshold_is_refused_before_data_or_model_loads(
    tmp_path, monkeypatch, option, value, match
):
    import kerasll_cli.export as export_cli

    def never(*args):
        pytest.fail("data or model loaded before the thresholds were checked")

    monkeypatch.setattr(export_cli, "load_array", never)
    monkeypatch.setattr(export_cli, "_load_learner", never)
    model = tmp_path / "model.keras"
    model.write_bytes(b"never read")
    result = _export(model, tmp_path / "m.onnx", option, value,
                     "--calibration", str(model))
    assert result.exit_code == 1, result.output
    assert match in _error_line(result)
    assert os.listdir(tmp_path) == ["model.keras"]


def test_cli_rejects_a_plain_keras_model(saved, tmp_path):
    result = _export(saved["dir"] / "plain.keras", tmp_path / "m.onnx")
    assert result.exit_code == 1
    assert "Expected learner to be a built kerasll.LossLearner" in _error_line(result)
    assert os.listdir(tmp_path) == []


def test_cli_unwritable_output(saved, tmp_path):
    out = tmp_path / "missing" / "m.onnx"
    result = _export(saved["model"], out)
    assert result.exit_code == 1
    assert "Expected the output's directory to exist" in _error_line(result)


def test_cli_unreadable_model(tmp_path):
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a zip")
    result = _export(bogus, tmp_path / "m.onnx")
    assert result.exit_code == 1
    assert "Could not load" in _error_line(result)
    assert os.listdir(tmp_path) == ["bogus.keras"]


@pytest.mark.slow
def test_export_in_a_fresh_process(saved, tmp_path):
    out = tmp_path / "fresh.onnx"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    completed = subprocess.run(
        [
            sys.executable, "-c", "from kerasll_cli import main; main()",
            "export", str(saved["model"]), "--out", str(out),
            "--verify", str(saved["dir"] / "pixels.npy"), "--precision", "fp16",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "fp16" in completed.stdout
    session, got = _outputs(out, saved["pixels"].astype("float32"))
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert contract.precision == "fp16"
    expected = saved["learner"].predict_loss(saved["pixels"].astype("float32"))
    allowed = 1e-2 * max(1.0, np.abs(expected).max())
    assert np.abs(got["predicted_loss"] - expected).max() < allowed


@pytest.mark.parametrize("option", ["MODEL", "--calibration", "--verify"])
def test_cli_refuses_an_output_that_is_an_input(saved, tmp_path, option):
    model = tmp_path / "learner.keras"
    model.write_bytes(saved["model"].read_bytes())
    calibration, verify = tmp_path / "calibration.npy", tmp_path / "verify.npy"
    for path in (calibration, verify):
        np.save(path, saved["pixels"])
    inputs = {"MODEL": model, "--calibration": calibration, "--verify": verify}
    # Spelled differently from the input, so only resolving the paths catches it.
    spelled = tmp_path / "." / inputs[option].name
    before = {path: path.read_bytes() for path in inputs.values()}
    result = _export(
        model, spelled, "--calibration", str(calibration), "--verify", str(verify)
    )
    assert result.exit_code == 1
    assert f"which is the {option} file" in _error_line(result)
    assert {path: path.read_bytes() for path in inputs.values()} == before
    assert sorted(os.listdir(tmp_path)) == sorted(path.name for path in before)


def test_cli_defaults_are_to_onnxs():
    """One source: each option's default is `to_onnx`'s (`--opset` None too)."""
    import inspect

    from kerasll.export import to_onnx
    from kerasll_cli.export import export_command

    library = inspect.signature(to_onnx).parameters
    shared = ["precision", "opset", "input_scale", "input_offset",
              "min_top_overlap", "min_kendall_tau"]
    options = {param.name: param.default for param in export_command.params}
    assert {name: options[name] for name in shared} == {
        name: library[name].default for name in shared}
