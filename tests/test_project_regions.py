"""Boxes and keypoints between Label Studio and a project, without a server:
percent <-> pixels, the refusals (one line, manifest unchanged), the
labeling configs and the settings `init` records."""

import json
import re
import sqlite3

import numpy as np
import pytest
from project_helpers import (
    SHAPES,
    cli,
    ok,
    refused,
    region_export,
    rows,
    snapshot,
    write_scenes,
)

from kerasll.project import regions
from kerasll.project.errors import LabelsError
from kerasll.project.labelstudio import label_config
from kerasll.project.manifest import Manifest, ProjectConfig

WHERE = "export.json, task 1"


def _box(x, y, width, height, label="red", **extra):
    return {"type": "rectanglelabels", "from_name": "label", "to_name": "image",
            **extra, "value": {"x": x, "y": y, "width": width, "height": height,
                               "rotation": 0, "rectanglelabels": [label]}}


def _point(x, y, label="neck"):
    return {"type": "keypointlabels", "from_name": "label", "to_name": "image",
            "value": {"x": x, "y": y, "width": 0.75, "keypointlabels": [label]}}


def test_percent_and_pixels_convert_both_ways():
    assert regions.to_pixels(25.0, 64) == 16.0
    assert regions.to_pixels(100.0, 48) == 48.0
    assert regions.to_percent(16.0, 64) == 25.0
    for value in (0.0, 3.3, 57.125, 100.0):
        assert regions.to_percent(regions.to_pixels(value, 37), 37) == pytest.approx(
            value)


def test_rectangles_become_pixel_boxes_on_the_items_image():
    result = [_box(25.0, 50.0, 50.0, 25.0), _box(0.0, 0.0, 100.0, 100.0, "blue"),
              {"type": "choices", "value": {"choices": ["x"]}}]
    annotation = regions.read_boxes(result, SHAPES, 64, 32, WHERE)
    assert annotation == {"boxes": [[16.0, 16.0, 48.0, 24.0], [0.0, 0.0, 64.0, 32.0]],
                          "classes": ["red", "blue"], "height": 32, "width": 64}
    # Label Studio's rounding just past the edge is clipped.
    edge = regions.read_boxes([_box(50.0, 50.0, 50.0000000001, 10.0)], SHAPES, 64,
                              64, WHERE)
    assert edge["boxes"] == [[32.0, 32.0, 64.0, 38.4]]
    assert regions.read_boxes([], SHAPES, 64, 64, WHERE)["boxes"] == []


@pytest.mark.parametrize("region, message", [
    (_box(10.0, 10.0, -5.0, 10.0), "positive width and height"),
    (_box(10.0, 10.0, 5.0, 0.0), "positive width and height"),
    (_box(90.0, 10.0, 20.0, 10.0), "x + width within the image"),
    (_box(-1.0, 10.0, 20.0, 10.0), "x within the image"),
    (_box(10.0, 10.0, 5.0, 5.0, "green"), "box classes in the project's classes"),
    (_box(10.0, 10.0, "5", 5.0), "Expected a number as width"),
    (_box(10.0, 10.0, float("nan"), 5.0), "Expected a finite width"),
    (_box(10.0, 10.0, 5.0, 5.0, original_width=128, original_height=64),
     "on a 128x64 image"),
    ({"type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 1,
                                           "height": 1}}, "one label"),
    ({"type": "rectanglelabels"}, "Expected a value in every region"),
])
def test_a_malformed_box_is_refused(region, message):
    with pytest.raises(LabelsError, match=re.escape(message)) as raised:
        regions.read_boxes([region], SHAPES, 64, 64, WHERE)
    assert WHERE in str(raised.value) and "\n" not in str(raised.value)


def test_keypoints_become_pixels_in_schema_order():
    names = ("head_top", "neck", "left_wrist")
    annotation = regions.read_keypoints(
        [_point(50.0, 25.0, "left_wrist"), _point(0.0, 100.0, "head_top")], names,
        64, 32, WHERE)
    assert annotation == {"height": 32, "keypoints": [[0.0, 32.0], None, [32.0, 8.0]],
                          "width": 64}


@pytest.mark.parametrize("result, message", [
    ([_point(100.5, 20.0)], "keypoint x within the image"),
    ([_point(20.0, -0.01)], "keypoint y within the image"),
    ([_point(20.0, 20.0, "tail")], "keypoint names of the project's schema"),
    ([_point(20.0, 20.0), _point(30.0, 30.0)], "at most once"),
    ([{"type": "keypointlabels", "value": None}], "Expected a value in every region"),
    ([{**_point(20.0, 20.0), "original_width": 32, "original_height": 64}],
     "on a 32x64 image"),
])
def test_a_bad_keypoint_is_refused(result, message):
    with pytest.raises(LabelsError, match=re.escape(message)):
        regions.read_keypoints(result, ("head_top", "neck"), 64, 64, WHERE)


