"""Resume: a run killed at any point, restarted with --resume, ends with the
same files as an uninterrupted run and never re-scores checkpointed batches."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from serving_fixtures import models, random_images, write_images  # noqa: F401

from kerasll_serving import CheckpointError, PoolScorer
from kerasll_serving.checkpoint import checkpoint_path

# Runs the real CLI in a fresh process. It counts every inference call
# (one per batch) in COUNT_FILE, and dies with os._exit (no cleanup, like
# SIGKILL) right after inference call KILL_AFTER_RUN returns, or inside the
# KILL_ON_CHECKPOINT-th checkpoint write, before its atomic rename.
DRIVER = r'''
import os, sys
import onnxruntime

count_file = os.environ["COUNT_FILE"]
kill_after_run = int(os.environ.get("KILL_AFTER_RUN", "0"))
kill_on_checkpoint = int(os.environ.get("KILL_ON_CHECKPOINT", "0"))
calls = {"run": 0, "checkpoint": 0}
original_run = onnxruntime.InferenceSession.run
original_replace = os.replace

def run(self, *args, **kwargs):
    result = original_run(self, *args, **kwargs)
    calls["run"] += 1
    with open(count_file, "a") as stream:
        stream.write("run\n")
    if calls["run"] == kill_after_run:
        os._exit(17)
    return result

def replace(source, target):
    if str(target).endswith(".ckpt.npz"):
        calls["checkpoint"] += 1
        if calls["checkpoint"] == kill_on_checkpoint:
            os._exit(17)
    return original_replace(source, target)

onnxruntime.InferenceSession.run = run
os.replace = replace
from kerasll_serving.cli import main
main(sys.argv[1:])
'''
BATCH_SIZE = 16
EVERY = 3


# The audit sample is part of the checkpoint: a resumed run keeps the same one.
AUDIT = ["--audit", "9", "--seed", "5"]


def run_cli(tmp_path, model, pool, out, all_scores, resume=False, extra=(), **kill):
    count_file = tmp_path / f"count-{len(os.listdir(tmp_path))}.txt"
    count_file.touch()
    env = dict(os.environ, COUNT_FILE=str(count_file),
               **{key.upper(): str(value) for key, value in kill.items()})
    command = [sys.executable, "-c", DRIVER, model, str(pool), "--k", "10",
               "--out", str(out), "--all-scores", str(all_scores),
               "--batch-size", str(BATCH_SIZE), "--checkpoint-every", str(EVERY),
               "--quiet", *extra] + (["--resume"] if resume else [])
    completed = subprocess.run(command, env=env, capture_output=True, text=True,
                               timeout=120)
    return completed, len(count_file.read_text().split())


def next_batch(out):
    with np.load(checkpoint_path(out)) as archive:
        return json.loads(str(archive["meta"]))["progress"]["next_batch"]


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    directory = tmp_path_factory.mktemp("resume_pools")
    np.save(directory / "pool.npy", random_images(200, seed=7))  # 13 batches.
    write_images(directory / "images", random_images(100, seed=8))  # 7 batches.
    (directory / "images" / "sub" / "bad.png").write_bytes(b"corrupt")
    return {"npy": directory / "pool.npy", "images": directory / "images",
            "npy-audit": directory / "pool.npy"}


@pytest.fixture(scope="module")
def reference(models, pools, tmp_path_factory):
    """Uninterrupted runs: output bytes by pool kind."""
    results = {}
    for kind, pool in pools.items():
        directory = tmp_path_factory.mktemp(f"reference_{kind}")
        out, scores = directory / "picks.csv", directory / "all.csv"
        completed, _ = run_cli(directory, models["gray"], pool, out, scores,
                               extra=AUDIT if kind == "npy-audit" else ())
        assert completed.returncode == 0, completed.stderr
        results[kind] = {
            "picks": out.read_bytes(),
            "scores": scores.read_bytes(),
            "errors": (directory / "picks.csv.errors.csv").read_bytes(),
        }
    return results


@pytest.mark.parametrize("kind, kill", [
    ("npy", {"kill_after_run": 1}),          # Before any checkpoint.
    ("npy", {"kill_after_run": 8}),          # Between checkpoints (after batch 6).
    ("npy", {"kill_after_run": 13}),         # During the last batch.
    ("npy", {"kill_on_checkpoint": 2}),      # Half-way through a checkpoint write.
    ("images", {"kill_after_run": 5}),       # Skipped items survive the restart.
    ("npy-audit", {"kill_after_run": 8}),    # The audit sample survives it too.
])
def test_killed_run_resumes_to_identical_outputs(models, pools, reference, tmp_path,
                                                 kind, kill):
    out, scores = tmp_path / "picks.csv", tmp_path / "all.csv"
    extra = AUDIT if kind == "npy-audit" else ()
    killed, runs_before = run_cli(tmp_path, models["gray"], pools[kind], out, scores,
                                  extra=extra, **kill)
    assert killed.returncode == 17, killed.stderr
    assert not out.exists()
    total = -(-(100 if kind == "images" else 200) // BATCH_SIZE)
    done = next_batch(out) if os.path.exists(checkpoint_path(out)) else 0
    assert done % EVERY == 0 and done <= runs_before
    resumed, runs_after = run_cli(tmp_path, models["gray"], pools[kind], out, scores,
                                  resume=True, extra=extra)
    assert resumed.returncode == 0, resumed.stderr
    assert runs_after == total - done  # Checkpointed batches are not re-scored.
    assert out.read_bytes() == reference[kind]["picks"]
    assert scores.read_bytes() == reference[kind]["scores"]
    assert (tmp_path / "picks.csv.errors.csv").read_bytes() == reference[kind]["errors"]
    assert not os.path.exists(checkpoint_path(out))
    assert [n for n in os.listdir(tmp_path)
            if n.startswith(".tmp-") or n.endswith(".partial")] == []


class Interrupt(BaseException):
    """Stands in for Ctrl-C in the in-process tests."""


def interrupted_run(scorer, pool, out, after, monkeypatch, **options):
    """Scores until `after` batches ran, then interrupts (checkpoint stays)."""
    original, calls = scorer.model.run, []

    def run(x):
        calls.append(len(x))
        if len(calls) > after:
            raise Interrupt
        return original(x)

    monkeypatch.setattr(scorer.model, "run", run)
    with pytest.raises(Interrupt):
        scorer.score(pool, k=5, out=out, checkpoint_every=2, **options)
    monkeypatch.setattr(scorer.model, "run", original)


def test_resumed_result_reports_where_it_restarted(models, pools, tmp_path,
                                                   monkeypatch):
    scorer = PoolScorer(models["gray"], batch_size=BATCH_SIZE)
    out = tmp_path / "picks.csv"
    interrupted_run(scorer, pools["npy"], out, 5, monkeypatch)
    result = scorer.score(pools["npy"], k=5, out=out, resume=True, checkpoint_every=2)
    fresh = scorer.score(pools["npy"], k=5)
    assert result.resumed_from == 4 and result.batches_run == 13 - 4
    assert result.scored == 200 and result.picks == fresh.picks
    assert "resumed at batch 4" in result.summary()


@pytest.mark.parametrize("change, pattern", [
    ({"batch_size": 8}, "batch_size: checkpoint 16, this run 8"),
    ({"k": 6}, "k: checkpoint 5, this run 6"),
    ({"all_scores": "all.csv"}, "different all_scores"),
    ({"touch_pool": True}, "different pool"),
])
def test_mismatched_checkpoint_is_a_clear_error(models, pools, tmp_path, monkeypatch,
                                                change, pattern):
    pool = tmp_path / "pool.npy"
    pool.write_bytes(pools["npy"].read_bytes())
    out = tmp_path / "picks.csv"
    interrupted_run(PoolScorer(models["gray"], batch_size=BATCH_SIZE), pool, out, 3,
                    monkeypatch)
    if change.get("touch_pool"):
        np.save(pool, random_images(200, seed=99))
    scorer = PoolScorer(models["gray"], batch_size=change.get("batch_size", BATCH_SIZE))
    all_scores = change.get("all_scores")
    with pytest.raises(CheckpointError, match=pattern) as raised:
        scorer.score(pool, k=change.get("k", 5), out=out, resume=True,
                     all_scores=None if all_scores is None else tmp_path / all_scores)
    assert "Rerun without --resume" in str(raised.value)


def test_resumed_audit_sample_equals_a_single_pass_and_is_tied_to_its_seed(
        models, pools, tmp_path, monkeypatch):
    scorer = PoolScorer(models["gray"], batch_size=BATCH_SIZE)
    out = tmp_path / "picks.csv"
    interrupted_run(scorer, pools["npy"], out, 5, monkeypatch, audit=8, seed=2)
    with pytest.raises(CheckpointError, match="seed: checkpoint 2, this run 3"):
        scorer.score(pools["npy"], k=5, out=out, resume=True, audit=8, seed=3)
    with pytest.raises(CheckpointError, match="different audit, seed"):
        scorer.score(pools["npy"], k=5, out=out, resume=True)
    resumed = scorer.score(pools["npy"], k=5, out=out, resume=True, audit=8, seed=2)
    fresh = scorer.score(pools["npy"], k=5, audit=8, seed=2)
    assert resumed.resumed_from == 4 and resumed.audit == fresh.audit
    assert len(resumed.audit) == 8


def test_corrupt_checkpoint_is_a_clear_error(models, pools, tmp_path):
    out = tmp_path / "picks.csv"
    open(checkpoint_path(out), "wb").write(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Expected a readable checkpoint"):
        PoolScorer(models["gray"]).score(pools["npy"], k=5, out=out, resume=True)


def test_resume_without_checkpoint_starts_over_and_fresh_run_replaces_one(
        models, pools, tmp_path, monkeypatch):
    scorer = PoolScorer(models["gray"], batch_size=BATCH_SIZE)
    out = tmp_path / "picks.csv"
    result = scorer.score(pools["npy"], k=5, out=out, resume=True)
    assert result.resumed_from == 0 and result.batches_run == 13
    interrupted_run(scorer, pools["npy"], out, 5, monkeypatch)
    fresh = scorer.score(pools["npy"], k=5, out=out)  # No --resume: starts over.
    assert fresh.resumed_from == 0 and fresh.batches_run == 13
    assert not os.path.exists(checkpoint_path(out))
