"""The pool-based active-learning loop, resumable cycle by cycle.

For each trial, every strategy starts from the same random initial set. Each
cycle trains the target model on the labeled items (from scratch, or from the
previous cycle's weights), measures test accuracy after the last epoch, then
draws a random subset of M unlabeled items and lets the strategy choose K of
them. The state is saved atomically after every cycle; a resumed run
continues from the last completed cycle and, because every random choice
derives from the experiment seed and fixed keys, reproduces the
uninterrupted run exactly.

Seeds: the initial set depends on (seed, trial); training on (seed, trial,
cycle), shared by all strategies so that they are compared on the same
initialisations, data orders and augmentations (a paired design); the subset
and any random picks on (seed, trial, strategy, cycle).
"""

import dataclasses
import time

import keras
import numpy as np

from kerasll.active import folder
from kerasll.active import results as results_io
from kerasll.active.atomic import atomic_path
from kerasll.active.pool import Pool
from kerasll.active.seeds import derive_seed, generator
from kerasll.active.state import STATE_FILE, CycleRecord, ExperimentState
from kerasll.active.strategies import get_strategy
from kerasll.active.training import evaluate_model, train_model
from kerasll.active.view import KerasModelView
from kerasll.models import build_model


class ExperimentListener:
    """Receives progress events of `run_experiment`; every method is a no-op."""

    def experiment_started(self, config, dataset, out_dir):
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


def describe(config, dataset):
    """A paragraph describing the experiment, for summaries."""
    training = config.training
    start = (
        "warm-started from the previous cycle"
        if config.warm_start
        else "trained from scratch each cycle"
    )
    return (
        f"Data: {dataset.describe()}. Model: {config.model} (width {config.width:g}), "
        f"{start}, {training.epochs} epochs per cycle (lr {training.learning_rate:g}, "
        f"x{training.lr_drop_factor:g} from epoch {training.lr_drop_epoch}; loss head "
        f"detached from epoch {training.detach_epoch}; batch {training.batch_size}). "
        f"Protocol: {config.initial_size} random initial labels, then "
        f"K={config.budget} per cycle chosen from a random subset of "
        f"M={config.subset_size} unlabeled items; {config.cycles} cycles, "
        f"{config.trials} trial(s), seed {config.seed}."
    )


