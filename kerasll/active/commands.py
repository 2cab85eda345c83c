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
        self._metric = "accuracy"

    def experiment_started(self, config, task, out_dir):
        self._metric = task.metric_name
        self.echo(task.describe())
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
            f"labeled {record.labeled:>6}  {self._metric} {record.accuracy:.4f}  "
            f"rank accuracy {rank}  {timing}"
        )


def _number(name, default, help, type=int):
    """A numeric option. Its range is the library's to check: a bad value is
    the library's one-line error, which says what is expected."""
    return click.option(name, type=type, default=default,
                        show_default=default is not None, help=help)


def _out_option(**kwargs):
    """--out: the folder a command writes into (simulate and demo)."""
    return click.option("--out", "out_dir", type=click.Path(file_okay=False),
                        **kwargs)


_SEED_OPTION = _number("--seed", 0, "The one seed every random choice derives from.")


@click.command()
@click.option(
    "--task",
    type=click.Choice(["classification", "detection"]),
    default="classification",
    show_default=True,
    help="What the model does: classify images, or detect objects (SSD).",
)
@click.option(
    "--dataset",
    default="cifar10",
    show_default=True,
    help="Classification: digits, cifar10, a .npz file (x_train, y_train, "
    "x_test, y_test) or a folder of class sub-folders. Detection: cifar10 "
    "(scenes of pasted CIFAR-10 objects), a Pascal VOC folder (Annotations/, "
    "JPEGImages/) or a COCO .json file.",
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
    "they differ in size); detection: the scene size (default 64 64).",
)
@click.option(
    "--scenes",
    type=int,
    nargs=2,
    default=None,
    metavar="TRAIN TEST",
    help="Detection on cifar10: scenes in the pool and in the test set "
    "(default 5000 1000).",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Detection on a COCO .json: the image folder (default: the file's).",
)
@click.option(
    "--model",
    default=None,
    help="Built-in model: resnet18 (the paper's, default) or small_cnn "
    "(CPU-sized) for classification; ssd for detection.",
)
@_number("--width", 1.0, "Channel multiplier of the model.", type=float)
@click.option(
    "--strategies",
    default="learning_loss,entropy,coreset,random",
    show_default=True,
    help="Comma-separated strategy names.",
)
@_number("--initial", 1000, "Random labels before the first cycle.")
@_number("--budget", 1000, "K: labels added per cycle.")
@_number("--subset", 10000, "M: random unlabeled items scored per cycle.")
@_number("--cycles", 10, "Training cycles; cycle c trains on initial + c x budget "
         "labels.")
@_number("--epochs", None, "Epochs per cycle (lr drop at 80%, head detached at 60% "
         "of them). Default: 200 (classification), 20 over each scene and its "
         "mirror image (detection).")
@_number("--trials", 5, "Repetitions; strategies share each trial's initial set and "
         "seeds.")
@_SEED_OPTION
@_number("--batch-size", None, "Items per training step (default: 128, detection "
         "32).")
@_number("--learning-rate", None, "SGD learning rate (default: 0.1).", type=float)
@_number("--margin", 1.0, "Ranking margin xi.", type=float)
@_number("--weight", 1.0, "Weight lambda of the loss-prediction loss.", type=float)
@click.option(
    "--warm-start/--from-scratch",
    default=False,
    show_default=True,
    help="Start each cycle from the previous weights (paper's code).",
)
@click.option(
    "--warm-start-epochs",
    type=int,
    default=None,
    help="Epochs of each warm-started cycle after the first (default: --epochs).",
)
@_out_option(required=True, help="Results folder.")
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
    task,
    dataset,
    data_path,
    image_size,
    scenes,
    images_dir,
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
    from kerasll.tasks import load_task, task_class

    try:
        kind = task_class(task)
        if model is not None:
            kind.check_model(model)
        training = kind.training_config(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            margin=margin,
            weight=weight,
            run_eagerly=run_eagerly,
        )
        detection = {"images": images_dir} if images_dir else {}
        if scenes:
            detection.update(train_count=scenes[0], test_count=scenes[1])
        data = load_task(
            task, dataset, data=data_path, seed=seed, image_size=image_size or None,
            **detection,
        )
        config = ExperimentConfig(
            task=task,
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
        import keras

        if keras.backend.backend() != "tensorflow":
            raise click.ClickException(
                "Expected the TensorFlow backend for --deterministic (TensorFlow op "
                f"determinism). Received: KERAS_BACKEND={keras.backend.backend()!r}"
            )
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
@_out_option(
    default="demo-output",
    show_default=True,
    help="Folder for the demo's artifacts: new, empty, or an earlier demo's "
    "(whose outputs are replaced; other files stay).",
)
@_number("--cycles", 5, "Training cycles, at least 2 (100 random labels, then 100 "
         "more per cycle).")
@_number("--epochs", 40, "Epochs per cycle.")
@_SEED_OPTION
def demo_command(out_dir, cycles, epochs, seed):
    """Compare strategies on the embedded digits and show what they pick."""
    from kerasll.active.demo import demo_config, run_demo

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
    except _library_errors() as error:
        raise click.ClickException(str(error)) from error
