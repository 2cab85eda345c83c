"""`kerasll project select --strategy`: the simulator's strategies in the real loop.

A small digits project with a trained model: `learning_loss_safe` (the
default) draws an all-audit round before its head has evidence, exactly the
round's random draw; a strategy reading features the exported model lacks
is refused with nothing changed; device picks plus their audit samples merge
under the safe rule; `status` reports the audit once it is labeled.
"""

import csv
import sqlite3

import numpy as np
import pytest
from kerasll_serving import PoolScorer
from project_helpers import (
    CLASSES,
    TRAIN_ARGS,
    annotate_csv,
    cli,
    ok,
    rows,
    snapshot,
    write_digits,
)

from kerasll.active.seeds import generator


def _label_round(project, round_id, truth, tmp_path):
    ok(cli("tasks", project, "--format", "csv", "--round", round_id))
    labels = annotate_csv(project / "tasks" / f"round-{round_id}.csv",
                          tmp_path / f"labels-{round_id}.csv", truth)
    ok(cli("labels", project, labels))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project of 160 digits from two devices, 40 labeled, one model."""
    root = tmp_path_factory.mktemp("strategies")
    truth = write_digits(root / "captures", {"dev1": range(80), "dev2": range(80, 160)})
    project = root / "project"
    ok(cli("init", project, "--classes", CLASSES))
    ok(cli("add", project, root / "captures" / "dev1"))
    ok(cli("add", project, root / "captures" / "dev2"))
    ok(cli("select", project, "--k", "40", "--random"))
    _label_round(project, 1, truth, root)
    ok(cli("train", project, *TRAIN_ARGS))
    return project, truth, root


@pytest.mark.slow
def test_the_default_strategy_audits_everything_before_it_has_evidence(
    trained, tmp_path
):
    project, truth, _ = trained
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(project, copy)
    pool = [item for (item,) in rows(copy, (
        "SELECT id FROM items WHERE id NOT IN (SELECT item_id FROM labels) "
        "AND id NOT IN (SELECT item_id FROM picks) ORDER BY id"))]
    summary = ok(cli("select", copy, "--k", "12", "--seed", "5"))
    assert "learning_loss_safe: 0 by score, 12 random audit item(s)" in summary
    picked = rows(copy, "SELECT item_id, role, score FROM picks WHERE round_id = 2 "
                       "ORDER BY rank")
    assert {role for _, role, _ in picked} == {"audit"}
    assert all(score is not None for _, _, score in picked)
    assert rows(copy, "SELECT strategy FROM rounds WHERE id = 2") == [
        ("learning_loss_safe",)]
    # Item for item what random picks: the round's 12 highest keys of the pool.
    keys = generator(5, "keys", "shared", 2).random(len(pool))
    expected = np.asarray(pool)[np.argsort(-keys, kind="stable")[:12]]
    assert sorted(item for item, _, _ in picked) == sorted(expected.tolist())

    # Once labeled, status reports the audit of round 2.
    _label_round(copy, 2, truth, tmp_path)
    status = ok(cli("status", copy))
    assert "audit (learning_loss_safe): 12 of 12 random item(s) labeled" in status
    assert "Kendall tau of score vs true loss" in status


@pytest.mark.slow
def test_learning_loss_is_the_top_k_and_feature_strategies_are_refused(
    trained, tmp_path
):
    project, _, _ = trained
    before = snapshot(project)
    refused = cli("select", project, "--k", "5", "--strategy", "coreset")
    assert refused.exit_code == 1
    assert "use it in kerasll simulate" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    unknown = cli("select", project, "--k", "5", "--strategy", "entropyy")
    assert unknown.exit_code == 1 and "Received: 'entropyy'" in unknown.output
    assert snapshot(project) == before

    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    ok(cli("select", copy, "--k", "6", "--strategy", "learning_loss"))
    picked = rows(copy, "SELECT predicted_loss, role FROM picks WHERE round_id = 2 "
                       "ORDER BY rank")
    losses = [loss for loss, _ in picked]
    assert losses == sorted(losses, reverse=True) and len(picked) == 6
    assert {role for _, role in picked} == {"pick"}


@pytest.mark.slow
def test_device_picks_and_audit_samples_merge_under_the_safe_rule(trained, tmp_path):
    project, _, root = trained
    model = sorted((project / "models").glob("*/model.onnx"))[0]
    picks = {}
    for device in ("dev1", "dev2"):
        picks[device] = tmp_path / f"{device}.csv"
        PoolScorer(model).score(root / "captures" / device, k=5, audit=10, seed=0,
                                out=picks[device])
    # Without audit samples the safe rule cannot fill its random share.
    plain = tmp_path / "plain.csv"
    PoolScorer(model).score(root / "captures" / "dev1", k=5, out=plain)
    before = snapshot(project)
    refused = cli("select", project, "--k", "8", "--picks", f"dev1={plain}")
    assert refused.exit_code == 1 and "--audit" in refused.output
    assert snapshot(project) == before

    summary = ok(cli("select", project, "--k", "8", "--picks",
                      f"dev1={picks['dev1']}", f"dev2={picks['dev2']}"))
    assert "0 by predicted loss (head share 0.00), 8 from the devices' audit" in summary
    merged = rows(project, "SELECT items.path, picks.role FROM picks JOIN items "
                            "ON items.id = picks.item_id WHERE round_id = 2")
    assert {role for _, role in merged} == {"audit"}
    # The 8 smallest audit keys of both devices' samples, among open items.
    labeled = {path for (path,) in rows(project, (
        "SELECT items.path FROM labels JOIN items ON items.id = labels.item_id"))}
    offered = []
    for device, path in picks.items():
        for row in csv.DictReader(path.read_text().splitlines()):
            if "audit" in row["role"]:
                offered.append((float(row["audit_key"]), device, row["item"]))
    names = {p.rsplit("/", 1)[-1] for p in labeled}
    open_offered = sorted(o for o in offered if o[2].rsplit("/", 1)[-1] not in names)
    expected = {item.rsplit("/", 1)[-1] for _, _, item in open_offered[:8]}
    assert {path.rsplit("/", 1)[-1] for path, _ in merged} == expected


def test_a_version_1_manifest_gains_the_strategy_columns_when_opened(tmp_path):
    from kerasll.project.errors import ProjectBusyError
    from kerasll.project.manifest import SCHEMA_VERSION, Manifest

    project = tmp_path / "old"
    ok(cli("init", project, "--classes", CLASSES))
    connection = sqlite3.connect(project / "manifest.sqlite")
    with connection:
        for statement in ("ALTER TABLE picks DROP COLUMN role",
                          "ALTER TABLE picks DROP COLUMN score",
                          "ALTER TABLE rounds DROP COLUMN strategy",
                          "UPDATE meta SET value = '1' WHERE key = 'schema_version'"):
            connection.execute(statement)
    connection.close()
    # Upgrading needs the write lock: a busy project is a typed one-line error.
    holder = sqlite3.connect(project / "manifest.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(ProjectBusyError, match="busy"):
        Manifest.open(project, timeout=0.1)
    holder.execute("ROLLBACK")
    holder.close()
    with Manifest.open(project) as manifest:
        columns = {row[1] for row in manifest.query("PRAGMA table_info(picks)")}
        assert {"role", "score"} <= columns
        assert "strategy" in {row[1] for row in manifest.query("PRAGMA table_info(rounds)")}
    assert rows(project, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)]