def run_experiment(
    config,
    dataset,
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
        config: an `ExperimentConfig`.
        dataset: an `ImageDataset`.
        out_dir: results folder.
        resume: continue the experiment saved in `out_dir`.
        overwrite: replace results saved in `out_dir`.
        listener: an `ExperimentListener` for progress reports.
        save_models: also save each run's final model as
            `models/<strategy>-trial<t>.keras`.

    Returns:
        An `ExperimentResult`.

    Raises:
        ProtocolError: the pool is too small for the protocol.
        ExperimentError: both resume and overwrite.
        OutputExistsError: results exist and neither resume nor overwrite.
        ResumeError: nothing to resume, or a different configuration.
    """
    folder.check_flags(resume, overwrite)
    config.check_pool(len(dataset.x_train))
    fingerprint = dataset.fingerprint()
    if resume:
        state = ExperimentState.load(out_dir)
        state.check_matches(config.to_dict(), fingerprint)
    else:
        state = ExperimentState(config.to_dict(), fingerprint)
    out_dir = folder.prepare(out_dir, resume=resume, overwrite=overwrite)
    experiment = _Experiment(
        config, dataset, out_dir, state, listener or ExperimentListener(), save_models
    )
    return experiment.run()


class _Run:
    """One (strategy, trial) run: its pool, cycle records and pick scores."""

    def __init__(self, state, strategy, trial, pool_size, initial):
        self.strategy, self.trial = strategy, trial
        saved = state.run(strategy.name, trial)
        if saved is None:
            self.pool = Pool(pool_size)
            self.pool.label(initial, cycle=0)
            self.records, self.scores = [], [None]
        else:
            self.pool = Pool.from_state_dict(saved["pool"])
            self.records = [CycleRecord(**cycle) for cycle in saved["cycles"]]
            self.scores = list(saved["scores"])

    def save(self, state):
        state.update_run(
            self.strategy.name,
            self.trial,
            self.pool.state_dict(),
            self.records,
            self.scores,
        )


class _EpochCallback(keras.callbacks.Callback):
    def __init__(self, listener):
        super().__init__()
        self.listener = listener

    def on_epoch_end(self, epoch, logs=None):
        self.listener.epoch_finished(epoch, dict(logs or {}))


class _Experiment:
    """The validated experiment: runs every (trial, strategy) cycle by cycle."""

    def __init__(self, config, dataset, out_dir, state, listener, save_models):
        self.config, self.dataset, self.out_dir = config, dataset, out_dir
        self.state, self.listener, self.save_models = state, listener, save_models
        self.strategies = [get_strategy(name) for name in config.strategies]
        self.mean, self.std = dataset.channel_stats()

    def build_backbone(self):
        """A freshly initialised target network."""
        return build_model(
            self.config.model,
            self.dataset.input_shape,
            self.dataset.num_classes,
            width=self.config.width,
            weight_decay=self.config.training.weight_decay,
            mean=self.mean,
            std=self.std,
        )

    def run(self):
        config, pool_size = self.config, len(self.dataset.x_train)
        self.listener.experiment_started(config, self.dataset, self.out_dir)
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
        records = self.state.records(config.strategies, config.trials)
        paths = results_io.write_outputs(
            records,
            self.out_dir,
            header=describe(config, self.dataset),
            title=f"{self.dataset.name}, {config.model}: active learning",
        )
        paths["state"] = self.out_dir / STATE_FILE
        return ExperimentResult(records, paths, self.state, models)

    def _run_cycle(self, run, cycle):
        """Trains, evaluates, selects (but in the last cycle), saves the state."""
        config, data, strategy = self.config, self.dataset, run.strategy
        started = time.perf_counter()
        keras.backend.clear_session()
        labeled = run.pool.labeled_indices()
        self.listener.cycle_started(
            strategy.name, run.trial, cycle, len(labeled), config.training.epochs
        )
        warm = config.warm_start and cycle > 0
        previous = folder.weights_path(
            self.out_dir, strategy.name, run.trial, cycle - 1
        )
        model = train_model(
            self.build_backbone,
            data.x_train[labeled],
            data.y_train[labeled],
            config.training,
            with_head=strategy.uses_loss_head,
            augmentation=data.augmentation,
            seed=derive_seed(config.seed, "train", run.trial, cycle),
            initial_weights=previous if warm else None,
            callbacks=[_EpochCallback(self.listener)],
        )
        metrics = evaluate_model(
            model, data.x_test, data.y_test, config.training.eval_batch_size
        )
        last = cycle == config.cycles - 1
        if not last:
            self._select(run, cycle, model, labeled)
        if config.warm_start and not last:
            self._save(
                model,
                folder.weights_path(self.out_dir, strategy.name, run.trial, cycle),
            )
        if self.save_models and last:
            self._save(model, folder.model_path(self.out_dir, strategy.name, run.trial))
        record = CycleRecord(
            strategy=strategy.name,
            trial=run.trial,
            cycle=cycle,
            labeled=len(labeled),
            accuracy=metrics["accuracy"],
            rank_accuracy=metrics["rank_accuracy"],
            seconds=time.perf_counter() - started,
            warm_start=warm,
        )
        run.records.append(record)
        run.save(self.state)
        self.state.save(self.out_dir)
        results_io.write_results_csv(
            self.state.records(config.strategies, config.trials),
            self.out_dir / results_io.RESULTS_FILE,
        )
        if warm:
            previous.unlink(missing_ok=True)
        return record

    def _select(self, run, cycle, model, labeled):
        """Labels the strategy's K picks from a random subset of M for cycle + 1."""
        config = self.config
        rng = generator(config.seed, "select", run.trial, run.strategy.name, cycle)
        unlabeled = run.pool.unlabeled_indices()
        size = min(config.subset_size, len(unlabeled))
        subset = np.sort(rng.choice(unlabeled, size=size, replace=False))
        view = KerasModelView(
            model, self.dataset.x_train, config.training.eval_batch_size
        )
        selection = run.strategy.select(view, subset, config.budget, labeled, rng)
        run.pool.label(selection.indices, cycle + 1)
        scores = None if selection.scores is None else selection.scores.tolist()
        run.scores.append(scores)

    @staticmethod
    def _save(model, path):
        """Saves weights (`.weights.h5`) or the whole model (`.keras`) atomically."""
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as temporary:
            if path.name.endswith(".weights.h5"):
                model.save_weights(temporary)
            else:
                model.save(temporary)
