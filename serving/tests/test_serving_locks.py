"""Two scoring runs never share an output; outputs never overwrite each other."""

import errno
import fcntl
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from serving_fixtures import models, random_images  # noqa: F401 (a fixture)

from kerasll_serving import OutputError, PoolScorer
from kerasll_serving.cli import main
from kerasll_serving.locks import (ReplacedLock, check_still_linked, lock_path,
                                   output_locks)

HOLD = """
import sys
from kerasll_serving.locks import output_locks
with output_locks([sys.argv[1]]):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def pool(tmp_path):
    np.save(tmp_path / "pool.npy", random_images(40, seed=3))
    return tmp_path / "pool.npy"


@pytest.mark.parametrize("held", ["out", "all_scores"])
def test_a_run_on_an_output_another_run_writes_is_refused(models, pool, tmp_path,
                                                          held):
    paths = {"out": tmp_path / "picks.csv", "all_scores": tmp_path / "all.csv"}
    with output_locks([paths[held]]):
        with pytest.raises(OutputError, match="held by another kerasll-score run"):
            PoolScorer(models["gray"]).score(pool, k=3, **paths)
    assert not paths["out"].exists() and not paths["all_scores"].exists()
    PoolScorer(models["gray"]).score(pool, k=3, **paths)  # Released: runs now.
    assert paths["out"].exists() and paths["all_scores"].exists()


def test_the_lock_is_released_when_a_run_fails(models, tmp_path):
    out = tmp_path / "picks.csv"
    with pytest.raises(Exception):
        PoolScorer(models["gray"]).score(tmp_path / "missing.npy", k=3, out=out)
    assert not os.path.exists(lock_path(out))
    with output_locks([out]):
        pass


def test_a_finished_run_leaves_no_lock_files(models, pool, tmp_path):
    out = tmp_path / "picks.csv"
    PoolScorer(models["gray"]).score(pool, k=3, out=out,
                                     all_scores=tmp_path / "all.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "all.csv", "picks.csv", "picks.csv.errors.csv", "pool.npy"]


def test_a_killed_runs_lock_file_is_taken_over_and_removed(tmp_path):
    out = tmp_path / "picks.csv"
    open(lock_path(out), "w").close()  # What kill -9 leaves: a file, no lock.
    with output_locks([out]):
        assert os.path.exists(lock_path(out))
    assert not os.path.exists(lock_path(out))


def test_a_lock_taken_on_a_deleted_lock_file_is_refused(tmp_path):
    """The race deleting lock files opens: B opens the lock file, A deletes
    it and releases, B locks the deleted file while C locks a new one. B's
    check sees that its file is no longer at the path, so B opens it again."""
    out = tmp_path / "picks.csv"
    with output_locks([out]):                              # A holds the lock.
        stale = os.open(lock_path(out), os.O_RDWR)         # B opens the file.
    try:
        fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # B locks the old file.
        with pytest.raises(ReplacedLock):
            check_still_linked(lock_path(out))(stale)      # Gone: B must retry.
        with output_locks([out]):                          # C takes a new file...
            with pytest.raises(ReplacedLock):              # ...which B now sees.
                check_still_linked(lock_path(out))(stale)
            fresh = os.open(lock_path(out), os.O_RDWR)
            check_still_linked(lock_path(out))(fresh)      # The live file passes.
            os.close(fresh)
    finally:
        os.close(stale)


def test_a_filesystem_without_flock_is_a_clear_error(tmp_path, monkeypatch):
    def no_flock(descriptor, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.raises(OutputError, match=r"Expected a filesystem with file locks"):
        with output_locks([tmp_path / "picks.csv"]):
            pass


def test_the_cli_refuses_an_output_locked_by_another_process(models, pool, tmp_path):
    out = tmp_path / "picks.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(main, [models["gray"], str(pool), "--out",
                                           str(out), "--quiet"])
    finally:
        holder.communicate("", timeout=30)
    assert result.exit_code == 1
    assert "held by another kerasll-score run" in result.output
    assert lock_path(out) in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize("same_as", ["picks.csv", "picks.csv.errors.csv"])
def test_all_scores_may_not_be_the_picks_or_errors_file(models, pool, tmp_path,
                                                        same_as):
    out = tmp_path / "picks.csv"
    all_scores = tmp_path / "sub" / ".." / same_as
    (tmp_path / "sub").mkdir()
    result = CliRunner().invoke(main, [models["gray"], str(pool), "--out", str(out),
                                       "--all-scores", str(all_scores), "--quiet"])
    assert result.exit_code == 1
    assert "Expected all_scores to be a different file" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.npy", "sub"]
