"""PCKh and OKS AP on hand-made predictions, checked by hand."""

import numpy as np
import pytest

from kerasll.keypoints.figures import FIGURE_SKELETON
from kerasll.keypoints.metric import oks_average_precision, pckh

SIGMA = 0.1
AREA = 100.0


def _people(count=2, joints=3):
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(5, 25, (count, joints, 2))
    return keypoints, np.full((count, joints), 2)


def _offset_for(oks):
    """The shift of every joint that gives this OKS with sigma SIGMA, area AREA.

    pycocotools: OKS = mean_j exp(-d^2 / (2 * area * (2 * sigma)^2)).
    """
    return np.sqrt(-np.log(oks) * 2.0 * AREA * (2.0 * SIGMA) ** 2)


def test_pckh_counts_keypoints_within_half_a_head_segment():
    truth = np.zeros((2, 3, 2))
    flags = np.array([[2, 2, 1], [2, 0, 2]])
    heads = np.array([10.0, 4.0])
    predicted = truth.copy()
    predicted[0, 0, 0] = 4.9  # 0.49 heads: correct
    predicted[0, 1, 0] = 5.1  # 0.51 heads: wrong
    predicted[0, 2, 1] = 3.0  # hidden (flag 1) but scored: correct
    predicted[1, 0, 0] = 2.5  # 0.625 heads of 4 px: wrong
    predicted[1, 1, 0] = 99.0  # outside (flag 0): not scored
    value, per_keypoint = pckh(truth, flags, predicted, heads)
    assert value == pytest.approx(3 / 5)  # 3 of the 5 scored are correct
    np.testing.assert_allclose(per_keypoint, [0.5, 0.0, 1.0])
    visible_only, _ = pckh(truth, flags, predicted, heads, min_visibility=2)
    assert visible_only == pytest.approx(2 / 4)
    assert pckh(truth, flags, truth, heads)[0] == 1.0


def test_oks_ap_of_perfect_predictions_is_one():
    keypoints, flags = _people(4)
    ap, per_threshold = oks_average_precision(
        keypoints, flags, np.full(4, AREA), keypoints, np.ones(4), [SIGMA] * 3
    )
    assert ap == pytest.approx(1.0)
    np.testing.assert_allclose(per_threshold, 1.0)


def test_oks_ap_on_a_tiny_case_checked_by_hand():
    # Image 1 perfect; image 2 every joint shifted to OKS 0.72: a true
    # positive at thresholds 0.50-0.70, a false one at 0.75-0.95.
    keypoints, flags = _people(2)
    predicted = keypoints.copy()
    predicted[1, :, 0] += _offset_for(0.72)
    areas, sigmas = np.full(2, AREA), [SIGMA] * 3
    # The perfect one ranked first: at 0.75+ precision is 1 up to recall
    # 0.5, so COCO's 101-point AP is 51/101 there.
    ap, per_threshold = oks_average_precision(
        keypoints, flags, areas, predicted, [0.9, 0.8], sigmas
    )
    np.testing.assert_allclose(per_threshold, [1.0] * 5 + [51 / 101] * 5)
    assert ap == pytest.approx(0.5 + 0.5 * 51 / 101)
    # The shifted one ranked first: at 0.75+ the first is a false positive,
    # precision 1/2 at recall 1/2, so AP there is 0.5 * 51 / 101.
    ap, per_threshold = oks_average_precision(
        keypoints, flags, areas, predicted, [0.8, 0.9], sigmas
    )
    np.testing.assert_allclose(per_threshold, [1.0] * 5 + [0.5 * 51 / 101] * 5)


def test_oks_ap_uses_the_sigmas_it_is_given():
    keypoints, flags = _people(2)
    predicted = keypoints.copy()
    predicted[:, :, 0] += _offset_for(0.72)
    areas = np.full(2, AREA)
    loose, _ = oks_average_precision(keypoints, flags, areas, predicted, [1, 1],
                                     [SIGMA * 3] * 3)
    strict, _ = oks_average_precision(keypoints, flags, areas, predicted, [1, 1],
                                      [SIGMA] * 3)
    assert loose == pytest.approx(1.0) and strict == pytest.approx(0.5)


def test_oks_ap_ignores_people_without_labeled_keypoints():
    keypoints, flags = _people(2)
    flags[1] = 0
    ap, _ = oks_average_precision(
        keypoints, flags, np.full(2, AREA), keypoints, [0.5, 0.9], [SIGMA] * 3
    )
    # The unlabeled person is ignored, and so is a prediction on its box.
    assert ap == pytest.approx(1.0)
    # Far from the unlabeled person's box, the prediction is a false
    # positive, ranked first: precision 1/2 at full recall.
    far = keypoints.copy()
    far[1] += 100.0
    ap, _ = oks_average_precision(
        keypoints, flags, np.full(2, AREA), far, [0.5, 0.9], [SIGMA] * 3
    )
    assert ap == pytest.approx(0.5)
    nothing, per_threshold = oks_average_precision(
        keypoints, np.zeros_like(flags), np.full(2, AREA), keypoints, [1, 1],
        [SIGMA] * 3,
    )
    assert np.isnan(nothing) and np.all(np.isnan(per_threshold))


def test_figure_sigmas_fit_the_figure_skeleton():
    keypoints, flags = _people(2, joints=len(FIGURE_SKELETON))
    ap, _ = oks_average_precision(
        keypoints, flags, np.full(2, AREA), keypoints, [1, 1], FIGURE_SKELETON.sigmas
    )
    assert ap == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda k, f: pckh(k, f, k[:1], [1, 1]), "one shape"),
        (lambda k, f: pckh(k, f, k, [1, 0]), "positive finite head size"),
        (lambda k, f: pckh(k, f, k, [1, 1], threshold=0),
         "Expected threshold to be a finite number > 0. Received: threshold=0"),
        (lambda k, f: pckh(k, f, k, [1, 1], min_visibility=3),
         "min_visibility to be an integer in \\[1, 2\\]"),
        (lambda k, f: oks_average_precision(k, f, [1, 1], k, [1, 1], [0.1] * 2),
         "one positive OKS sigma per keypoint \\(3\\)"),
        (lambda k, f: oks_average_precision(k, f, [1, 1], k, [1], [0.1] * 3),
         "one finite score per image"),
        (lambda k, f: oks_average_precision(k, f, [1, -1], k, [1, 1], [0.1] * 3),
         "positive finite area"),
    ],
)
def test_bad_input_is_named(call, message):
    keypoints, flags = _people(2)
    with pytest.raises(ValueError, match=message):
        call(keypoints, flags)
