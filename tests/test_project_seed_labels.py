"""Labels a user already has seed a project: a `path,label` CSV and a folder
of class sub-folders, for images already added, matched by path or content."""

import shutil

import pytest
from project_helpers import CLASSES, cli, refused, snapshot, write_digits

from kerasll.project.manifest import Manifest


@pytest.fixture
def project(tmp_path):
    truth = write_digits(tmp_path / "captures", {"cam": range(12)})
    folder = tmp_path / "project"
    assert cli("init", folder, "--classes", CLASSES).exit_code == 0
    assert cli("add", folder, tmp_path / "captures" / "cam").exit_code == 0
    return folder, tmp_path / "captures" / "cam", truth


def _labels(folder):
    with Manifest.open(folder) as manifest:
        return {path.name: label for _, path, label in manifest.training_labels()}


def test_a_path_label_csv_seeds_labels_by_path_and_by_content(project, tmp_path):
    folder, images, truth = project
    names = sorted(truth)[:6]
    copies = tmp_path / "copies"  # Same content elsewhere: matched by hash.
    copies.mkdir()
    shutil.copy(images / names[5], copies / "renamed.png")
    rows = [f"{images / name},{truth[name]}" for name in names[:3]]
    rows += [f"../captures/cam/{name},{truth[name]}" for name in names[3:5]]
    rows += [f"../copies/renamed.png,{truth[names[5]]}", f"{images / names[0]},"]
    labels = tmp_path / "mine" / "labels.csv"
    labels.parent.mkdir()
    labels.write_text("path,label\n" + "\n".join(rows) + "\n")

    result = cli("labels", folder, labels)
    assert result.exit_code == 0, result.output
    assert "Imported 6 label(s): 6 new" in result.output
    assert _labels(folder) == {name: truth[name] for name in names}
    before = snapshot(folder)
    again = cli("labels", folder, labels)
    assert "0 new, 0 changed, 6 unchanged" in again.output
    assert snapshot(folder) == before


def test_a_folder_of_class_sub_folders_seeds_labels(project, tmp_path):
    folder, images, truth = project
    seed = tmp_path / "by-class"
    for name in sorted(truth)[:8]:
        (seed / truth[name]).mkdir(parents=True, exist_ok=True)
        shutil.copy(images / name, seed / truth[name] / f"copy-{name}")
    (seed / truth[name] / ".DS_Store").write_bytes(b"junk")

    result = cli("labels", folder, seed)
    assert result.exit_code == 0, result.output
    assert "Imported 8 label(s): 8 new" in result.output
    assert _labels(folder) == {name: truth[name] for name in sorted(truth)[:8]}
    assert "8 unchanged" in cli("labels", folder, seed).output


def test_unknown_images_and_classes_refuse_the_whole_input(project, tmp_path):
    folder, images, truth = project
    name = sorted(truth)[0]
    stranger = tmp_path / "stranger.png"
    write_digits(tmp_path / "other", {"x": range(500, 501)})
    shutil.copy(tmp_path / "other" / "x" / "digit_0500.png", stranger)
    before = snapshot(folder)

    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\n{images / name},{truth[name]}\n{stranger},3\n")
    refused(cli("labels", folder, labels), "images already in the project",
             "stranger.png")
    labels.write_text(f"path,label\n{images / name},cat\n")
    refused(cli("labels", folder, labels), "project's classes", "'cat'")

    seed = tmp_path / "by-class"
    (seed / "3").mkdir(parents=True)
    (seed / "dog").mkdir()
    shutil.copy(images / name, seed / "3" / name)
    shutil.copy(images / name, seed / "dog" / name)
    refused(cli("labels", folder, seed), "project's classes", "'dog'")
    shutil.rmtree(seed / "dog")
    shutil.copy(stranger, seed / "3")
    refused(cli("labels", folder, seed), "that it does not have", "stranger.png")
    assert snapshot(folder) == before