def test_predictions_become_percent_regions():
    boxes = regions.box_results({"boxes": [[0.25, 0.5, 0.75, 1.0]], "classes": ["red"],
                                 "scores": [0.9]}, "label", "image")
    assert boxes[0]["value"] == {"x": 25.0, "y": 50.0, "width": 50.0, "height": 50.0,
                                 "rotation": 0, "rectanglelabels": ["red"]}
    assert boxes[0]["score"] == 0.9
    points = regions.keypoint_results({"keypoints": [[0.5, 0.125]],
                                       "confidences": [0.4]}, ["neck"], "label",
                                      "image")
    assert (points[0]["value"]["x"], points[0]["value"]["y"]) == (50.0, 12.5)
    assert points[0]["value"]["keypointlabels"] == ["neck"]


def test_labeling_configs_per_task():
    detection = label_config(ProjectConfig("p", ("car", "a & b"), task="detection"))
    assert '<RectangleLabels name="label" toName="image">' in detection
    assert '<Label value="a &amp; b"/>' in detection
    schema = {"names": ["head_top", "neck"], "edges": [[0, 1]], "flip_pairs": [],
              "sigmas": None}
    keypoints = label_config(ProjectConfig("p", ("person",), task="keypoints",
                                           keypoints=schema))
    assert '<KeyPointLabels name="label" toName="image"' in keypoints
    assert '<Label value="neck"/>' in keypoints


def test_keypoint_pixels_become_figure_pixel_centers(tmp_path):
    from PIL import Image

    from kerasll.project.annotated import to_figures

    Image.new("RGB", (128, 64)).save(tmp_path / "wide.png")
    ok(cli("init", tmp_path / "p", "--task", "keypoints", "--color", "rgb"))
    with Manifest.open(tmp_path / "p") as manifest:
        names = manifest.config.keypoints["names"]
        points = [None] * len(names)
        points[0], points[1] = [64.0, 8.0], [128.0, 64.0]  # head_top, neck
        annotation = {"height": 64, "keypoints": points, "width": 128}
        figures = to_figures(manifest, [(1, tmp_path / "wide.png", annotation)])
    # 128x64 pixels resized to 64x64: x halves; pixel centers at integers.
    np.testing.assert_allclose(figures.keypoints[0, 0], [31.5, 7.5])
    np.testing.assert_allclose(figures.keypoints[0, 1], [63.5 - 1e-3, 63.5 - 1e-3],
                               atol=1e-5)
    assert figures.visibility[0].tolist() == [2, 2] + [0] * (len(names) - 2)
    assert figures.head_sizes[0] == pytest.approx(np.hypot(32.0, 56.0), abs=1e-2)


@pytest.fixture
def detection(tmp_path):
    """A detection project with 6 scenes in one random round, and the export of
    an annotator who drew their true boxes."""
    truth = write_scenes(tmp_path / "images", 6)
    project = tmp_path / "project"
    ok(cli("init", project, "--task", "detection", "--classes", ",".join(SHAPES)))
    ok(cli("add", project, tmp_path / "images"))
    ok(cli("select", project, "--k", "6", "--random"))
    ok(cli("tasks", project))
    export = region_export(project / "tasks" / "round-1.json", tmp_path / "e.json",
                           truth, "detection", None)
    return project, export, truth


def test_boxes_import_in_pixels_once(detection):
    project, export, truth = detection
    assert "6 new" in ok(cli("labels", project, export))
    before = snapshot(project)
    assert "0 new, 0 changed, 6 unchanged" in ok(cli("labels", project, export))
    assert snapshot(project) == before
    stored = dict(rows(project, "SELECT items.path, labels.label FROM labels "
                                "JOIN items ON items.id = labels.item_id"))
    for path, label in stored.items():
        boxes, classes = truth[path.rsplit("/", 1)[1]]
        annotation = json.loads(label)
        np.testing.assert_allclose(annotation["boxes"], boxes, atol=0.01)
        assert annotation["classes"] == classes


@pytest.mark.parametrize("change, message", [
    ({"width": -3.0}, "positive width"),
    ({"x": 95.0, "width": 20.0}, "x + width within the image"),
    ({"rectanglelabels": ["green"]}, "project's classes"),
])
def test_a_malformed_box_leaves_the_manifest_unchanged(detection, change, message):
    project, export, _ = detection
    tasks = json.loads(export.read_text())
    tasks[-1]["annotations"][0]["result"][0]["value"].update(change)
    export.write_text(json.dumps(tasks))
    before = snapshot(project)
    refused(cli("labels", project, export), message, "item")
    assert snapshot(project) == before


def test_detection_projects_refuse_class_files_and_csv_tasks(detection, tmp_path):
    project, _, _ = detection
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nx.png,red\n")
    refused(cli("labels", project, labels), "Label Studio JSON export")
    refused(cli("tasks", project, "--format", "csv", "--out", tmp_path / "t.csv"),
            "--format label-studio")
    assert not (tmp_path / "t.csv").exists()


