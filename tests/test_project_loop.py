"""`kerasll project`: two full rounds on digits written as PNG files.

init, add (two devices), a random first round, tasks (CSV), labels from a
simulated annotator, train, device picks from `kerasll-score` merged, tasks
(Label Studio), labels from a simulated Label Studio export, train again,
select here, status. No label is lost or duplicated; picks of the older
model and of unknown items are refused with the manifest untouched.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from kerasll_serving import PoolScorer
from kerasll.project.images import content_hash, encode_png
from project_helpers import (
    CLASSES,
    TRAIN_ARGS,
    annotate_csv,
    cli,
    label_studio_export,
    ok,
    refused,
    rows,
    snapshot,
    true_label,
    write_digits,
)


def _more_digits(count):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images[1000:1000 + count]
    labels = [str(label) for label in digits.target[1000:1000 + count]]
    return np.rint(images * (255.0 / 16.0)).astype(np.uint8), labels


def _model_version(output):
    return output.split("Trained model ")[1].split()[0]


@pytest.mark.slow
def test_two_rounds_on_digits(tmp_path):
    captures = tmp_path / "captures"
    truth = write_digits(captures, {"dev1": range(0, 150), "dev2": range(150, 300)})
    project = tmp_path / "project"

    ok(cli("init", project, "--classes", CLASSES))
    assert "Added 150 item(s) from device 'dev1'" in ok(
        cli("add", project, captures / "dev1"))
    ok(cli("add", project, captures / "dev2"))
    assert "Added 0 item(s)" in ok(cli("add", project, captures / "dev1"))
    # A third device keeps its captures as one .npy array (items are rows).
    pixels = np.stack([np.asarray(Image.open(path)) for path in
                       sorted((captures / "dev2").glob("*.png"))[:30]])
    more, more_labels = _more_digits(30)
    np.save(captures / "dev3.npy", np.concatenate([pixels, more]))
    truth.update({f"{content_hash(encode_png(row))}.png": label
                  for row, label in zip(more, more_labels)})
    assert "Added 30 item(s) from device 'dev3' (60 found, 30 duplicate(s)" in ok(
        cli("add", project, captures / "dev3.npy"))

    # Round 1: no model yet, a random draw; the annotator fills in the CSV.
    ok(cli("select", project, "--k", "40", "--random"))
    ok(cli("tasks", project, "--format", "csv"))
    labels_1 = annotate_csv(project / "tasks" / "round-1.csv",
                            tmp_path / "labels-1.csv", truth)
    assert "40 new" in ok(cli("labels", project, labels_1))
    before = snapshot(project)
    assert "0 new, 0 changed, 40 unchanged" in ok(cli("labels", project, labels_1))
    assert snapshot(project) == before  # Importing the same file twice: no change.

    first = _model_version(ok(cli("train", project, *TRAIN_ARGS)))
    model = project / "models" / first / "model.onnx"

    # Each device scores its own pool with the exported model (kerasll-score).
    picks = {}
    for device, pool in (("dev1", "dev1"), ("dev2", "dev2"), ("dev3", "dev3.npy")):
        picks[device] = tmp_path / f"{device}.csv"
        PoolScorer(model).score(captures / pool, k=15, out=picks[device])
    unknown = tmp_path / "elsewhere.csv"
    unknown.write_text(picks["dev1"].read_text().replace("digit_0", "other_0"))
    before = snapshot(project)
    refused(cli("select", project, "--k", "5", "--picks", unknown),
             "not an item of the project")
    assert snapshot(project) == before

    summary = ok(cli("select", project, "--k", "20", "--strategy", "learning_loss",
                      "--picks", picks["dev1"], picks["dev2"], f"dev3={picks['dev3']}"))
    assert summary.startswith("Round 2: picked 20 of ") and first in summary
    round_2 = rows(project, "SELECT item_id, predicted_loss, device FROM picks "
                             "WHERE round_id = 2 ORDER BY rank")
    losses = [loss for _, loss, _ in round_2]
    assert losses == sorted(losses, reverse=True)
    labeled_before = {item for (item,) in rows(project, "SELECT item_id FROM labels")}
    assert not labeled_before & {item for item, _, _ in round_2}
    assert {device for _, _, device in round_2} <= {"dev1", "dev2", "dev3"}
    # The global top 20 of all devices' open items, each item once.
    origins = {(device, origin): item for device, origin, item in
               rows(project, "SELECT device, origin, item_id FROM origins")}
    offered = {}
    for device, path in picks.items():
        for row in csv.DictReader(path.read_text().splitlines()):
            item = origins[device, Path(row["item"]).name]
            loss = float(row["predicted_loss"])  # May be negative.
            offered[item] = max(offered.get(item, loss), loss)
    expected = sorted((item for item in offered if item not in labeled_before),
                      key=lambda item: (-offered[item], item))[:20]
    assert [item for item, _, _ in round_2] == expected

    # Round 2 goes to Label Studio: import file, a simulated export back.
    ok(cli("tasks", project))
    tasks = json.loads((project / "tasks" / "round-2.json").read_text())
    assert len(tasks) == 20
    assert tasks[0]["predictions"][0]["model_version"] == first
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"][0] in CLASSES
    export = label_studio_export(project / "tasks" / "round-2.json",
                                 tmp_path / "export-2.json", truth)
    assert "20 new" in ok(cli("labels", project, export))
    assert "20 unchanged" in ok(cli("labels", project, export))

    second = _model_version(ok(cli("train", project, *TRAIN_ARGS)))
    assert second != first
    before = snapshot(project)
    refused(cli("select", project, "--k", "5", "--picks", picks["dev1"]),
             f"current model {second}", "another model")
    assert snapshot(project) == before

    ok(cli("select", project, "--k", "10"))
    status = ok(cli("status", project))
    assert "Items: 330 (dev1 150, dev2 150, dev3 30)" in status
    assert "labeled 60" in status and "open pool 260" in status
    assert "round 2: 20 picked by" in status and "Spearman" in status

    # No label lost or duplicated: one label per picked item, the true one.
    labels = rows(project, "SELECT labels.item_id, labels.label, items.path "
                            "FROM labels JOIN items ON items.id = labels.item_id")
    picked = rows(project, "SELECT item_id FROM picks WHERE round_id IN (1, 2)")
    assert len(labels) == 60
    assert sorted(item for item, _, _ in labels) == sorted(item for (item,) in picked)
    assert all(label == true_label(truth, path) for _, label, path in labels)
