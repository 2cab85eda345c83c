"""`curves.png`: the test metric against labels, per strategy."""

import numpy as np
from kerasll_serving.atomic import atomic_path

from kerasll.active import statistics
from kerasll.active.records import ACCURACY, group_runs

CURVES_FILE = "curves.png"


def plot_curves(records, path, title="", metric=ACCURACY):
    """Mean test metric (± std over trials) against labels, per strategy.

    Uses matplotlib's Agg canvas directly: no display, no global state.

    Args:
        records: `CycleRecord`s.
        path: target .png file.
        title: figure title.
        metric: the task `Metric` (the y axis).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for strategy, trials in group_runs(records).items():
        labeled = sorted({r.labeled for cycles in trials.values() for r in cycles})
        table = [
            [r.metric for cycles in trials.values() for r in cycles if r.labeled == n]
            for n in labeled
        ]
        mean = np.array([np.mean(values) for values in table])
        std = np.array([statistics.mean_std(values)[1] for values in table])
        std = np.nan_to_num(std)  # A single trial has no spread to draw.
        (line,) = axes.plot(
            labeled, mean, marker="o", label=f"{strategy} ({len(trials)} trials)"
        )
        axes.fill_between(
            labeled, mean - std, mean + std, color=line.get_color(), alpha=0.2
        )
    axes.set_xlabel("labeled items")
    axes.set_ylabel(f"test {metric.name} (mean ± std over trials)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
