"""The Ray engine picks exactly what the local engine picks."""

import builtins
import csv
import sys

import numpy as np
import pytest

from serving_fixtures import models, random_images, write_images  # noqa: F401

from kerasll_serving import MissingDependencyError, PoolError, PoolScorer, ServingError

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def same_result(local, distributed):
    assert [p.index for p in distributed.picks] == [p.index for p in local.picks]
    assert [p.item for p in distributed.picks] == [p.item for p in local.picks]
    np.testing.assert_allclose([p.predicted_loss for p in distributed.picks],
                               [p.predicted_loss for p in local.picks], rtol=1e-6)
    assert [p.prediction for p in distributed.picks] == [
        p.prediction for p in local.picks]
    assert (distributed.scored, distributed.skipped, distributed.nan) == (
        local.scored, local.skipped, local.nan)
    assert distributed.errors == local.errors


def test_npy_pool_matches_local_engine_including_every_score_file(
        local_ray, models, tmp_path):
    images = random_images(700, seed=21)
    images[[5, 300]] = 0  # NaN predicted losses.
    np.save(tmp_path / "pool.npy", images)
    scorer = PoolScorer(models["regression"], batch_size=64)
    local = scorer.score(tmp_path / "pool.npy", k=30,
                         all_scores=tmp_path / "local.csv")
    distributed = scorer.score(tmp_path / "pool.npy", k=30, engine="ray",
                               all_scores=tmp_path / "ray.csv",
                               out=tmp_path / "picks.csv")
    same_result(local, distributed)
    assert distributed.engine == "ray" and distributed.nan == 2
    assert distributed.provider == "CPUExecutionProvider"
    local_rows = list(csv.DictReader(open(tmp_path / "local.csv")))
    ray_rows = list(csv.DictReader(open(tmp_path / "ray.csv")))
    assert [row["item"] for row in ray_rows] == [row["item"] for row in local_rows]
    assert [row["nan"] for row in ray_rows] == [row["nan"] for row in local_rows]
    # Same model, same items; the float32 maths may differ in the last bit.
    np.testing.assert_allclose([float(row["predicted_loss"]) for row in ray_rows],
                               [float(row["predicted_loss"]) for row in local_rows],
                               rtol=1e-5)
    assert (tmp_path / "picks.csv").exists()


def test_audit_sample_on_ray_equals_the_local_single_pass(local_ray, models,
                                                           tmp_path):
    np.save(tmp_path / "pool.npy", random_images(500, seed=23))
    scorer = PoolScorer(models["gray"], batch_size=32)
    local = scorer.score(tmp_path / "pool.npy", k=10, audit=40, seed=6)
    # 16 batches: each hands on its own candidates, the driver merges them.
    distributed = scorer.score(tmp_path / "pool.npy", k=10, audit=40, seed=6,
                               engine="ray")
    same_result(local, distributed)
    assert [p.index for p in distributed.audit] == [p.index for p in local.audit]
    assert [p.role for p in distributed.audit] == [p.role for p in local.audit]
    np.testing.assert_allclose([p.predicted_loss for p in distributed.audit],
                               [p.predicted_loss for p in local.audit], rtol=1e-6)
    assert len(local.audit) == 40


def test_image_directory_with_corrupt_files_matches_local_engine(
        local_ray, models, tmp_path):
    write_images(tmp_path / "pool", random_images(90, channels=3, size=10, seed=22))
    (tmp_path / "pool" / "sub" / "bad.png").write_bytes(b"junk")
    scorer = PoolScorer(models["rgb"], batch_size=16)
    local = scorer.score(tmp_path / "pool", k=12)
    distributed = scorer.score(tmp_path / "pool", k=12, engine="ray", num_actors=1)
    same_result(local, distributed)
    assert distributed.skipped == 1


def test_worker_errors_come_back_typed(local_ray, models, tmp_path, monkeypatch):
    np.save(tmp_path / "pool.npy", random_images(10))
    scorer = PoolScorer(models["gray"])
    scorer.providers = "tensorrt"  # Listed by a GPU build, fails on the actors.
    import onnxruntime
    if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build does not list TensorRT")
    with pytest.raises(ServingError, match="TensorrtExecutionProvider"):
        scorer.score(tmp_path / "pool.npy", k=2, engine="ray")


def test_compressed_npz_is_refused_by_ray(local_ray, models, tmp_path):
    np.savez_compressed(tmp_path / "pool.npz", x=random_images(10))
    with pytest.raises(PoolError, match="compressed .npz"):
        PoolScorer(models["gray"]).score(tmp_path / "pool.npz", k=2, engine="ray")


def test_resume_is_local_only(models, tmp_path):
    np.save(tmp_path / "pool.npy", random_images(10))
    with pytest.raises(ServingError, match="does not resume"):
        PoolScorer(models["gray"]).score(tmp_path / "pool.npy", k=2, engine="ray",
                                         resume=True, out=tmp_path / "p.csv")


def test_missing_ray_names_the_extra(models, tmp_path, monkeypatch):
    np.save(tmp_path / "pool.npy", random_images(10))
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.delitem(sys.modules, "kerasll_serving.ray_engine", raising=False)
    with pytest.raises(MissingDependencyError,
                       match=r'pip install "kerasll-serving\[ray\]"'):
        PoolScorer(models["gray"]).score(tmp_path / "pool.npy", k=2, engine="ray")


def test_unreachable_cluster_is_a_one_line_cli_error(models, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kerasll_serving.cli import main

    def refuse(address=None, **options):
        # What ray.init raises, after its retries, for a cluster that is down.
        raise ConnectionError(f"Could not find any running Ray instance at {address}.\n"
                              "Please ensure the head node is running.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    np.save(tmp_path / "pool.npy", random_images(10))
    result = CliRunner().invoke(main, [
        models["gray"], str(tmp_path / "pool.npy"), "--out", str(tmp_path / "p.csv"),
        "--engine", "ray", "--ray-address", "10.0.0.1:6379"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == (
        "Error: Expected a Ray cluster to join at address='10.0.0.1:6379'. Received: "
        "ConnectionError: Could not find any running Ray instance at 10.0.0.1:6379.")
