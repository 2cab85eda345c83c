"""The saved state of an experiment, written atomically after every cycle.

`state.json` holds the configuration, the data set's fingerprint, the
experiment's description (the summary's first paragraph) and, per
(strategy, trial) run, the pool (indices labeled per cycle), the scores of
each selection and the metrics of each completed cycle. A run resumes from
its last completed cycle.
"""

import dataclasses
import json
from pathlib import Path

from kerasll_serving.atomic import write_text

from kerasll.active.errors import ResumeError

STATE_FILE = "state.json"
# 3: candidates, random picks and audits paired every cycle (common random
# numbers); audits hold the picking score. Runs of format 2 cannot continue
# identically.
FORMAT_VERSION = 3


@dataclasses.dataclass(frozen=True)
class CycleRecord:
    """Metrics of one trained cycle, and diagnostics of the selection it made.

    The fields' order is results.csv's column order (`kerasll.active.records`).

    Attributes:
        strategy: strategy name.
        trial: trial number.
        cycle: cycle number (0 = trained on the initial random set).
        labeled: labels the model was trained on.
        metric: the task metric on the test set after the last epoch (the
            task's `metric_name`: accuracy; mAP@0.5 for detection, written as
            results.csv's `map50`).
        rank_accuracy: the loss head's pair-ranking accuracy on the test set
            (pairs i, n-1-i), None for strategies without a head.
        head_spearman: Spearman correlation of the head's predicted loss
            with the true loss on the test set, None without a head.
        entropy_spearman: the same for predictive entropy (every strategy).
        seconds: wall time of training, evaluation and selection.
        warm_start: whether the cycle started from the previous weights.
        head_share: share of the picks taken from the head's ranking by a
            strategy that audits (None for the others).
        pick_histogram: class counts of the items this cycle picked (None in
            the last cycle, which picks nothing; so are the fields below).
        pick_class_entropy: entropy of that histogram relative to uniform.
        pick_loss: mean true loss of the picks under this cycle's model.
        random_loss: the same for a random batch of as many candidates.
        pick_distance: mean pairwise feature distance of the picks.
        random_distance: the same for the random batch.
        balanced_accuracy: mean per-class recall on the test set, for tasks
            that have one per item (classification), else None.
        worst_class_recall: the lowest per-class recall (None likewise).
        duplicate_picks: picks that bring no new original item, in a pool
            whose items are near-duplicates of originals (None otherwise;
            `kerasll.pools.duplicate_picks`).
        secondary_metrics: the task's other metrics on the test set,
            {results.csv column: value} (`Task.secondary_metrics`; None for
            tasks with one metric, and in states saved before they existed).
    """

    strategy: str
    trial: int
    cycle: int
    labeled: int
    metric: float
    rank_accuracy: float = None
    head_spearman: float = None
    entropy_spearman: float = None
    seconds: float = 0.0
    warm_start: bool = False
    head_share: float = None
    pick_histogram: list = None
    pick_class_entropy: float = None
    pick_loss: float = None
    random_loss: float = None
    pick_distance: float = None
    random_distance: float = None
    balanced_accuracy: float = None
    worst_class_recall: float = None
    duplicate_picks: int = None
    secondary_metrics: dict = None

    def to_dict(self):
        """JSON-friendly form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved):
        """The record `to_dict` saved, also from states written before the rename.

        Args:
            saved: a dict of `CycleRecord` fields. States written before
                `metric` was named so hold it under "accuracy".

        Returns:
            A `CycleRecord`.
        """
        saved = dict(saved)
        if "accuracy" in saved and "metric" not in saved:
            saved["metric"] = saved.pop("accuracy")
        return cls(**saved)


def run_key(strategy, trial):
    """The key of one (strategy, trial) run in the state."""
    return f"{strategy}/trial{trial}"


class ExperimentState:
    """In-memory form of `state.json`.

    Args:
        config: the experiment configuration as a dict.
        fingerprint: the data set's fingerprint.
        description: a paragraph describing the experiment (task, data,
            model, protocol), or None (states saved before it was kept).
    """

    def __init__(self, config, fingerprint, description=None):
        self.config = config
        self.fingerprint = fingerprint
        self.description = description
        self.runs = {}

    def run(self, strategy, trial):
        """The saved run, or None if it has not started."""
        return self.runs.get(run_key(strategy, trial))

    def update_run(self, strategy, trial, pool_state, records, scores, audits):
        """Replaces a run's pool, cycle records, selection scores and audits.

        Args:
            strategy: strategy name.
            trial: trial number.
            pool_state: `Pool.state_dict()`.
            records: list of `CycleRecord`s of completed cycles.
            scores: per labeling cycle, the picks' scores (list) or None.
            audits: per selection, {"score": [...], "true_loss": [...]} of
                its audit slice, or None.
        """
        self.runs[run_key(strategy, trial)] = {
            "strategy": strategy,
            "trial": trial,
            "pool": pool_state,
            "cycles": [record.to_dict() for record in records],
            "scores": scores,
            "audits": audits,
        }

    def records(self, strategies, trials):
        """All completed `CycleRecord`s, by trial, strategy, cycle."""
        records = []
        for trial in range(trials):
            for strategy in strategies:
                run = self.run(strategy, trial)
                if run:
                    records += [CycleRecord.from_dict(cycle) for cycle in run["cycles"]]
        return records

    def save(self, folder):
        """Writes `folder/state.json` atomically."""
        text = json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "config": self.config,
                "fingerprint": self.fingerprint,
                "description": self.description,
                "runs": self.runs,
            },
            indent=1,
        )
        write_text(Path(folder) / STATE_FILE, text)

    @classmethod
    def load(cls, folder):
        """Reads `folder/state.json`.

        Raises:
            ResumeError: no state file, or an unreadable one.
        """
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            raise ResumeError(
                f"Expected {str(path)!r} from an earlier run to resume. No such file; "
                "start without --resume."
            )
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            _rename_task_kind(saved["config"])
            _rename_head_training(saved["config"])
            state = cls(
                saved["config"], saved["fingerprint"], saved.get("description")
            )
            state.runs = saved["runs"]
        except (ValueError, KeyError) as error:
            raise ResumeError(f"Could not read {str(path)!r}: {error}") from error
        if saved.get("format_version") != FORMAT_VERSION:
            raise ResumeError(
                f"Expected state format {FORMAT_VERSION} in {str(path)!r}. "
                f"Received {saved.get('format_version')}: written by an earlier "
                "kerasll, whose candidate draws differ; start a new --out folder"
            )
        return state

    def check_matches(self, config, fingerprint):
        """Raises unless a resumed run asks for exactly the saved experiment.

        Args:
            config: the new configuration as a dict.
            fingerprint: the new data set's fingerprint.

        Raises:
            ResumeError: naming every setting that differs.
        """
        differences = _differences(self.config, config)
        if fingerprint != self.fingerprint:
            differences.append("data set contents or task options (fingerprint) differ")
        if differences:
            raise ResumeError(
                "Expected the configuration of the results being resumed. "
                f"Received a different one: {'; '.join(differences)}. Use a new "
                "--out folder, or --overwrite to discard the old results."
            )


def _rename_task_kind(config):
    """Configs saved before the rename hold `task_kind` as "task", and those
    saved before tasks existed hold neither: they were all classification."""
    if "task_kind" not in config:
        config["task_kind"] = config.pop("task", "classification")


def _rename_head_training(config):
    """Strategy configs saved before the rename hold `head_training` as "training"."""
    for parameters in (config.get("strategy_configs") or {}).values():
        if "training" in parameters and "head_training" not in parameters:
            parameters["head_training"] = parameters.pop("training")


def _differences(saved, new, prefix=""):
    differences = []
    for key in sorted(set(saved) | set(new)):
        old_value, new_value = saved.get(key), new.get(key)
        if isinstance(old_value, dict) and isinstance(new_value, dict):
            differences += _differences(old_value, new_value, f"{prefix}{key}.")
        elif old_value != new_value:
            differences.append(f"{prefix}{key}={new_value!r} (saved: {old_value!r})")
    return differences
