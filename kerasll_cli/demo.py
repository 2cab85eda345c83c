"""`kerasll demo`: strategies compared on the embedded digits, in minutes on a CPU.

`run_demo` runs a one-trial experiment with `learning_loss`,
`learning_loss_safe`, `random` and `entropy`, draws what the learning-loss
strategy picked in the last cycle beside random picks (`picks.png`), exports
the final learning-loss model to ONNX and scores the remaining unlabeled pool
with the device scorer (`score_pool_on_device`); `demo_command` is its
click layer. It sits in the command layer because it drives the engine, the
export and the device scorer together.
"""

import dataclasses
import time
from numbers import Integral
from pathlib import Path

import click
import numpy as np
from kerasll_serving import PoolScorer
from kerasll_serving.atomic import atomic_path
from kerasll_serving.topk import top_indices
from kerasll_serving.validation import Interval, describe, validate_arguments

from kerasll.active.errors import OutputExistsError, ProtocolError, ResumeError
from kerasll.active.experiment import run_experiment
from kerasll.active.picks_figure import plot_picks
from kerasll.active.pool import Pool
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.state import ExperimentState
from kerasll.active.summary import final_table
from kerasll.active.training import TrainingConfig
from kerasll.data import load_digits
from kerasll.export import to_onnx
from kerasll.tasks.classification import ClassificationTask
from kerasll_cli.options import config_default, library_errors, number, out_option
from kerasll_cli.progress import ClickProgress

# The demo draws the picks of a selection, and only cycles after the first
# select: at least 2 cycles.
DEMO_CONSTRAINTS = {"cycles": [Interval(Integral, 2, None, closed="left")]}
DEMO_STRATEGIES = ("learning_loss", "learning_loss_safe", "random", "entropy")
PICKS_FILE = "picks.png"
ONNX_FILE = "learning_loss.onnx"
POOL_FILE = "unlabeled_pool.npy"
DEVICE_PICKS_FILE = "device_picks.csv"
OUT_DIR = "demo-output"
CYCLES = 5
EPOCHS = 40


def demo_config(cycles=CYCLES, epochs=EPOCHS, seed=0):
    """The demo's protocol: digits, a CPU-sized CNN, one trial.

    100 random initial labels, then K = 100 per cycle from a random subset of
    M = 400 unlabeled digits. Batch 32 (not the paper's 128) so the first
    cycles still take several SGD steps per epoch; the rest of the schedule
    is the paper's, scaled to `epochs`.

    Args:
        cycles: training cycles.
        epochs: epochs per cycle.
        seed: the experiment seed.

    Returns:
        An `ExperimentConfig`.

    Raises:
        ProtocolError: cycles not an integer >= 2 (no selection to draw),
            or a bad protocol value (`ExperimentConfig`).
        ValueError: epochs below 1 (from `TrainingConfig`).
    """
    validate_arguments(DEMO_CONSTRAINTS, {"cycles": cycles}, error=ProtocolError)
    return ExperimentConfig(
        dataset="digits",
        model="small_cnn",
        width=0.5,
        strategies=DEMO_STRATEGIES,
        initial_size=100,
        budget=100,
        subset_size=400,
        cycles=cycles,
        trials=1,
        seed=seed,
        training=TrainingConfig(epochs=epochs, batch_size=32),
    )


@dataclasses.dataclass(frozen=True)
class DeviceScoring:
    """The device-scoring step's outcome.

    Attributes:
        onnx_path: the exported model.
        picks_path: the scorer's picks file.
        picks: (pool index, predicted loss, true label) of the top picks.
        keras_overlap: share of the top picks Keras' `predict_loss` agrees on.
        summary: the scorer's one-line summary.
    """

    onnx_path: Path
    picks_path: Path
    picks: list
    keras_overlap: float
    summary: str


def score_pool_on_device(learner, dataset, pool_indices, out_dir, top=10):
    """Exports `learner` to ONNX and scores pool items with the device scorer.

    Uses `kerasll.export.to_onnx` (raw uint8 pixels in) and
    `kerasll_serving.PoolScorer` on the CPU provider.

    Args:
        learner: the trained `LossLearner`.
        dataset: the `ImageDataset` the pool indices refer to.
        pool_indices: training-pool indices to score (the unlabeled ones).
        out_dir: folder for the .onnx, the pool .npy and the picks file.
        top: number of picks.

    Returns:
        A `DeviceScoring`.
    """
    out_dir = Path(out_dir)
    pool_indices = np.asarray(pool_indices)
    images = dataset.x_train[pool_indices]
    onnx_path = out_dir / ONNX_FILE
    to_onnx(
        learner,
        onnx_path,
        raw_input_dtype="uint8",
        class_names=list(dataset.class_names),
        verify_data=images[:256],
    )
    pool_path = out_dir / POOL_FILE
    with atomic_path(pool_path) as temporary:
        np.save(temporary, images)
    picks_path = out_dir / DEVICE_PICKS_FILE
    result = PoolScorer(onnx_path, providers="cpu").score(
        pool_path, k=top, out=picks_path, progress=False
    )
    picks = [
        (
            int(pool_indices[pick.index]),
            float(pick.predicted_loss),
            dataset.class_names[dataset.y_train[pool_indices[pick.index]]],
        )
        for pick in result.picks
    ]
    keras_loss = learner.predict_loss(images.astype(np.float32))
    keras_top = set(top_indices(keras_loss, top).tolist())
    overlap = len(keras_top & {pick.index for pick in result.picks}) / max(
        1, len(picks)
    )
    return DeviceScoring(onnx_path, picks_path, picks, overlap, result.summary())


