"""Paired statistics of strategies against a baseline, and the noise floor.

Runs of one trial share their initial set, candidates and random draws
(common random numbers, `kerasll.active.experiment`), so strategies are
compared by per-trial differences:

- `compare_to_baseline`: final-metric and area-under-curve differences with
  two-sided Wilcoxon signed-rank p-values (`paired_test`);
- `noise_floor`: the same differences for the A/A control
  (`random_control` minus `random`, two random arms on independent streams),
  and the smallest difference the trial count can detect
  (`detectable_difference`). No difference below the floor is a finding.
"""

import numpy as np
from scipy import stats

BASELINE = "random"
CONTROL = "random_control"


class ComparisonError(ValueError):
    """Two runs cannot be compared (e.g. they end at different label counts)."""


def area_under_curve(labeled, metric):
    """Normalised area under the metric (accuracy, mAP) vs. labels.

    Trapezoidal area divided by the label range: the mean metric over the
    range of label counts (the metric itself for a single cycle).

    Args:
        labeled: label counts, ascending.
        metric: the metric at each count.

    Returns:
        A float in the metric's range.
    """
    labeled = np.asarray(labeled, dtype=np.float64)
    metric = np.asarray(metric, dtype=np.float64)
    if len(labeled) == 1:
        return float(metric[0])
    area = np.sum((labeled[1:] - labeled[:-1]) * (metric[1:] + metric[:-1]) / 2.0)
    return float(area / (labeled[-1] - labeled[0]))


def mean_std(values):
    """Mean and sample standard deviation (ddof=1; NaN for one value).

    Args:
        values: numbers.

    Returns:
        Tuple `(mean, std)`.
    """
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return float(values.mean()), std


def paired_test(differences):
    """Two-sided Wilcoxon signed-rank test of paired differences against 0.

    Zero differences are dropped (Wilcoxon's rule). Without ties among the
    remaining absolute differences the p-value is scipy's exact one; with
    ties it is the exact sign-flip permutation distribution of the same
    statistic (all 2^n sign patterns, n <= 16).

    Args:
        differences: per-trial differences (strategy minus baseline).

    Returns:
        Tuple `(p_value, method)`: method "exact" or "exact permutation
        (ties)"; `(nan, "-")` with fewer than 2 nonzero differences.
    """
    differences = np.asarray(differences, dtype=np.float64)
    nonzero = differences[differences != 0]
    if len(nonzero) < 2:
        return float("nan"), "-"
    if len(np.unique(np.abs(nonzero))) == len(nonzero):
        return float(stats.wilcoxon(nonzero, method="exact").pvalue), "exact"
    method = stats.PermutationMethod(n_resamples=2 ** min(len(nonzero), 16))
    p_value = stats.wilcoxon(nonzero, method=method).pvalue
    return float(p_value), "exact permutation (ties)"


def smallest_p_value(trials):
    """The smallest two-sided Wilcoxon p that `trials` pairs can reach: 2/2^n."""
    return 2.0 / 2 ** int(trials)


def detectable_difference(std, trials, alpha=0.05, power=0.8):
    """The smallest mean paired difference `trials` pairs detect.

    The paired t-test's minimal detectable effect: `(t_{1-alpha/2} +
    t_{power}) * std / sqrt(n)`, with n - 1 degrees of freedom.

    Args:
        std: the standard deviation of per-trial differences (the A/A
            control's).
        trials: n, the number of paired trials (>= 2).
        alpha: two-sided level.
        power: the probability of detecting a difference of that size.

    Returns:
        A float (NaN for fewer than 2 trials or an undefined std).
    """
    trials = int(trials)
    if trials < 2 or not np.isfinite(std):
        return float("nan")
    freedom = trials - 1
    factor = stats.t.ppf(1 - alpha / 2, freedom) + stats.t.ppf(power, freedom)
    return float(factor * std / np.sqrt(trials))


def summarize_runs(runs):
    """Per strategy and trial: first and final metric, labels, area.

    Args:
        runs: {strategy: {trial: [CycleRecord sorted by cycle]}}.

    Returns:
        {strategy: {trial: {"first", "final", "auc", "labeled", "rank"}}}.
    """
    summary = {}
    for strategy, trials in runs.items():
        summary[strategy] = {}
        for trial, cycles in sorted(trials.items()):
            summary[strategy][trial] = {
                "first": cycles[0].metric,
                "final": cycles[-1].metric,
                "labeled": cycles[-1].labeled,
                "auc": area_under_curve(
                    [c.labeled for c in cycles], [c.metric for c in cycles]
                ),
                "rank": cycles[-1].rank_accuracy,
            }
    return summary


def compare_to_baseline(summary, strategy, baseline=BASELINE):
    """Paired comparison of a strategy with a baseline over shared trials.

    Only trials both runs finished (same final label count) are compared;
    a trial where they end at different counts is an error, not a pair.

    Args:
        summary: the output of `summarize_runs`.
        strategy: the strategy to compare.
        baseline: the reference strategy (default `random`).

    Returns:
        Dict with `trials`, per-trial `final` and `auc` differences, their
        means, `better` (trials with a higher final metric), the Wilcoxon
        p-values `final_p` and `auc_p` and the test's `method`; None when no
        trial is shared.

    Raises:
        ComparisonError: a shared trial whose runs end at different label
            counts.
    """
    runs, base = summary.get(strategy, {}), summary.get(baseline, {})
    trials = sorted(set(runs) & set(base))
    if not trials:
        return None
    unequal = [t for t in trials if runs[t]["labeled"] != base[t]["labeled"]]
    if unequal:
        t = unequal[0]
        raise ComparisonError(
            f"Expected {strategy} and {baseline} to end at the same label count in "
            f"every shared trial. Received: trial {t} ends at {runs[t]['labeled']} "
            f"and {base[t]['labeled']} labels (an unfinished run?)"
        )
    final = [runs[t]["final"] - base[t]["final"] for t in trials]
    area = [runs[t]["auc"] - base[t]["auc"] for t in trials]
    final_p, method = paired_test(final)
    return {
        "trials": trials,
        "final": final,
        "auc": area,
        "mean_final": float(np.mean(final)),
        "mean_auc": float(np.mean(area)),
        "better": int(sum(value > 0 for value in final)),
        "final_p": final_p,
        "auc_p": paired_test(area)[0],
        "method": method,
    }


def noise_floor(summary, control=CONTROL, baseline=BASELINE):
    """The A/A noise floor: how far two random arms differ by chance.

    Args:
        summary: the output of `summarize_runs`.
        control: the A/A control (random on its own stream).
        baseline: the baseline it is paired with.

    Returns:
        Dict with the control's `comparison` (as `compare_to_baseline`),
        `std_final`/`std_auc` (sample std of its per-trial differences),
        `max_abs_final`, and `floor_final`/`floor_auc`: the larger of the
        A/A mean absolute difference and the `detectable_difference` at the
        trial count. None without control runs.

    Raises:
        ComparisonError: runs ending at different label counts.
    """
    comparison = compare_to_baseline(summary, control, baseline)
    if comparison is None:
        return None
    trials = len(comparison["trials"])
    result = {"comparison": comparison, "trials": trials}
    for key in ("final", "auc"):
        std = mean_std(comparison[key])[1]
        result[f"std_{key}"] = std
        result[f"floor_{key}"] = max(
            abs(comparison[f"mean_{key}"]), detectable_difference(std, trials)
        )
    result["max_abs_final"] = float(np.max(np.abs(comparison["final"])))
    return result
