"""Selection from a stream: the selector on known score sequences, the
export-time reference, and `kerasll-score --stream` on folders and stdin,
through a kill -9 and a restart."""

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from statistics import NormalDist

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

from serving_fixtures import (  # noqa: F401 (models is a fixture)
    add_metadata, models, random_images, reference_scores, write_images)

from kerasll_serving import (CheckpointError, ContractError, PoolError, PoolScorer,
                             ServingError)
from kerasll_serving.cli import main
from kerasll_serving.contract import PREFIX, LossQuantiles, ModelContract
from kerasll_serving.selector import StreamSelector
from kerasll_serving.streaming import journal_path

NORMAL = NormalDist()
# The standard normal's quantiles at 1%, 2%, ..., 99%: an export-time reference.
LEVELS = tuple(np.round(np.arange(1, 100) / 100, 2).tolist())
NORMAL_QUANTILES = LossQuantiles(LEVELS, tuple(NORMAL.inv_cdf(p) for p in LEVELS),
                                 count=10000)


def offer_all(selector, scores, times=0.0, batch=256):
    """Offers `scores` in batches; returns (kept flags, thresholds) per item."""
    kept, thresholds = [], []
    times = np.broadcast_to(np.asarray(times, dtype=np.float64), np.shape(scores))
    for start in range(0, len(scores), batch):
        part = slice(start, start + batch)
        index = np.arange(start, start + len(scores[part]))
        for decision in selector.offer(index, scores[part], times[part]):
            kept.append(decision.kept)
            thresholds.append(decision.threshold)
    return np.array(kept), np.array(thresholds)


@pytest.mark.parametrize("rate", [0.01, 0.1])
def test_kept_share_is_within_ten_percent_of_the_rate(rate):
    """50,000 N(0, 1) scores, window 2,000: after the warm-up (1,000 items,
    nothing kept without a reference) the kept share is rate +- 10%."""
    scores = np.random.default_rng(0).normal(size=50000)
    kept, _ = offer_all(StreamSelector(rate, window=2000), scores)
    assert not kept[:1000].any()
    assert abs(kept[1000:].mean() / rate - 1) < 0.10


@pytest.mark.parametrize("shift", [3.0, -3.0])
def test_threshold_follows_a_step_change_within_window_plus_refresh(shift):
    """N(0, 1) then N(shift, 1): within window + refresh = 2,100 items the
    threshold is within 0.25 of the new 99th percentile and stays there,
    and the kept share after that is 1% +- 20%."""
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(size=10000),
                             rng.normal(size=10000) + shift])
    selector = StreamSelector(0.01, window=2000)
    assert selector.refresh == 100
    kept, thresholds = offer_all(selector, scores, batch=100)
    target = shift + NORMAL.inv_cdf(0.99)
    assert abs(thresholds[9999] - NORMAL.inv_cdf(0.99)) < 0.25  # Before the step.
    after = thresholds[10000 + 2100:]
    assert np.abs(after - target).max() < 0.25
    assert abs(kept[10000 + 2100:].mean() / 0.01 - 1) < 0.2


def test_reference_sets_the_threshold_while_warming_up():
    selector = StreamSelector(0.01, window=2000, reference=NORMAL_QUANTILES)
    assert selector.threshold == pytest.approx(NORMAL.inv_cdf(0.99))
    scores = np.random.default_rng(2).normal(size=1000)
    kept, thresholds = offer_all(selector, scores)
    assert np.all(thresholds[:999] == thresholds[0])  # The reference, until warm.
    assert kept.sum() == (scores > NORMAL.inv_cdf(0.99)).sum() > 0
    decision = StreamSelector(0.5, reference=NORMAL_QUANTILES).offer(
        [0], [NORMAL.inv_cdf(0.9)], 0.0)[0]
    assert decision.percentile == pytest.approx(90.0)


def test_per_hour_budget_becomes_a_rate_from_arrival_times():
    """One item a second (3,600 an hour) with a budget of 36 an hour is a
    rate of 1%: kept share 1% +- 10% after the warm-up."""
    scores = np.random.default_rng(3).normal(size=30000)
    selector = StreamSelector(per_hour=36, window=2000)
    kept, _ = offer_all(selector, scores, times=np.arange(30000.0))
    assert selector.current_rate == pytest.approx(0.01)
    assert abs(kept[1000:].mean() / 0.01 - 1) < 0.10


def test_nan_scores_are_never_kept_nor_in_the_window():
    selector = StreamSelector(0.5, window=4, warmup=2)
    decisions = selector.offer(range(6), [1.0, 2.0, np.nan, 3.0, np.nan, 4.0], 0.0)
    assert [d.kept for d in decisions] == [False, False, False, True, False, True]
    assert selector.seen == 6 and selector.kept == 2


