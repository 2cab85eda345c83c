"""`ClassificationTask` through the engine's `Task` interface: metric,
per-item classes and groups, recalls, views and the data fingerprint."""

import numpy as np
import pytest

from kerasll.active.records import Metric
from kerasll.active.task import Task
from kerasll.active.view import ArrayModelView
from kerasll.data import make_dataset
from kerasll.pools import with_near_duplicates
from kerasll.tasks import task_class
from kerasll.tasks.classification import ClassificationTask, KerasModelView

Y_TEST = np.array([0, 1, 1, 0])


def _dataset(y_train=(0, 1, 0, 1, 1, 0), name="tiny"):
    rng = np.random.default_rng(0)
    y_train = np.asarray(y_train)
    x_train = rng.integers(0, 256, (len(y_train), 8, 8, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (len(Y_TEST), 8, 8, 3), dtype=np.uint8)
    return make_dataset(name, x_train, y_train, x_test, Y_TEST)


def test_the_task_implements_the_engines_interface_with_accuracy():
    task = ClassificationTask(_dataset())
    assert isinstance(task, Task) and task_class("classification") is ClassificationTask
    assert task.kind == "classification"
    assert task.metric() == Metric("accuracy", "accuracy")
    assert (task.pool_size, task.num_classes) == (6, 2)
    x, y = task.training_arrays([4, 1])
    np.testing.assert_array_equal(x, task.dataset.x_train[[4, 1]])
    np.testing.assert_array_equal(y, [1, 1])


def test_accuracy_and_class_recalls_from_a_test_view():
    task = ClassificationTask(_dataset())
    # Predicted classes 0, 1, 0, 0 for true classes 0, 1, 1, 0.
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    view = ArrayModelView(probabilities=probabilities)
    assert task.evaluate(view) == 0.75
    np.testing.assert_allclose(task.class_recalls(view), [1.0, 0.5])


def test_item_classes_and_groups_of_the_pool():
    task = ClassificationTask(_dataset())
    np.testing.assert_array_equal(task.item_classes([2, 4, 5]), [0, 1, 0])
    assert task.item_groups() is None
    duplicated = ClassificationTask(with_near_duplicates(_dataset(), copies=2))
    groups = duplicated.item_groups()
    assert groups.shape == (12,)
    np.testing.assert_array_equal(np.bincount(groups), [2] * 6)
    # A copy holds its original's class.
    np.testing.assert_array_equal(
        duplicated.item_classes(np.arange(12)), _dataset().y_train[groups]
    )


def test_the_fingerprint_follows_the_data_and_its_groups():
    fingerprint = ClassificationTask(_dataset()).fingerprint()
    assert ClassificationTask(_dataset(name="renamed")).fingerprint() == fingerprint
    relabeled = ClassificationTask(_dataset(y_train=(1, 1, 0, 1, 1, 0)))
    assert relabeled.fingerprint() != fingerprint
    once = with_near_duplicates(_dataset(), copies=1)
    assert ClassificationTask(once).fingerprint() != fingerprint  # Shuffled, grouped.


def test_views_of_a_model_score_the_split_they_name():
    task = ClassificationTask(_dataset())
    model = task.build_model("small_cnn", 0.25, 0.0)
    view = task.view(model, "test", batch_size=3)
    assert isinstance(view, KerasModelView) and len(view) == len(Y_TEST)
    indices = np.arange(len(view))
    probabilities = view.probabilities(indices)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        view.true_loss(indices), -np.log(probabilities[indices, Y_TEST]), rtol=1e-5
    )
    assert view.features(indices).shape[0] == len(Y_TEST)
    assert len(task.view(model, "train", batch_size=4)) == 6
    assert not view.has_predicted_loss
    with pytest.raises(ValueError, match="Received: 'validation'"):
        task.view(model, "validation", batch_size=4)
