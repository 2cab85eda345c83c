"""The project folder on a shared machine: file modes follow the umask, a
busy manifest is one line, and `train` cleans what a killed run left."""

import os
import sqlite3
import stat

import pytest
from project_helpers import (
    CLASSES,
    TRAIN_ARGS,
    annotate_csv,
    cli,
    snapshot,
    write_digits,
)

from kerasll.project.manifest import WRITER_NOTE, Manifest
from kerasll.project.model_versions import (
    LOCK_SUFFIX,
    remove_dead_staging,
    staging_folder,
)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def labeled(tmp_path, umask_022):
    """A project of 40 digits, 30 of them labeled, made under umask 022."""
    truth = write_digits(tmp_path / "captures", {"dev1": range(40)})
    project = tmp_path / "project"
    for args in [("init", project, "--classes", CLASSES),
                 ("add", project, tmp_path / "captures" / "dev1"),
                 ("select", project, "--k", "30", "--random"),
                 ("tasks", project, "--format", "csv")]:
        result = cli(*args)
        assert result.exit_code == 0, result.output
    labels = annotate_csv(project / "tasks" / "round-1.csv", tmp_path / "l.csv", truth)
    assert cli("labels", project, labels).exit_code == 0
    return project


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _dead_run(models, name):
    """What a `train` killed during export leaves: its staging folder with a
    half-written model, and its lock file, which no process holds any more."""
    staging = models / name
    staging.mkdir(parents=True)
    (staging / "learner.keras").write_bytes(b"x" * 1000)
    (models / f"{name}{LOCK_SUFFIX}").write_text("")
    return staging


@pytest.mark.slow
def test_train_follows_the_umask_and_removes_only_dead_runs_leftovers(labeled):
    models = labeled / "models"
    dead = _dead_run(models, ".tmp-0123456789ab")
    orphan = models / ".tmp-nolockfile"  # No lock file: never touched.
    orphan.mkdir()
    with staging_folder(models) as live:
        result = cli("train", labeled, *TRAIN_ARGS)
        assert result.exit_code == 0, result.output
        assert live.is_dir() and orphan.is_dir()
    assert not dead.exists()
    assert not (models / f"{dead.name}{LOCK_SUFFIX}").exists()
    assert not live.exists() and not (models / f"{live.name}{LOCK_SUFFIX}").exists()

    (version,) = [path for path in models.iterdir() if not path.name.startswith(".")]
    for path in [labeled / "manifest.sqlite", labeled / "label_config.xml",
                 labeled / "tasks" / "round-1.csv", version / "model.onnx",
                 version / "learner.keras", version / "training.json"]:
        assert _mode(path) == 0o644, path
    for path in [labeled, labeled / "tasks", models, version]:
        assert _mode(path) == 0o755, path


def test_init_creates_the_manifest_with_the_umask_mode(tmp_path, umask_022):
    project = tmp_path / "project"
    assert cli("init", project, "--classes", CLASSES).exit_code == 0
    assert _mode(project / "manifest.sqlite") == 0o644
    assert _mode(project / "label_config.xml") == 0o644
    assert sorted(path.name for path in project.iterdir()) == [
        "label_config.xml", "manifest.sqlite"]


def test_remove_dead_staging_keeps_a_live_run(tmp_path):
    models = tmp_path / "models"
    dead = _dead_run(models, ".tmp-aaaaaaaaaaaa")
    with staging_folder(models) as live:
        assert remove_dead_staging(models) == [dead]
        assert live.is_dir() and (models / f"{live.name}{LOCK_SUFFIX}").is_file()
    assert sorted(path.name for path in models.iterdir()) == []


def _hold_write_lock(project):
    """Another connection inside BEGIN IMMEDIATE (e.g. a DB browser)."""
    holder = sqlite3.connect(project / "manifest.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_busy_project_is_one_line_and_nothing_changes(labeled, tmp_path):
    labels = tmp_path / "l.csv"
    before = snapshot(labeled)
    holder = _hold_write_lock(labeled)
    try:
        result = cli("--wait", "0.2", "labels", labeled, labels)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "free within 0.2 s. Received: busy" in lines[0]
    assert "another process (unknown)" in lines[0]
    assert snapshot(labeled) == before


def test_a_busy_project_names_the_command_that_holds_it(labeled):
    before = snapshot(labeled)
    with Manifest.open(labeled) as holder, holder.transaction():
        assert (labeled / WRITER_NOTE).is_file()
        result = cli("--wait", "0", "select", labeled, "--k", "3", "--random")
        assert result.exit_code == 1, result.output
        assert f"changed by pid {os.getpid()} (" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (labeled / WRITER_NOTE).exists()
    assert snapshot(labeled) == before
