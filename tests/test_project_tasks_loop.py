"""The labeling loop of a detection project and of a keypoint project.

Each runs init -> add -> select --random -> tasks -> labels (a simulated
Label Studio export of the true boxes or keypoints) -> train -> select
(scored here, learning_loss_safe: a random audit slice; the model's boxes or
keypoints recorded) -> tasks (with the pre-annotations, score = predicted
loss) -> labels -> train -> select (the safe rule reads the audit's true
losses) -> select coreset -> status (the held-out metric and the head
audit) -> select --picks (a device's kerasll-score picks of the exported
model), on small synthetic scenes and figures.
"""

import json

import pytest
from project_helpers import (
    SHAPES,
    cli,
    ok,
    refused,
    region_export,
    rows,
    snapshot,
    write_figures,
    write_scenes,
)

TRAIN = ["--epochs", "2", "--width", "0.25", "--batch-size", "16"]


def _loop(tmp_path, task, init_args, truth, names):
    project = tmp_path / "project"
    ok(cli("init", project, "--task", task, *init_args))
    config = (project / "label_config.xml").read_text()
    tag = {"detection": "<RectangleLabels", "keypoints": "<KeyPointLabels"}[task]
    assert tag in config
    ok(cli("add", project, tmp_path / "images"))
    ok(cli("select", project, "--k", "24", "--random"))
    ok(cli("tasks", project))
    first = region_export(project / "tasks" / "round-1.json", tmp_path / "e1.json",
                          truth, task, names)
    assert "24 new" in ok(cli("labels", project, first))
    assert "0 new, 0 changed, 24 unchanged" in ok(cli("labels", project, first))
    trained = ok(cli("train", project, *TRAIN))
    assert "Trained model" in trained
    # learning_loss_safe without evidence yet: 8 random audit items.
    assert "8 random audit item(s)" in ok(cli("select", project, "--k", "8"))
    ok(cli("tasks", project))
    tasks = json.loads((project / "tasks" / "round-2.json").read_text())
    assert len(tasks) == 8
    for entry in tasks:
        (prediction,) = entry["predictions"]
        assert prediction["score"] == pytest.approx(
            entry["data"]["kerasll_predicted_loss"])
        for region in prediction["result"]:
            value = region["value"]
            assert 0.0 <= value["x"] <= 100.0 and 0.0 <= value["y"] <= 100.0
    kind = {"detection": "rectanglelabels", "keypoints": "keypointlabels"}[task]
    assert any(entry["predictions"][0]["result"] for entry in tasks)
    assert all(region["type"] == kind for entry in tasks
               for region in entry["predictions"][0]["result"])
    second = region_export(project / "tasks" / "round-2.json", tmp_path / "e2.json",
                           truth, task, names)
    assert "8 new" in ok(cli("labels", project, second))
    ok(cli("train", project, *TRAIN))
    # The safe rule reads the audit: round 2's true losses under its model.
    assert "learning_loss_safe: " in ok(cli("select", project, "--k", "4"))
    ok(cli("select", project, "--k", "4", "--strategy", "coreset"))
    status = ok(cli("status", project))
    assert ("audit (learning_loss_safe): 8 of 8 random item(s) labeled, Kendall tau "
            "of score vs true loss ") in status
    return project, status


def _merge_device_picks(tmp_path, project):
    """A device scores the images with the exported model and picks them
    all (most are labeled by now); its picks merge as round 5, the two best
    open ones, without pre-annotations (only `select` scoring here makes
    them)."""
    from kerasll_serving import PoolScorer

    (current,) = rows(project, "SELECT json_extract(value, '$') FROM meta "
                               "WHERE key = 'current_model'")
    model = project / "models" / current[0]
    images = tmp_path / "images"
    PoolScorer(model / "model.onnx").score(images, k=len(list(images.iterdir())),
                                            seed=0, out=tmp_path / "images.csv")
    merged = ok(cli("select", project, "--k", "2", "--strategy", "learning_loss",
                    "--picks", tmp_path / "images.csv"))
    assert merged.startswith("Round 5: picked 2 of ")
    assert rows(project, "SELECT COUNT(*), COUNT(prediction) FROM picks "
                         "WHERE round_id = 5") == [(2, 0)]


@pytest.mark.slow
def test_detection_loop(tmp_path):
    truth = write_scenes(tmp_path / "images", 60)
    project, status = _loop(tmp_path, "detection", ["--classes", ",".join(SHAPES)],
                            truth, None)
    labels = rows(project, "SELECT label FROM labels")
    assert len(labels) == 32
    assert all(json.loads(label)["width"] == 64 for (label,) in labels)
    assert "Classes: red: " in status
    assert "mAP@0.5 " in status
    assert "round 2: 8 picked by " in status
    assert "Spearman(predicted, true loss)" in status
    _merge_device_picks(tmp_path, project)


@pytest.mark.slow
def test_keypoint_loop(tmp_path):
    from kerasll.keypoints.figures import FIGURE_SKELETON

    truth = write_figures(tmp_path / "images", 60)
    project, status = _loop(tmp_path, "keypoints", [], truth, FIGURE_SKELETON.names)
    assert "PCKh@0.5 " in status and "OKS AP " in status
    before = snapshot(project)  # Heatmaps have no class margin: one line.
    refused(cli("select", project, "--k", "2", "--strategy", "margin"),
            "uncertainty measure 'entropy'")
    assert snapshot(project) == before
    assert "Classes: head_top: " in status
    assert "round 2: 8 picked by " in status
    assert "Spearman(predicted, true loss)" in status
    _merge_device_picks(tmp_path, project)
