"""Pool-based active learning: pool, strategies, experiment runner, demo.

Public names load lazily (TensorFlow only when a name that needs it is used):

- `ExperimentConfig`, `TrainingConfig`: the protocol and per-cycle training,
  with the paper's CIFAR-10 values as defaults.
- `run_experiment`: the resumable loop writing results.csv, summary.md and
  curves.png; `ExperimentListener` for progress events.
- `Pool`: which item was labeled in which cycle, with `state_dict`.
- `get_strategy`, `STRATEGIES`, `Strategy`, `Selection`: query strategies.
- `KerasModelView`, `ArrayModelView`: what strategies may ask of a model.
- `greedy_k_center`: bounded-memory core-set selection.
"""

import importlib

_LAZY = {
    "ExperimentConfig": "kerasll.active.protocol",
    "TrainingConfig": "kerasll.active.training",
    "run_experiment": "kerasll.active.experiment",
    "ExperimentListener": "kerasll.active.experiment",
    "Pool": "kerasll.active.pool",
    "get_strategy": "kerasll.active.strategies",
    "STRATEGIES": "kerasll.active.strategies",
    "Strategy": "kerasll.active.strategies",
    "Selection": "kerasll.active.strategies",
    "KerasModelView": "kerasll.active.view",
    "ArrayModelView": "kerasll.active.view",
    "greedy_k_center": "kerasll.active.kcenter",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerasll.active' has no attribute {name!r}")
