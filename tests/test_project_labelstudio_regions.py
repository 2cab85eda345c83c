"""Boxes and keypoints through a real Label Studio server.

For a detection project and a keypoint project (small synthetic scenes and
figures), the test runs init -> add -> select --random -> labels -> train ->
select, then, on the session's Label Studio server (127.0.0.1, started by
tests/conftest.py and shared with tests/test_project_labelstudio.py): creates a
project with the kerasll labeling config, imports the round's tasks with
the model's boxes or keypoints as predictions (`tasks --label-studio`),
draws the true regions over the REST API, exports JSON and imports it
(twice: the second import changes nothing). An annotation with a malformed
box or a keypoint outside its image is then refused in one line with the
manifest unchanged. Last, train -> select -> status on the imported labels.
"""

import json
import re

import pytest
from project_helpers import (
    SHAPES,
    cli,
    ok,
    refused,
    region_export,
    region_results,
    snapshot,
    write_figures,
    write_scenes,
)
from test_project_labelstudio import TOKEN

TRAIN = ["--epochs", "2", "--width", "0.25", "--batch-size", "16"]


def _project(root, task):
    """A project with a trained model and a round it picked (with predictions)."""
    if task == "detection":
        truth, names = write_scenes(root / task / "images", 40), None
        init = ["--classes", ",".join(SHAPES)]
    else:
        from kerasll.keypoints.figures import FIGURE_SKELETON

        truth, names = write_figures(root / task / "images", 40), FIGURE_SKELETON.names
        init = []
    project = root / task / "project"
    ok(cli("init", project, "--task", task, *init))
    ok(cli("add", project, root / task / "images"))
    ok(cli("select", project, "--k", "20", "--random"))
    ok(cli("tasks", project))
    first = region_export(project / "tasks" / "round-1.json",
                          root / task / "round-1.json", truth, task, names)
    ok(cli("labels", project, first))
    ok(cli("train", project, *TRAIN))
    ok(cli("select", project, "--k", "6", "--strategy", "learning_loss"))
    return project, truth, names


@pytest.mark.slow
@pytest.mark.parametrize("task, bad", [
    ("detection", {"x": 90.0, "width": 25.0}),  # past the right edge
    ("keypoints", {"x": 101.0}),  # outside the image
])
def test_regions_round_trip_through_label_studio(label_studio, task, bad):
    root = label_studio.document_root
    project, truth, names = _project(root, task)
    label_studio.wait_healthy()
    created = label_studio.call("POST", "/api/projects/", {
        "title": f"kerasll {task}",
        "label_config": (project / "label_config.xml").read_text(),
    })
    setup = ["--document-root", root, "--label-studio", label_studio.url,
             "--token", TOKEN, "--ls-project", created["id"]]
    assert "6 task(s) imported, 0 already there" in ok(cli("tasks", project, *setup))

    listed = label_studio.call("GET", f"/api/tasks/?project={created['id']}")
    task_ids = sorted(entry["id"] for entry in listed["tasks"])
    assert len(task_ids) == 6
    kind = {"detection": "rectanglelabels", "keypoints": "keypointlabels"}[task]
    predicted = 0
    for task_id in task_ids:
        shown = label_studio.call("GET", f"/api/tasks/{task_id}/")
        (prediction,) = shown["predictions"]  # The model's pre-annotation.
        assert prediction["score"] == pytest.approx(
            shown["data"]["kerasll_predicted_loss"])
        assert all(region["type"] == kind for region in prediction["result"])
        predicted += len(prediction["result"])
        label_studio.call("POST", f"/api/tasks/{task_id}/annotations/", {
            "result": region_results(truth, shown["data"]["image"], task, names),
            "was_cancelled": False,
        })
    assert predicted > 0
    export_path = root / task / "export.json"
    export_path.write_text(json.dumps(label_studio.call(
        "GET", f"/api/projects/{created['id']}/export?exportType=JSON")))
    assert "6 new, 0 changed" in ok(cli("labels", project, export_path))
    unchanged = snapshot(project)
    assert "0 new, 0 changed, 6 unchanged" in ok(cli("labels", project, export_path))
    assert snapshot(project) == unchanged

    # A second annotator's region goes out of the image: nothing is imported.
    shown = label_studio.call("GET", f"/api/tasks/{task_ids[0]}/")
    result = region_results(truth, shown["data"]["image"], task, names)
    result[0]["value"].update(bad)
    label_studio.call("POST", f"/api/tasks/{task_ids[0]}/annotations/", {
        "result": result, "was_cancelled": False})
    bad_path = root / task / "export-bad.json"
    bad_path.write_text(json.dumps(label_studio.call(
        "GET", f"/api/projects/{created['id']}/export?exportType=JSON")))
    line = refused(cli("labels", project, bad_path), "within the image")
    assert re.search(rf"item {shown['data']['kerasll_item']}\b", line)
    assert snapshot(project) == unchanged

    ok(cli("train", project, *TRAIN))
    ok(cli("select", project, "--k", "4"))
    status = ok(cli("status", project))
    metric = {"detection": "mAP@0.5 ", "keypoints": "PCKh@0.5 "}[task]
    assert metric in status
    assert "round 2: 6 picked by " in status and ", 6 labeled" in status
