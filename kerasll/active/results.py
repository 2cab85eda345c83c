"""Experiment outputs: `results.csv`, `summary.md` and `curves.png`.

All three are written atomically. The CSV holds one row per (strategy,
trial, cycle) with deterministic content only (no timings), so a resumed run
writes the same file as an uninterrupted one.
"""

import csv
import io
from pathlib import Path

import numpy as np

from kerasll.active.atomic import atomic_path, write_text
from kerasll.active.state import CycleRecord

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.md"
CURVES_FILE = "curves.png"
COLUMNS = (
    "strategy",
    "trial",
    "cycle",
    "labeled",
    "accuracy",
    "rank_accuracy",
    "warm_start",
)
BASELINE = "random"


def write_results_csv(records, path):
    """Writes one row per cycle record.

    Args:
        records: `CycleRecord`s.
        path: target file.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        row = record.to_dict()
        if row["rank_accuracy"] is None:
            row["rank_accuracy"] = ""
        writer.writerow([row[column] for column in COLUMNS])
    write_text(path, buffer.getvalue())


def read_results_csv(path):
    """Reads a `results.csv` back into `CycleRecord`s (timings are 0)."""
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            CycleRecord(
                strategy=row["strategy"],
                trial=int(row["trial"]),
                cycle=int(row["cycle"]),
                labeled=int(row["labeled"]),
                accuracy=float(row["accuracy"]),
                rank_accuracy=float(row["rank_accuracy"])
                if row["rank_accuracy"]
                else None,
                warm_start=row["warm_start"] == "True",
            )
            for row in csv.DictReader(handle)
        ]


def area_under_curve(labeled, accuracy):
    """Normalised area under accuracy vs. labels.

    Trapezoidal area divided by the label range: the mean accuracy over the
    range of label counts (the accuracy itself for a single cycle).

    Args:
        labeled: label counts, ascending.
        accuracy: accuracy at each count.

    Returns:
        A float in [0, 1].
    """
    labeled = np.asarray(labeled, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if len(labeled) == 1:
        return float(accuracy[0])
    area = np.sum((labeled[1:] - labeled[:-1]) * (accuracy[1:] + accuracy[:-1]) / 2.0)
    return float(area / (labeled[-1] - labeled[0]))


def _runs(records):
    """{strategy: {trial: [records sorted by cycle]}} in first-seen order."""
    runs = {}
    for record in records:
        runs.setdefault(record.strategy, {}).setdefault(record.trial, []).append(record)
    for trials in runs.values():
        for trial in trials:
            trials[trial].sort(key=lambda r: r.cycle)
    return runs


def summarize(records):
    """Per strategy and trial: first and final accuracy and area under curve.

    Args:
        records: `CycleRecord`s.

    Returns:
        {strategy: {trial: {"first", "final", "auc", "labeled", "rank"}}},
        strategies in first-seen order.
    """
    summary = {}
    for strategy, trials in _runs(records).items():
        summary[strategy] = {}
        for trial, cycles in sorted(trials.items()):
            summary[strategy][trial] = {
                "first": cycles[0].accuracy,
                "final": cycles[-1].accuracy,
                "labeled": cycles[-1].labeled,
                "auc": area_under_curve(
                    [c.labeled for c in cycles], [c.accuracy for c in cycles]
                ),
                "rank": cycles[-1].rank_accuracy,
            }
    return summary


def _mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    return (
        f"{values.mean():.4f} ± {values.std():.4f}"
        if len(values) > 1
        else f"{values[0]:.4f}"
    )


def _signed(value):
    return f"{value:+.4f}"


def format_summary(records, header=""):
    """The summary tables as Markdown.

    Args:
        records: `CycleRecord`s of complete runs.
        header: a paragraph describing the experiment.

    Returns:
        Markdown text: final-cycle accuracy per strategy (per trial, mean ±
        std), first-cycle accuracy, area under the accuracy-vs-labels curve,
        the head's final rank accuracy, and the paired difference to
        `random` per trial.
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
        f"## Test accuracy after the last cycle ({final_labeled} labels)",
        "",
        "| strategy | final (mean ± std) | "
        + " | ".join(f"trial {t}" for t in trials)
        + " | area under curve | first cycle | rank accuracy |",
        "|---|---|" + "---|" * len(trials) + "---|---|---|",
    ]
    for strategy, runs in summary.items():
        finals = [runs[t]["final"] for t in trials if t in runs]
        ranks = [
            runs[t]["rank"] for t in trials if t in runs and runs[t]["rank"] is not None
        ]
        lines.append(
            f"| {strategy} | {_mean_std(finals)} | "
            + " | ".join(
                f"{runs[t]['final']:.4f}" if t in runs else "-" for t in trials
            )
            + f" | {_mean_std([runs[t]['auc'] for t in runs])}"
            + f" | {_mean_std([runs[t]['first'] for t in runs])}"
            + f" | {_mean_std(ranks) if ranks else '-'} |"
        )
    lines += [
        "",
        "Accuracy is measured after the last epoch of each cycle. Area under curve: "
        "trapezoidal area under accuracy vs. labels divided by the label range (the "
        "mean accuracy over it). First cycle: every strategy trains on the same random "
        "labels with the same seed, so differences there come from training with the "
        "loss head. Rank accuracy: share of test pairs the loss head orders like the "
        "true loss, last cycle.",
        "",
    ]
    lines += _paired_table(summary, trials)
    return "\n".join(lines) + "\n"


