"""`summary.md`: the Markdown tables of an experiment's records.

Built from `CycleRecord`s only (`kerasll.active.records`); readers that need
numbers read `results.csv` or `state.json`, never this text. The statistics
are `kerasll.active.statistics`'.
"""

import dataclasses

import numpy as np
from kerasll_serving.atomic import write_text

from kerasll.active import statistics
from kerasll.active.records import ACCURACY, group_runs, secondary_columns
from kerasll.active.statistics import BASELINE, CONTROL, compare_to_baseline

SUMMARY_FILE = "summary.md"


def summarize(records):
    """Per strategy and trial: first and final metric, labels, area.

    Args:
        records: `CycleRecord`s.

    Returns:
        {strategy: {trial: {"first", "final", "auc", "labeled", "rank"}}},
        strategies in first-seen order
        (`kerasll.active.statistics.summarize_runs`).
    """
    return statistics.summarize_runs(group_runs(records))


def _mean_std(values):
    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(values):
        return "-"
    mean, std = statistics.mean_std(values)
    return f"{mean:.4f} ± {std:.4f}" if len(values) > 1 else f"{mean:.4f}"


def _mean(values, digits=3):
    values = [v for v in values if v is not None and not np.isnan(v)]
    return f"{np.mean(values):.{digits}f}" if values else "-"


def _signed(value):
    return f"{value:+.4f}"


def format_p_value(value):
    """A p-value with 3 decimals, "-" when undefined (NaN)."""
    return "-" if np.isnan(value) else f"{value:.3f}"


def format_summary(records, header="", metric=ACCURACY, secondary=()):
    """The summary tables as Markdown.

    Args:
        records: `CycleRecord`s of complete runs.
        header: a paragraph describing the experiment.
        metric: the task `Metric` (named in headings).
        secondary: `Metric`s naming the records' secondary metrics (one
            without a `Metric` here is named by its column).

    Returns:
        Markdown text: the final-cycle metric per strategy (per trial, mean ±
        std), the first cycle's, the area under the metric-vs-labels curve,
        the head's final rank accuracy; the metric per cycle; the paired
        difference to `random` per trial with Wilcoxon p-values; and the
        diagnostics of every selection. Each secondary metric the records
        hold gets the final, per-cycle and paired tables too.
    """
    summary = summarize(records)
    trials = sorted({trial for runs in summary.values() for trial in runs})
    final_labeled = max(
        run["labeled"] for runs in summary.values() for run in runs.values()
    )
    lines = ["# Active-learning results", ""]
    if header:
        lines += [header, ""]
    lines += [
        f"## Test {metric.name} after the last cycle ({final_labeled} labels)",
        "",
        *final_table(records),
        "",
        f"The {metric.name} is measured after the last epoch of each cycle. Area "
        f"under curve: trapezoidal area under {metric.name} vs. labels divided by the "
        f"label range (the mean {metric.name} over it). First cycle: every strategy "
        "trains on the same random labels with the same seed, so differences "
        "there come from training with the loss head. Rank accuracy: share of "
        "test pairs the loss head orders like the true loss, last cycle.",
        "",
    ]
    lines += per_cycle_table(records, "metric", f"Test {metric.name} per cycle")
    lines += _paired_table(summary, trials)
    names = {m.column: m.name for m in secondary}
    for column in secondary_columns(records):
        lines += _secondary_tables(records, names.get(column, column), column, trials)
    lines += diagnostics_table(records)
    return "\n".join(lines) + "\n"


def with_secondary_metric(records, column):
    """The records holding a secondary metric, with it as their `metric`.

    Args:
        records: `CycleRecord`s.
        column: the secondary metric's column ("oks_ap").

    Returns:
        `CycleRecord`s, so every table and statistic of the task metric
        applies to the secondary one.
    """
    return [
        dataclasses.replace(record, metric=record.secondary_metrics[column])
        for record in records
        if column in (record.secondary_metrics or {})
    ]


def _secondary_tables(records, name, column, trials):
    kept = with_secondary_metric(records, column)
    return [
        f"## Test {name} after the last cycle",
        "",
        *final_table(kept),
        "",
        *per_cycle_table(kept, "metric", f"Test {name} per cycle"),
        *_paired_table(summarize(kept), trials, name),
    ]


