"""Provider choice: auto falls back to the CPU, explicit requests are strict."""

import hashlib
import os
import tempfile

import numpy as np
import onnxruntime
import pytest
from click.testing import CliRunner

from serving_fixtures import models  # noqa: F401 (fixture)

from kerasll_serving import ModelError, PoolScorer, ProviderError
from kerasll_serving import session as session_module
from kerasll_serving.cli import main
from kerasll_serving.session import (
    CPU,
    CUDA,
    TENSORRT,
    check_requested,
    open_session,
    provider_chain,
    tensorrt_cache_dir,
    tensorrt_options,
)

GPU_BUILD = [TENSORRT, CUDA, CPU]


def cuda_loads(model_path):
    if CUDA not in onnxruntime.get_available_providers():
        return False
    session = onnxruntime.InferenceSession(
        model_path, providers=[CUDA, CPU], enable_fallback=0)
    return CUDA in session.get_providers()


def test_auto_uses_a_provider_that_really_loaded(models):
    opened = open_session(models["gray"], "auto")
    assert opened.provider == opened.session.get_providers()[0]
    if not cuda_loads(models["gray"]):
        assert opened.provider == CPU
        if CUDA in onnxruntime.get_available_providers():
            assert "CUDAExecutionProvider" in opened.note
            assert "failed to load" in opened.note


def test_auto_probe_keeps_onnxruntime_error_logs_quiet(models, capfd):
    open_session(models["gray"], "auto")
    captured = capfd.readouterr()
    assert "Failed to load library" not in captured.err
    assert "EP Error" not in captured.out
    assert captured.out == ""


def test_explicit_cpu(models):
    scorer = PoolScorer(models["gray"], providers="cpu", threads=1)
    assert scorer.provider == CPU
    assert scorer.model.describe_provider() == f"Provider: {CPU}"


def test_explicit_provider_missing_from_build_names_available_ones(models, monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU])
    with pytest.raises(ProviderError) as raised:
        PoolScorer(models["gray"], providers="cuda")
    message = str(raised.value)
    assert "providers='cuda'" in message
    assert "Available: ['CPUExecutionProvider']" in message
    assert "['auto', 'cpu']" in message


def test_explicit_cuda_listed_but_failing_is_an_error_not_a_fallback(models):
    if CUDA not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build does not list CUDA")
    if cuda_loads(models["gray"]):
        scorer = PoolScorer(models["gray"], providers="cuda")
        assert scorer.provider == CUDA
        return
    with pytest.raises(ProviderError, match="listed by onnxruntime but failed to load"):
        PoolScorer(models["gray"], providers="cuda")


def test_full_provider_name_is_accepted(models):
    assert open_session(models["gray"], "CPUExecutionProvider").provider == CPU


def test_threads_and_optimisation_level_are_set(models):
    opened = open_session(models["gray"], "cpu", threads=1)
    options = opened.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == (
        onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)


