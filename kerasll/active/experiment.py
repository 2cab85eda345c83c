"""The pool-based active-learning loop, resumable cycle by cycle.

For each trial, every strategy starts from the same random initial set. Each
cycle trains the target model on the labeled items (from scratch, or from the
previous cycle's weights), measures the task metric on the test set (accuracy,
mAP@0.5) after the last epoch, then
draws a random subset of M unlabeled items and lets the strategy choose K of
them. The state is saved atomically after every cycle; a resumed run
continues from the last completed cycle and, because every random choice
derives from the experiment seed and fixed keys, reproduces the
uninterrupted run exactly.

Common random numbers, every cycle (a paired design that holds beyond the
first cycle):

- the initial set depends on (seed, trial), shared by every strategy;
- training depends on (seed, trial, cycle), and the labeled items are fed in
  index order, so two runs holding the same labels train the same model;
- one random order of the whole pool per (seed, trial): each cycle's
  candidate subset is the first M still-unlabeled items in that order, so
  runs holding the same labels score the same candidates;
- one uniform key per pool item per (seed, trial, cycle, stream), the
  cycle's `Draw`: `random`'s picks, every strategy's random share (audit
  slices) and the diagnostics' comparison batch are the candidates with the
  highest keys, and stochastic rules use Gumbel noise made of them. Every
  strategy reads the "shared" stream; the A/A control `random_control`
  reads its own.

So a strategy whose choices agree with `random`'s (a safe strategy whose
head has earned no share) picks exactly what `random` picks, cycle after
cycle, and any later difference comes only from what it chose.

Every selection is explained in its cycle's record: the picks' class
histogram, their mean true loss and feature spread next to a random batch
from the same subset, and the model's loss-prediction quality on the test
set (`kerasll.active.diagnostics`).
"""

import dataclasses
import time

import keras
import numpy as np
from kerasll_serving.atomic import atomic_path

from kerasll.active import folder
from kerasll.active.records import RESULTS_FILE, write_results_csv
from kerasll.active.pool import Pool
from kerasll.active.seeds import derive_seed, generator
from kerasll.active.state import STATE_FILE, CycleRecord, ExperimentState
from kerasll.active.diagnostics import describe_selection, describe_test_set
from kerasll.active.errors import ProtocolError
from kerasll.active.batch import Audit, Draw
from kerasll.active.pool import UNLABELED
from kerasll.active.strategies import SHARED_STREAM, get_strategy
from kerasll.active.task import Task
from kerasll.pools import duplicate_picks
from kerasll.active.training import make_model, train_model


class ExperimentListener:
    """Receives progress events of `run_experiment`; every method is a no-op."""

    def experiment_started(self, config, task, out_dir):
        """All inputs are valid; the first cycle is about to run."""

    def cycle_started(self, strategy, trial, cycle, labeled, epochs):
        """A cycle begins training on `labeled` items for `epochs` epochs."""

    def epoch_finished(self, epoch, logs):
        """An epoch of the current cycle ended (Keras logs)."""

    def cycle_finished(self, record, resumed=False):
        """A cycle completed (`resumed`: it was loaded from saved state)."""


@dataclasses.dataclass
class ExperimentResult:
    """What `run_experiment` produced.

    Attributes:
        records: every `CycleRecord`, by trial, strategy and cycle.
        paths: output name ("results", "summary", "curves", "state") to path.
        state: the final `ExperimentState` (pools and selection scores).
        models: (strategy, trial) to the saved final model, when requested.
    """

    records: list
    paths: dict
    state: ExperimentState
    models: dict


def describe(config, task):
    """A paragraph describing the experiment, for summaries."""
    training = config.training
    start = "trained from scratch each cycle"
    if config.warm_start:
        epochs = config.warm_start_epochs or training.epochs
        start = f"later cycles warm-started from the previous one for {epochs} epochs"
    return (
        f"Task: {task.kind}, metric {task.metric_name}. Data: {task.describe()}. "
        f"Model: {config.model} (width {config.width:g}), "
        f"{training.epochs} epochs in the first cycle, {start} (lr "
        f"{training.learning_rate:g}, x{training.lr_drop_factor:g} from "
        f"{training.lr_drop_fraction:.0%} of the epochs; the loss head of joint "
        f"strategies is detached from {training.detach_fraction:.0%} of the epochs, "
        f"that of decoupled ones from the start; batch {training.batch_size}). "
        f"Protocol: {config.initial_size} random initial labels, then "
        f"K={config.budget} per cycle chosen from M={config.subset_size} "
        "candidates (the first unlabeled items of the trial's random pool order); "
        f"{config.cycles} cycles, {config.trials} trial(s), seed {config.seed}. "
        f"Strategies (every parameter): {_strategy_parameters(config)}."
    )


