"""The keypoint task through the `Task` interface the engine owns.

Figures are drawn on random-noise backgrounds (no data set needed) and the
hourglass is narrow and trains for an epoch or two: these tests check the
task seam (metric, views, targets, fingerprint, loaders) and that every
strategy runs the loop, not the accuracy.
"""

import json

import numpy as np
import pytest
from PIL import Image

from kerasll.active.errors import UnknownStrategyError
from kerasll.active.experiment import run_experiment
from kerasll.active.records import Metric, read_results_csv
from kerasll.active.training import TrainingConfig
from kerasll.keypoints import IGNORED, make_figures
from kerasll.keypoints.coco import COCO_SIGMAS
from kerasll.tasks import KINDS, load_task, task_class
from kerasll.tasks.keypoints import CocoKeypointTask, KeypointTask
from data_helpers import CIFAR10
from models_for_tests import train_task_model, two_cycle_config

STRATEGIES = ("random", "learning_loss_safe", "entropy", "coreset")


def _backgrounds(count=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), np.uint8)


@pytest.fixture(scope="module")
def task():
    train = make_figures(_backgrounds(), 60, seed=1)
    test = make_figures(_backgrounds(seed=1), 20, seed=2)
    return KeypointTask("noise-figures", train, test)


@pytest.fixture(scope="module")
def trained(task):
    x, y = task.training_arrays(np.arange(20))
    config = TrainingConfig(epochs=1, batch_size=10)
    return train_task_model(task, "hourglass", x, y, config)


class _Predicted:
    """A test view whose decoded keypoints are given."""

    def __init__(self, keypoints):
        self._keypoints = keypoints

    def __len__(self):
        return len(self._keypoints)

    confidences = None

    def keypoints(self, indices):
        points = self._keypoints[indices]
        if self.confidences is None:
            return points, np.ones(points.shape[:2], np.float32)
        return points, self.confidences[indices]


def test_the_task_is_registered_with_its_metric_and_pose_weight():
    assert "keypoints" in KINDS and task_class("keypoints") is KeypointTask
    assert KeypointTask.metric() == Metric("PCKh@0.5", "pckh")
    config = KeypointTask.training_config()
    assert config.weight == 1e-4  # the paper's pose lambda
    assert (config.epochs, config.batch_size, config.learning_rate) == (20, 32, 1.0)
    assert KeypointTask.training_config(weight=1.0).weight == 1.0
    with pytest.raises(ValueError, match="Expected a keypoints model in"):
        KeypointTask.check_model("ssd")


def test_one_person_class_and_a_description(task):
    assert task.class_names == ("person",) and task.num_classes == 1
    np.testing.assert_array_equal(task.item_classes([4, 2, 9]), [0, 0, 0])
    assert task.item_classes([]).shape == (0,)
    assert task.pool_size == 60
    assert "60 train / 20 test figures" in task.describe()
    assert task.default_model()[0] == "hourglass"


def test_training_arrays_are_heatmaps_with_mirrored_figures(task):
    x, y = task.training_arrays([0, 5, 7])
    assert x.shape == (6, 64, 64, 3) and y.shape == (6, 16, 16, 14)
    np.testing.assert_array_equal(x[3:], x[:3, :, ::-1])
    # A mirrored target is the target flipped left-right, left and right
    # joints swapped (heatmap cells mirror exactly at stride 4).
    order = task.train.skeleton.flip_permutation()
    np.testing.assert_allclose(y[3:], y[:3, :, ::-1][..., order], atol=1e-6)
    ignored = task.train.visibility[[0, 5, 7]] == 0
    assert np.all(y[:3][:, 0, 0][ignored] == IGNORED)
    plain = KeypointTask("plain", task.train, task.test, mirror=False)
    assert plain.training_arrays([0, 5, 7])[0].shape[0] == 3


def test_evaluate_is_pckh_at_half_a_head(task):
    truth = task.test.keypoints
    assert task.evaluate(_Predicted(truth)) == 1.0
    # Shifted by 0.4 head sizes: all correct; by 0.6: none.
    step = task.test.head_sizes[:, None, None] * np.array([1.0, 0.0])
    assert task.evaluate(_Predicted(truth + 0.4 * step)) == 1.0
    assert task.evaluate(_Predicted(truth + 0.6 * step)) == 0.0


def test_oks_ap_is_the_secondary_metric_of_figures(task):
    assert task.secondary_metrics == (Metric("OKS AP", "oks_ap"),)
    truth = task.test.keypoints
    assert task.evaluate_secondary(_Predicted(truth)) == {
        "oks_ap": pytest.approx(1.0)
    }
    # Far off (a quarter of the image): no OKS threshold is met.
    far = task.evaluate_secondary(_Predicted(truth + 16.0))["oks_ap"]
    assert far == pytest.approx(0.0)
    # A diverged network (NaN keypoints and confidences) scores 0, no error.
    diverged = _Predicted(np.full_like(truth, np.nan))
    diverged.confidences = np.full(truth.shape[:2], np.nan)
    assert task.evaluate(diverged) == 0.0
    assert task.evaluate_secondary(diverged) == {"oks_ap": 0.0}


