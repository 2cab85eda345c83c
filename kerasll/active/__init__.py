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

The names load on first use (PEP 562): the strategies and the selection
rules need only numpy and scipy, so `kerasll project select --picks`, which
imports `kerasll.active.strategies`, never imports TensorFlow.
"""

from kerasll.lazy import lazy_names

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "ArrayModelView": "kerasll.active.view",
    "ExperimentConfig": "kerasll.active.protocol",
    "ExperimentListener": "kerasll.active.experiment",
    "Pool": "kerasll.active.pool",
    "STRATEGIES": "kerasll.active.strategies",
    "Selection": "kerasll.active.strategies",
    "Strategy": "kerasll.active.strategies",
    "Task": "kerasll.active.task",
    "TrainingConfig": "kerasll.active.training",
    "get_strategy": "kerasll.active.strategies",
    "greedy_k_center": "kerasll.active.kcenter",
    "run_experiment": "kerasll.active.experiment",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