def _strategy_parameters(config):
    """`name (key value, ...)` for every strategy of the config."""
    described = []
    for name, parameters in config.to_dict()["strategy_configs"].items():
        values = ", ".join(f"{key} {value}" for key, value in parameters.items())
        described.append(f"`{name}` ({values})" if values else f"`{name}`")
    return "; ".join(described)


def run_experiment(
    config,
    task,
    out_dir,
    *,
    resume=False,
    overwrite=False,
    listener=None,
    save_models=False,
):
    """Runs (or resumes) an active-learning experiment and writes its outputs.

    Everything is validated before the first cycle trains. After every cycle
    `state.json` and `results.csv` are rewritten atomically; at the end
    `summary.md` and `curves.png` too.

    Args:
        config: an `ExperimentConfig`; its model and training left None are
            the task's defaults (`ExperimentConfig.with_task_defaults`), and
            the config recorded in the state holds them.
        task: a `kerasll.active.task.Task` of the config's task kind (e.g.
            `kerasll.tasks.classification.ClassificationTask(dataset)`).
        out_dir: results folder.
        resume: continue the experiment saved in `out_dir`.
        overwrite: replace results saved in `out_dir`.
        listener: an `ExperimentListener` for progress reports.
        save_models: also save each run's final model as
            `models/<strategy>-trial<t>.keras`, in the form a device runs
            (`Task.deployable`: a detector's boxes and scores).

    Returns:
        An `ExperimentResult`.

    Raises:
        TypeError: `task` is not a `Task`.
        ProtocolError: the pool is too small for the protocol, the data is
            for another task than the config's, or the model is not the
            task's or cannot be built for it.
        ExperimentError: both resume and overwrite.
        OutputExistsError: results exist and neither resume nor overwrite.
        ResumeError: nothing to resume, or a different configuration.
    """
    folder.check_flags(resume, overwrite)
    if not isinstance(task, Task):
        raise TypeError(
            "Expected a kerasll.active.task.Task (e.g. ClassificationTask(dataset) "
            f"or DetectionTask(name, train, test)). Received: {type(task).__name__}"
        )
    if task.kind != config.task_kind:
        raise ProtocolError(
            f"Expected data for the config's {config.task_kind} task. Received a "
            f"{task.kind} task ({task.name})"
        )
    try:
        config = config.with_task_defaults(task)
    except ValueError as error:
        raise ProtocolError(str(error)) from error
    config.check_pool(task.pool_size)
    try:  # The model must fit the data (input size, classes) before any output.
        task.build_model(config.model, config.width, config.training.weight_decay)
    except ValueError as error:
        raise ProtocolError(
            f"Cannot build {config.model} for {task.name}: {error}"
        ) from error
    fingerprint = task.fingerprint()
    if resume:
        state = ExperimentState.load(out_dir)
        state.check_matches(config.to_dict(), fingerprint)
    else:
        state = ExperimentState(config.to_dict(), fingerprint)
    state.description = describe(config, task)
    out_dir = folder.prepare(out_dir, resume=resume, overwrite=overwrite)
    experiment = _Experiment(
        config, task, out_dir, state, listener or ExperimentListener(), save_models
    )
    return experiment.run()


class _Run:
    """One (strategy, trial) run: its pool, cycle records, pick scores, audits."""

    def __init__(self, state, strategy, trial, pool_size, initial):
        self.strategy, self.trial = strategy, trial
        saved = state.run(strategy.name, trial)
        if saved is None:
            self.pool = Pool(pool_size)
            self.pool.label(initial, cycle=0)
            self.records, self.scores, self.audits = [], [None], []
        else:
            self.pool = Pool.from_state_dict(saved["pool"])
            self.records = [CycleRecord.from_dict(cycle) for cycle in saved["cycles"]]
            self.scores = list(saved["scores"])
            self.audits = list(saved["audits"])

    def history(self):
        """The run's audits as `Audit`s (None where a selection had none)."""
        return [
            None if audit is None else Audit(
                np.asarray(audit["score"]), np.asarray(audit["true_loss"])
            )
            for audit in self.audits
        ]

    def save(self, state):
        state.update_run(
            self.strategy.name,
            self.trial,
            self.pool.state_dict(),
            self.records,
            self.scores,
            self.audits,
        )