def test_fingerprint_covers_figures_and_options(task):
    same = KeypointTask("renamed", task.train, task.test)
    assert same.fingerprint() == task.fingerprint()
    assert KeypointTask(
        "x", task.train, task.test, mirror=False
    ).fingerprint() != task.fingerprint()
    moved = task.train.take(np.arange(len(task.train)))
    moved.keypoints[0, 0, 0] += 1.0
    assert KeypointTask("x", moved, task.test).fingerprint() != task.fingerprint()


def test_views_serve_every_strategy(task, trained):
    view = task.view(trained, "train", 16)
    items = np.array([3, 0, 7])
    entropy = view.uncertainty(items, "entropy")
    assert entropy.shape == (3,) and np.all((entropy >= 0) & (entropy <= 1))
    with pytest.raises(UnknownStrategyError, match="Expected uncertainty measure "
                       "'entropy' for a pose model.*Received: 'margin'"):
        view.uncertainty(items, "margin")
    # Pooled taps: the last hourglass' four levels of 12 channels (width 0.25).
    assert view.features(items).shape == (3, 4 * 12)
    assert view.predicted_loss(items).shape == (3,)
    true_loss = view.true_loss(items)
    assert true_loss.shape == (3,) and np.all(true_loss > 0)
    # Per-image loss: scoring items one by one gives the same values.
    np.testing.assert_allclose(view.true_loss([0]), true_loss[[1]], rtol=1e-5)
    keypoints, confidences = view.keypoints(items)
    assert keypoints.shape == (3, 14, 2) and confidences.shape == (3, 14)
    assert 0.0 <= task.evaluate(task.view(trained, "test", 16)) <= 1.0
    deployed = task.deployable(trained)
    assert {"keypoints", "confidences"} <= set(deployed.backbone.output_names)


def test_bad_splits_and_sources_are_refused(task, tmp_path):
    with pytest.raises(ValueError, match="Expected train and test figures"):
        KeypointTask("x", task.train, task.test.take([]))
    small = make_figures(_backgrounds(), 4, image_size=32, seed=3)
    with pytest.raises(ValueError, match="of one shape"):
        KeypointTask("x", task.train, small)
    odd = make_figures(_backgrounds(), 4, image_size=48, seed=3)
    with pytest.raises(ValueError, match="multiples of 32.*Received figures of "
                       "shape \\(48, 48, 3\\)"):
        KeypointTask("x", odd, odd)
    headless = task.test.take(np.arange(len(task.test)))
    headless.head_sizes[0] = np.nan
    with pytest.raises(ValueError, match="positive head sizes for PCKh"):
        KeypointTask("x", task.train, headless)
    with pytest.raises(ValueError, match="Expected no pool options"):
        load_task("keypoints", "cifar10", imbalance_ratio=2.0)
    with pytest.raises(ValueError, match="Expected keypoints dataset 'cifar10' or a "
                       "COCO keypoint .json"):
        load_task("keypoints", str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="Expected no \\['train_count'\\]"):
        load_task("keypoints", str(tmp_path / "a.json"), train_count=3)
    with pytest.raises(ValueError, match="Expected image_size as two equal integers"):
        load_task("keypoints", "cifar10", image_size=(64, 32))


