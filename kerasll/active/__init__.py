"""Pool-based active learning: pool, strategies, experiment runner, demo.

- `ExperimentConfig`, `TrainingConfig`: the protocol and per-cycle training,
  with the paper's CIFAR-10 values as defaults.
- `run_experiment`: the resumable loop writing results.csv, summary.md and
  curves.png; `ExperimentListener` for progress events.
- `Pool`: which item was labeled in which cycle, with `state_dict`.
- `get_strategy`, `STRATEGIES`, `Strategy`, `Selection`: query strategies.
- `KerasModelView`, `ArrayModelView`: what strategies may ask of a model.
- `greedy_k_center`: bounded-memory core-set selection.
"""

from kerasll.active.experiment import ExperimentListener, run_experiment
from kerasll.active.kcenter import greedy_k_center
from kerasll.active.pool import Pool
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.strategies import STRATEGIES, Selection, Strategy, get_strategy
from kerasll.active.training import TrainingConfig
from kerasll.active.view import ArrayModelView, KerasModelView

__all__ = [
    "ArrayModelView",
    "ExperimentConfig",
    "ExperimentListener",
    "KerasModelView",
    "Pool",
    "STRATEGIES",
    "Selection",
    "Strategy",
    "TrainingConfig",
    "get_strategy",
    "greedy_k_center",
    "run_experiment",
]
