"""A `kill -9` inside any command that changes the manifest leaves it as it was.

Each command runs in a subprocess whose `Manifest._commit` is replaced by a
stall: the command has done all its work and is inside its transaction when
the test kills it with SIGKILL. The manifest must then pass SQLite's
integrity check, hold exactly the rows it held before, and the same command,
run again, must succeed.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from project_helpers import (
    CLASSES,
    TRAIN_ARGS,
    annotate_csv,
    cli,
    integrity,
    snapshot,
    write_digits,
)

_STALLED = textwrap.dedent(
    """
    import os, sys, time
    from kerasll.project.manifest import Manifest

    def stall(self):  # All work done, the transaction open: killed here.
        open(os.environ["KERASLL_TEST_MARKER"], "w").close()
        time.sleep(600)

    Manifest._commit = stall
    from kerasll_cli import main
    main(["project", *sys.argv[1:]])
    """
)
_WAIT_S = 300


def _kill_inside(tmp_path, *args):
    """Runs `kerasll project ARGS` and kills it -9 just before its commit."""
    marker = tmp_path / "inside-transaction"
    if marker.exists():
        marker.unlink()
    env = {**os.environ, "KERASLL_TEST_MARKER": str(marker),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-c", _STALLED, *map(str, args)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + _WAIT_S
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"{args} ended before its commit: "
                        f"{process.stdout.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{args} did not reach its commit in {_WAIT_S} s")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def _crash_then_rerun(tmp_path, project, *args):
    before = snapshot(project)
    _kill_inside(tmp_path, *args)
    assert integrity(project) == "ok"
    assert snapshot(project) == before
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert snapshot(project) != before
    return result.output


@pytest.mark.slow
def test_kill_inside_each_command_leaves_the_previous_state(tmp_path):
    captures = tmp_path / "captures"
    truth = write_digits(captures, {"dev1": range(0, 60), "dev2": range(60, 120)})
    project = tmp_path / "project"
    assert cli("init", project, "--classes", CLASSES).exit_code == 0
    assert cli("add", project, captures / "dev1").exit_code == 0

    assert "Added 60" in _crash_then_rerun(tmp_path, project, "add", project,
                                           captures / "dev2")
    _crash_then_rerun(tmp_path, project, "select", project, "--k", "30", "--random")
    assert cli("tasks", project, "--format", "csv").exit_code == 0
    labels = annotate_csv(project / "tasks" / "round-1.csv", tmp_path / "l.csv", truth)
    assert "30 new" in _crash_then_rerun(tmp_path, project, "labels", project, labels)
    _crash_then_rerun(tmp_path, project, "train", project, *TRAIN_ARGS)
    _crash_then_rerun(tmp_path, project, "select", project, "--k", "10")