def test_stream_audit_sample_is_uniform_over_seeds():
    """1,000 seeds, 4 of 40 arrivals each: every arrival is expected 100
    times; chi-square (39 degrees of freedom) must not reject at 1%."""
    counts = np.zeros(40)
    scores = np.random.default_rng(4).normal(size=40)
    for seed in range(1000):
        selector = StreamSelector(0.1, window=10, audit=4, seed=seed)
        offer_all(selector, scores, batch=7)
        counts[selector.audit_sample()[0]] += 1
    assert counts.sum() == 4000
    assert scipy.stats.chisquare(counts).pvalue > 0.01


@pytest.mark.parametrize("arguments, message", [
    ({}, "exactly one of rate and per_hour"),
    ({"rate": 0.1, "per_hour": 5}, "exactly one of rate and per_hour"),
    ({"rate": 0.0}, r"Expected rate to be a finite number in \(0, 1\]"),
    ({"rate": float("nan")}, "Expected rate"),
    ({"rate": 0.1, "window": 1}, "Expected window to be an integer >= 2"),
    ({"rate": 0.1, "window": 10, "warmup": 11}, "Expected warmup <= window"),
    ({"rate": 0.1, "reference": [0.1, 0.2]}, "Expected reference"),
    ({"rate": 0.1, "audit": -1}, "Expected audit"),
])
def test_bad_selector_arguments_are_refused(arguments, message):
    with pytest.raises(ServingError, match=message):
        StreamSelector(**arguments)


def test_quantiles_round_trip_through_the_metadata_and_are_optional(models):
    contract = PoolScorer(models["gray"]).contract
    assert contract.predicted_loss_quantiles is None  # Older exports: absent.
    with_reference = ModelContract(**{**contract.__dict__,
                                      "predicted_loss_quantiles": NORMAL_QUANTILES})
    metadata = with_reference.to_metadata()
    assert json.loads(metadata[PREFIX + "predicted_loss_quantiles"])["count"] == 10000
    assert ModelContract.from_metadata(metadata) == with_reference
    metadata[PREFIX + "predicted_loss_quantiles"] = json.dumps(
        {"levels": [0.5, 0.4], "values": [1, 2], "count": 3})
    with pytest.raises(ContractError, match="strictly increasing levels"):
        ModelContract.from_metadata(metadata)


# ---- kerasll-score --stream -------------------------------------------------

def make_folder(directory, count, seed, start=0):
    """Writes `count` images with increasing modification times; returns paths."""
    paths = write_images(directory, random_images(count, seed=seed), nested=False)
    for number, path in enumerate(sorted(paths)):
        stamp = 1_700_000_000 + start + number
        os.utime(path, (stamp, stamp))
    return sorted(paths)


def expected_decisions(model, paths, selector):
    """The selector's decisions on the model's own scores, in path order."""
    from PIL import Image

    x = np.stack([np.asarray(Image.open(p))[..., None] for p in paths])
    loss, _ = reference_scores(model, x)
    decisions = selector.offer(np.arange(len(paths)), loss, 0.0)
    return [path for path, d in zip(paths, decisions) if d.kept], selector


def stream_rows(out):
    return list(csv.DictReader(open(out)))


def test_folder_stream_keeps_what_the_selector_keeps(models, tmp_path):
    paths = make_folder(tmp_path / "frames", 120, seed=5)
    out = tmp_path / "picks.csv"
    result = PoolScorer(models["gray"], batch_size=16).stream(
        tmp_path / "frames", StreamSelector(0.1, window=40, audit=6, seed=2),
        out=out, poll=0.01, idle_timeout=0.2)
    kept, reference = expected_decisions(
        models["gray"], paths, StreamSelector(0.1, window=40, audit=6, seed=2))
    assert [pick.item for pick in result.picks] == kept
    assert result.seen == 120 and result.kept == len(kept) > 0
    rows = stream_rows(out)
    assert list(rows[0]) == ["item", "index", "predicted_loss", "nan", "percentile",
                             "threshold", "prediction", "confidence", "role",
                             "audit_key"]
    picked = [row for row in rows if row["role"] in ("pick", "pick+audit")]
    assert [row["item"] for row in picked] == kept
    assert all(float(row["predicted_loss"]) > float(row["threshold"])
               for row in picked)
    audited = [row["item"] for row in rows if "audit" in row["role"]]
    assert sorted(audited) == sorted(paths[i] for i in reference.audit_sample()[0])
    assert (tmp_path / "picks.csv.errors.csv").read_text() == "index,item,error\n"
    assert os.path.exists(journal_path(out)) and not os.path.exists(
        str(out) + ".lock")


