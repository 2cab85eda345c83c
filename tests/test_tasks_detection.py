"""`DetectionTask` through the engine's `Task` interface: mAP@0.5, the
objects' classes, no per-class recalls or groups, views, the fingerprint."""

import numpy as np
import pytest
from kerasll_serving.detections import Detections

from kerasll.active.records import Metric
from kerasll.active.task import Task
from kerasll.detection.scenes import Scenes, make_scenes
from kerasll.detection.view import DetectionModelView
from kerasll.tasks import task_class
from kerasll.tasks.detection import DetectionTask
from models_for_tests import colored_patches

CLASSES = 3


@pytest.fixture(scope="module")
def scenes():
    images, labels = colored_patches(60, CLASSES)
    train = make_scenes(images, labels, 6, seed=1)
    test = make_scenes(images, labels, 3, seed=2)
    return train, test


class _TruthView:
    """A test view whose detections are the test scenes' objects, or none."""

    def __init__(self, test, perfect):
        self.test, self.perfect = test, perfect

    def __len__(self):
        return len(self.test.images)

    def detections(self, indices):
        found = []
        for i in indices:
            boxes, classes = self.test.boxes[i], self.test.labels[i]
            if not self.perfect:
                boxes, classes = boxes[:0], classes[:0]
            found.append(
                Detections(
                    np.asarray(boxes, np.float32), np.ones(len(boxes), np.float32),
                    np.asarray(classes, np.int64), np.arange(len(boxes)),
                )
            )
        return found


def test_the_task_implements_the_engines_interface_with_map(scenes):
    task = DetectionTask("scenes", *scenes)
    assert isinstance(task, Task) and task_class("detection") is DetectionTask
    assert task.metric() == Metric("mAP@0.5", "map50")
    assert (task.pool_size, task.num_classes) == (6, CLASSES)
    assert task.class_names == ("class_0", "class_1", "class_2")


def test_map_of_the_test_scenes_known_answers(scenes):
    task = DetectionTask("scenes", *scenes)
    assert task.evaluate(_TruthView(scenes[1], perfect=True)) == pytest.approx(1.0)
    assert task.evaluate(_TruthView(scenes[1], perfect=False)) == 0.0


def test_item_classes_are_the_objects_and_recalls_and_groups_are_none(scenes):
    train, _ = scenes
    task = DetectionTask("scenes", *scenes)
    np.testing.assert_array_equal(
        task.item_classes([3, 0]), np.concatenate([train.labels[3], train.labels[0]])
    )
    assert task.item_classes([]).shape == (0,)
    assert task.class_recalls(_TruthView(scenes[1], perfect=True)) is None
    assert task.item_groups() is None


def test_training_arrays_add_each_scenes_mirror_image(scenes):
    train, _ = scenes
    x, y = DetectionTask("scenes", *scenes).training_arrays([1, 4])
    assert len(x) == len(y) == 4
    np.testing.assert_array_equal(x[:2], train.images[[1, 4]])
    np.testing.assert_array_equal(x[2:], train.images[[1, 4], :, ::-1])
    plain = DetectionTask("scenes", *scenes, mirror=False).training_arrays([1, 4])
    assert len(plain[0]) == 2


def test_the_fingerprint_follows_boxes_and_options(scenes):
    train, test = scenes
    fingerprint = DetectionTask("scenes", train, test).fingerprint()
    assert DetectionTask("renamed", train, test).fingerprint() == fingerprint
    moved = [boxes.copy() for boxes in train.boxes]
    moved[0][0, 0] += 0.01
    shifted = Scenes(train.images, tuple(moved), train.labels, train.class_names)
    assert DetectionTask("scenes", shifted, test).fingerprint() != fingerprint
    for options in ({"reduction": "max"}, {"mirror": False}):
        assert DetectionTask("scenes", train, test, **options).fingerprint() != (
            fingerprint
        )


def test_bad_scenes_are_refused_by_name(scenes):
    train, test = scenes
    with pytest.raises(ValueError, match="Received 6 train and 0 test scenes"):
        DetectionTask("scenes", train, Scenes(test.images[:0], (), ()))
    with pytest.raises(ValueError, match="^Expected reduction to be one of"):
        DetectionTask("scenes", train, test, reduction="median")
    with pytest.raises(ValueError, match="^Expected mirror to be a boolean"):
        DetectionTask("scenes", train, test, mirror="no")
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)\. Received label 2"):
        DetectionTask("scenes", train, test, class_names=("a", "b"))


def test_views_score_the_split_they_name(scenes):
    task = DetectionTask("scenes", *scenes)
    model = task.build_model("ssd", 0.25, 0.0)
    view = task.view(model, "test", batch_size=2)
    assert isinstance(view, DetectionModelView) and len(view) == 3
    indices = np.arange(3)
    assert view.true_loss(indices).shape == (3,)
    assert view.features(indices).shape[0] == 3
    assert view.uncertainty(indices, "entropy").shape == (3,)
    assert len(view.detections(indices)) == 3
    with pytest.raises(ValueError, match="Received: 'val'"):
        task.view(model, "val", batch_size=2)
