"""The one atomic writer: ordinary file modes, unique temporaries, no half files."""

import os
import stat

import pytest

from kerasll_serving import atomic


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_mode_of_an_ordinary_new_file(tmp_path, umask_022):
    atomic.write_text(tmp_path / "a.txt", "text")
    atomic.write_bytes(tmp_path / "b.bin", b"bytes")
    with atomic.atomic_path(tmp_path / "c.bin") as temporary:
        temporary.write_bytes(b"by a library")
    assert [_mode(tmp_path / name) for name in ("a.txt", "b.bin", "c.bin")] == [
        0o644, 0o644, 0o644]


def test_two_writers_of_one_target_never_share_a_temporary(tmp_path):
    target = tmp_path / "picks.csv"
    with atomic.atomic_path(target) as first, atomic.atomic_path(target) as second:
        assert first != second
        assert first.parent == second.parent == tmp_path
        assert first.name.endswith("picks.csv") and second.name.endswith("picks.csv")
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first"  # The outer block finishes last.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["picks.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_remove_leftovers_deletes_only_the_targets_temporaries(tmp_path):
    target = tmp_path / "picks.csv"
    (tmp_path / ".tmp-0123456789ab-picks.csv").write_text("killed mid-write")
    (tmp_path / ".tmp-0123456789ab-other.csv").write_text("another target's")
    (tmp_path / "picks.csv.user-notes").write_text("the user's")
    atomic.remove_leftovers(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-0123456789ab-other.csv", "picks.csv.user-notes"]
