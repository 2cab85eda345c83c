"""`kerasll project` on bad input: one line, exit code 1, manifest untouched."""

import csv
import json
import types

import numpy as np
import pytest
from project_helpers import CLASSES, cli, refused, snapshot, write_digits

from kerasll.project.errors import ManifestError, PicksError
from kerasll.project.labelstudio import label_config, parse_export
from kerasll.project.manifest import Manifest, ProjectConfig
from kerasll.project.picks import parse_picks_argument


@pytest.fixture
def project(tmp_path):
    """A project with 20 digits of device `dev1` and one random round."""
    write_digits(tmp_path / "captures", {"dev1": range(20)})
    folder = tmp_path / "project"
    assert cli("init", folder, "--classes", CLASSES).exit_code == 0
    assert cli("add", folder, tmp_path / "captures" / "dev1").exit_code == 0
    assert cli("select", folder, "--k", "5", "--random").exit_code == 0
    assert cli("tasks", folder, "--format", "csv").exit_code == 0
    return folder


def _labels_csv(folder, path, **changes):
    """The round's tasks CSV labeled "3", with `changes` to every row."""
    with open(folder / "tasks" / "round-1.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "label": "3", **changes} for row in rows)
    return path


def test_labels_with_unknown_class_are_refused(project, tmp_path):
    bad = _labels_csv(project, tmp_path / "bad.csv", label="cat")
    before = snapshot(project)
    refused(cli("labels", project, bad), "project's classes", "'cat'")
    assert snapshot(project) == before


def test_labels_of_unknown_items_are_refused(project, tmp_path):
    bad = _labels_csv(project, tmp_path / "bad.csv", item="999")
    before = snapshot(project)
    refused(cli("labels", project, bad), "[999]", "does not have")
    assert snapshot(project) == before


def test_labels_of_another_project_are_refused(project, tmp_path):
    other = tmp_path / "other"
    assert cli("init", other, "--classes", CLASSES).exit_code == 0
    with Manifest.open(other) as manifest:
        other_id = manifest.config.project_id
    bad = _labels_csv(project, tmp_path / "bad.csv", project=other_id)
    before = snapshot(project)
    refused(cli("labels", project, bad), f"project {other_id!r}")
    export = [{"id": 1, "data": {"kerasll_project": other_id, "kerasll_item": 1},
               "annotations": []}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    refused(cli("labels", project, tmp_path / "export.json"), f"project {other_id}")
    assert snapshot(project) == before


def test_labels_file_of_other_kind_is_refused(project, tmp_path):
    (tmp_path / "labels.txt").write_text("1,3\n")
    (tmp_path / "plain.json").write_text(json.dumps([{"data": {"image": "x.png"}}]))
    before = snapshot(project)
    refused(cli("labels", project, tmp_path / "labels.txt"), ".json", ".csv")
    refused(cli("labels", project, tmp_path / "plain.json"), "kerasll_project")
    assert snapshot(project) == before


def test_commands_that_need_a_model_or_a_round_say_so(project, tmp_path):
    before = snapshot(project)
    refused(cli("select", project, "--k", "3"), "trained model")
    refused(cli("train", project, "--epochs", "1"), "at least 2 labeled")
    refused(cli("tasks", project, "--round", "7"), "Expected a round in [1]")
    refused(cli("tasks", project, "--out", project / "tasks" / "round-1.csv"),
             "exists")
    assert snapshot(project) == before


def test_init_add_and_open_refuse_bad_folders(project, tmp_path):
    refused(cli("init", project, "--classes", CLASSES), "already holds")
    refused(cli("init", tmp_path / "new", "--classes", "only"), "two distinct")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "label_config.xml").write_text("<View/>")
    refused(cli("init", tmp_path / "mine", "--classes", CLASSES), "label_config.xml")
    assert (tmp_path / "mine" / "label_config.xml").read_text() == "<View/>"
    assert not (tmp_path / "mine" / "manifest.sqlite").exists()
    refused(cli("status", tmp_path), "manifest.sqlite")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "not-an-image.png").write_bytes(b"nope")
    before = snapshot(project)
    refused(cli("add", project, broken), "not-an-image.png", "cannot be decoded")
    np.save(tmp_path / "floats.npy", np.zeros((2, 8, 8), dtype=np.float32))
    refused(cli("add", project, tmp_path / "floats.npy"), "uint8", "float32")
    assert snapshot(project) == before


