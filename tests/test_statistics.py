"""Known answers of the paired statistics and the A/A noise floor."""

import numpy as np
import pytest
from scipy import stats

from kerasll.active.state import CycleRecord
from kerasll.active.statistics import (
    ComparisonError,
    area_under_curve,
    compare_to_baseline,
    detectable_difference,
    mean_std,
    noise_floor,
    paired_test,
    smallest_p_value,
    summarize_runs,
)


def _runs(finals, labeled=(10, 20)):
    """{strategy: {trial: [records]}}: a first cycle at 0.5, then `final`."""
    return {
        strategy: {
            trial: [
                CycleRecord(strategy, trial, 0, labeled[0], 0.5),
                CycleRecord(strategy, trial, 1, labeled[1], final),
            ]
            for trial, final in enumerate(values)
        }
        for strategy, values in finals.items()
    }


def test_exact_wilcoxon_known_answers():
    # All 5 differences positive, distinct magnitudes: the exact two-sided p
    # is 2 / 2^5 = 0.0625, the smallest 5 pairs can give.
    p_value, method = paired_test([0.1, 0.2, 0.3, 0.4, 0.5])
    assert method == "exact" and p_value == pytest.approx(0.0625)
    assert smallest_p_value(5) == pytest.approx(0.0625)
    assert smallest_p_value(8) == pytest.approx(2 / 256)
    # Ranks 1..4 with the one negative of rank 1: W- = 1; P(W- <= 1) = 2/16,
    # two-sided 0.25.
    assert paired_test([-0.1, 0.2, 0.3, 0.4])[0] == pytest.approx(0.25)


def test_ties_and_zeros_use_the_exact_permutation_distribution():
    differences = [0.0, 0.2, 0.2, -0.2, 0.4, 0.5]
    p_value, method = paired_test(differences)
    assert method == "exact permutation (ties)"
    # By hand: zeros dropped; |d| = .2 .2 .2 .4 .5 -> ranks 2 2 2 4 5; the
    # statistic W+ sums the ranks of the positive ones. Enumerate all 32 signs.
    ranks = np.array([2, 2, 2, 4, 5])
    observed = 2 + 2 + 4 + 5
    signs = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(bool)
    w_plus = (signs * ranks).sum(axis=1)
    center = ranks.sum() / 2
    expected = np.mean(np.abs(w_plus - center) >= abs(observed - center) - 1e-9)
    assert p_value == pytest.approx(expected)
    assert paired_test([0.0, 0.0, 0.3]) == (pytest.approx(np.nan, nan_ok=True), "-")


def test_sample_std_and_area():
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)  # ddof = 1, not 0.816
    assert np.isnan(mean_std([4.0])[1])
    assert area_under_curve([10, 20, 40], [0.2, 0.4, 0.4]) == pytest.approx(
        (10 * 0.3 + 20 * 0.4) / 30
    )


def test_comparison_is_paired_by_trial():
    summary = summarize_runs(
        _runs({"random": [0.6, 0.7, 0.5], "ll": [0.65, 0.68, 0.6]})
    )
    comparison = compare_to_baseline(summary, "ll")
    np.testing.assert_allclose(comparison["final"], [0.05, -0.02, 0.1])
    assert comparison["better"] == 2 and comparison["trials"] == [0, 1, 2]
    assert comparison["mean_final"] == pytest.approx(0.13 / 3)
    assert compare_to_baseline(summary, "missing") is None


def test_runs_ending_at_different_label_counts_are_refused():
    runs = _runs({"random": [0.6, 0.7]})
    runs.update(_runs({"ll": [0.6, 0.7]}, labeled=(10, 15)))
    with pytest.raises(ComparisonError, match="trial 0 ends at 15 and 20 labels"):
        compare_to_baseline(summarize_runs(runs), "ll")


def test_noise_floor_from_the_a_a_control():
    random = [0.60, 0.62, 0.58, 0.61, 0.59, 0.63, 0.60, 0.62]
    control = [0.61, 0.60, 0.60, 0.62, 0.57, 0.64, 0.61, 0.60]
    runs = _runs({"random": random, "random_control": control})
    floor = noise_floor(summarize_runs(runs))
    differences = np.subtract(control, random)
    std = differences.std(ddof=1)
    t = stats.t.ppf(0.975, 7) + stats.t.ppf(0.8, 7)
    assert floor["std_final"] == pytest.approx(std)
    assert floor["floor_final"] == pytest.approx(
        max(abs(differences.mean()), t * std / np.sqrt(8))
    )
    assert floor["max_abs_final"] == pytest.approx(np.abs(differences).max())
    assert detectable_difference(std, 8) == pytest.approx(t * std / np.sqrt(8))
    assert np.isnan(detectable_difference(std, 1))
    assert noise_floor(summarize_runs(_runs({"random": random}))) is None
