"""Pool-based active learning: pool, strategies, experiment runner.

- `ExperimentConfig`, `TrainingConfig`: the protocol and per-cycle training,
  with the paper's CIFAR-10 values as defaults.
- `run_experiment`: the resumable loop writing results.csv, summary.md and
  curves.png; `ExperimentListener` for progress events.
- `Pool`: which item was labeled in which cycle, with `state_dict`.
- `get_strategy`, `STRATEGIES`, `Strategy`, `Selection`: query strategies.
- `ArrayModelView`: what strategies may ask of a model, from arrays
  (`kerasll.active.view`; a task provides views of trained models).
- `Task`: the interface a task implements for the engine.
- `greedy_k_center`: bounded-memory core-set selection.
"""

from kerasll.active.experiment import ExperimentListener, run_experiment
from kerasll.active.kcenter import greedy_k_center
from kerasll.active.pool import Pool
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.strategies import STRATEGIES, Selection, Strategy, get_strategy
from kerasll.active.task import Task
from kerasll.active.training import TrainingConfig
from kerasll.active.view import ArrayModelView

__all__ = [
    "ArrayModelView",
    "ExperimentConfig",
    "ExperimentListener",
    "Pool",
    "STRATEGIES",
    "Selection",
    "Strategy",
    "Task",
    "TrainingConfig",
    "get_strategy",
    "greedy_k_center",
    "run_experiment",
]
