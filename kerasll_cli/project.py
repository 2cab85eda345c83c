"""`kerasll project ...`: the labeling loop as a click group.

A thin layer: each command opens the manifest, calls one library function
and prints its summary. Every error raised on purpose (a `ProjectError`, a
serving or export error) becomes one line and exit code 1; the manifest is
left as it was. Only `train` (and its `--help`, which reads the tasks'
defaults), `select` scoring here (through Keras model views) and `status`
with its audit of a detection or keypoint project (its Keras models) start
TensorFlow (`kerasll_cli.notices`); the others never import it
(tests/test_project_imports.py).
"""

import inspect

import click

from kerasll.project.annotation_files import create_project
from kerasll.project.model_versions import HEAD_TRAINING, train_project, training_config
from kerasll.project.selection import (
    DEFAULT_STRATEGY,
    select_random,
    select_with_strategy,
)
from kerasll.tasks import KINDS, SMALL_CLASSIFIER
from kerasll_cli.notices import start_tensorflow

_DIR = click.Path(file_okay=False, path_type=str)
_PROJECT = click.Path(exists=True, file_okay=False, path_type=str)


def _errors():
    """The typed errors shown to the user as one line (imported lazily)."""
    from kerasll_serving.errors import ServingError

    from kerasll.project.errors import ProjectError

    return (ProjectError, ServingError)


def _default(function, name):
    """A library function's default for one of its arguments (the one place
    it is written)."""
    return inspect.signature(function).parameters[name].default


def _fail(error):
    return click.ClickException(" ".join(str(error).split()))


class _TaskDefault(click.Option):
    """An option whose help ends with each task kind's default, read from
    `kerasll.project.kinds` (the tasks' `training_defaults`) only when the
    help is shown, since the tasks import Keras.

    Args:
        *args, **kwargs: `click.Option`'s.
        key: the `TrainingConfig` argument.
    """

    def __init__(self, *args, key, **kwargs):
        super().__init__(*args, **kwargs)
        self.key, self.lead = key, self.help

    def get_help_record(self, ctx):
        start_tensorflow()
        from kerasll.project.kinds import PROJECT_KINDS

        values = {}
        for name, kind in PROJECT_KINDS.items():
            value = kind.training_defaults()[self.key]
            values.setdefault(f"{value:g}", []).append(name)
        defaults = ", ".join(f"{value} ({', '.join(names)})"
                             for value, names in values.items())
        self.help = f"{self.lead} Default: {defaults}."
        return super().get_help_record(ctx)


