"""Pool, saved state, protocol validation and atomic writes."""

import json

import numpy as np
import pytest
from kerasll_serving.atomic import atomic_path, write_text

from kerasll.active.errors import PoolError, ProtocolError, ResumeError
from kerasll.active.pool import UNLABELED, Pool
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.seeds import derive_seed
from kerasll.active.state import CycleRecord, ExperimentState
from kerasll.active.training import TrainingConfig
from kerasll.data import load_digits
from kerasll.tasks.classification import ClassificationTask


def test_pool_records_the_cycle_of_every_label():
    pool = Pool(10)
    pool.label([3, 1], cycle=0)
    pool.label([7], cycle=1)
    pool.label([0], cycle=1)
    assert pool.labeled_cycle.tolist() == [1, 0, -1, 0, -1, -1, -1, 1, -1, -1]
    assert UNLABELED == -1
    assert pool.labeled_indices().tolist() == [3, 1, 7, 0]
    assert pool.unlabeled_indices().tolist() == [2, 4, 5, 6, 8, 9]
    assert pool.labeled_at(1).tolist() == [7, 0]
    assert (pool.num_labeled, pool.num_unlabeled, pool.last_cycle) == (4, 6, 1)


@pytest.mark.parametrize(
    "indices, cycle, match",
    [
        ([3], 1, "already labeled"),
        ([10], 1, r"\[0, 10\)"),
        ([4, 4], 1, "distinct"),
        ([4], 3, "cycle=3"),
    ],
)
def test_pool_rejects_invalid_labels(indices, cycle, match):
    pool = Pool(10)
    pool.label([3], cycle=0)
    with pytest.raises(PoolError, match=match):
        pool.label(indices, cycle)


def test_pool_state_round_trips_through_json():
    pool = Pool(50)
    pool.label(np.random.default_rng(0).choice(50, size=10, replace=False), cycle=0)
    pool.label(pool.unlabeled_indices()[:5], cycle=1)
    restored = Pool.from_state_dict(json.loads(json.dumps(pool.state_dict())))
    np.testing.assert_array_equal(restored.labeled_cycle, pool.labeled_cycle)
    np.testing.assert_array_equal(restored.labeled_indices(), pool.labeled_indices())
    assert restored.state_dict() == pool.state_dict()
    with pytest.raises(PoolError, match="pool of 49"):
        Pool(49).load_state_dict(pool.state_dict())


def _config(**kwargs):
    defaults = dict(
        dataset="digits",
        model="small_cnn",
        strategies=("learning_loss", "random"),
        initial_size=10,
        budget=5,
        subset_size=20,
        cycles=3,
        trials=2,
        training=TrainingConfig(epochs=2),
    )
    return ExperimentConfig(**{**defaults, **kwargs})


def test_experiment_state_round_trip_and_resume_check(tmp_path):
    config = _config()
    state = ExperimentState(config.to_dict(), "abc")
    pool = Pool(30)
    pool.label(range(10), 0)
    record = CycleRecord(
        "learning_loss", 0, 0, 10, 0.5, rank_accuracy=0.6, seconds=1.2,
        pick_histogram=[4, 6], pick_loss=0.9, random_loss=0.7,
    )
    audits = [{"predicted_loss": [0.5, 0.1], "true_loss": [2.0, 0.2]}]
    state.update_run("learning_loss", 0, pool.state_dict(), [record], [None], audits)
    state.save(tmp_path)
    loaded = ExperimentState.load(tmp_path)
    assert loaded.records(config.strategies, config.trials) == [record]
    assert loaded.run("learning_loss", 0)["audits"] == audits
    assert ExperimentConfig.from_dict(loaded.config) == config
    loaded.check_matches(config.to_dict(), "abc")
    changed = _config(budget=6, training=TrainingConfig(epochs=3))
    with pytest.raises(ResumeError, match=r"budget=6 \(saved: 5\).*training.epochs=3"):
        loaded.check_matches(changed.to_dict(), "abc")
    with pytest.raises(ResumeError, match="fingerprint"):
        loaded.check_matches(config.to_dict(), "other")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp files


