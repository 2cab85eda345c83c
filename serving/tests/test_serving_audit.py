"""The audit sample: uniform over the pool, fixed per (seed, item), the same
however the pool is split, and written beside the top-K in the picks file."""

import csv
import json

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

from serving_fixtures import models, random_images  # noqa: F401

from kerasll_serving import PoolScorer, ServingError
from kerasll_serving.audit import AuditSample, item_keys
from kerasll_serving.cli import main


def sample(size, seed, index, batch=7):
    """Streams `index` through an `AuditSample` in batches; returns its items."""
    audit = AuditSample(size, seed)
    for start in range(0, len(index), batch):
        part = np.asarray(index[start:start + batch], dtype=np.int64)
        audit.push(part, np.zeros(len(part)), {})
    return audit.ranked()[0].tolist()


def test_item_keys_depend_only_on_seed_and_index():
    keys = item_keys(3, np.arange(1000))
    assert keys.min() >= 0 and keys.max() < 1
    np.testing.assert_array_equal(item_keys(3, [999, 5, 17]), keys[[999, 5, 17]])
    assert not np.array_equal(item_keys(4, np.arange(1000)), keys)
    # Known answer: numpy keeps Philox's bit stream stable across versions.
    np.testing.assert_allclose(item_keys(0, [0, 1]), [0.01154675, 0.50237960],
                               atol=1e-8)


def test_audit_frequencies_are_uniform_over_seeds():
    """2,000 seeds, 5 of 50 items each: every item is expected 200 times. A
    chi-square test of the counts (49 degrees of freedom) must not reject
    uniformity at the 1% level, and no item may be off by more than 25%."""
    pool, size, seeds = 50, 5, 2000
    counts = np.zeros(pool)
    for seed in range(seeds):
        chosen = sample(size, seed, np.arange(pool))
        assert len(set(chosen)) == size
        counts[chosen] += 1
    expected = seeds * size / pool
    assert scipy.stats.chisquare(counts).pvalue > 0.01
    assert np.abs(counts - expected).max() < 0.25 * expected


def test_sample_is_independent_of_order_and_batching():
    rng = np.random.default_rng(0)
    index = np.arange(500)
    single = sample(20, 11, index, batch=500)
    assert sample(20, 11, rng.permutation(index), batch=13) == sorted(
        single, key=lambda i: item_keys(11, [i])[0])
    # Shards each keep their own sample; the merge of those is the whole sample.
    merged = AuditSample(20, 11)
    for shard in np.array_split(rng.permutation(index), 4):
        part = AuditSample(20, 11)
        part.push(shard, np.zeros(len(shard)), {})
        shard_index, _, loss, columns = part.ranked()
        merged.push(shard_index, loss, columns)
    assert merged.ranked()[0].tolist() == single


def test_candidates_of_a_batch_hold_its_smallest_keys():
    index = np.arange(100, 160)
    positions = AuditSample(4, 2).candidates(index)
    keys = item_keys(2, index)
    assert sorted(positions.tolist()) == sorted(np.argsort(keys)[:4].tolist())


@pytest.mark.parametrize("audit, seed", [(-1, 0), (2.5, 0), (True, 0), (3, -2),
                                         (3, 2 ** 64), (3, "0")])
def test_bad_audit_or_seed_is_refused(audit, seed):
    with pytest.raises(ServingError, match="Expected (audit|seed) to be an integer"):
        AuditSample(audit, seed)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit_pool") / "pool.npy"
    np.save(path, random_images(300, seed=5))
    return path


def test_scorer_writes_audit_rows_after_the_picks(models, pool, tmp_path):
    out = tmp_path / "picks.csv"
    result = PoolScorer(models["gray"], batch_size=32).score(pool, k=10, out=out,
                                                             audit=25, seed=4)
    keys = item_keys(4, np.arange(300))
    expected = np.argsort(keys)[:25].tolist()
    assert [pick.index for pick in result.audit] == expected
    assert [pick.audit_key for pick in result.audit] == keys[expected].tolist()
    top = {pick.index for pick in result.picks}
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0])[-2:] == ["role", "audit_key"]
    both = top & set(expected)
    assert len(rows) == 10 + 25 - len(both)
    assert [row["role"] for row in rows[:10]] == [
        "pick+audit" if pick.index in both else "pick" for pick in result.picks]
    assert [int(row["index"]) for row in rows[10:]] == [
        index for index in expected if index not in both]
    assert all(row["role"] == "audit" and row["rank"] == "" for row in rows[10:])
    assert "audit sample of 25" in result.summary()


def test_audit_items_carry_their_own_scores(models, pool):
    scorer = PoolScorer(models["gray"], batch_size=32)
    every = scorer.score(pool, k=300)
    by_index = {pick.index: pick for pick in every.picks}
    audited = scorer.score(pool, k=1, audit=12, seed=9)
    for pick in audited.audit:
        assert pick.predicted_loss == by_index[pick.index].predicted_loss
        assert pick.prediction == by_index[pick.index].prediction


def test_pool_smaller_than_audit_is_audited_whole(models, pool):
    result = PoolScorer(models["gray"], batch_size=64).score(pool, k=5, audit=1000)
    assert sorted(pick.index for pick in result.audit) == list(range(300))
    assert sum(pick.role == "pick+audit" for pick in result.audit) == 5


def test_without_audit_the_picks_file_is_unchanged(models, pool, tmp_path):
    out = tmp_path / "picks.jsonl"
    result = PoolScorer(models["gray"]).score(pool, k=3, out=out)
    assert result.audit == [] and all(pick.role is None for pick in result.picks)
    assert "role" not in json.loads(open(out).readline())


def test_cli_audit_and_seed(models, pool, tmp_path):
    out = tmp_path / "picks.jsonl"
    completed = CliRunner().invoke(main, [models["gray"], str(pool), "--k", "4",
                                          "--out", str(out), "--audit", "6",
                                          "--seed", "1", "--quiet"])
    assert completed.exit_code == 0, completed.output
    records = [json.loads(line) for line in open(out)]
    audited = [r["index"] for r in records if r["role"] in ("audit", "pick+audit")]
    assert sorted(audited) == sorted(np.argsort(item_keys(1, np.arange(300)))[:6])
    refused = CliRunner().invoke(main, [models["gray"], str(pool), "--out",
                                        str(tmp_path / "x.csv"), "--audit", "-1"])
    assert refused.exit_code == 2 and not (tmp_path / "x.csv").exists()
