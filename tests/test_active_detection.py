"""The active-learning engine on the detection task: same loop, other task.

Scenes are pasted from colored noise patches (no data set needed), the SSD
is narrow and trains for a few epochs: these tests check the plumbing (the
task seam, every strategy, the outputs, resume), not the accuracy.
"""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kerasll.active.errors import ProtocolError, ResumeError
from kerasll.active.experiment import run_experiment
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.records import read_results_csv
from kerasll.active.training import TrainingConfig
from kerasll_cli import main
from kerasll.detection.scenes import make_scenes, split_scenes
from kerasll.tasks import load_task
from kerasll.tasks.detection import DetectionTask
from data_helpers import CIFAR10
from models_for_tests import colored_patches, train_task_model, two_cycle_config

CLASSES = 3
STRATEGIES = ("learning_loss", "learning_loss_safe", "entropy", "coreset", "random")


@pytest.fixture(scope="module")
def task():
    images, labels = colored_patches(100, CLASSES)
    names = ("red", "green", "blue")
    train = make_scenes(images, labels, 60, scene_size=64, seed=1, class_names=names)
    test = make_scenes(images, labels, 20, scene_size=64, seed=2, class_names=names)
    return DetectionTask("noise-scenes", train, test)


def _config(**overrides):
    arguments = dict(
        task_kind="detection",
        dataset="noise-scenes",
        strategies=STRATEGIES,
        # Eager: a few steps a cycle cost less than tracing each fresh SSD.
        training=TrainingConfig(epochs=2, batch_size=10, learning_rate=0.01,
                                run_eagerly=True),
    )
    return two_cycle_config(**{**arguments, **overrides})


def test_views_score_scenes_per_image(task):
    labeled = np.arange(20)
    x, y = task.training_arrays(labeled)
    # Each labeled scene and its mirror image.
    assert y.shape == (40, len(task.default_boxes), 5)
    np.testing.assert_array_equal(x[20:], x[:20, :, ::-1])
    model = train_task_model(task, "ssd", x, y, TrainingConfig(epochs=1, batch_size=10))
    view = task.view(model, "train", 16)
    items = np.array([3, 0, 7])
    for measure in ("entropy", "margin", "least_confidence"):
        assert view.uncertainty(items, measure).shape == (3,)
    assert view.features(items).shape[0] == 3
    assert view.predicted_loss(items).shape == (3,)
    true_loss = view.true_loss(items)
    assert true_loss.shape == (3,) and np.all(true_loss > 0)
    # Per-image loss: scoring items one by one gives the same values.
    np.testing.assert_allclose(view.true_loss([0]), true_loss[[1]], rtol=1e-5)
    expected = np.concatenate([task.train.labels[i] for i in items])
    np.testing.assert_array_equal(task.item_classes(items), expected)
    assert 0.0 <= task.evaluate(task.view(model, "test", 16)) <= 1.0


@pytest.fixture(scope="module")
def whole(task, tmp_path_factory):
    """One uninterrupted run of every strategy, shared by the slow tests."""
    out = tmp_path_factory.mktemp("detection") / "whole"
    return run_experiment(_config(), task, out)


def _rows(results, strategies):
    """The header and the rows of `strategies` of a `results.csv`."""
    header, *rows = results.read_text().splitlines()
    return [header] + [row for row in rows if row.split(",")[0] in strategies]


@pytest.mark.slow
def test_simulate_detection_writes_map_and_resumes_identically(task, whole, tmp_path):
    config = _config()
    assert whole.state.config["model"] == "ssd"  # the task's default, recorded
    header = whole.paths["results"].read_text().splitlines()[0]
    assert header.split(",")[4] == "map50"
    summary = whole.paths["summary"].read_text()
    assert "Test mAP@0.5 after the last cycle" in summary
    assert "Task: detection" in summary
    records = read_results_csv(whole.paths["results"], task.metric())
    assert {r.strategy for r in records} == set(STRATEGIES)
    selections = [r for r in records if r.cycle == 0]
    for record in selections:
        # Histograms count objects, not scenes: at least one per pick.
        assert sum(record.pick_histogram) >= config.budget
        assert record.pick_loss > 0 and record.random_loss > 0
    with_head = [r for r in records if r.strategy.startswith("learning")]
    assert all(r.rank_accuracy is not None for r in with_head)

    # A longer protocol is another experiment; resuming the same one is not.
    # On a copy: were it resumed, the shared run must stay as it was.
    copy = shutil.copytree(whole.paths["results"].parent, tmp_path / "copy")
    with pytest.raises(ResumeError, match="cycles"):
        run_experiment(_config(cycles=3), task, copy, resume=True)


@pytest.mark.slow
def test_resume_after_a_crash_gives_identical_results(task, whole, tmp_path):
    # Runs are independent of the other strategies in the config: these two
    # match their rows of the shared run.
    strategies = ("learning_loss_safe", "entropy")
    config = _config(strategies=strategies)

    class Crash(Exception):
        pass

    class CrashAfterTwoCycles:
        count = 0

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

        def cycle_finished(self, record, resumed=False):
            self.count += 1
            if self.count == 2:
                raise Crash()

    with pytest.raises(Crash):
        run_experiment(config, task, tmp_path / "crash", listener=CrashAfterTwoCycles())
    resumed = run_experiment(config, task, tmp_path / "crash", resume=True)
    assert _rows(tmp_path / "crash" / "results.csv", strategies) == (
        _rows(whole.paths["results"], strategies)
    )
    assert set(resumed.state.runs) == {f"{name}/trial0" for name in strategies}
    for key, again in resumed.state.runs.items():
        run = whole.state.runs[key]
        assert again["pool"] == run["pool"] and again["scores"] == run["scores"]
        assert again["audits"] == run["audits"]


