"""`train`: a `LossLearner` on the labeled items, saved and exported.

The model is trained with the simulator's `train_model` (same schedule, same
seeding): a classifier, or the task's detector or pose model
(`kerasll.project.annotated`). It is saved as `learner.keras` and its device
form exported with `kerasll.export.to_onnx` (uint8 pixels in, class names
and resize in its metadata) into `models/<version>/`. The version is the
first 12 hex digits of the ONNX file's SHA-256: devices score with that
file, and picks are checked against it.

The files are written in a staging folder `models/.tmp-<id>/` while the run
holds the lock file `models/.tmp-<id>.lock`; a run killed meanwhile leaves
both, and the next `train` removes a staging folder whose lock nobody holds
(a live run's is kept; a folder without a lock file is never touched).
Folders and files follow the umask, as every kerasll output.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from numbers import Integral
from pathlib import Path

import filelock
from kerasll_serving.validation import Interval, validate_arguments

from kerasll.project import images
from kerasll.project.errors import ProjectError
from kerasll.project.kinds import project_kind
from kerasll.project.manifest import now

MODELS_FOLDER = "models"
STAGING_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
MODEL_FILE = "model.onnx"
LEARNER_FILE = "learner.keras"
VERSION_DIGITS = 12
_VERIFY_COUNT = 256


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train_project` produced.

    Attributes:
        version: the model version.
        folder: `models/<version>/` holding `learner.keras` and `model.onnx`.
        labeled: items it was trained on.
        class_counts: labeled items per class.
    """

    version: str
    folder: Path
    labeled: int
    class_counts: dict

    def summary(self):
        """One line for the CLI."""
        return (
            f"Trained model {self.version} on {self.labeled} labeled item(s); "
            f"devices score with {self.folder / MODEL_FILE}"
        )


def load_backbone(path, input_shape, num_classes):
    """Loads a user's `.keras` classifier to wrap in a `LossLearner`.

    Args:
        path: the `.keras` file.
        input_shape: the project's (height, width, channels).
        num_classes: the project's class count.

    Returns:
        A function returning the loaded model (for `train_model`).

    Raises:
        ProjectError: unreadable file, or a model whose input, output or
            final activation does not fit the project.
    """
    import keras

    from kerasll.export.metadata import final_activation

    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise ProjectError(
            f"Expected a loadable .keras model. Received {str(path)!r}: {first}"
        ) from error
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    expected_in = (None, *input_shape)
    expected_out = (None, num_classes)
    if (
        not inputs
        or len(inputs) != 1
        or len(outputs) != 1
        or tuple(inputs[0].shape) != expected_in
        or tuple(outputs[0].shape) != expected_out
    ):
        received = (
            [tuple(t.shape) for t in inputs or []],
            [tuple(t.shape) for t in outputs or []],
        )
        raise ProjectError(
            f"Expected a functional model with one input {expected_in} and one "
            f"logits output {expected_out}. Received inputs/outputs {received} "
            f"in {str(path)!r}"
        )
    if final_activation(outputs[0]) in ("softmax", "sigmoid"):
        raise ProjectError(
            f"Expected a backbone producing logits (no final softmax). Received "
            f"{str(path)!r}, whose output ends in {final_activation(outputs[0])}"
        )
    return lambda: model


HEAD_TRAINING = ("decoupled", "joint")
# A project always trains a LossLearner, whose loss head learns from pairs of
# items within a batch (`kerasll.losses`): a batch of 1 has no pair, so the
# head that learning_loss_safe selects with would never train.
TRAINING_CONSTRAINTS = {"batch_size": [Interval(Integral, 2, None, closed="left")]}