def _paired_table(summary, trials):
    if BASELINE not in summary:
        return [f"No `{BASELINE}` runs: no paired differences."]
    base = summary[BASELINE]
    lines = [
        f"## Paired difference to `{BASELINE}` (same trial, same initial set)",
        "",
        "| strategy | "
        + " | ".join(f"Δ final, trial {t}" for t in trials)
        + " | mean Δ final | mean Δ area under curve | trials better |",
        "|---|" + "---|" * len(trials) + "---|---|---|",
    ]
    for strategy, runs in summary.items():
        if strategy == BASELINE:
            continue
        paired = [t for t in trials if t in runs and t in base]
        if not paired:
            continue
        final = {t: runs[t]["final"] - base[t]["final"] for t in paired}
        area = [runs[t]["auc"] - base[t]["auc"] for t in paired]
        better = sum(value > 0 for value in final.values())
        lines.append(
            f"| {strategy} | "
            + " | ".join(_signed(final[t]) if t in final else "-" for t in trials)
            + f" | {_signed(np.mean(list(final.values())))} | {_signed(np.mean(area))}"
            + f" | {better}/{len(paired)} |"
        )
    return lines


def final_table(summary_text):
    """The first table of a `format_summary` text (final accuracy per strategy)."""
    lines = summary_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| strategy"))
    end = next(
        (i for i in range(start, len(lines)) if not lines[i].startswith("|")),
        len(lines),
    )
    return "\n".join(lines[start:end])


def write_summary(records, path, header=""):
    """Writes `format_summary` to `path` atomically."""
    write_text(path, format_summary(records, header))


def plot_curves(records, path, title=""):
    """Mean test accuracy (± std over trials) against labels, per strategy.

    Uses matplotlib's Agg canvas directly: no display, no global state.

    Args:
        records: `CycleRecord`s.
        path: target .png file.
        title: figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for strategy, trials in _runs(records).items():
        labeled = sorted({r.labeled for cycles in trials.values() for r in cycles})
        table = [
            [r.accuracy for cycles in trials.values() for r in cycles if r.labeled == n]
            for n in labeled
        ]
        mean = np.array([np.mean(values) for values in table])
        std = np.array([np.std(values) for values in table])
        (line,) = axes.plot(
            labeled, mean, marker="o", label=f"{strategy} ({len(trials)} trials)"
        )
        axes.fill_between(
            labeled, mean - std, mean + std, color=line.get_color(), alpha=0.2
        )
    axes.set_xlabel("labeled items")
    axes.set_ylabel("test accuracy (mean ± std over trials)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")


def write_outputs(records, folder, header="", title=""):
    """Writes results.csv, summary.md and curves.png into `folder`.

    Returns:
        Dict of output name to `Path`.
    """
    folder = Path(folder)
    paths = {
        "results": folder / RESULTS_FILE,
        "summary": folder / SUMMARY_FILE,
        "curves": folder / CURVES_FILE,
    }
    write_results_csv(records, paths["results"])
    write_summary(records, paths["summary"], header)
    plot_curves(records, paths["curves"], title)
    return paths