def test_percentiles_come_from_the_models_reference(models, tmp_path):
    model = tmp_path / "with_reference.onnx"
    shutil.copy(models["gray"], model)
    add_metadata(str(model), {PREFIX + "predicted_loss_quantiles": json.dumps(
        {"levels": [0.0, 1.0], "values": [-10.0, 10.0], "count": 100})})
    make_folder(tmp_path / "frames", 30, seed=6)
    scorer = PoolScorer(str(model), batch_size=8)
    reference = scorer.contract.predicted_loss_quantiles
    assert reference == LossQuantiles((0.0, 1.0), (-10.0, 10.0), 100)
    result = scorer.stream(
        tmp_path / "frames", StreamSelector(0.2, window=10, reference=reference),
        out=tmp_path / "picks.jsonl", poll=0.01, idle_timeout=0.2)
    assert result.picks
    for pick in result.picks:
        assert pick.percentile == pytest.approx(100 * (pick.predicted_loss + 10) / 20)
    first = json.loads(open(tmp_path / "picks.jsonl").readline())
    assert first["percentile"] == pytest.approx(result.picks[0].percentile)
    # Pool picks carry it too, after `nan`, when the model has a reference.
    np.save(tmp_path / "pool.npy", random_images(20, seed=6))
    pooled = scorer.score(tmp_path / "pool.npy", k=3, out=tmp_path / "pool.csv")
    rows = stream_rows(tmp_path / "pool.csv")
    assert list(rows[0])[:6] == ["rank", "item", "index", "predicted_loss", "nan",
                                 "percentile"]
    for row, pick in zip(rows, pooled.picks):
        expected = 100 * (pick.predicted_loss + 10) / 20
        assert float(row["percentile"]) == pytest.approx(expected)


def test_interrupted_stream_resumes_to_the_same_picks(models, tmp_path, monkeypatch):
    make_folder(tmp_path / "frames", 100, seed=7)

    def selector():
        return StreamSelector(0.1, window=30, audit=5, seed=1)

    scorer = PoolScorer(models["gray"], batch_size=10)
    whole = scorer.stream(tmp_path / "frames", selector(), out=tmp_path / "a.csv",
                          poll=0.01, idle_timeout=0.2)
    original, calls = scorer.model.run, []

    def run(x):
        calls.append(1)
        if len(calls) > 4:
            raise KeyboardInterrupt
        return original(x)

    monkeypatch.setattr(scorer.model, "run", run)
    out = tmp_path / "b.csv"
    with pytest.raises(KeyboardInterrupt):
        scorer.stream(tmp_path / "frames", selector(), out=out, poll=0.01,
                      idle_timeout=0.2)
    monkeypatch.setattr(scorer.model, "run", original)
    assert len(open(journal_path(out)).readlines()) == 1 + 40
    with pytest.raises(CheckpointError, match="pass --resume"):
        scorer.stream(tmp_path / "frames", selector(), out=out, poll=0.01,
                      idle_timeout=0.2)
    with pytest.raises(CheckpointError, match="different selector"):
        scorer.stream(tmp_path / "frames", StreamSelector(0.2, window=30), out=out,
                      resume=True, poll=0.01, idle_timeout=0.2)
    with open(journal_path(out), "ab") as journal:
        journal.write(b'{"index": 40, "item": "half a li')  # A kill mid-write.
    resumed = scorer.stream(tmp_path / "frames", selector(), out=out, resume=True,
                            poll=0.01, idle_timeout=0.2)
    assert resumed.replayed == 40 and resumed.seen == 100
    assert resumed.picks == whole.picks and resumed.audit == whole.audit
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    items = [json.loads(line)["item"] for line in open(journal_path(out))
             if '"journal_format"' not in line]
    assert len(items) == len(set(items)) == 100


def test_paths_on_stdin(models, tmp_path):
    paths = make_folder(tmp_path / "frames", 25, seed=8)
    (tmp_path / "frames" / "bad.png").write_bytes(b"junk")
    lines = io.StringIO("\n".join(paths[:10] + [str(tmp_path / "frames" / "bad.png")]
                                  + paths[:3] + paths[10:]) + "\n")
    result = PoolScorer(models["gray"], batch_size=4).stream(
        "-", StreamSelector(0.2, window=10), out=tmp_path / "p.csv",
        input_stream=lines)
    assert result.seen == 26 and result.skipped == 1  # Repeated lines skipped.
    errors = stream_rows(tmp_path / "p.csv.errors.csv")
    assert [row["index"] for row in errors] == ["10"]


def test_empty_stream_is_an_error_that_leaves_no_file(models, tmp_path):
    (tmp_path / "frames").mkdir()
    with pytest.raises(PoolError, match="Expected at least one image to arrive"):
        PoolScorer(models["gray"]).stream(
            tmp_path / "frames", StreamSelector(0.1), out=tmp_path / "p.csv",
            poll=0.01, idle_timeout=0.05)
    assert sorted(os.listdir(tmp_path)) == ["frames"]