def test_a_state_saved_with_the_old_accuracy_key_loads_as_metric(tmp_path):
    config = _config()
    state = ExperimentState(config.to_dict(), "abc")
    record = CycleRecord("random", 0, 0, 10, 0.5, pick_histogram=[4, 6])
    state.update_run("random", 0, Pool(30).state_dict(), [record], [None], [])
    cycle = state.run("random", 0)["cycles"][0]
    cycle["accuracy"] = cycle.pop("metric")  # as states written before the rename
    state.save(tmp_path)
    assert '"accuracy": 0.5' in (tmp_path / "state.json").read_text()
    loaded = ExperimentState.load(tmp_path)
    assert loaded.records(config.strategies, config.trials) == [record]
    assert CycleRecord.from_dict(record.to_dict()) == record
    with pytest.raises(TypeError, match="accuracy"):
        CycleRecord.from_dict({**record.to_dict(), "accuracy": 0.7})


def test_a_state_saved_with_the_old_training_key_resumes(tmp_path):
    config = _config(strategies=("learning_loss_safe", "random"))
    saved = config.to_dict()
    assert saved["strategy_configs"]["learning_loss_safe"]["head_training"] == (
        "decoupled"
    )
    old = json.loads(json.dumps(saved))
    strategy_config = old["strategy_configs"]["learning_loss_safe"]
    strategy_config["training"] = strategy_config.pop("head_training")
    ExperimentState(old, "abc").save(tmp_path)
    ExperimentState.load(tmp_path).check_matches(saved, "abc")


@pytest.mark.parametrize("old_key", ["task", None])
def test_a_state_saved_with_the_old_task_key_resumes(tmp_path, old_key):
    config = _config(task_kind="detection" if old_key else "classification")
    saved = config.to_dict()
    old = dict(saved)
    kind = old.pop("task_kind")
    if old_key:  # as states written before the rename; None: before tasks
        old[old_key] = kind
    ExperimentState(old, "abc").save(tmp_path)
    loaded = ExperimentState.load(tmp_path)
    loaded.check_matches(saved, "abc")
    assert ExperimentConfig.from_dict(loaded.config) == config


def test_loading_missing_state_is_a_resume_error(tmp_path):
    with pytest.raises(ResumeError, match="start without --resume"):
        ExperimentState.load(tmp_path)


def test_protocol_errors_say_what_to_change():
    with pytest.raises(ProtocolError, match="subset_size=50 < budget=100"):
        _config(budget=100, subset_size=50)
    with pytest.raises(
        ProtocolError, match=r"10 \+ 2 x 5 = 20 labels for a pool of 19"
    ):
        _config().check_pool(19)
    _config().check_pool(20)
    with pytest.raises(ProtocolError, match="Received: trials=0"):
        _config(trials=0)
    with pytest.raises(ValueError, match="model='vgg'"):
        _config(model="vgg").with_task_defaults(ClassificationTask(load_digits()))
    with pytest.raises(ValueError, match="epochs"):
        TrainingConfig(epochs=0)


def test_training_schedule_fractions_follow_the_paper():
    paper = TrainingConfig()
    assert (paper.epochs, paper.lr_drop_epoch, paper.detach_epoch) == (200, 160, 120)
    short = TrainingConfig(epochs=10)
    assert (short.lr_drop_epoch, short.detach_epoch) == (8, 6)


def test_seeds_are_independent_streams():
    assert derive_seed(0, "train", 0, 1) == derive_seed(0, "train", 0, 1)
    seeds = {
        derive_seed(0, "train", 0, 1),
        derive_seed(0, "train", 1, 0),
        derive_seed(0, "select", 0, 1),
        derive_seed(1, "train", 0, 1),
    }
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "results.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


@pytest.mark.parametrize(
    "argument, value, expected",
    [
        ("epochs", 0, "epochs to be an integer >= 1"),
        ("momentum", 1.0, r"momentum to be a finite number in \[0, 1\)"),
        ("margin", float("nan"), "margin to be a finite number >= 0"),
        ("detach_fraction", 1.5, r"detach_fraction to be a finite number in \[0, 1\]"),
    ],
)
def test_each_training_setting_has_its_own_message(argument, value, expected):
    with pytest.raises(ValueError, match=f"Expected {expected}. Received: {argument}="):
        TrainingConfig(**{argument: value})