def check_demo_folder(out_dir):
    """Checks that the demo may write into `out_dir`.

    Args:
        out_dir: the demo's folder.

    Returns:
        True when it holds an earlier demo's output (which the demo replaces;
        other files in it stay), False when it is new or empty.

    Raises:
        OutputExistsError: a folder holding anything but an earlier demo's
            output, or a path that is not a folder.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        return False
    if out_dir.is_dir() and _holds_demo_state(out_dir):
        return True
    raise OutputExistsError(
        "Expected a new or empty folder, or an earlier demo's output, for the "
        f"demo. Received {str(out_dir)!r}, which holds other files and no demo "
        "state.json; choose another --out."
    )


def _holds_demo_state(out_dir):
    try:
        config = ExperimentState.load(out_dir).config
    except ResumeError:
        return False
    return config.get("dataset") == "digits" and config.get("strategies") == list(
        DEMO_STRATEGIES
    )


def _last_picks(state, strategy):
    run = state.run(strategy, 0)
    return run["pool"]["labeled"][-1], run["scores"][-1]


def run_demo(
    out_dir=OUT_DIR,
    cycles=CYCLES,
    epochs=EPOCHS,
    seed=0,
    echo=print,
    listener=None,
):
    """Runs the demo and prints its summary and artifact paths.

    An earlier demo's outputs in `out_dir` are replaced (it says so); any
    other file there stays. A folder holding anything else is refused.

    Args:
        out_dir: folder for all artifacts.
        cycles: training cycles (at least 2, so there is a selection to draw).
        epochs: epochs per cycle.
        seed: the experiment seed.
        echo: callable printing one line.
        listener: an `ExperimentListener` for progress.

    Returns:
        Dict of artifact name to `Path`.

    Raises:
        OutputExistsError: `out_dir` is not new, empty or an earlier demo's.
    """
    import keras

    started = time.perf_counter()
    dataset = load_digits()
    config = demo_config(cycles=cycles, epochs=epochs, seed=seed)
    out_dir = Path(out_dir)
    if check_demo_folder(out_dir):
        echo(f"Replacing the previous demo results in {out_dir}/")
    result = run_experiment(
        config,
        ClassificationTask(dataset),
        out_dir,
        overwrite=True,
        listener=listener,
        save_models=True,
    )
    artifacts = dict(result.paths)
    chosen, scores = _last_picks(result.state, "learning_loss")
    random_chosen, _ = _last_picks(result.state, "random")
    artifacts["picks"] = plot_picks(
        dataset.x_train,
        dataset.y_train,
        dataset.class_names,
        chosen,
        scores,
        random_chosen,
        out_dir / PICKS_FILE,
        title=f"learning_loss picks for cycle {cycles - 1}",
    )
    model_path = result.models[("learning_loss", 0)]
    artifacts["learning_loss model"] = model_path
    unlabeled = Pool.from_state_dict(
        result.state.run("learning_loss", 0)["pool"]
    ).unlabeled_indices()
    device = score_pool_on_device(
        keras.models.load_model(model_path), dataset, unlabeled, out_dir
    )
    echo("")
    echo("\n".join(final_table(result.records)))
    echo("")
    artifacts.update(onnx=device.onnx_path, device_picks=device.picks_path)
    echo(f"Device scorer on the {len(unlabeled)} unlabeled digits: {device.summary}")
    echo(
        f"Top {len(device.picks)} by predicted loss (agreement with Keras "
        f"{device.keras_overlap:.0%}):"
    )
    for rank, (index, loss, label) in enumerate(device.picks, 1):
        echo(
            f"  {rank:>2}. pool item {index:>5}  predicted loss {loss:.3f}  "
            f"true {label}"
        )
    echo("")
    echo("Artifacts:")
    for name, path in artifacts.items():
        echo(f"  {name:<19} {path}")
    echo(f"Demo finished in {time.perf_counter() - started:.0f} s.")
    return artifacts


@click.command()
@out_option(
    default=OUT_DIR,
    show_default=True,
    help="Folder for the demo's artifacts: new, empty, or an earlier demo's "
    "(whose outputs are replaced; other files stay).",
)
@number("--cycles", CYCLES, f"Training cycles, {describe(DEMO_CONSTRAINTS['cycles'])} "
        "(100 random labels, then 100 more per cycle).")
@number("--epochs", EPOCHS, "Epochs per cycle.")
@number("--seed", config_default(ExperimentConfig, "seed"),
        "The one seed every random choice derives from.")
def demo_command(out_dir, cycles, epochs, seed):
    """Compare strategies on the embedded digits and show what they pick."""
    try:
        demo_config(cycles=cycles, epochs=epochs, seed=seed)  # Checks the numbers.
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    try:
        run_demo(
            out_dir,
            cycles=cycles,
            epochs=epochs,
            seed=seed,
            echo=click.echo,
            listener=ClickProgress(),
        )
    except library_errors() as error:
        raise click.ClickException(str(error)) from error
