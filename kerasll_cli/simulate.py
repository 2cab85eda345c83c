"""`kerasll simulate`: a thin click layer over `run_experiment`.

Library errors (bad protocol sizes, data, resume folders) become one line
and exit code 1 through `click.ClickException`. The whole protocol
(`ExperimentConfig`, `TrainingConfig`) is checked before any data loads (or
downloads), and the data before --out is touched. The options' defaults
are the config dataclasses' (`ExperimentConfig`, `TrainingConfig`) and the
tasks'.
"""

import dataclasses

import click

from kerasll.active.experiment import run_experiment
from kerasll.active.protocol import ExperimentConfig
from kerasll.active.summary import final_table
from kerasll.active.training import TrainingConfig
from kerasll.tasks import (
    CIFAR_ITEM_COUNTS,
    CIFAR_ITEM_SIZE,
    KINDS,
    load_task,
    task_class,
)
from kerasll_cli.options import config_default, library_errors, number, out_option
from kerasll_cli.progress import ClickProgress


def _experiment(name):
    return config_default(ExperimentConfig, name)


def _per_task(name):
    """A training setting's default per task, e.g. "200 (classification)"."""
    return ", ".join(
        f"{getattr(task_class(kind).training_config(), name)} ({kind})"
        for kind in KINDS
    )


@click.command()
@click.option(
    "--task",
    type=click.Choice(KINDS),
    default=_experiment("task_kind"),
    show_default=True,
    help="What the model does: classify images, detect objects (SSD), or find a "
    "figure's keypoints (hourglass).",
)
@click.option(
    "--dataset",
    default=_experiment("dataset"),
    show_default=True,
    help="Classification: digits, cifar10, a .npz file (x_train, y_train, "
    "x_test, y_test) or a folder of class sub-folders. Detection: cifar10 "
    "(scenes of pasted CIFAR-10 objects), a Pascal VOC folder (Annotations/, "
    "JPEGImages/) or a COCO .json file. Keypoints: cifar10 (stick figures on "
    "CIFAR-10 backgrounds) or a COCO person_keypoints .json file.",
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
    "they differ in size); detection: the scene size, keypoints: the figure "
    f"size (default {CIFAR_ITEM_SIZE[0]} {CIFAR_ITEM_SIZE[1]}).",
)
@click.option(
    "--scenes",
    type=int,
    nargs=2,
    default=None,
    metavar="TRAIN TEST",
    help="Detection or keypoints on cifar10: scenes (figures) in the pool and in "
    f"the test set (default {CIFAR_ITEM_COUNTS[0]} {CIFAR_ITEM_COUNTS[1]}).",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Detection or keypoints on a COCO .json: the image folder (default: "
    "the file's).",
)
@click.option(
    "--model",
    default=None,
    help="Built-in model: resnet18 (the paper's), small_cnn (CPU-sized) or "
    "mobilenet_v2 (depthwise, what devices run; --width is its alpha) for "
    "classification; ssd for detection; hourglass for keypoints. Default: the "
    "task's choice "
    "(classification: small_cnn below 32x32 images).",
)
@number("--width", _experiment("width"), "Channel multiplier of the model.",
        type=float)
@click.option(
    "--strategies",
    default=",".join(_experiment("strategies")),
    show_default=True,
    help="Comma-separated strategy specs: a name (learning_loss_safe, random, "
    "random_control, entropy, badge, coreset, ...) or SCORE+RULE "
    "(predicted_loss+stochastic, hybrid+balanced, ...), parameters after colons: "
    "learning_loss_safe:audit_share=0.2, predicted_loss+stochastic:temperature=2.",
)
@click.option(
    "--long-tail",
    "imbalance_ratio",
    type=float,
    default=None,
    metavar="RATIO",
    help="Classification: make the pool long-tailed (largest class RATIO times the "
    "smallest, exponential profile); the test set stays balanced.",
)
@click.option(
    "--duplicates",
    "copies",
    type=int,
    default=None,
    metavar="COPIES",
    help="Classification: every pool image present as COPIES near-duplicates "
    "(shifts, brightness, JPEG), as consecutive frames are.",
)
@number("--initial", _experiment("initial_size"),
        "Random labels before the first cycle.")
@number("--budget", _experiment("budget"), "K: labels added per cycle.")
@number("--subset", _experiment("subset_size"),
        "M: random unlabeled items scored per cycle.")
@number("--cycles", _experiment("cycles"),
        "Training cycles; cycle c trains on initial + c x budget labels.")
@number("--epochs", None, "Epochs per cycle (lr drop at 80%, head detached at 60% "
        "of them; detection and keypoints: over each item and its mirror image). "
        f"Default: {_per_task('epochs')}.")
@number("--trials", _experiment("trials"),
        "Repetitions; strategies share each trial's initial set and seeds.")
@number("--seed", _experiment("seed"), "The one seed every random choice derives "
        "from.")
@number("--batch-size", None, f"Items per training step. Default: "
        f"{_per_task('batch_size')}.")
@number("--learning-rate", None, f"SGD learning rate. Default: "
        f"{_per_task('learning_rate')}.", type=float)
@number("--margin", config_default(TrainingConfig, "margin"), "Ranking margin xi.",
        type=float)
@number("--weight", None, "Weight lambda of the loss-prediction loss. Default: "
        f"{_per_task('weight')}.", type=float)
@click.option(
    "--warm-start/--from-scratch",
    default=_experiment("warm_start"),
    show_default=True,
    help="Start each cycle from the previous weights (paper's code).",
)
@click.option(
    "--warm-start-epochs",
    type=int,
    default=_experiment("warm_start_epochs"),
    help="Epochs of each warm-started cycle after the first (default: --epochs).",
)
@out_option(required=True, help="Results folder.")
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
    imbalance_ratio,
    copies,
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
    try:
        task_type = task_class(task)
        if model is not None:
            task_type.check_model(model)
        training = task_type.training_config(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            margin=margin,
            weight=weight,
            run_eagerly=run_eagerly,
        )
        config = ExperimentConfig(
            task_kind=task,
            dataset=dataset,
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
        loader_options = {"images": images_dir} if images_dir else {}
        if scenes:
            loader_options.update(train_count=scenes[0], test_count=scenes[1])
        data = load_task(
            task, dataset, data=data_path, seed=seed, image_size=image_size or None,
            imbalance_ratio=imbalance_ratio, copies=copies, **loader_options,
        )
        config = dataclasses.replace(config, dataset=data.name)
    except (ValueError, *library_errors()) as error:
        raise click.ClickException(str(error)) from error
    model_note = None
    if model is None:
        chosen, reason = data.default_model()
        model_note = f"Model: {chosen}, {reason} (--model names another)"
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
            listener=ClickProgress(model_note=model_note),
            save_models=save_models,
        )
    except library_errors() as error:
        raise click.ClickException(str(error)) from error
    click.echo("")
    click.echo("\n".join(final_table(result.records)))
    click.echo("")
    for name, path in result.paths.items():
        click.echo(f"{name:>8}: {path}")
