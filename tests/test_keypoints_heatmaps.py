"""Heatmap targets and their decoding: known answers and the round trip."""

import numpy as np
import pytest

from kerasll.keypoints.heatmaps import (
    IGNORED,
    decode_heatmaps,
    encode_heatmaps,
    heatmap_shape,
    to_heatmap_coordinates,
    to_input_coordinates,
)

# The Taylor step is exact on a clean Gaussian; float32 leaves ~1e-5 px.
ROUND_TRIP_BOUND_PX = 0.01
POINTS, FLAGS = np.zeros((1, 2, 2)), np.zeros((1, 2))


def test_a_keypoint_on_a_cell_center_peaks_there_with_value_one():
    # Stride 4: cell 3 is centered on input coordinate 3 * 4 + 1.5 = 13.5.
    maps = encode_heatmaps([[[13.5, 5.5]]], [[2]], (32, 32), stride=4, sigma=1.0)
    assert maps.shape == (1, 8, 8, 1)
    assert maps[0, 1, 3, 0] == pytest.approx(1.0)
    assert maps[0, 1, 4, 0] == pytest.approx(np.exp(-0.5))  # one cell away
    assert maps[0, 3, 3, 0] == pytest.approx(np.exp(-2.0))  # two cells away
    np.testing.assert_allclose(to_heatmap_coordinates(np.array([13.5, 5.5])), [3, 1])
    np.testing.assert_allclose(to_input_coordinates(np.array([3.0, 1.0])), [13.5, 5.5])


def test_unlabeled_keypoints_get_ignored_maps():
    keypoints = np.array([[[10.0, 10.0], [20.0, 20.0], [-5.0, 3.0]]])
    maps = encode_heatmaps(keypoints, [[2, 1, 0]], (32, 32))
    assert np.all(maps[..., 2] == IGNORED)
    assert maps[..., 1].max() > 0.5
    visible_only = encode_heatmaps(keypoints, [[2, 1, 0]], (32, 32), min_visibility=2)
    assert np.all(visible_only[..., 1] == IGNORED)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0])
def test_round_trip_error_is_below_the_bound_everywhere_in_the_image(sigma):
    rng = np.random.default_rng(0)
    # Uniform over the whole image, borders included (pixel extents).
    keypoints = rng.uniform(-0.5, 63.49, (100, 14, 2))
    flags = np.full((100, 14), 2)
    maps = encode_heatmaps(keypoints, flags, (64, 64), stride=4, sigma=sigma)
    decoded, confidences = decode_heatmaps(maps, stride=4)
    error = np.linalg.norm(decoded - keypoints, axis=-1)
    print(f"sigma {sigma}: round-trip error max {error.max():.2e} px")
    assert error.max() < ROUND_TRIP_BOUND_PX
    # The confidence is the peak value: near 1 for a keypoint near a center.
    assert np.all((confidences > 0.5) & (confidences <= 1.0))


def test_a_flat_map_decodes_to_its_argmax_cell_without_a_step():
    maps = np.full((1, 4, 4, 1), 0.25, dtype=np.float32)
    maps[0, 2, 1, 0] = 0.5  # a lone spike: the log profile is curved
    decoded, confidences = decode_heatmaps(maps)
    np.testing.assert_allclose(decoded[0, 0], [1 * 4 + 1.5, 2 * 4 + 1.5])
    assert confidences[0, 0] == pytest.approx(0.5)
    flat = np.zeros((1, 4, 4, 1), dtype=np.float32)
    decoded, confidences = decode_heatmaps(flat)
    np.testing.assert_allclose(decoded[0, 0], [1.5, 1.5])  # cell (0, 0)
    assert confidences[0, 0] == 0.0


def test_the_step_stays_within_the_argmax_cell():
    # A Gaussian centered one cell left of the map: the parabola through the
    # first three cells (the stencil shifted inward) has its vertex at -1,
    # so the peak is kept at the argmax cell's edge, -0.5.
    row = np.exp(-((np.arange(5.0) + 1.0) ** 2)).astype(np.float32)
    maps = row[None, None, :, None]
    decoded, _ = decode_heatmaps(maps, stride=1)
    assert decoded[0, 0, 0] == pytest.approx(-0.5)
    # A peak with both neighbours is refined exactly: vertex at 2.25.
    row = np.exp(-((np.arange(5.0) - 2.25) ** 2)).astype(np.float32)
    decoded, _ = decode_heatmaps(row[None, None, :, None], stride=1)
    assert decoded[0, 0, 0] == pytest.approx(2.25, abs=1e-4)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: heatmap_shape((30, 32)), "divisible by the stride 4"),
        (lambda: heatmap_shape((32, 32), stride=0), "stride=0"),
        (lambda: encode_heatmaps(POINTS, np.zeros((1, 3)), (8, 8)), "shapes"),
        (lambda: encode_heatmaps(POINTS, FLAGS, (8, 8), sigma=0),
         "Expected sigma to be a finite number > 0. Received: sigma=0"),
        (lambda: encode_heatmaps(POINTS, FLAGS, (8, 8), sigma=float("nan")),
         "sigma=nan"),
        (lambda: encode_heatmaps(POINTS, FLAGS, (8, 8), min_visibility=0),
         "min_visibility to be an integer in \\[1, 2\\]"),
        (lambda: encode_heatmaps(POINTS, FLAGS, (8, 8), min_visibility=True),
         "min_visibility=True"),
        (lambda: decode_heatmaps(np.zeros((4, 4, 2))), "shape \\(n, h, w, J\\)"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