def final_table(records):
    """The final metric per strategy: the summary's first table.

    Args:
        records: `CycleRecord`s of complete runs.

    Returns:
        Markdown lines: per strategy, the final metric (mean ± std, then per
        trial), the area under its curve, the first cycle's metric and the
        head's final rank accuracy.
    """
    summary = summarize(records)
    trials = sorted({trial for runs in summary.values() for trial in runs})
    lines = [
        "| strategy | final (mean ± std) | "
        + " | ".join(f"trial {t}" for t in trials)
        + " | area under curve | first cycle | rank accuracy |",
        "|---|---|" + "---|" * len(trials) + "---|---|---|",
    ]
    for strategy, runs in summary.items():
        lines.append(
            f"| {strategy} | {_mean_std([runs[t]['final'] for t in runs])} | "
            + " | ".join(
                f"{runs[t]['final']:.4f}" if t in runs else "-" for t in trials
            )
            + f" | {_mean_std([runs[t]['auc'] for t in runs])}"
            + f" | {_mean_std([runs[t]['first'] for t in runs])}"
            + f" | {_mean_std([runs[t]['rank'] for t in runs])} |"
        )
    return lines


def per_cycle_table(records, field, title):
    """A Markdown table of one `CycleRecord` field, mean ± std over trials,
    per cycle.

    Args:
        records: `CycleRecord`s.
        field: a `CycleRecord` field's name ("metric", "rank_accuracy").
        title: the table's heading.

    Returns:
        A list of Markdown lines (empty when no record has the field).
    """
    runs = group_runs(records)
    labeled = sorted({r.labeled for trials in runs.values() for c in trials.values()
                      for r in c})
    rows = []
    for strategy, trials in runs.items():
        cells = [
            [getattr(r, field) for c in trials.values() for r in c if r.labeled == n]
            for n in labeled
        ]
        if all(value is None for values in cells for value in values):
            continue
        rows.append(
            f"| {strategy} | " + " | ".join(_mean_std(values) for values in cells) + " |"
        )
    if not rows:
        return []
    return [
        f"## {title} (mean ± std over trials)",
        "",
        "| strategy | " + " | ".join(str(n) for n in labeled) + " |",
        "|---|" + "---|" * len(labeled),
        *rows,
        "",
    ]


def _paired_table(summary, trials, metric_name=None):
    if BASELINE not in summary:
        return [f"No `{BASELINE}` runs: no paired differences.", ""]
    of = f" in {metric_name}" if metric_name else ""
    lines = [
        f"## Paired difference to `{BASELINE}`{of} (same trial: same initial set, "
        "candidates and random draws)",
        "",
        "| strategy | "
        + " | ".join(f"Δ final, trial {t}" for t in trials)
        + " | mean Δ final | Wilcoxon p | mean Δ area under curve | Wilcoxon p "
        "| trials better |",
        "|---|" + "---|" * len(trials) + "---|---|---|---|---|",
    ]
    methods = set()
    for strategy in summary:
        comparison = None if strategy == BASELINE else compare_to_baseline(
            summary, strategy
        )
        if comparison is None:
            continue
        methods.add(comparison["method"])
        final = dict(zip(comparison["trials"], comparison["final"]))
        lines.append(
            f"| {strategy} | "
            + " | ".join(_signed(final[t]) if t in final else "-" for t in trials)
            + f" | {_signed(comparison['mean_final'])} | "
            f"{format_p_value(comparison['final_p'])} | {_signed(comparison['mean_auc'])} | "
            f"{format_p_value(comparison['auc_p'])} | "
            f"{comparison['better']}/{len(comparison['trials'])} |"
        )
    floor_p = statistics.smallest_p_value(len(trials))
    lines += [
        "",
        "Wilcoxon p: two-sided signed-rank test of the per-trial differences, "
        "zero differences dropped; "
        + " / ".join(sorted(methods - {"-"}) or ["-"])
        + f" distribution. With {len(trials)} trials it cannot go below "
        f"2/2^{len(trials)} = {floor_p:.3g}.",
        "",
    ]
    return lines + _noise_floor_lines(summary, of)


def _noise_floor_lines(summary, of=""):
    floor = statistics.noise_floor(summary)
    if floor is None:
        return [
            f"No `{CONTROL}` runs (the A/A control): the noise floor is unknown, "
            "so no difference above can be called real.",
            "",
        ]
    comparison = floor["comparison"]
    return [
        f"## Noise floor{of} (A/A control: `{CONTROL}` minus `{BASELINE}`)",
        "",
        "| measure | per-trial differences | mean | std | floor |",
        "|---|---|---|---|---|",
        f"| final | {', '.join(_signed(d) for d in comparison['final'])} | "
        f"{_signed(comparison['mean_final'])} | {floor['std_final']:.4f} | "
        f"{floor['floor_final']:.4f} |",
        f"| area under curve | {', '.join(_signed(d) for d in comparison['auc'])} | "
        f"{_signed(comparison['mean_auc'])} | {floor['std_auc']:.4f} | "
        f"{floor['floor_auc']:.4f} |",
        "",
        "Two random arms on independent streams differ by this much by chance. "
        "Floor: the larger of the A/A mean difference and the smallest mean "
        f"difference {floor['trials']} paired trials detect (paired t, two-sided "
        "5%, power 80%, A/A std). A strategy's difference to random below the "
        "floor is noise, whatever its p.",
        "",
    ]