@pytest.mark.parametrize("threads", [-1, 1.5, "2"])
def test_bad_threads(models, threads):
    with pytest.raises(ProviderError, match="threads"):
        open_session(models["gray"], "cpu", threads=threads)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        open_session(tmp_path / "nope.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="cannot load"):
        open_session(broken, "auto")
    with pytest.raises(ModelError, match="cannot load"):
        open_session(broken, "cpu")


@pytest.mark.parametrize("provider, available, expected", [
    (CPU, GPU_BUILD, [CPU]),
    (CUDA, GPU_BUILD, [CUDA, CPU]),
    (TENSORRT, GPU_BUILD, [(TENSORRT, {"trt_fp16_enable": True}), CUDA, CPU]),
    (TENSORRT, [TENSORRT, CPU], [(TENSORRT, {"trt_fp16_enable": True}), CPU]),
])
def test_provider_chain_for_an_injected_provider_list(provider, available, expected):
    assert provider_chain(provider, available, {"trt_fp16_enable": True}) == expected
    assert provider_chain(TENSORRT, available, None)[0] == TENSORRT


@pytest.mark.parametrize("asked, available, chosen", [
    ("auto", [CPU], "auto"),
    ("cpu", [CPU], CPU),
    ("CUDA", [CUDA, CPU], CUDA),
    ("tensorrt", GPU_BUILD, TENSORRT),
])
def test_requested_provider_present_is_chosen(asked, available, chosen):
    assert check_requested(asked, available) == chosen


@pytest.mark.parametrize("asked, available, offered", [
    ("cuda", [CPU], "['auto', 'cpu']"),
    ("tensorrt", [CUDA, CPU], "['auto', 'cpu', 'cuda']"),
    ("cuda", [TENSORRT, CPU], "['auto', 'cpu', 'tensorrt']"),
])
def test_requested_provider_absent_is_a_one_line_error(asked, available, offered):
    with pytest.raises(ProviderError) as raised:
        check_requested(asked, available)
    message = str(raised.value)
    assert "\n" not in message and f"providers={asked!r}" in message
    assert f"Expected providers in {offered}" in message
    assert f"Available: {available}" in message


@pytest.mark.parametrize("precision, fp16, int8", [
    ("fp32", False, False), ("fp16", True, False), ("int8", False, True)])
def test_tensorrt_options_follow_the_exported_precision(precision, fp16, int8,
                                                        tmp_path):
    options = tensorrt_options(precision, tmp_path / "cache")
    assert (options["trt_fp16_enable"], options["trt_int8_enable"]) == (fp16, int8)
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]
    assert options["trt_engine_cache_path"] == str(tmp_path / "cache")
    assert options["trt_timing_cache_path"] == str(tmp_path / "cache")


def test_tensorrt_cache_is_per_model_and_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tensorrt_cache_dir("ab" * 32)
    assert path == str(tmp_path / ("kerasll-tensorrt-" + "ab" * 8))
    assert not (tmp_path / ("kerasll-tensorrt-" + "ab" * 8)).exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "missing"))
    assert os.path.dirname(tensorrt_cache_dir("ab" * 32)) == tempfile.gettempdir()


def test_tensorrt_session_gets_options_from_the_model(models, tmp_path, monkeypatch):
    """With TensorRT listed (injected) and failing to load, the explicit
    request is an error, after a session was tried with the model's options."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: GPU_BUILD)
    tried = []
    real_try = session_module._try_create

    def try_create(model_path, threads, chain):
        tried.append(chain)
        if chain[0] != CPU:
            return None, RuntimeError("libnvinfer.so.10: cannot open shared object")
        return real_try(model_path, threads, chain)

    monkeypatch.setattr(session_module, "_try_create", try_create)
    with pytest.raises(ProviderError, match="TensorrtExecutionProvider to load"):
        PoolScorer(models["gray"], providers="tensorrt")
    chain = next(chain for chain in tried if chain[0] != CPU)
    name, options = chain[0]
    assert name == TENSORRT and chain[1:] == [CUDA, CPU]
    assert options["trt_fp16_enable"] is False  # The test model is fp32.
    sha = hashlib.sha256(open(models["gray"], "rb").read()).hexdigest()
    assert options["trt_engine_cache_path"] == str(
        tmp_path / f"kerasll-tensorrt-{sha[:16]}")


def test_cli_provider_absent_is_one_line_before_anything_is_written(
        models, tmp_path, monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU])
    np.save(tmp_path / "pool.npy", np.zeros((4, 8, 8, 1), dtype=np.uint8))
    out = tmp_path / "picks.csv"
    result = CliRunner().invoke(main, [models["gray"], str(tmp_path / "pool.npy"),
                                       "--out", str(out), "--provider", "tensorrt"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Expected providers in ['auto', 'cpu']")
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    ran = CliRunner().invoke(main, [models["gray"], str(tmp_path / "pool.npy"),
                                    "--out", str(out), "--provider", "cpu", "--quiet"])
    assert ran.exit_code == 0 and out.exists()