def test_init_records_the_task_and_refuses_bad_settings(tmp_path):
    ok(cli("init", tmp_path / "d", "--task", "detection", "--classes", "car"))
    with Manifest.open(tmp_path / "d") as manifest:
        assert manifest.config.task == "detection"
        assert manifest.config.image_size == (64, 64)
    refused(cli("init", tmp_path / "k1", "--task", "keypoints", "--image-size", "48",
                "48"), "multiples of 32")
    bad = tmp_path / "schema.json"
    bad.write_text(json.dumps({"categories": [{"name": "hand",
                                               "keypoints": ["a", "b"]}]}))
    refused(cli("init", tmp_path / "k2", "--task", "keypoints", "--keypoints", bad),
            "head segment", "OKS sigmas")
    refused(cli("init", tmp_path / "k3", "--task", "keypoints", "--keypoints",
                tmp_path / "missing.json"), "COCO keypoint JSON")
    refused(cli("init", tmp_path / "c", "--task", "classification", "--classes",
                "only"), "two distinct")
    assert not any((tmp_path / name).exists() for name in ("k1", "k2", "k3", "c"))


def test_a_coco_schema_gives_names_flip_pairs_and_sigmas(tmp_path):
    names = ["nose", "left_eye", "right_eye", "left_wrist", "right_wrist"]
    schema = tmp_path / "person_keypoints.json"
    schema.write_text(json.dumps({"categories": [
        {"id": 1, "name": "person", "keypoints": names,
         "skeleton": [[1, 2], [1, 3]]}]}))
    ok(cli("init", tmp_path / "p", "--task", "keypoints", "--keypoints", schema))
    with Manifest.open(tmp_path / "p") as manifest:
        stored = manifest.config.keypoints
    assert stored["names"] == names
    assert stored["edges"] == [[0, 1], [0, 2]]
    assert sorted(map(sorted, stored["flip_pairs"])) == [[1, 2], [3, 4]]
    assert stored["sigmas"] == [0.026, 0.025, 0.025, 0.062, 0.062]
    assert '<Label value="right_wrist"/>' in (tmp_path / "p" /
                                              "label_config.xml").read_text()


def test_a_version_2_manifest_without_a_task_is_a_classification_project(
        tmp_path):
    from kerasll.project.manifest import SCHEMA_VERSION

    ok(cli("init", tmp_path / "p", "--classes", "cat,dog"))
    connection = sqlite3.connect(tmp_path / "p" / "manifest.sqlite")
    with connection:
        connection.execute("DELETE FROM meta WHERE key IN ('task', 'keypoints')")
        connection.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    connection.close()
    with Manifest.open(tmp_path / "p") as manifest:
        assert manifest.config.task == "classification"
        assert manifest.config.keypoints is None
    assert rows(tmp_path / "p", "SELECT value FROM meta WHERE key = "
                                "'schema_version'") == [(str(SCHEMA_VERSION),)]
    ok(cli("add", tmp_path / "p", _one_image(tmp_path)))  # Writes meta again.
    with Manifest.open(tmp_path / "p") as manifest:
        assert manifest.config.task == "classification"


def _one_image(tmp_path):
    from PIL import Image

    (tmp_path / "one").mkdir()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(tmp_path / "one" / "a.png")
    return tmp_path / "one"


def test_a_pckh_schema_scores_only_figures_with_a_head_segment(tmp_path):
    from PIL import Image

    from kerasll.project.annotated import project_task

    schema = tmp_path / "hands.json"
    schema.write_text(json.dumps({"categories": [{
        "name": "signer", "keypoints": ["head_top", "neck", "left_hand", "right_hand"],
        "skeleton": [[1, 2]]}]}))
    ok(cli("init", tmp_path / "p", "--task", "keypoints", "--keypoints", schema,
           "--color", "rgb"))
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    headed = {"height": 64, "width": 64,
              "keypoints": [[30.0, 10.0], [30.0, 20.0], [10.0, 40.0], None]}
    headless = {"height": 64, "width": 64,
                "keypoints": [None, [30.0, 20.0], [10.0, 40.0], [50.0, 40.0]]}
    with Manifest.open(tmp_path / "p") as manifest:
        assert manifest.config.keypoints["sigmas"] is None
        assert manifest.config.keypoints["flip_pairs"] == [[2, 3]]
        rows_ = [(1, tmp_path / "a.png", headed), (2, tmp_path / "a.png", headless)]
        task = project_task(manifest, rows_, rows_[1:] + rows_[:1])
        assert task.metric_name == "PCKh@0.5"
        assert len(task.train) == 2 and len(task.test) == 1
        assert task.test.head_sizes[0] == pytest.approx(10.0)
        fallback = project_task(manifest, rows_, rows_[1:])  # No headed test item.
        assert len(fallback.test) == 1
