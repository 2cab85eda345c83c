"""`kerasll-score` through click's CliRunner: exit codes and one-line errors."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from serving_fixtures import models, random_images, write_images  # noqa: F401

from kerasll_serving.cli import main


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_pool") / "pool.npy"
    np.save(path, random_images(120, seed=11))
    return str(path)


def invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


def assert_one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0]


def test_scores_and_prints_provider_and_one_summary_line(models, pool, tmp_path):
    out = tmp_path / "picks.csv"
    result = invoke(models["gray"], pool, "--k", 5, "--out", out, "--batch-size", 32,
                    "--providers", "cpu", "--threads", 1)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "Provider: CPUExecutionProvider"
    assert lines[-1].startswith("Scored 120 of 120 items (0 skipped, 0 NaN) with "
                                "CPUExecutionProvider [local]")
    assert "items/s" in lines[-1] and str(out) in lines[-1]
    assert len(lines) == 2  # No progress bar: stderr is not a terminal.
    assert len(list(csv.DictReader(open(out)))) == 5


def test_auto_provider_line_explains_a_gpu_fallback(models, pool, tmp_path):
    result = invoke(models["gray"], pool, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0].startswith("Provider: ")


def test_quiet_prints_nothing(models, pool, tmp_path):
    result = invoke(models["gray"], pool, "--out", tmp_path / "picks.jsonl", "--quiet")
    assert result.exit_code == 0 and result.output == ""
    assert len(open(tmp_path / "picks.jsonl").readlines()) == 100


def test_k_above_pool_warns_and_still_succeeds(models, pool, tmp_path):
    result = invoke(models["gray"], pool, "--k", 500, "--out", tmp_path / "p.csv",
                    "--quiet")
    assert result.exit_code == 0
    assert "k=500 is larger than the pool (120 items)" in result.stderr
    assert len(open(tmp_path / "p.csv").readlines()) == 121


def test_model_without_metadata(models, pool, tmp_path):
    result = invoke(models["bare"], pool, "--out", tmp_path / "p.csv")
    assert_one_line_error(result, "Expected an ONNX model exported by kerasll")


def test_explicit_cuda_that_cannot_run_is_an_error(models, pool, tmp_path):
    import onnxruntime

    session = onnxruntime.InferenceSession(
        models["gray"], providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if "CUDAExecutionProvider" in session.get_providers():
        pytest.skip("CUDA works on this machine")
    result = invoke(models["gray"], pool, "--out", tmp_path / "p.csv",
                    "--providers", "cuda")
    assert_one_line_error(result, "CUDAExecutionProvider")


def test_wrong_array_shape(models, tmp_path):
    np.save(tmp_path / "rgb.npy", random_images(3, channels=3))
    result = invoke(models["gray"], tmp_path / "rgb.npy", "--out", tmp_path / "p.csv")
    assert_one_line_error(result, "Expected pool items of shape (8, 8, 1)")


def test_empty_pool(models, tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke(models["gray"], tmp_path / "empty", "--out", tmp_path / "p.csv")
    assert_one_line_error(result, "Received a directory with none")


def test_bad_output_extension(models, pool, tmp_path):
    result = invoke(models["gray"], pool, "--out", tmp_path / "picks.xlsx")
    assert_one_line_error(result, "ending in .csv or .jsonl")


def test_corrupt_images_are_skipped_and_reported(models, tmp_path):
    write_images(tmp_path / "pool", random_images(5))
    (tmp_path / "pool" / "zz.png").write_bytes(b"junk")
    out = tmp_path / "picks.csv"
    result = invoke(models["gray"], tmp_path / "pool", "--out", out, "--k", 2)
    assert result.exit_code == 0
    assert "(1 skipped, 0 NaN)" in result.stderr
    rows = list(csv.DictReader(open(str(out) + ".errors.csv")))
    assert [os.path.basename(row["item"]) for row in rows] == ["zz.png"]


def test_truncated_npy_is_a_one_line_error(models, tmp_path):
    np.save(tmp_path / "pool.npy", random_images(10))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "pool.npy").read_bytes()[:-64])
    result = invoke(models["gray"], tmp_path / "cut.npy", "--out", tmp_path / "p.csv")
    assert_one_line_error(result, "cut.npy'. Received only 576: the file is truncated")


def test_unwritable_all_scores_is_a_one_line_error(models, pool, tmp_path):
    (tmp_path / "scores.csv.partial").mkdir()  # The stream cannot be opened.
    result = invoke(models["gray"], pool, "--out", tmp_path / "p.csv",
                    "--all-scores", tmp_path / "scores.csv")
    assert_one_line_error(result, "Expected to write the every-score file")
    assert "scores.csv.partial" in result.stderr


def test_uint16_pool_beyond_255_for_a_uint8_model_is_a_one_line_error(models,
                                                                     tmp_path):
    images = random_images(10).astype(np.uint16)
    images[-1] = 256
    np.save(tmp_path / "wide.npy", images)
    result = invoke(models["gray"], tmp_path / "wide.npy", "--out", tmp_path / "p.csv",
                    "--batch-size", 4)
    assert_one_line_error(result, "Received values in [")
    assert "(uint16) in rows 8-9 of" in result.stderr
    assert "wrap them around (e.g. 256 -> 0)" in result.stderr


@pytest.mark.parametrize("arguments, fragment", [
    (["--k", "0"], "Invalid value for '--k'"),
    (["--provider", "opencl"], "Invalid value for '--provider' / '--providers'"),
    (["--batch-size", "-3"], "Invalid value for '--batch-size'"),
    (["--ray-address", "auto"], "--ray-address and --num-actors need --engine ray"),
    (["--engine", "spark"], "Invalid value for '--engine'"),
])
def test_usage_errors_exit_2(models, pool, tmp_path, arguments, fragment):
    result = invoke(models["gray"], pool, "--out", tmp_path / "p.csv", *arguments)
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_files_and_out_are_usage_errors(models, pool, tmp_path):
    missing = invoke(tmp_path / "none.onnx", pool, "--out", tmp_path / "p.csv")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("Error: Invalid value for 'MODEL'")
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert invoke(models["gray"], pool).exit_code == 2  # --out is required.


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "kerasll-score")
    completed = subprocess.run([script, "--help"], capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0
    assert "--all-scores" in completed.stdout and "--num-actors" in completed.stdout