def test_jsonl_stream_writes_no_infinity(models, tmp_path):
    """Audit rows decided while warming up without a reference had an
    infinite threshold: JSON has no infinity, so it is null."""
    make_folder(tmp_path / "frames", 12, seed=14)
    result = PoolScorer(models["gray"], batch_size=4).stream(
        tmp_path / "frames", StreamSelector(0.5, window=20, audit=12),
        out=tmp_path / "p.jsonl", poll=0.01, idle_timeout=0.1)
    assert result.kept == 0 and len(result.audit) == 12
    text = open(tmp_path / "p.jsonl").read()
    assert "Infinity" not in text and "NaN" not in text
    assert all(json.loads(line)["threshold"] is None for line in text.splitlines())


def test_folder_that_grows_while_streaming(models, tmp_path):
    frames = tmp_path / "frames"
    make_folder(frames, 20, seed=9)

    def add_more():
        for number in range(3):
            time.sleep(0.15)
            batch = tmp_path / f"more{number}"
            make_folder(batch, 10, seed=10 + number, start=100 * (number + 1))
            for path in sorted(os.listdir(batch)):
                os.replace(batch / path, frames / f"{number}_{path}")

    writer = threading.Thread(target=add_more)
    writer.start()
    result = PoolScorer(models["gray"], batch_size=8).stream(
        frames, StreamSelector(0.2, window=10), out=tmp_path / "p.csv",
        poll=0.02, idle_timeout=1.0)
    writer.join()
    assert result.seen == 50


def test_cli_stream_refuses_pool_options_and_pool_refuses_stream_options(
        models, tmp_path):
    make_folder(tmp_path / "frames", 5, seed=11)
    runner = CliRunner()
    refused = runner.invoke(main, [models["gray"], str(tmp_path / "frames"), "--out",
                                   str(tmp_path / "p.csv"), "--stream", "--k", "3"])
    assert refused.exit_code == 2 and "--k: only for pools" in refused.output
    refused = runner.invoke(main, [models["gray"], str(tmp_path / "frames"), "--out",
                                   str(tmp_path / "p.csv"), "--rate", "0.1"])
    assert refused.exit_code == 2 and "--rate: only for --stream" in refused.output
    refused = runner.invoke(main, [models["gray"], "-", "--out",
                                   str(tmp_path / "p.csv")])
    assert refused.exit_code == 2 and "needs --stream" in refused.output
    assert sorted(os.listdir(tmp_path)) == ["frames"]


# kill -9 and restart: the real command in a fresh process, on a folder that
# grows while it runs. Each inference call sleeps, so the kill lands mid-stream.
DRIVER = r'''
import sys, time
import onnxruntime
original_run = onnxruntime.InferenceSession.run
def run(self, *args, **kwargs):
    time.sleep(0.1)
    return original_run(self, *args, **kwargs)
onnxruntime.InferenceSession.run = run
from kerasll_serving.cli import main
main(sys.argv[1:])
'''


@pytest.mark.slow
def test_kill_9_then_restart_neither_repicks_nor_loses_a_pick(models, tmp_path):
    frames, out = tmp_path / "frames", tmp_path / "picks.csv"
    make_folder(frames, 60, seed=12)
    command = [sys.executable, "-c", DRIVER, models["gray"], str(frames), "--stream",
               "--out", str(out), "--rate", "0.2", "--window", "20",
               "--batch-size", "4", "--poll", "0.05", "--idle-timeout", "3",
               "--audit", "5", "--quiet"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # Until some batches are journaled.
        if os.path.exists(journal_path(out)) and \
                len(open(journal_path(out)).readlines()) > 1 + 24:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    before = [json.loads(line) for line in open(journal_path(out))][1:]
    picked_before = {record["item"] for record in before if record.get("kept")}
    assert 24 <= len(before) < 60 and not out.exists()
    more = make_folder(tmp_path / "more", 20, seed=13, start=1000)
    for path in more:  # The folder grows before the restart.
        os.replace(path, frames / ("late_" + os.path.basename(path)))
    second = subprocess.run(command + ["--resume"], capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr
    records = [json.loads(line) for line in open(journal_path(out))][1:]
    items = [record["item"] for record in records]
    assert len(items) == len(set(items)) == 80  # Each item decided once.
    assert [record["index"] for record in records] == list(range(80))
    rows = stream_rows(out)
    picks = [row["item"] for row in rows if row["role"] != "audit"]
    assert len(picks) == len(set(picks))
    assert picked_before <= set(picks)  # No pick journaled before the kill lost.
    assert set(picks) == {record["item"] for record in records if record["kept"]}
    assert sum(row["role"] != "pick" for row in rows) == 5