class _EpochCallback(keras.callbacks.Callback):
    def __init__(self, listener):
        super().__init__()
        self.listener = listener

    def on_epoch_end(self, epoch, logs=None):
        self.listener.epoch_finished(epoch, dict(logs or {}))


class _Experiment:
    """The validated experiment: runs every (trial, strategy) cycle by cycle.

    The first cycle trains every strategy on the same random labels with the
    same seed, so its model depends only on how the strategy trains
    (its `head_training`: "plain", "joint" or "decoupled"): it is trained
    once per trial and head training and shared (its weights are kept in
    memory until the trial ends).
    Training is deterministic on the CPU, so sharing changes no result.
    """

    def __init__(self, config, task, out_dir, state, listener, save_models):
        self.config, self.task, self.out_dir = config, task, out_dir
        self.state, self.listener, self.save_models = state, listener, save_models
        self.strategies = [get_strategy(name) for name in config.strategies]
        self.first_cycle_weights = {}
        self.pool_order = (None, None)  # (trial, its pool order)
        self.metric = task.metric()

    def build_backbone(self):
        """A freshly initialised target network."""
        return self.task.build_model(
            self.config.model, self.config.width, self.config.training.weight_decay
        )

    def run(self):
        config, pool_size = self.config, self.task.pool_size
        self.listener.experiment_started(config, self.task, self.out_dir)
        models = {}
        for trial in range(config.trials):
            initial = generator(config.seed, "initial", trial).choice(
                pool_size, size=config.initial_size, replace=False
            )
            for strategy in self.strategies:
                run = _Run(self.state, strategy, trial, pool_size, initial)
                for record in run.records:
                    self.listener.cycle_finished(record, resumed=True)
                for cycle in range(len(run.records), config.cycles):
                    self.listener.cycle_finished(self._run_cycle(run, cycle))
                path = folder.model_path(self.out_dir, strategy.name, trial)
                if self.save_models and path.exists():
                    models[(strategy.name, trial)] = path
            self.first_cycle_weights.clear()
        records = self.state.records(config.strategies, config.trials)
        self.state.save(self.out_dir)  # With this run's description.
        paths = folder.write_outputs(
            records,
            self.out_dir,
            header=self.state.description,
            title=f"{self.task.name}, {config.model}: active learning",
            metric=self.metric,
            secondary=self.task.secondary_metrics,
        )
        paths["state"] = self.out_dir / STATE_FILE
        return ExperimentResult(records, paths, self.state, models)

    def _train(self, run, cycle, labeled, training):
        """The model of one cycle: trained, or the shared first-cycle model."""
        config, task, strategy = self.config, self.task, run.strategy
        warm = config.warm_start and cycle > 0
        shared = None
        if cycle == 0:
            shared = self.first_cycle_weights.get(strategy.head_training)
        if shared is not None:
            backbone = self.build_backbone()
            model = make_model(
                backbone, training, strategy.uses_loss_head, task.taps(backbone)
            )
            model.set_weights(shared)
            return model
        previous = folder.weights_path(self.out_dir, strategy.name, run.trial, cycle - 1)
        x, y = task.training_arrays(labeled)
        model = train_model(
            self.build_backbone,
            x,
            y,
            training,
            with_head=strategy.uses_loss_head,
            augmentation=task.augmentation,
            seed=derive_seed(config.seed, "train", run.trial, cycle),
            initial_weights=previous if warm else None,
            callbacks=[_EpochCallback(self.listener)],
            loss=task.loss(),
            metrics=task.compile_metrics(),
            taps=task.taps,
        )
        if cycle == 0:
            self.first_cycle_weights[strategy.head_training] = model.get_weights()
        return model

    def _run_cycle(self, run, cycle):
        """Trains, evaluates, selects (but in the last cycle), saves the state."""
        config, task, strategy = self.config, self.task, run.strategy
        started = time.perf_counter()
        keras.backend.clear_session()
        labeled = np.sort(run.pool.labeled_indices())
        training = config.cycle_training(cycle, strategy.head_training)
        self.listener.cycle_started(
            strategy.name, run.trial, cycle, len(labeled), training.epochs
        )
        warm = config.warm_start and cycle > 0
        model = self._train(run, cycle, labeled, training)
        test_view = task.view(model, "test", training.eval_batch_size)
        metrics = describe_test_set(test_view, task.evaluate(test_view))
        recalls = task.class_recalls(test_view)
        if recalls is not None:
            metrics["balanced_accuracy"] = float(np.mean(recalls))
            metrics["worst_class_recall"] = float(np.min(recalls))
        last = cycle == config.cycles - 1
        picks = {} if last else self._select(run, cycle, model, labeled)
        previous = folder.weights_path(self.out_dir, strategy.name, run.trial, cycle - 1)
        if config.warm_start and not last:
            self._save(
                model,
                folder.weights_path(self.out_dir, strategy.name, run.trial, cycle),
            )
        if self.save_models and last:
            self._save(
                task.deployable(model),
                folder.model_path(self.out_dir, strategy.name, run.trial),
            )
        record = CycleRecord(
            strategy=strategy.name,
            trial=run.trial,
            cycle=cycle,
            labeled=len(labeled),
            metric=metrics["metric"],
            rank_accuracy=metrics["rank_accuracy"],
            head_spearman=metrics["head_spearman"],
            entropy_spearman=metrics["entropy_spearman"],
            seconds=time.perf_counter() - started,
            warm_start=warm,
            balanced_accuracy=metrics.get("balanced_accuracy"),
            worst_class_recall=metrics.get("worst_class_recall"),
            secondary_metrics=task.evaluate_secondary(test_view) or None,
            **picks,
        )
        run.records.append(record)
        run.save(self.state)
        self.state.save(self.out_dir)
        write_results_csv(
            self.state.records(config.strategies, config.trials),
            self.out_dir / RESULTS_FILE,
            self.metric,
        )
        if warm:
            previous.unlink(missing_ok=True)
        return record

    def _select(self, run, cycle, model, labeled):
        """Labels the strategy's K picks from the cycle's M candidates.

        The candidates are the first M unlabeled items in the trial's pool
        order; the strategy's `Draw` holds its stream's keys of them. Its
        picks are compared with the shared stream's K highest-key
        candidates: `random`'s picks from the same candidates.

        Returns:
            The selection's diagnostics (`CycleRecord` fields).
        """
        config, task, strategy = self.config, self.task, run.strategy
        order = self._pool_order(run.trial)
        subset = order[run.pool.labeled_cycle[order] == UNLABELED][: config.subset_size]
        draw = self._draw(strategy.stream, run.trial, cycle, subset)
        shared = draw if strategy.stream == SHARED_STREAM else self._draw(
            SHARED_STREAM, run.trial, cycle, subset
        )
        comparison = subset[shared.order()[: config.budget]]
        view = task.view(model, "train", config.training.eval_batch_size)
        selection = strategy.select(
            view, subset, config.budget, labeled, draw, history=run.history()
        )
        diagnostics = describe_selection(
            view,
            selection.indices,
            comparison,
            task.item_classes(selection.indices),
            task.num_classes,
        )
        run.audits.append(self._audit(strategy, view, selection.audit))
        if selection.audit is not None:
            diagnostics["head_share"] = 1.0 - len(selection.audit) / config.budget
        groups = task.item_groups()
        if groups is not None:
            diagnostics["duplicate_picks"] = duplicate_picks(
                selection.indices, groups, labeled
            )
        run.pool.label(selection.indices, cycle + 1)
        scores = None if selection.scores is None else selection.scores.tolist()
        run.scores.append(scores)
        return diagnostics

    def _pool_order(self, trial):
        """The trial's random order of the whole pool (cached per trial)."""
        if self.pool_order[0] != trial:
            order = generator(self.config.seed, "pool-order", trial).permutation(
                self.task.pool_size
            )
            self.pool_order = (trial, order)
        return self.pool_order[1]

    def _draw(self, stream, trial, cycle, subset):
        """The `Draw` of one stream in one cycle, aligned with `subset`."""
        seed = self.config.seed
        keys = generator(seed, "keys", stream, trial, cycle).random(self.task.pool_size)
        return Draw(keys[subset], generator(seed, "draw", stream, trial, cycle))

    @staticmethod
    def _audit(strategy, view, audit):
        """The picking model's score and true loss of an audit slice.

        In the simulator every label is known at selection time; in a real
        loop the true loss is computed when the audit items come back labeled.
        """
        if audit is None:
            return None
        return {
            "score": strategy.score(view, audit).tolist(),
            "true_loss": view.true_loss(audit).tolist(),
        }

    @staticmethod
    def _save(model, path):
        """Saves weights (`.weights.h5`) or the whole model (`.keras`) atomically."""
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as temporary:
            if path.name.endswith(".weights.h5"):
                model.save_weights(temporary)
            else:
                model.save(temporary)
