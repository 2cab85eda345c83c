"""The paper's CIFAR-10 regime on the JAX backend, reduced to fit 9 minutes.

ResNet-18 and the paper's schedule shape (SGD lr 0.1, momentum 0.9, weight
decay 5e-4, batch 128, lr x0.1 at 80% of the epochs, head detached at 60%,
margin 1, weight 1), through `kerasll.active.run_experiment`, with
`learning_loss`, `random` and `entropy` on shared seeds (every strategy
starts from the same 1,024 random labels and the same first-cycle model of
its kind). What is reduced, and by how much, is in `PRESETS["gpu"]` and
printed at the start. Never imports TensorFlow: the GPU machine has none.

A deadline keeps the run inside its budget: a cycle whose expected length
(the longest run of that cycle so far) would end past it is not started, the
strategies that completed every cycle get the engine's table and curves, and
the log says what was cut. Run it with `benchmarks/gpu/run.sh`.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

STARTED = time.perf_counter()
PAPER = {
    "pool": 50000, "test": 10000, "initial": 1000, "budget": 1000,
    "subset": 10000, "cycles": 10, "epochs": 200, "trials": 5,
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """One reduced protocol; sizes are multiples of the batch sizes so every
    batch has one shape and each step compiles once."""

    width: float
    initial: int
    budget: int
    subset: int
    cycles: int
    epochs: int
    batch_size: int
    eval_batch_size: int
    deadline: float  # seconds from the start of this script


PRESETS = {
    # 5 cycles of 50 epochs: 1,024 -> 5,120 labels; 2.2M training images
    # for the three strategies (entropy shares random's first cycle).
    "gpu": Preset(1.0, 1024, 1024, 10240, 5, 50, 128, 512, deadline=470.0),
    # The CPU dry run of every piece: a 1/8-width ResNet-18, two short cycles.
    "tiny": Preset(0.125, 128, 128, 512, 2, 1, 64, 256, deadline=1500.0),
}
STRATEGIES = ("learning_loss", "random", "entropy")


class DeadlineReached(Exception):
    """The next cycle would end past the deadline."""


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=pathlib.Path,
                        help="compact CIFAR-10 file from benchmarks/gpu/prepare.py")
    parser.add_argument("--out", required=True, type=pathlib.Path,
                        help="folder for summary.md, curves.png, results.csv, run.json")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/kerasll-gpu"),
                        help="scratch folder: the engine's state and the XLA cache")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _elapsed():
    return time.perf_counter() - STARTED


def _log(message):
    print(f"[{_elapsed():6.1f}s] {message}", flush=True)


_COMPILE_EVENTS = {
    "/jax/compilation_cache/cache_hits": "cache_hits",
    "/jax/compilation_cache/cache_misses": "cache_misses",
    "/jax/core/compile/jaxpr_trace_duration": "trace_seconds",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_seconds",
    "/jax/core/compile/backend_compile_duration": "compile_seconds",
}


def _enable_compilation_cache(folder):
    """XLA executables persist on disk, so a fresh model of the same shapes
    (every cycle builds one) loads its compiled step instead of compiling.

    Returns:
        A dict, filled as the run goes, of cache hits and misses and of the
        seconds spent tracing, lowering and compiling (JAX's monitoring events).
    """
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    counts = dict.fromkeys(_COMPILE_EVENTS.values(), 0)

    def count(event, **kwargs):
        if event in _COMPILE_EVENTS:
            counts[_COMPILE_EVENTS[event]] += 1

    def add(event, seconds, **kwargs):
        if event in _COMPILE_EVENTS:
            counts[_COMPILE_EVENTS[event]] += seconds

    jax.monitoring.register_event_listener(count)
    jax.monitoring.register_event_duration_secs_listener(add)
    return counts


def _describe(preset, config, dataset):
    pool, test = len(dataset.x_train), len(dataset.x_test)
    training = config.training
    final = preset.initial + (preset.cycles - 1) * preset.budget
    return (
        "Paper (CIFAR-10): pool 50,000, test 10,000, 1,000 initial + 1,000 per "
        "cycle from a random subset of 10,000, 10 cycles (1k -> 10k labels), "
        "200 epochs per cycle, 5 trials.\n"
        f"Here: pool {pool:,} and test {test:,} (random subsets, seed 0), "
        f"{preset.initial:,} initial + {preset.budget:,} per cycle from a random "
        f"subset of {preset.subset:,}, {preset.cycles} cycles "
        f"({preset.initial:,} -> {final:,} labels), {preset.epochs} epochs per "
        f"cycle (0-based: lr x{training.lr_drop_factor} from epoch "
        f"{training.lr_drop_epoch}, head detached from epoch "
        f"{training.detach_epoch}), 1 trial, ResNet-18 width "
        f"{preset.width}, batch {preset.batch_size}, fp32 on the JAX backend."
    )


def _config(preset, seed):
    from kerasll.active.protocol import ExperimentConfig
    from kerasll.active.training import TrainingConfig

    return ExperimentConfig(
        dataset="cifar10",
        model="resnet18",
        width=preset.width,
        strategies=STRATEGIES,
        initial_size=preset.initial,
        budget=preset.budget,
        subset_size=preset.subset,
        cycles=preset.cycles,
        trials=1,
        seed=seed,
        training=TrainingConfig(
            epochs=preset.epochs,
            batch_size=preset.batch_size,
            eval_batch_size=preset.eval_batch_size,
        ),
    )


def _listener(deadline):
    from kerasll.active.experiment import ExperimentListener

    class Deadline(ExperimentListener):
        """Logs progress, keeps the records; stops before a cycle that would overrun."""

        def __init__(self):
            self.longest = {}  # cycle -> seconds of its longest run so far
            self.records = []

        def expected_seconds(self, cycle, labeled):
            """The longest run of this cycle so far; else the last cycle's
            time scaled by the labels (training time grows with them)."""
            if cycle in self.longest:
                return self.longest[cycle]
            last = self.records[-1] if self.records else None
            return last.seconds * labeled / last.labeled if last else 0.0

        def cycle_started(self, strategy, trial, cycle, labeled, epochs):
            expected = self.expected_seconds(cycle, labeled)
            if cycle > 0 and _elapsed() + expected > deadline:
                raise DeadlineReached(
                    f"{strategy} cycle {cycle} would take about {expected:.0f}s "
                    f"and end past the {deadline:.0f}s deadline"
                )
            _log(f"{strategy} cycle {cycle}: {labeled} labels, {epochs} epochs")

        def cycle_finished(self, record, resumed=False):
            self.records.append(record)
            self.longest[record.cycle] = max(
                self.longest.get(record.cycle, 0.0), record.seconds
            )
            _log(
                f"{record.strategy} cycle {record.cycle}: accuracy "
                f"{record.metric:.4f}, {record.seconds:.1f}s"
            )

    return Deadline()


def _complete_records(records, cycles):
    """Records of the strategies that ran every cycle, and the names of the cut ones."""
    done = {}
    for record in records:
        done.setdefault(record.strategy, []).append(record)
    complete = [s for s, runs in done.items() if len(runs) == cycles]
    cut = [s for s in STRATEGIES if s not in complete]
    return [r for r in records if r.strategy in complete], cut


def _environment():
    import jax
    import keras

    return {
        "keras": keras.__version__,
        "jax": jax.__version__,
        "backend": keras.backend.backend(),
        "devices": [str(device) for device in jax.devices()],
    }


def run(argv=None):
    """Runs the reduced regime and writes its outputs; returns run.json's dict."""
    args = _parse(argv)
    preset = PRESETS[args.preset]
    args.out.mkdir(parents=True, exist_ok=True)
    compilation = _enable_compilation_cache(args.work / "jax-cache")
    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit(
            f"Expected KERAS_BACKEND=jax. Received: {keras.backend.backend()!r}"
        )
    from compact import load_subset
    from kerasll.active import folder
    from kerasll.active.summary import SUMMARY_FILE
    from kerasll.active.experiment import run_experiment
    from kerasll.tasks.classification import ClassificationTask

    environment = _environment()
    _log(f"environment: {json.dumps(environment)}")
    dataset = load_subset(args.data)
    _log(f"decoded {len(dataset.x_train):,} pool and {len(dataset.x_test):,} test images")
    config = _config(preset, args.seed)
    protocol = _describe(preset, config, dataset)
    print(protocol, flush=True)
    listener, stopped = _listener(preset.deadline), None
    try:
        run_experiment(config, ClassificationTask(dataset), args.work / "experiment",
                       overwrite=True, listener=listener)
    except DeadlineReached as reason:
        stopped = str(reason)
        _log(f"stopped: {stopped}")
    records = listener.records
    complete, cut = _complete_records(records, preset.cycles)
    if complete:
        folder.write_outputs(
            complete, args.out, header=protocol,
            title="CIFAR-10 (reduced), ResNet-18, JAX",
        )
        print((args.out / SUMMARY_FILE).read_text(), flush=True)
    trained = sum(r.labeled for r in records) * preset.epochs
    report = {
        "preset": dataclasses.asdict(preset),
        "paper": PAPER,
        "protocol": protocol,
        "environment": environment,
        "seconds": round(_elapsed(), 1),
        "cycles": [
            {"strategy": r.strategy, "cycle": r.cycle, "labeled": r.labeled,
             "accuracy": r.metric, "seconds": round(r.seconds, 1)}
            for r in records
        ],
        "trained_images": trained,
        "compilation": {k: round(v, 1) for k, v in compilation.items()},
        "complete": sorted({r.strategy for r in complete}),
        "cut": cut,
        "stopped": stopped,
        "tensorflow_imported": "tensorflow" in sys.modules,
    }
    (args.out / "run.json").write_text(json.dumps(report, indent=2))
    _log(
        f"done: {trained:,} training images in {sum(r.seconds for r in records):.0f}s "
        f"of cycles; compilation: {report['compilation']}; cut: {cut or 'none'}; "
        "TensorFlow imported: "
        f"{report['tensorflow_imported']}"
    )
    return report


if __name__ == "__main__":
    run()