def write_coco(figures, folder, names):
    """Each figure as a whole COCO image holding one person; returns the JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    size = figures.image_size[0]
    for index in range(len(figures)):
        name = f"figure{index:03d}.png"
        Image.fromarray(figures.images[index]).save(folder / name)
        images.append({"id": index, "file_name": name, "width": size, "height": size})
        flags = figures.visibility[index, : len(names)]
        # Pixel centers -> COCO's continuous coordinates; unlabeled are 0, 0, 0.
        points = np.clip(figures.keypoints[index, : len(names)] + 0.5, 0, size)
        values = [
            [float(x), float(y), int(flag)] if flag else [0, 0, 0]
            for (x, y), flag in zip(points, flags)
        ]
        annotations.append({
            "id": index, "image_id": index, "category_id": 1,
            "keypoints": [value for triple in values for value in triple],
            "bbox": [0, 0, size, size], "area": float(figures.areas[index]),
        })
    path = folder / "person_keypoints.json"
    path.write_text(json.dumps({
        "images": images,
        "categories": [{"id": 1, "name": "person", "keypoints": list(names),
                        "skeleton": [[1, 2]]}],
        "annotations": annotations,
    }))
    return path


def test_a_coco_file_is_a_task_scored_by_oks_ap(tmp_path):
    names = list(COCO_SIGMAS)[:14]
    figures = make_figures(_backgrounds(), 10, seed=4)
    path = write_coco(figures, tmp_path / "coco", names)
    coco = load_task("keypoints", str(path), seed=0)
    assert isinstance(coco, CocoKeypointTask)
    assert coco.metric() == Metric("OKS AP", "oks_ap")
    assert (len(coco.train), len(coco.test)) == (8, 2)
    assert coco.input_shape == (64, 64, 3) and coco.num_keypoints == 14
    # Perfect keypoints score an OKS AP of 1.
    assert coco.evaluate(_Predicted(coco.test.keypoints)) == pytest.approx(1.0)
    assert coco.evaluate_secondary(_Predicted(coco.test.keypoints)) == {}
    with pytest.raises(ValueError, match="Expected no \\['data'\\]"):
        load_task("keypoints", str(path), data="x.npz")
    other = write_coco(figures, tmp_path / "other", [f"joint{i}" for i in range(14)])
    with pytest.raises(ValueError, match="known OKS sigmas"):
        load_task("keypoints", str(other))


@pytest.mark.cifar
def test_cifar10_figures_on_real_backgrounds():
    task = load_task(
        "keypoints", "cifar10", data=str(CIFAR10), seed=3, train_count=12,
        test_count=4,
    )
    assert task.name == "cifar10-figures" and task.pool_size == 12
    assert task.test.images.shape == (4, 64, 64, 3)
    again = load_task(
        "keypoints", "cifar10", data=str(CIFAR10), seed=3, train_count=12,
        test_count=4,
    )
    assert again.fingerprint() == task.fingerprint()


@pytest.mark.slow
def test_every_strategy_runs_two_cycles(task, tmp_path):
    config = two_cycle_config(
        task_kind="keypoints",
        dataset=task.name,
        strategies=STRATEGIES,
        # Eager: a few steps a cycle cost less than tracing each fresh model.
        training=KeypointTask.training_config(epochs=2, batch_size=10,
                                              run_eagerly=True),
    )
    result = run_experiment(config, task, tmp_path / "run")
    assert result.state.config["model"] == "hourglass"
    header = (tmp_path / "run" / "results.csv").read_text().splitlines()[0]
    assert "pckh" in header.split(",")
    summary = result.paths["summary"].read_text()
    assert "Test PCKh@0.5 after the last cycle" in summary
    assert "Paired difference to `random` in OKS AP" in summary
    assert "oks_ap" in header.split(",")
    records = read_results_csv(result.paths["results"], task.metric())
    assert {r.strategy for r in records} == set(STRATEGIES)
    assert len(records) == 2 * len(STRATEGIES)
    for record in records:
        assert 0.0 <= record.metric <= 1.0
        assert 0.0 <= record.secondary_metrics["oks_ap"] <= 1.0
    selections = [r for r in records if r.cycle == 0]
    assert all(sum(r.pick_histogram) == config.budget for r in selections)
    with_head = [r for r in records if r.strategy == "learning_loss_safe"]
    assert all(r.rank_accuracy is not None for r in with_head)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--long-tail", "2"], "Expected no pool options (imbalance ratio, copies) "
         "for a keypoints task"),
        (["--duplicates", "3"], "Expected no pool options"),
        (["--model", "ssd"], "Expected a keypoints model in ['hourglass']"),
        (["--dataset", "nowhere.json"], "Expected keypoints dataset 'cifar10' or a "
         "COCO keypoint .json file"),
        (["--images", "."], "Expected no ['images'] for keypoints dataset 'cifar10'"),
        (["--image-size", "64", "32"], "Expected image_size as two equal integers"),
        (["--image-size", "48", "48", "--scenes", "2", "1", "--data", str(CIFAR10)],
         "multiples of 32"),
    ],
)
def test_simulate_refuses_keypoint_options_in_one_line(tmp_path, arguments, message):
    from click.testing import CliRunner

    from kerasll_cli import main

    out = tmp_path / "out"
    if "--data" in arguments and not CIFAR10.is_file():
        pytest.skip(f"needs {CIFAR10}")
    result = CliRunner().invoke(
        main, ["simulate", "--task", "keypoints", "--dataset", "cifar10",
               "--out", str(out), *arguments],
    )
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_simulate_trains_on_a_coco_keypoint_file(tmp_path):
    from click.testing import CliRunner

    from kerasll_cli import main

    figures = make_figures(_backgrounds(), 30, seed=5)
    path = write_coco(figures, tmp_path / "images", list(COCO_SIGMAS)[:14])
    moved = tmp_path / "person_keypoints.json"
    path.rename(moved)
    result = CliRunner().invoke(
        main, ["simulate", "--task", "keypoints", "--dataset", str(moved),
               "--images", str(tmp_path / "images"), "--width", "0.25",
               "--strategies", "random", "--initial", "10", "--budget", "5",
               "--subset", "10", "--cycles", "1", "--trials", "1", "--epochs", "1",
               "--batch-size", "8", "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 0, result.output
    assert "Model: hourglass" in result.output
    header = (tmp_path / "out" / "results.csv").read_text().splitlines()[0]
    assert "oks_ap" in header.split(",")