def diagnostics_table(records):
    """Why each selection helped or hurt, per strategy and cycle (trial means).

    Columns: the picks' class entropy relative to uniform; their mean true
    loss under the picking model and a random batch's; their mean pairwise
    feature distance and a random batch's; the share taken from the head
    (auditing strategies); and on the test set the head's rank accuracy and
    Spearman with the true loss, next to predictive entropy's Spearman.

    Args:
        records: `CycleRecord`s.

    Returns:
        A list of Markdown lines.
    """
    columns = (
        "pick_class_entropy",
        "pick_loss",
        "random_loss",
        "pick_distance",
        "random_distance",
        "head_share",
        "rank_accuracy",
        "head_spearman",
        "entropy_spearman",
        "balanced_accuracy",
        "worst_class_recall",
        "duplicate_picks",
    )
    lines = [
        "## Selection diagnostics (mean over trials)",
        "",
        "| strategy | labeled | class entropy | loss picks / random | "
        "distance picks / random | head share | test rank acc. | "
        "test Spearman head / entropy | test balanced acc. / worst-class recall | "
        "duplicate picks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy, trials in group_runs(records).items():
        cycles = sorted({r.cycle for c in trials.values() for r in c})
        for cycle in cycles:
            rows = [r for c in trials.values() for r in c if r.cycle == cycle]
            mean = {name: _mean([getattr(r, name) for r in rows]) for name in columns}
            lines.append(
                f"| {strategy} | {rows[0].labeled} | {mean['pick_class_entropy']} | "
                f"{mean['pick_loss']} / {mean['random_loss']} | "
                f"{mean['pick_distance']} / {mean['random_distance']} | "
                f"{mean['head_share']} | {mean['rank_accuracy']} | "
                f"{mean['head_spearman']} / {mean['entropy_spearman']} | "
                f"{mean['balanced_accuracy']} / {mean['worst_class_recall']} | "
                f"{_mean([r.duplicate_picks for r in rows], digits=1)} |"
            )
    lines += [
        "",
        "Each row is the model trained on `labeled` items and the selection it "
        "made (the last cycle selects nothing). Class entropy: entropy of the "
        "picks' true-class histogram over log(C) (1 = balanced; for detection, "
        "the classes of the picked scenes' objects). Loss: mean true task loss "
        "(cross-entropy; a detector's MultiBox loss) of the picks under the model "
        "that picked them, next to a random batch of as many items from the same "
        "candidates. Distance: mean pairwise Euclidean distance of the model's "
        "features (a classifier's penultimate layer; a detector's feature maps "
        "pooled per image; lower = more redundant). Balanced accuracy: mean "
        "per-class recall on the test set; worst-class recall: the lowest one "
        "(classification). Duplicate picks: picks whose original image is "
        "already labeled or picked earlier in the batch, in a pool of "
        "near-duplicates (`--duplicates`). Per-class counts of every "
        "selection are in results.csv (`pick_histogram`).",
        "",
    ]
    return lines + _last_selection_histogram(records)


def _last_selection_histogram(records):
    """Class counts of each strategy's last selection, summed over trials."""
    runs = group_runs(records)
    rows = []
    for strategy, trials in runs.items():
        last = [
            max((r for r in cycles if r.pick_histogram), key=lambda r: r.cycle, default=None)
            for cycles in trials.values()
        ]
        last = [record for record in last if record is not None]
        if last:
            counts = np.sum([record.pick_histogram for record in last], axis=0)
            rows.append((strategy, last[0].labeled, len(last), counts))
    if not rows:
        return []
    classes = len(rows[0][3])
    return [
        "## Classes of the last selection (summed over trials)",
        "",
        "| strategy | model's labels | trials | "
        + " | ".join(f"class {c}" for c in range(classes)) + " |",
        "|---|---|---|" + "---|" * classes,
        *(
            f"| {strategy} | {labeled} | {count} | "
            + " | ".join(str(int(n)) for n in counts) + " |"
            for strategy, labeled, count, counts in rows
        ),
        "",
    ]


def write_summary(records, path, header="", metric=ACCURACY, secondary=()):
    """Writes `format_summary` to `path` atomically."""
    write_text(path, format_summary(records, header, metric, secondary))
