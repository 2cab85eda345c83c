"""The keypoint task's, the detection and keypoint loaders' and the
hourglass' arguments refused by name by the one validator
(`kerasll_serving.validation`), before any data is loaded or any model
built."""

import inspect

import numpy as np
import pytest

from kerasll.keypoints import make_figures
from kerasll.keypoints import model as hourglass
from kerasll.tasks import detection, keypoints
from kerasll.tasks.splits import LOADER_CONSTRAINTS
from kerasll.tasks.keypoints import CocoKeypointTask, KeypointTask

NAN = float("nan")


@pytest.fixture(scope="module")
def figures():
    backgrounds = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), np.uint8)
    return make_figures(backgrounds, 4, image_size=32, seed=1)


def _house_message(name):
    return f"^Expected {name} to be .*Received: {name}="


TASK_BAD = {
    "name": [None, 5],
    "train": ["figures", None],
    "test": [np.zeros((4, 32, 32, 3), np.uint8)],
    "mirror": ["no", 1, None],
}


def test_every_task_parameter_is_declared():
    for task in (KeypointTask, CocoKeypointTask):
        names = set(inspect.signature(task.__init__).parameters) - {"self"}
        assert names == set(task.parameter_constraints) == set(TASK_BAD)


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in TASK_BAD.items() for value in values],
)
def test_the_task_refuses_each_bad_value_by_name(figures, name, value):
    arguments = {"name": "x", "train": figures, "test": figures, name: value}
    with pytest.raises(ValueError, match=_house_message(name)):
        KeypointTask(**arguments)


LOADER_BAD = {
    "source": [None, 5],
    "data": [5],
    "seed": [-1, 1.5, True],
    "image_size": ["64", 64],
    "train_count": [0, 2.5, True],
    "test_count": [0, NAN],
    "images": [5],
}


LOADERS = [keypoints.load_keypoint_task, detection.load_detection_task]


@pytest.mark.parametrize("loader", LOADERS)
def test_every_loader_parameter_is_declared(loader):
    names = set(inspect.signature(loader).parameters)
    assert names == set(LOADER_CONSTRAINTS) == set(LOADER_BAD)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in LOADER_BAD.items() for value in values],
)
def test_the_loaders_refuse_each_bad_value_by_name(loader, name, value):
    arguments = {"source": "cifar10", name: value}
    with pytest.raises(ValueError, match=_house_message(name)):
        loader(**arguments)


@pytest.mark.parametrize("size", [(64,), (64.5, 64), (True, 64), (0, 64)])
def test_the_detection_loader_refuses_an_image_size_other_than_two_integers(size):
    with pytest.raises(ValueError, match=r"^Expected image_size as two integers "
                       r">= 1 \(height, width\)\. Received: image_size="):
        detection.load_detection_task("cifar10", image_size=size)


@pytest.mark.parametrize(
    "size", [(64, 32), (64,), (64.5, 64.5), (True, True), (0, 0), (-32, -32)]
)
def test_the_loader_refuses_an_image_size_other_than_two_equal_integers(size):
    with pytest.raises(ValueError, match=r"^Expected image_size as two equal "
                       r"integers >= 1 \(square items\)\. Received: image_size="):
        keypoints.load_keypoint_task("cifar10", image_size=size)


HOURGLASS_BAD = {
    "num_keypoints": [0, 1.5],
    "stacks": [0, True],
    "depth": [0, 2.5],
    "filters": [0, NAN],
    "intermediate_outputs": ["yes", 1],
    "weight_decay": [-1, NAN],
}


def test_every_declared_hourglass_parameter_has_a_bad_value():
    assert set(hourglass.PARAMETER_CONSTRAINTS) == set(HOURGLASS_BAD)


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in HOURGLASS_BAD.items() for value in values],
)
def test_the_hourglass_refuses_each_bad_value_by_name(name, value):
    with pytest.raises(ValueError, match=_house_message(name)):
        hourglass.build_hourglass(**{name: value})