class _TaskModels(click.Option):
    """--model: its help ends with each task kind's built-in models
    (`Task.models`), read only when the help is shown, since the tasks import
    Keras; the library refuses a model the project's task does not build."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lead = self.help

    def get_help_record(self, ctx):
        start_tensorflow()
        from kerasll.tasks import task_class

        models = "; ".join(f"{', '.join(task_class(kind).models)} ({kind})"
                           for kind in KINDS)
        self.help = f"{self.lead} Models: {models}."
        return super().get_help_record(ctx)


def _open(directory):
    from kerasll.project.manifest import Manifest

    return Manifest.open(directory, timeout=click.get_current_context().obj["wait"])


@click.group(name="project")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0,
              show_default=True,
              help="Seconds a change waits for another command's write lock "
                   "before saying the project is busy.")
@click.pass_context
def project_group(ctx, wait):
    """The labeling loop: a project folder, labels from people, device picks.

    \b
    init, add, select --random (first round), tasks, labels, then per round:
    train, select (here, or --picks from devices), tasks, labels; status.
    """
    ctx.ensure_object(dict)["wait"] = wait


@project_group.command("init")
@click.argument("directory", type=_DIR)
@click.option("--task", type=click.Choice(KINDS),
              default=_default(create_project, "task"), show_default=True,
              help="What people label: a class per image, boxes, or keypoints.")
@click.option("--classes", default=None,
              help="Class names, comma-separated (detection: the object classes; "
                   "keypoints: the figure's one class, default person).")
@click.option("--keypoints", "schema", default=None, metavar="figure|FILE",
              help="Keypoints only: the schema: 'figure' (the stick figures' 14 "
                   "keypoints, head_top to ankles) or a COCO keypoint JSON (its "
                   "first category's keypoints and skeleton). Default: figure.")
@click.option("--image-size", type=click.IntRange(min=1), nargs=2, default=None,
              help="HEIGHT WIDTH to resize images to (default: the first image's; "
                   "detection and keypoints: 64 64).")
@click.option("--color", type=click.Choice(["grayscale", "rgb"]), default=None,
              help="Color mode (default: grayscale when all first images are).")
def init_command(directory, task, classes, schema, image_size, color):
    """Create a project in DIRECTORY with its manifest and labeling config."""
    from kerasll.project.kinds import project_kind
    from kerasll.project.schema import FIGURE

    kind = project_kind(task)
    classes = classes or kind.default_classes
    if kind.keypoint_schema:
        schema = schema or FIGURE
    if classes is None or (schema is not None and not kind.keypoint_schema):
        raise click.UsageError(
            "Expected --classes (for classification and detection), and "
            f"--keypoints only with --task keypoints. Received --task {task}, "
            f"--classes {classes!r}, --keypoints {schema!r}"
        )
    try:
        manifest, config = create_project(directory, classes, image_size, color,
                                          task, schema)
        with manifest:
            what = f"{len(kind.label_names(manifest.config))} {kind.label_noun}"
            click.echo(
                f"Created {task} project {manifest.config.project_id} in "
                f"{directory} ({what}); Label Studio config: {config}"
            )
    except _errors() as error:
        raise _fail(error) from None


@project_group.command("add")
@click.argument("directory", type=_PROJECT)
@click.argument("source", type=click.Path(exists=True, path_type=str))
@click.option("--device", default=None,
              help="Device the items come from (default: the source's name).")
def add_command(directory, source, device):
    """Add the images of SOURCE (a folder, a list file or an .npy array)."""
    from kerasll.project.registration import add_source

    try:
        with _open(directory) as manifest:
            click.echo(add_source(manifest, source, device).summary())
    except _errors() as error:
        raise _fail(error) from None


@project_group.command("train")
@click.argument("directory", type=_PROJECT)
@click.option("--model", default=None, cls=_TaskModels,
              help="Built-in model of the project's task (classification "
                   f"default: {SMALL_CLASSIFIER}).")
@click.option("--width", type=float, default=_default(train_project, "width"),
              show_default=True, help="Channel multiplier of the built-in model.")
@click.option("--backbone", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Your .keras classifier (logits) instead.")
@click.option("--epochs", type=int, default=None, cls=_TaskDefault,
              key="epochs", help="Epochs.")
@click.option("--batch-size", type=int, default=None,
              cls=_TaskDefault, key="batch_size", help="Items per SGD step.")
@click.option("--learning-rate", type=float,
              default=None, cls=_TaskDefault, key="learning_rate",
              help="SGD rate (keypoints: large, the heatmap loss is small).")
@click.option("--flip/--no-flip", default=False, show_default=True,
              help="Classification: also flip images left-right when "
                   "augmenting (detection and keypoints always add mirror "
                   "images).")
@click.option("--head", type=click.Choice(HEAD_TRAINING),
              default=_default(training_config, "head"), show_default=True,
              help="How the loss head trains: decoupled (on stopped-gradient "
                   "features from the first step, so the model is exactly "
                   "plain training's; what learning_loss_safe assumes) or joint "
                   "(the paper: the head's gradient reaches the model until "
                   "60% of the epochs).")
@click.option("--seed", type=int, default=_default(train_project, "seed"),
              show_default=True)
def train_command(directory, model, width, backbone, epochs, batch_size,
                  learning_rate, flip, head, seed):
    """Train a LossLearner on the labeled items; save, export, version it.

    Detection and keypoint projects train their task's model on the labeled
    items outside the held-out split (about one in five, fixed by content).
    """
    start_tensorflow()
    from kerasll_serving.validation import validate_arguments

    from kerasll.export.errors import ExportError
    from kerasll.models import WIDTH  # Imports Keras: read after TensorFlow starts.
    from kerasll.project.errors import ProjectError

    try:
        # The channel multiplier's one declaration (build_model's).
        validate_arguments({"width": WIDTH}, {"width": width}, error=ProjectError)
        with _open(directory) as manifest:
            config = training_config(manifest.config.task, head, epochs=epochs,
                                     batch_size=batch_size,
                                     learning_rate=learning_rate)
            result = train_project(manifest, config, model=model, width=width,
                                   backbone=backbone, flip=flip, seed=seed)
        click.echo(result.summary())
    except (*_errors(), ExportError) as error:
        raise _fail(error) from None


@project_group.command("select")
@click.argument("directory", type=_PROJECT)
@click.argument("pick_files", nargs=-1, type=str)
@click.option("--k", type=click.IntRange(min=1), required=True,
              help="How many items to pick.")
@click.option("--picks", "merge", is_flag=True,
              help="Merge the device picks files that follow (FILE or "
                   "DEVICE=FILE, from kerasll-score) instead of scoring here.")
@click.option("--random", "at_random", is_flag=True,
              help="Pick at random (the first round, before any model).")
@click.option("--strategy", "spec", default=None,
              help="The simulator's strategy spec (kerasll simulate --strategies). "
                   f"Default: {DEFAULT_STRATEGY} (the head earns its share from the "
                   "audit of earlier rounds; random until it has); learning_loss (the "
                   "paper's top-K), entropy, learning_loss_balanced, "
                   "predicted_loss+stochastic:temperature=2, ...")
@click.option("--seed", type=int, default=_default(select_with_strategy, "seed"),
              show_default=True,
              help="Seed of the round's random numbers (--random, audit slices).")
def select_command(directory, pick_files, k, merge, at_random, spec, seed):
    """Pick K items as a new round, by a strategy.

    Scores the pool here with the current model, or merges the picks and
    audit samples devices made with kerasll-score:
    select DIR --k N --picks dev1.csv dev2.csv
    """
    from kerasll.project.selection import merge_picks

    if bool(pick_files) != merge or (merge and at_random):
        raise click.UsageError(
            "Expected picks files after --picks (and not with --random), and none "
            f"without it. Received --picks={merge}, --random={at_random}, "
            f"files={list(pick_files)}"
        )
    if not (merge or at_random):  # Scoring here reads Keras model views.
        start_tensorflow()
    try:
        with _open(directory) as manifest:
            if merge:
                result = merge_picks(manifest, k, pick_files,
                                     spec or DEFAULT_STRATEGY)
            elif at_random:
                result = select_random(manifest, k, seed)
            else:
                result = select_with_strategy(manifest, k, spec or DEFAULT_STRATEGY,
                                              seed)
        click.echo(result.summary())
    except _errors() as error:
        raise _fail(error) from None


@project_group.command("tasks")
@click.argument("directory", type=_PROJECT)
@click.option("--format", "format_name", type=click.Choice(["label-studio", "csv"]),
              default="label-studio", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="File to write (must not exist); default "
                   "DIRECTORY/tasks/round-N.json or .csv.")
@click.option("--round", "round_id", type=click.IntRange(min=1), default=None,
              help="Round to export (default: the newest).")
@click.option("--url-prefix", default="/data/local-files/?d=", show_default=True,
              help="Prefix of image URLs.")
@click.option("--document-root", default="/", show_default=True,
              help="Image URLs are paths relative to this folder "
                   "(Label Studio: LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT).")
@click.option("--label-studio", "label_studio_url", default=None, metavar="URL",
              help="Also set up this Label Studio server's project --ls-project: "
                   "connect the images' folders (Local Storage) and import the "
                   "tasks it does not have.")
@click.option("--token", envvar="LABEL_STUDIO_TOKEN", default=None,
              help="Label Studio legacy API token (or LABEL_STUDIO_TOKEN).")
@click.option("--ls-project", type=click.IntRange(min=1), default=None,
              help="Label Studio project id (in its URL: /projects/ID).")
def tasks_command(directory, format_name, out, round_id, url_prefix, document_root,
                  label_studio_url, token, ls_project):
    """Write a round's picks as an annotation file with the model's predictions.

    The command is named after what Label Studio calls the items it imports
    (tasks); --format csv writes the same rows with an empty label column.
    """
    from kerasll.project.annotation_files import (
        publish_round,
        write_annotation_file,
    )

    server = (label_studio_url, token, ls_project)
    if any(server) and (not all(server) or format_name != "label-studio"):
        raise click.UsageError(
            "Expected --label-studio, --token and --ls-project together, with "
            f"--format label-studio. Received --label-studio={label_studio_url!r}, "
            f"--token {'given' if token else 'missing'}, --ls-project={ls_project}, "
            f"--format={format_name}"
        )
    urls = {"url_prefix": url_prefix, "document_root": document_root}
    try:
        with _open(directory) as manifest:
            published = label_studio_url and publish_round(
                manifest, label_studio_url, token, ls_project, round_id, **urls)
            path, count = write_annotation_file(
                manifest, format_name, out, round_id, **urls)
        click.echo(f"Wrote {count} task(s) to {path}")
        if published:
            click.echo(published.summary())
    except _errors() as error:
        raise _fail(error) from None


@project_group.command("labels")
@click.argument("directory", type=_PROJECT)
@click.argument("labels_file", type=click.Path(exists=True))
def labels_command(directory, labels_file):
    """Import LABELS_FILE: a Label Studio JSON export, a CSV, or a folder.

    \b
    The CSV is a filled-in `tasks --format csv` file (project,item,label), or
    labels you already have (path,label). A folder holds one sub-folder of
    images per class. Images must be in the project (`add` them first); they
    are matched by path, else by content.
    """
    from kerasll.project.labels import import_labels

    try:
        with _open(directory) as manifest:
            click.echo(import_labels(manifest, labels_file).summary())
    except _errors() as error:
        raise _fail(error) from None


@project_group.command("status")
@click.argument("directory", type=_PROJECT)
@click.option("--no-audit", is_flag=True, help="Skip scoring labeled picks.")
def status_command(directory, no_audit):
    """Items, labels, rounds, class histogram and the head's ranking audit.

    Detection and keypoint projects: also the current model's mAP@0.5, or
    PCKh@0.5 and OKS AP, on the labeled held-out items.
    """
    from kerasll.project.kinds import project_kind
    from kerasll.project.status import project_status

    try:
        with _open(directory) as manifest:
            if project_kind(manifest.config.task).keras_audit and not no_audit:
                start_tensorflow()  # Their models are read through Keras.
            click.echo("\n".join(project_status(manifest, not no_audit).lines()))
    except _errors() as error:
        raise _fail(error) from None
