"""Layout of a results folder, and the rules for reusing one.

```
OUT/state.json      saved after every cycle (resume point)
OUT/results.csv     one row per cycle, rewritten after every cycle
OUT/summary.md      final tables, written at the end
OUT/curves.png      the task metric against labels, written at the end
OUT/weights/        previous cycle's weights (warm start only)
OUT/models/         final models (when asked to save them)
```

A folder holding results is never silently reused: continue it (resume) or
replace it (overwrite). Replacing removes only what the saved experiment
wrote: the files above, and the weights and models of the runs recorded in
its `state.json`. Anything else in the folder is the user's and stays.
`write_outputs` writes the files an experiment ends with.
"""

from pathlib import Path

from kerasll_serving.atomic import TEMPORARY_PREFIX

from kerasll.active.curves import CURVES_FILE, plot_curves
from kerasll.active.errors import ExperimentError, OutputExistsError, ResumeError
from kerasll.active.records import ACCURACY, RESULTS_FILE, write_results_csv
from kerasll.active.state import STATE_FILE, ExperimentState
from kerasll.active.summary import SUMMARY_FILE, write_summary

MODELS_DIR = "models"
WEIGHTS_DIR = "weights"
OUTPUT_FILES = (STATE_FILE, RESULTS_FILE, SUMMARY_FILE, CURVES_FILE)


def check_flags(resume, overwrite):
    """Raises if both `resume` and `overwrite` are asked for.

    Raises:
        ExperimentError: both flags.
    """
    if resume and overwrite:
        raise ExperimentError("Expected --resume or --overwrite, not both.")


def prepare(out_dir, resume=False, overwrite=False):
    """Checks the results folder, cleans what must go, and creates it.

    With `overwrite`, the files the saved experiment wrote are deleted (see
    `created_files`); with `resume`, half-written temporary files of a
    killed run are.

    Args:
        out_dir: the results folder.
        resume: continue the experiment saved there.
        overwrite: discard results saved there.

    Returns:
        The folder as a `Path`.

    Raises:
        ExperimentError: both resume and overwrite.
        OutputExistsError: results exist and neither flag was given.
    """
    check_flags(resume, overwrite)
    out_dir = Path(out_dir)
    existing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if existing and not (resume or overwrite):
        raise OutputExistsError(
            f"Expected an empty or new results folder. Received {str(out_dir)!r} "
            f"holding {existing}; pass --resume to continue it or --overwrite to "
            "replace it."
        )
    if overwrite:
        _remove_outputs(out_dir)
    if resume:
        _remove_temporaries(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def weights_path(out_dir, strategy, trial, cycle):
    """Where the weights after `cycle` of a run are kept for a warm start."""
    return (
        Path(out_dir) / WEIGHTS_DIR / f"{strategy}-trial{trial}-cycle{cycle}.weights.h5"
    )


def model_path(out_dir, strategy, trial):
    """Where the final model of a run is saved."""
    return Path(out_dir) / MODELS_DIR / f"{strategy}-trial{trial}.keras"


def created_files(out_dir):
    """The files an experiment saved in `out_dir` wrote there.

    Args:
        out_dir: a results folder.

    Returns:
        Paths (existing or not): the output files, and for every run recorded
        in `state.json` its final model and its per-cycle weights. Only the
        output files when there is no readable state.
    """
    out_dir = Path(out_dir)
    paths = [out_dir / name for name in OUTPUT_FILES]
    try:
        runs = ExperimentState.load(out_dir).runs.values()
    except ResumeError:
        return paths
    for run in runs:
        strategy, trial = run["strategy"], run["trial"]
        paths.append(model_path(out_dir, strategy, trial))
        paths += [
            weights_path(out_dir, strategy, trial, cycle)
            for cycle in range(len(run["cycles"]))
        ]
    return paths


def _remove_temporaries(out_dir):
    for folder in (out_dir, out_dir / MODELS_DIR, out_dir / WEIGHTS_DIR):
        for path in folder.glob(f"{TEMPORARY_PREFIX}*"):
            path.unlink()


def _remove_outputs(out_dir):
    for path in created_files(out_dir):
        path.unlink(missing_ok=True)


def write_outputs(
    records, out_dir, header="", title="", metric=ACCURACY, secondary=()
):
    """Writes results.csv, summary.md and curves.png into `out_dir`.

    Args:
        records: `CycleRecord`s.
        out_dir: the results folder.
        header: the summary's first paragraph.
        title: the plot's title.
        metric: the task `Metric`.
        secondary: the task's secondary `Metric`s (named in the summary).

    Returns:
        Dict of output name to `Path`.
    """
    out_dir = Path(out_dir)
    paths = {
        "results": out_dir / RESULTS_FILE,
        "summary": out_dir / SUMMARY_FILE,
        "curves": out_dir / CURVES_FILE,
    }
    write_results_csv(records, paths["results"], metric)
    write_summary(records, paths["summary"], header, metric, secondary)
    plot_curves(records, paths["curves"], title, metric)
    return paths