def test_add_npy_writes_items_and_deduplicates(project, tmp_path):
    from sklearn.datasets import load_digits

    pixels = np.rint(load_digits().images[:25] * (255 / 16)).astype(np.uint8)
    np.save(tmp_path / "dev2.npy", pixels)  # Rows 0-19 are dev1's images.
    result = cli("add", project, tmp_path / "dev2.npy")
    assert result.exit_code == 0, result.output
    assert "Added 5 item(s) from device 'dev2' (25 found, 20 duplicate(s)" in \
        result.output
    assert len(list((project / "items").glob("*.png"))) == 5


def test_picks_argument_names_the_device():
    devices = {"dev1", "dev2"}
    assert parse_picks_argument("dev2=picks.csv", devices) == ("dev2", "picks.csv")
    assert parse_picks_argument("out/dev1.csv", devices) == ("dev1", "out/dev1.csv")
    assert parse_picks_argument("merged.csv", devices) == (None, "merged.csv")
    with pytest.raises(PicksError, match="devices: \\['dev1', 'dev2'\\]"):
        parse_picks_argument("dev9=picks.csv", devices)


def test_label_studio_export_parsing():
    result = [{"from_name": "label", "to_name": "image", "type": "choices",
               "value": {"choices": ["7"]}}]
    tasks = [{"id": 4, "data": {"kerasll_project": "p", "kerasll_item": 3},
              "annotations": [
                  {"completed_by": {"id": 2}, "result": result,
                   "updated_at": "2026-01-02"},
                  {"completed_by": 5, "result": result, "was_cancelled": True},
                  {"completed_by": 6, "result": []},
              ]}]
    manifest = types.SimpleNamespace(config=ProjectConfig("p", ("3", "7")))
    records = parse_export(tasks, manifest, "export.json")
    assert [(r.item_id, r.label, r.annotator) for r in records] == [(3, "7", "user:2")]
    config = ProjectConfig("p", ("a & b", "c"))
    assert '<Choice value="a &amp; b"/>' in label_config(config)


def test_manifest_create_refuses_a_project_folder(project):
    with pytest.raises(ManifestError, match="already holds manifest.sqlite"):
        Manifest.create(project, ["a", "b"])


def test_images_of_several_sizes_need_an_image_size(tmp_path):
    from PIL import Image

    folder = tmp_path / "mixed"
    write_digits(tmp_path, {"mixed": range(3)})
    Image.new("RGB", (16, 12), (200, 10, 10)).save(folder / "large.png")
    assert cli("init", tmp_path / "a", "--classes", CLASSES).exit_code == 0
    refused(cli("add", tmp_path / "a", folder), "one size", "16x12")
    assert snapshot(tmp_path / "a")["items"] == []
    assert cli("init", tmp_path / "b", "--classes", CLASSES, "--image-size", "8",
               "8").exit_code == 0
    result = cli("add", tmp_path / "b", folder)
    assert "Added 4 item(s)" in result.output, result.output
    with Manifest.open(tmp_path / "b") as manifest:
        assert manifest.config.image_size == (8, 8)
        assert manifest.config.color_mode == "rgb"


def test_an_unknown_task_is_refused_naming_the_tasks_kinds(tmp_path):
    from kerasll.project.kinds import PROJECT_KINDS, project_kind
    from kerasll.tasks import KINDS

    assert tuple(PROJECT_KINDS) == KINDS
    with pytest.raises(ManifestError, match=r"Expected task in \['classification'"):
        project_kind("segmentation")