def test_config_and_data_must_agree(task, tmp_path):
    with pytest.raises(ValueError, match="Expected a detection model in \\['ssd'\\]"):
        _config(model="resnet18").with_task_defaults(task)
    with pytest.raises(ProtocolError, match="Expected a detection model"):
        run_experiment(_config(model="resnet18"), task, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    resolved = _config().with_task_defaults(task)
    assert (_config().model, resolved.model) == (None, "ssd")
    assert resolved.training == _config().training
    untrained = _config(training=None).with_task_defaults(task)
    assert untrained.training == task.training_config()
    assert untrained.training.batch_size == 32  # DetectionTask.training_defaults
    with pytest.raises(ProtocolError, match="config's classification task"):
        run_experiment(
            ExperimentConfig(dataset="x", initial_size=10, budget=5, subset_size=10,
                             cycles=2, trials=1),
            task,
            tmp_path / "out",
        )


def test_options_that_change_results_change_the_fingerprint(task):
    same = DetectionTask(task.name, task.train, task.test)
    assert same.fingerprint() == task.fingerprint()
    for options in ({"reduction": "max"}, {"mirror": False}):
        other = DetectionTask(task.name, task.train, task.test, **options)
        assert other.fingerprint() != task.fingerprint()


def test_split_and_bad_sources(task, tmp_path):
    train, test = split_scenes(task.train, test_fraction=0.25, seed=3)
    assert (len(train), len(test)) == (45, 15)
    # A partition: every scene lands on exactly one side.
    rows = sorted(image.tobytes() for image in np.concatenate([train.images, test.images]))
    assert rows == sorted(image.tobytes() for image in task.train.images)
    with pytest.raises(ValueError, match="test fraction"):
        split_scenes(task.train, test_fraction=1.0)
    with pytest.raises(ValueError, match="Pascal VOC folder"):
        load_task("detection", str(tmp_path / "nothing-here"))
    with pytest.raises(ValueError, match="no detection options"):
        load_task("classification", "digits", train_count=10)
    with pytest.raises(TypeError, match="DetectionTask.*Received: Scenes"):
        run_experiment(_config(), task.train, tmp_path / "scenes")
    with pytest.raises(ValueError, match="reduction"):
        DetectionTask(task.name, task.train, task.test, reduction="avg")


@pytest.mark.cifar
def test_cifar_scenes_task(monkeypatch):
    task = load_task(
        "detection", "cifar10", data=CIFAR10, train_count=50, test_count=10
    )
    assert task.name == "cifar10-scenes" and task.num_classes == 10
    assert task.pool_size == 50 and task.input_shape == (64, 64, 3)
    assert "50 train / 10 test scenes" in task.describe()


def _voc_folder(root, count=10):
    """A Pascal VOC layout of `count` 64x64 scenes, one red square each."""
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        image = np.zeros((64, 64, 3), np.uint8)
        x, y = rng.integers(0, 32, 2)
        image[y : y + 24, x : x + 24] = (220, 40, 40)
        Image.fromarray(image).save(root / "JPEGImages" / f"{index}.png")
        (root / "Annotations" / f"{index}.xml").write_text(
            f"<annotation><filename>{index}.png</filename><size><width>64</width>"
            "<height>64</height><depth>3</depth></size><object><name>square</name>"
            f"<bndbox><xmin>{x}</xmin><ymin>{y}</ymin><xmax>{x + 24}</xmax>"
            f"<ymax>{y + 24}</ymax></bndbox></object></annotation>"
        )


@pytest.mark.slow
def test_simulate_cli_on_a_voc_folder(tmp_path):
    _voc_folder(tmp_path / "voc")
    arguments = [
        "simulate", "--task", "detection", "--dataset", str(tmp_path / "voc"),
        "--strategies", "entropy,random", "--initial", "4", "--budget", "2",
        "--subset", "4", "--cycles", "2", "--epochs", "1", "--trials", "1",
        "--width", "0.25", "--batch-size", "4", "--run-eagerly",
    ]
    result = CliRunner().invoke(main, arguments + ["--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "voc: 8 train / 2 test scenes of shape (64, 64, 3)" in result.output
    assert "mAP@0.5" in result.output
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "ssd (width 0.25)" in summary

    for extra, message in [
        (["--model", "small_cnn"], "Expected a detection model in ['ssd']"),
        (["--image-size", "32", "32"], "at least 64x64"),
        (["--scenes", "10", "5"], "Expected no ['train_count', 'test_count']"),
        (["--images", str(tmp_path)], "Expected no ['images']"),
    ]:
        failed = CliRunner().invoke(main, arguments + extra + ["--out", str(tmp_path / "x")])
        assert failed.exit_code == 1
        assert message in failed.output and len(failed.output.strip().splitlines()) == 1
