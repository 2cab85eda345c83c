"""Provider choice: auto falls back to the CPU, explicit requests are strict."""

import onnxruntime
import pytest

from serving_fixtures import models  # noqa: F401 (fixture)

from kerasll_serving import ModelError, PoolScorer, ProviderError
from kerasll_serving.session import CPU, CUDA, open_session


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