def training_config(task, head="decoupled", **overrides):
    """The `TrainingConfig` of a project's `train`.

    Args:
        task: the project's task (one of `kerasll.tasks.KINDS`).
        head: "decoupled" (the head trains on stopped-gradient features from
            the first step, so the model is exactly plain training's) or
            "joint" (the paper: the head's gradient reaches the model until
            60% of the epochs).
        **overrides: `TrainingConfig` arguments; None keeps the default
            (the kind's `training_defaults`, `kerasll.project.kinds`).

    Returns:
        A `kerasll.active.training.TrainingConfig`.

    Raises:
        ProjectError: an unknown head training, a bad value, or a batch size
            below 2 (`TRAINING_CONSTRAINTS`).
    """
    from kerasll.tasks import task_class

    if head not in HEAD_TRAINING:
        raise ProjectError(
            f"Expected head training in {list(HEAD_TRAINING)}. Received: {head!r}"
        )
    overrides = {**project_kind(task).training_defaults(),
                 **{k: v for k, v in overrides.items() if v is not None}}
    if head == "decoupled":
        overrides["detach_fraction"] = 0.0
    try:
        config = task_class(task).training_config(**overrides)
    except ValueError as error:
        raise ProjectError(str(error)) from error
    try:
        validate_arguments(TRAINING_CONSTRAINTS, {"batch_size": config.batch_size},
                           ProjectError)
    except ProjectError as error:
        raise ProjectError(
            f"{error} (the loss head learns from pairs of items within a batch)"
        ) from None
    return config


def train_project(manifest, config, *, model=None, width=1.0, backbone=None,
                  flip=False, seed=0):
    """Trains, saves and exports a model on every labeled item.

    A classification project trains a built-in classifier (or the user's
    backbone) on all its labeled items; a detection or keypoint project the
    task's model (`kerasll.project.annotated.fit`) on the labeled items
    outside its held-out split.

    The files go to a staging folder (see `staging_folder`), are exported
    and verified, then the folder is renamed to `models/<version>/`, and
    only then is the version recorded (one transaction). A crash leaves the
    manifest as it was; the next `train` first removes what a dead run left
    (`remove_dead_staging`).

    Args:
        manifest: the open `Manifest`.
        config: a `kerasll.active.training.TrainingConfig` (`training_config`).
        model: model name: a built-in classifier (`kerasll.models.MODELS`,
            default small_cnn, ignored with `backbone`), or the task's
            (detection: ssd, keypoints: hourglass).
        width: channel multiplier of the built-in model.
        backbone: optional path of the user's `.keras` classifier (logits);
            classification only.
        flip: classification: also flip images left-right when augmenting
            (images are always padded by 1/8 of their height and randomly
            cropped back). Off by default: a mirrored digit or letter is
            another class. Detection and keypoints always train on mirror
            images too (their tasks' augmentation).
        seed: seed of initialisation, epoch order and augmentation.

    Returns:
        A `TrainResult`.

    Raises:
        ProjectError: too few labeled items, a backbone that does not fit,
            or a backbone or flip for a detection or keypoint project.
    """
    from kerasll.export import to_onnx

    project = manifest.config
    models = manifest.root / MODELS_FOLDER
    if models.is_dir():
        remove_dead_staging(models)
    kind = project_kind(project.task)
    fitted, augmentation = kind.fit(manifest, config, model, width, backbone, flip,
                                    seed)
    models.mkdir(exist_ok=True)
    with staging_folder(models) as staging:
        fitted.learner.save(staging / LEARNER_FILE)
        to_onnx(fitted.deployable, staging / MODEL_FILE, raw_input_dtype="uint8",
                verify_data=fitted.verify_data[:_VERIFY_COUNT],
                class_names=kind.class_names(project),
                resize=True)
        version = _file_hash(staging / MODEL_FILE)[:VERSION_DIGITS]
        record = {"version": version, "task": project.task,
                  "backbone": fitted.model_name, "labeled": fitted.labeled,
                  "class_counts": fitted.counts, "seed": seed,
                  "training": config.to_dict(), "augmentation": augmentation}
        (staging / "training.json").write_text(json.dumps(record, indent=2) + "\n")
        folder = models / version
        if not folder.exists():
            os.replace(staging, folder)
    with manifest.transaction() as connection:
        connection.execute(
            "INSERT OR IGNORE INTO models "
            "(version, folder, backbone, epochs, labeled, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (version, Path(MODELS_FOLDER, version).as_posix(), fitted.model_name,
             config.epochs, fitted.labeled, now()),
        )
        manifest.set_current_model(connection, version)
    return TrainResult(version, folder, fitted.labeled, fitted.counts)


