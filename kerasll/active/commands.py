"""`kerasll simulate` and `kerasll demo`: thin click layers over the library.

Library errors (bad protocol sizes, data, resume folders) become one line
and exit code 1 through `click.ClickException`; no training starts before
every input has been checked.
"""

import sys

import click


def _library_errors():
    """The typed errors shown to the user as one line (imported lazily)."""
    from kerasll.active.errors import ExperimentError
    from kerasll.data import DataError

    return (ExperimentError, DataError)


class ClickProgress:
    """An `ExperimentListener`: a progress bar per cycle, one line at its end.

    Args:
        echo: a callable printing one line.
    """

    def __init__(self, echo=click.echo):
        self.echo = echo
        self._bar = None

    def experiment_started(self, config, dataset, out_dir):
        self.echo(dataset.describe())
        self.echo(
            f"{', '.join(config.strategies)}: {config.trials} trial(s) x "
            f"{config.cycles} cycles, {config.training.epochs} epochs each; "
            f"results in {out_dir}/"
        )

    def cycle_started(self, strategy, trial, cycle, labeled, epochs):
        label = f"{strategy} trial {trial} cycle {cycle} ({labeled} labels)"
        self._bar = click.progressbar(length=epochs, label=label, file=sys.stderr)
        self._bar.__enter__()

    def epoch_finished(self, epoch, logs):
        if self._bar is not None:
            self._bar.update(1)

    def cycle_finished(self, record, resumed=False):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        rank = "-" if record.rank_accuracy is None else f"{record.rank_accuracy:.3f}"
        timing = "resumed" if resumed else f"{record.seconds:.1f}s"
        self.echo(
            f"{record.strategy:<22} trial {record.trial}  cycle {record.cycle}  "
            f"labeled {record.labeled:>6}  accuracy {record.accuracy:.4f}  "
            f"rank accuracy {rank}  {timing}"
        )


@click.command()
@click.option(
    "--dataset",
    default="cifar10",
    show_default=True,
    help="digits, cifar10, a .npz file (x_train, y_train, x_test, y_test) "
    "or a folder of class sub-folders.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=True),
    help="CIFAR-10 npz (default: $KERASLL_DATA; download only if neither).",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    nargs=2,
    default=None,
    metavar="HEIGHT WIDTH",
    help="Resize the images of a folder --dataset to this size (needed when "
    "they differ in size).",
)
@click.option(
    "--model",
    default="resnet18",
    show_default=True,
    help="Built-in model: resnet18 (the paper's) or small_cnn (CPU-sized).",
)
@click.option(
    "--width",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Channel multiplier of the model.",
)
@click.option(
    "--strategies",
    default="learning_loss,entropy,coreset,random",
    show_default=True,
    help="Comma-separated strategy names.",
)
@click.option(
    "--initial",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Random labels before the first cycle.",
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="K: labels added per cycle.",
)
@click.option(
    "--subset",
    type=click.IntRange(min=1),
    default=10000,
    show_default=True,
    help="M: random unlabeled items scored per cycle.",
)
@click.option(
    "--cycles",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Training cycles; cycle c trains on initial + c x budget labels.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Epochs per cycle (lr drop at 80%, head detached at 60% of them).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Repetitions; strategies share each trial's initial set and seeds.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="The one seed every random choice derives from.",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=128, show_default=True
)
@click.option("--learning-rate", type=float, default=0.1, show_default=True)
@click.option(
    "--margin", type=float, default=1.0, show_default=True, help="Ranking margin xi."
)
@click.option(
    "--weight",
    type=float,
    default=1.0,
    show_default=True,
    help="Weight lambda of the loss-prediction loss.",
)
@click.option(
    "--warm-start/--from-scratch",
    default=False,
    show_default=True,
    help="Start each cycle from the previous weights (paper's code).",
)
@click.option(
    "--warm-start-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs of each warm-started cycle after the first (default: --epochs).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Results folder.",
)
@click.option("--resume", is_flag=True, help="Continue the experiment in --out.")
@click.option("--overwrite", is_flag=True, help="Replace results in --out.")
@click.option(
    "--save-models", is_flag=True, help="Save each run's final model under OUT/models/."
)
@click.option(
    "--run-eagerly",
    is_flag=True,
    help="Run training steps eagerly: faster only for tiny smoke runs.",
)
@click.option(
    "--deterministic",
    is_flag=True,
    help="Enable TensorFlow op determinism (needed on GPUs for bit-identical "
    "resumes; CPU runs are deterministic already).",
)
def simulate_command(
    dataset,
    data_path,
    image_size,
    model,
    width,
    strategies,
    initial,
    budget,
    subset,
    cycles,
    epochs,
    trials,
    seed,
    batch_size,
    learning_rate,
    margin,
    weight,
    warm_start,
    warm_start_epochs,
    out_dir,
    resume,
    overwrite,
    save_models,
    run_eagerly,
    deterministic,
):
    """Run a pool-based active-learning experiment.

    Writes results.csv, summary.md and curves.png into --out; the state is
    saved after every cycle, so --resume continues an interrupted run with
    identical results.
    """
    from kerasll.active.experiment import run_experiment
    from kerasll.active.protocol import ExperimentConfig
    from kerasll.active.results import final_table
    from kerasll.active.training import TrainingConfig
    from kerasll.data import load_dataset

    try:
        training = TrainingConfig(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            margin=margin,
            weight=weight,
            run_eagerly=run_eagerly,
        )
        data = load_dataset(
            dataset, data=data_path, seed=seed, image_size=image_size or None
        )
        config = ExperimentConfig(
            dataset=data.name,
            model=model,
            width=width,
            strategies=strategies,
            initial_size=initial,
            budget=budget,
            subset_size=subset,
            cycles=cycles,
            trials=trials,
            seed=seed,
            warm_start=warm_start,
            warm_start_epochs=warm_start_epochs,
            training=training,
        )
    except (ValueError, *_library_errors()) as error:
        raise click.ClickException(str(error)) from error
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    try:
        result = run_experiment(
            config,
            data,
            out_dir,
            resume=resume,
            overwrite=overwrite,
            listener=ClickProgress(),
            save_models=save_models,
        )
    except _library_errors() as error:
        raise click.ClickException(str(error)) from error
    click.echo("")
    click.echo(final_table(result.paths["summary"].read_text(encoding="utf-8")))
    click.echo("")
    for name, path in result.paths.items():
        click.echo(f"{name:>8}: {path}")


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="demo-output",
    show_default=True,
    help="Folder for the demo's artifacts: new, empty, or an earlier demo's "
    "(whose outputs are replaced; other files stay).",
)
@click.option(
    "--cycles",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Training cycles (100 random labels, then 100 more per cycle).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Epochs per cycle.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_command(out_dir, cycles, epochs, seed):
    """Compare strategies on the embedded digits and show what they pick."""
    from kerasll.active.demo import run_demo

    try:
        run_demo(
            out_dir,
            cycles=cycles,
            epochs=epochs,
            seed=seed,
            echo=click.echo,
            listener=ClickProgress(),
        )
    except _library_errors() as error:
        raise click.ClickException(str(error)) from error
