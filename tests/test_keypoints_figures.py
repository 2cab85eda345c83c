"""Stick figures with known joints: flags agree with what is drawn."""

import numpy as np
import pytest

from kerasll.data import load_dataset
from kerasll.keypoints.figures import (
    FIGURE_SKELETON,
    FigureDataError,
    make_figures,
    mirror,
    random_pose,
    split_figures,
)
from data_helpers import CIFAR10


def _backgrounds(count=20, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(128, 40, (count, 32, 32, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def figures():
    return make_figures(_backgrounds(), 200, image_size=48, occlusion=0.6, seed=3)


def test_figures_have_the_documented_shapes_and_skeleton(figures):
    joints = len(FIGURE_SKELETON)
    assert joints == 14 and len(FIGURE_SKELETON.sigmas) == joints
    assert figures.images.shape == (200, 48, 48, 3)
    assert figures.images.dtype == np.uint8
    assert figures.keypoints.shape == (200, joints, 2)
    assert figures.visibility.shape == (200, joints)
    assert set(np.unique(figures.visibility)) == {0, 1, 2}
    assert np.all(figures.areas >= 1)
    # Every edge joins two keypoints; flip pairs are left/right names.
    assert all(0 <= a < joints and 0 <= b < joints for a, b in FIGURE_SKELETON.edges)
    for right, left in FIGURE_SKELETON.flip_pairs:
        names = FIGURE_SKELETON.names
        assert names[right].replace("right", "left") == names[left]


def test_flags_say_whether_a_joint_is_in_the_image(figures):
    x, y = figures.keypoints[..., 0], figures.keypoints[..., 1]
    inside = (x >= -0.5) & (x < 47.5) & (y >= -0.5) & (y < 47.5)
    np.testing.assert_array_equal(figures.visibility > 0, inside)


def test_visible_joints_show_the_figure_and_hidden_ones_do_not(figures):
    checked = hidden = 0
    for image, keypoints, flags in zip(
        figures.images, figures.keypoints, figures.visibility
    ):
        pixels = np.round(keypoints).astype(int)
        visible = flags == 2
        if not visible.any():
            continue
        colors = image[pixels[visible, 1], pixels[visible, 0]]
        # One color per figure, at every visible joint.
        assert np.all(colors == colors[0])
        for joint in np.flatnonzero(flags == 1):
            assert not np.all(image[pixels[joint, 1], pixels[joint, 0]] == colors[0])
            hidden += 1
        checked += 1
    assert checked > 150 and hidden > 50


def test_head_sizes_are_the_head_segment(figures):
    segment = figures.keypoints[:, 0] - figures.keypoints[:, 1]
    expected = np.linalg.norm(segment, axis=-1)
    np.testing.assert_allclose(figures.head_sizes, expected, rtol=1e-5)


def test_without_truncation_or_occlusion_every_joint_is_visible():
    figures = make_figures(_backgrounds(), 50, image_size=64, truncation=0.0,
                           occlusion=0.0, seed=1)
    assert np.all(figures.visibility == 2)


def test_figures_are_deterministic_given_the_seed():
    first = make_figures(_backgrounds(), 5, image_size=32, seed=7)
    second = make_figures(_backgrounds(), 5, image_size=32, seed=7)
    other = make_figures(_backgrounds(), 5, image_size=32, seed=8)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.keypoints, second.keypoints)
    assert not np.array_equal(first.keypoints, other.keypoints)


def test_poses_respect_the_skeleton_lengths():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pose = random_pose(rng)
        # Neck at the origin, head segment of 0.42 torso lengths.
        np.testing.assert_allclose(pose[1], [0.0, 0.0])
        assert np.linalg.norm(pose[0] - pose[1]) == pytest.approx(0.42)
        # Right arm: shoulder -> elbow 0.45, elbow -> wrist 0.4.
        assert np.linalg.norm(pose[3] - pose[2]) == pytest.approx(0.45)
        assert np.linalg.norm(pose[4] - pose[3]) == pytest.approx(0.4)
        # Facing the viewer: the right shoulder is left of the left one.
        assert pose[2, 0] < pose[5, 0]


def test_mirror_swaps_sides_and_moves_keypoints_with_the_pixels(figures):
    mirrored = mirror(figures)
    np.testing.assert_array_equal(mirrored.images, figures.images[:, :, ::-1])
    order = FIGURE_SKELETON.flip_permutation()
    np.testing.assert_allclose(
        mirrored.keypoints[..., 0], 47 - figures.keypoints[:, order, 0]
    )
    np.testing.assert_array_equal(mirrored.visibility, figures.visibility[:, order])
    twice = mirror(mirrored)
    np.testing.assert_allclose(twice.keypoints, figures.keypoints, atol=1e-5)
    # The mirrored figure still faces the viewer: right shoulder on the left.
    both = (mirrored.visibility[:, 2] > 0) & (mirrored.visibility[:, 5] > 0)
    assert np.all(mirrored.keypoints[both, 2, 0] < mirrored.keypoints[both, 5, 0])


def test_split_figures_is_seeded_and_disjoint(figures):
    train, test = split_figures(figures, test_fraction=0.25, seed=1)
    assert len(train) == 150 and len(test) == 50
    assert not {k.tobytes() for k in train.keypoints} & {
        k.tobytes() for k in test.keypoints
    }
    with pytest.raises(FigureDataError, match="test fraction in"):
        split_figures(figures, test_fraction=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backgrounds": np.zeros((2, 32, 32), np.uint8)}, "shape \\(n >= 1"),
        ({"backgrounds": np.zeros((2, 32, 32, 3), np.float32)}, "dtype float32"),
        ({"count": 0}, "count >= 1. Received: count=0"),
        ({"image_size": 8}, "image_size=8"),
        ({"scale": (0.5, 0.2)}, "scale=\\(0.5, 0.2\\)"),
        ({"occlusion": 1.5}, "occlusion"),
        ({"truncation": -0.1}, "truncation"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"backgrounds": _backgrounds(2), "count": 2, **kwargs}
    with pytest.raises(FigureDataError, match=message):
        make_figures(**arguments)


@pytest.mark.cifar
def test_figures_on_cifar10_backgrounds():
    cifar = load_dataset("cifar10", data=CIFAR10)
    figures = make_figures(cifar.x_train[:100], 20, image_size=64, seed=0)
    assert figures.images.shape == (20, 64, 64, 3)
    assert (figures.visibility == 2).mean() > 0.5 and figures.images.std() > 20