@dataclasses.dataclass(frozen=True)
class _Classifier:
    """A trained classifier, as `kerasll.project.annotated.Fitted` is a
    trained detector or pose model (plus its augmentation)."""

    learner: object
    deployable: object
    verify_data: object
    model_name: str
    labeled: int
    counts: dict
    augmentation: object


def fit_classifier(manifest, config, model, width, backbone, flip, seed):
    """Trains a built-in classifier (or the user's backbone) on every
    labeled item of a classification project.

    Args:
        manifest, config, width, backbone, flip, seed: see `train_project`.
        model: a built-in model name (ignored with `backbone`).

    Returns:
        A trained classifier (`learner`, `deployable`, `verify_data`,
        `model_name`, `labeled`, `counts`, `augmentation`).

    Raises:
        ProjectError: an unknown model, fewer than 2 labeled items, or a
            backbone that does not fit.
    """
    from kerasll.active.training import train_model
    from kerasll.augment import Augmentation
    from kerasll.models import MODELS, build_model

    if backbone is None and model not in MODELS:
        raise ProjectError(
            f"Expected a classification model in {sorted(MODELS)}. Received: "
            f"model={model!r}"
        )
    project = manifest.config
    labeled = manifest.training_labels()
    if len(labeled) < 2:
        raise ProjectError(
            "Expected at least 2 labeled items to train on. Received "
            f"{len(labeled)}; import labels first (`kerasll project labels`)"
        )
    x = images.decode_many([path for _, path, _ in labeled], project.image_size,
                           project.color_mode)
    index = {name: position for position, name in enumerate(project.classes)}
    y = [index[label] for _, _, label in labeled]
    input_shape = x.shape[1:]
    if backbone is not None:
        build = load_backbone(backbone, input_shape, len(project.classes))
        name = os.path.basename(os.fspath(backbone))
    else:
        def build():
            return build_model(model, input_shape, len(project.classes),
                               width=width, weight_decay=config.weight_decay)
        name = f"{model} (width {width:g})"
    augmentation = Augmentation(pad=max(1, input_shape[0] // 8), flip=flip)
    learner = train_model(build, x, y, config, with_head=True,
                          augmentation=augmentation, seed=seed)
    counts = {name: y.count(position) for name, position in index.items()}
    return _Classifier(learner, learner, x, name, len(labeled), counts, augmentation)


@contextlib.contextmanager
def staging_folder(models):
    """A new staging folder in `models`, held by this run's lock file.

    Args:
        models: the project's models folder.

    Yields:
        The folder `models/.tmp-<id>/` (mode from the umask). It is removed
        at the end unless the block renamed it; the lock file too.
    """
    name = f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging, lock = models / name, models / f"{name}{LOCK_SUFFIX}"
    try:
        with filelock.FileLock(lock):
            staging.mkdir()
            try:
                yield staging
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.unlink(missing_ok=True)


def remove_dead_staging(models):
    """Removes the staging folders of runs that died before finishing.

    A staging folder is dead when its lock file exists and no process holds
    it (the lock dies with its process). A live run's folder, and a folder
    without a lock file, are left alone.

    Args:
        models: the project's models folder.

    Returns:
        The staging folders removed.
    """
    removed = []
    for lock in sorted(models.glob(f"{STAGING_PREFIX}*{LOCK_SUFFIX}")):
        staging = lock.with_name(lock.name[: -len(LOCK_SUFFIX)])
        try:
            with filelock.FileLock(lock, timeout=0):
                if staging.is_dir():
                    shutil.rmtree(staging)
                    removed.append(staging)
                lock.unlink(missing_ok=True)
        except filelock.Timeout:  # Its run is alive.
            continue
    return removed


def _file_hash(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
