"""End-to-end scoring through the Python API: known answers and outputs."""

import csv
import json
import os
import threading

import numpy as np
import pytest

from serving_fixtures import (  # noqa: F401 (models is a fixture)
    models, random_images, reference_scores, write_images)

from kerasll_serving import (ContractError, OutputError, PoolError, PoolScorer,
                             ScoreResult, ServingError)
from kerasll_serving.contract import PREFIX


def brute_force(loss, k):
    """Indices of the top-k by full sort: loss descending, NaN last, then index."""
    order = np.lexsort((np.arange(len(loss)), np.isnan(loss),
                        -np.nan_to_num(loss, nan=-np.inf)))
    return order[:k].tolist()


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def gray_pool(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gray_pool")
    images = random_images(333, seed=1)
    np.save(directory / "pool.npy", images)
    return directory / "pool.npy", images


def test_npy_picks_equal_brute_force_of_the_models_own_outputs(models, gray_pool):
    path, images = gray_pool
    result = PoolScorer(models["gray"], batch_size=32).score(path, k=25)
    loss, logits = reference_scores(models["gray"], images)
    expected = brute_force(loss, 25)
    assert [pick.index for pick in result.picks] == expected
    assert [pick.item for pick in result.picks] == expected
    assert [pick.rank for pick in result.picks] == list(range(1, 26))
    np.testing.assert_allclose([p.predicted_loss for p in result.picks], loss[expected],
                               rtol=1e-6)
    probabilities = softmax(logits.astype(np.float64))
    names = ("cat", "dog", "bird")
    for pick in result.picks:
        assert pick.prediction == names[int(np.argmax(probabilities[pick.index]))]
        expected_confidence = probabilities[pick.index].max()
        assert pick.confidence == pytest.approx(expected_confidence, rel=1e-5)
    assert isinstance(result, ScoreResult)
    assert (result.total, result.scored, result.skipped, result.nan) == (333, 333, 0, 0)
    assert result.provider == "CPUExecutionProvider" and result.engine == "local"
    assert result.items_per_second > 0 and result.batches_run == 11


def test_batch_size_does_not_change_the_picks(models, gray_pool):
    path, _ = gray_pool
    picks = []
    for size in (1, 50, 1000):
        result = PoolScorer(models["gray"], batch_size=size).score(path, k=10)
        picks.append([pick.index for pick in result.picks])
    assert picks[0] == picks[1] == picks[2]


def test_image_directory_with_resize_and_softmax_outputs(models, tmp_path):
    big = random_images(40, channels=3, size=12, seed=2)
    paths = write_images(tmp_path / "pool", big)
    result = PoolScorer(models["rgb"], batch_size=8).score(tmp_path / "pool", k=40)
    from PIL import Image
    resized = np.stack([np.asarray(Image.open(p).convert("RGB").resize(
        (8, 8), Image.Resampling.BILINEAR)) for p in paths])
    loss, probabilities = reference_scores(models["rgb"], resized)
    expected = brute_force(loss, 40)
    assert [p.item for p in result.picks] == [str(paths[i]) for i in expected]
    top = result.picks[0]
    assert top.prediction == int(np.argmax(probabilities[top.index]))  # No class names.
    assert top.confidence == pytest.approx(float(probabilities[top.index].max()),
                                           rel=1e-5)


def test_list_file_and_npz_pools_give_the_same_picks(models, tmp_path):
    images = random_images(60, seed=4)
    paths = write_images(tmp_path / "imgs", images, nested=False)
    (tmp_path / "pool.txt").write_text("\n".join(str(p) for p in paths))
    np.savez_compressed(tmp_path / "pool.npz", x_train=images, y_train=np.zeros(60))
    scorer = PoolScorer(models["gray"], batch_size=16)
    from_list = scorer.score(tmp_path / "pool.txt", k=7)
    from_npz = scorer.score(tmp_path / "pool.npz", k=7)
    assert [p.index for p in from_list.picks] == [p.index for p in from_npz.picks]
    assert from_list.picks[0].item == str(paths[from_list.picks[0].index])


def test_regression_device_scaling_nan_flagged_and_ranked_last(models, tmp_path):
    images = random_images(50, seed=5)
    images[[3, 17, 40]] = 0  # All-black: the model's predicted loss is NaN.
    np.save(tmp_path / "pool.npy", images)
    result = PoolScorer(models["regression"], batch_size=16).score(
        tmp_path / "pool.npy", k=50, out=tmp_path / "picks.csv")
    loss, value = reference_scores(models["regression"],
                                   images.astype(np.float32) * np.float32(1 / 255))
    assert result.nan == 3
    assert [p.index for p in result.picks] == brute_force(loss, 50)
    assert [p.index for p in result.picks[-3:]] == [3, 17, 40]
    assert all(p.nan for p in result.picks[-3:]) and not result.picks[0].nan
    top = result.picks[0]
    assert top.prediction == pytest.approx(float(value[top.index, 0]), rel=1e-5)
    assert top.confidence is None
    rows = list(csv.DictReader(open(tmp_path / "picks.csv")))
    assert [row["nan"] for row in rows[-3:]] == ["1", "1", "1"]
    assert rows[-1]["predicted_loss"] == "nan"


def test_k_larger_than_pool_returns_all_with_a_warning(models, gray_pool):
    path, _ = gray_pool
    with pytest.warns(UserWarning, match="larger than the pool"):
        result = PoolScorer(models["gray"], batch_size=100).score(path, k=1000)
    assert len(result.picks) == 333
    assert result.warnings == ("k=1000 is larger than the pool (333 items); "
                               "returning all 333.",)


def test_csv_and_jsonl_outputs_and_errors_file(models, tmp_path):
    write_images(tmp_path / "pool", random_images(9, seed=6))
    (tmp_path / "pool" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    (tmp_path / "pool" / "sub" / "empty.jpg").write_bytes(b"")
    scorer = PoolScorer(models["gray"], batch_size=4)
    result = scorer.score(tmp_path / "pool", k=3, out=tmp_path / "picks.csv",
                          all_scores=tmp_path / "all.jsonl")
    assert (result.scored, result.skipped) == (9, 2)
    rows = list(csv.DictReader(open(tmp_path / "picks.csv")))
    assert list(rows[0]) == ["rank", "item", "index", "predicted_loss", "nan",
                             "prediction", "confidence"]
    assert [row["item"] for row in rows] == [p.item for p in result.picks]
    assert rows[0]["prediction"] in ("cat", "dog", "bird")
    errors = list(csv.DictReader(open(tmp_path / "picks.csv.errors.csv")))
    assert sorted(os.path.basename(row["item"]) for row in errors) == [
        "broken.png", "empty.jpg"]
    assert all(row["error"] for row in errors)
    scores = [json.loads(line) for line in open(tmp_path / "all.jsonl")]
    assert len(scores) == 9 and not os.path.exists(tmp_path / "all.jsonl.partial")
    best = max(scores, key=lambda row: row["predicted_loss"])
    assert best["item"] == result.picks[0].item
    jsonl = scorer.score(tmp_path / "pool", k=3, out=tmp_path / "picks.jsonl")
    records = [json.loads(line) for line in open(tmp_path / "picks.jsonl")]
    assert [r["index"] for r in records] == [p.index for p in jsonl.picks]
    assert records[0]["rank"] == 1 and records[0]["nan"] is False
    leftovers = [name for name in os.listdir(tmp_path)
                 if name.startswith(".tmp-") or name.endswith(".npz")]
    assert leftovers == []  # Temporary files renamed, checkpoint removed.


def test_outputs_are_replaced_atomically(models, gray_pool, tmp_path, monkeypatch):
    path, _ = gray_pool
    out = tmp_path / "picks.csv"
    out.write_text("old picks\n")
    import kerasll_serving.output as output

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(output.os, "replace", fail)
    with pytest.raises(OutputError, match="disk full"):
        PoolScorer(models["gray"]).score(path, k=2, out=out)
    assert out.read_text() == "old picks\n"
    assert [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")] == []


def test_every_item_corrupt_is_an_error_after_listing_them(models, tmp_path):
    (tmp_path / "pool").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "pool" / name).write_bytes(b"junk")
    with pytest.raises(PoolError, match="every item was skipped"):
        PoolScorer(models["gray"]).score(tmp_path / "pool", k=1,
                                          out=tmp_path / "picks.csv")
    assert len(open(tmp_path / "picks.csv.errors.csv").readlines()) == 3


def test_decoding_runs_on_worker_threads_ahead_of_inference(models, gray_pool,
                                                             monkeypatch):
    path, _ = gray_pool
    scorer = PoolScorer(models["gray"], batch_size=32, decode_workers=2)
    from kerasll_serving.sources import ArrayPool
    threads, original = set(), ArrayPool.read

    def read(self, indices):
        threads.add(threading.current_thread().name)
        return original(self, indices)

    monkeypatch.setattr(ArrayPool, "read", read)
    scorer.score(path, k=3)
    assert threads and all(name.startswith("kerasll-decode") for name in threads)


def test_model_without_metadata_is_refused(models):
    with pytest.raises(ContractError, match="Expected an ONNX model exported by"):
        PoolScorer(models["bare"])


def test_metadata_naming_a_missing_output_is_refused(models, tmp_path):
    import onnx
    model = onnx.load(models["gray"])
    for entry in model.metadata_props:
        if entry.key == PREFIX + "predicted_loss_output":
            entry.value = json.dumps("loss_head")
    onnx.save(model, tmp_path / "renamed.onnx")
    with pytest.raises(ContractError, match=r"missing \['loss_head'\]"):
        PoolScorer(str(tmp_path / "renamed.onnx"))


@pytest.mark.parametrize("arguments, pattern", [
    ({"k": 0}, "k to be an integer >= 1"),
    ({"k": 2, "out": "picks.txt"}, "ending in .csv or .jsonl"),
    ({"k": 2, "all_scores": "scores.parquet"}, "ending in .csv or .jsonl"),
    ({"k": 2, "resume": True}, "Expected out= with resume=True"),
    ({"k": 2, "engine": "spark"}, r"engine to be one of \[.local., .ray.\]"),
    ({"k": 2.5}, r"Expected k to be an integer >= 1\. Received: k=2\.5"),
    ({"k": True}, "Received: k=True"),
    ({"k": 2, "checkpoint_every": 0}, "checkpoint_every to be an integer >= 1"),
    ({"k": 2, "resume": "yes"}, "Expected resume to be a boolean"),
    ({"k": 2, "progress": 1}, "Expected progress to be a boolean or None"),
    ({"k": 2, "ray_address": 6379}, "Expected ray_address to be a str or None"),
    ({"k": 2, "num_actors": 0}, "Expected num_actors to be an integer >= 1 or None"),
])
def test_bad_arguments_are_typed_errors(models, gray_pool, arguments, pattern):
    path, _ = gray_pool
    with pytest.raises(ServingError, match=pattern):
        PoolScorer(models["gray"]).score(path, **arguments)


def test_numpy_integers_are_accepted(models, gray_pool):
    path, _ = gray_pool
    result = PoolScorer(models["gray"], batch_size=np.int64(64)).score(path,
                                                                       k=np.int32(3))
    assert len(result.picks) == 3


@pytest.mark.parametrize("arguments, pattern", [
    ({"batch_size": 0}, "Expected batch_size to be an integer >= 1"),
    ({"batch_size": 2.5}, "Received: batch_size=2.5"),
    ({"decode_workers": True}, "Expected decode_workers to be an integer >= 1"),
    ({"threads": 1.5}, "Expected threads to be an integer >= 0 or None"),
    ({"providers": "tpu"}, "tpu"),
])
def test_bad_constructor_arguments(models, arguments, pattern):
    with pytest.raises(ServingError, match=pattern):
        PoolScorer(models["gray"], **arguments)
