"""A detection or keypoint project's labeled items as a task of `kerasll.tasks`.

The annotations people gave (`kerasll.project.regions`, pixels of each image
file) become `Scenes` (boxes normalized to the image) or `Figures`
(keypoints in pixels of the model's input, whose pixel centers are at
integers, `kerasll.keypoints.figures`), the images decoded as the device
scorer decodes them. From there the task does the rest: the model, its loss
and taps, training targets, mirror augmentation, model views, export. What
differs between detection and keypoints is asked of the project's kind
(`kerasll.project.kinds`).

Held-out split: a labeled item whose content hash (SHA-256, as a number) is
divisible by `HOLD_OUT` is never trained on, so about one in `HOLD_OUT`
labeled items measures the task metric in `status`. The split is fixed by
content: an item never changes sides as the project grows.

Placed keypoints are labeled (flag 2): Label Studio's keypoints carry no
visibility, and a hidden joint placed where it should be is trained on as
MPII's and COCO's annotated joints are. PCKh needs the head segment
(head_top and neck) of an item; OKS AP takes the area of the box around its
placed keypoints as the person's scale.

The functions that build a task or load a model import TensorFlow (through
the task), which is why only `train`, `select` scoring here and `status`
of these projects start it.
"""

import dataclasses

import numpy as np

from kerasll.project import images, regions
from kerasll.project.errors import ProjectError
from kerasll.project.kinds import project_kind
from kerasll.project.schema import HEAD_SEGMENT

HOLD_OUT = 5
PCKH_THRESHOLD = 0.5


def held_out(sha256):
    """Whether an item (by its content hash) is in the held-out split."""
    return int(sha256, 16) % HOLD_OUT == 0


def labeled_split(manifest):
    """The labeled items, split into training and held-out.

    Returns:
        (train, held_out): lists of (item_id, absolute path, annotation dict).
    """
    hashes = dict(manifest.query("SELECT id, sha256 FROM items"))
    train, held = [], []
    for item_id, path, label in manifest.training_labels():
        row = (item_id, path, regions.decode(label))
        (held if held_out(hashes[item_id]) else train).append(row)
    return train, held


def _pixels(manifest, rows):
    project = manifest.config
    return images.decode_many([path for _, path, _ in rows], project.image_size,
                              project.color_mode)


def to_scenes(manifest, rows):
    """`Scenes` of detection annotations.

    Args:
        manifest: the open `Manifest` of a detection project.
        rows: (item_id, path, annotation) triples.

    Returns:
        A `kerasll.detection.Scenes` at the project's image size.
    """
    from kerasll.detection.scenes import Scenes

    classes = manifest.config.classes
    boxes, labels = [], []
    for _, _, annotation in rows:
        scale = np.array([annotation["width"], annotation["height"]] * 2,
                         dtype=np.float32)
        found = np.asarray(annotation["boxes"], dtype=np.float32).reshape(-1, 4)
        boxes.append(found / scale)
        labels.append(np.array([classes.index(name) for name in annotation["classes"]],
                               dtype=np.int64))
    return Scenes(_pixels(manifest, rows), tuple(boxes), tuple(labels), classes)


def skeleton(config):
    """The project's `kerasll.keypoints.Skeleton`."""
    from kerasll.keypoints.figures import Skeleton

    schema = config.keypoints
    return Skeleton(
        names=tuple(schema["names"]),
        edges=tuple(tuple(edge) for edge in schema["edges"]),
        flip_pairs=tuple(tuple(pair) for pair in schema["flip_pairs"]),
        sigmas=None if schema["sigmas"] is None else tuple(schema["sigmas"]),
    )


def to_figures(manifest, rows):
    """`Figures` of keypoint annotations.

    Args:
        manifest: the open `Manifest` of a keypoints project.
        rows: (item_id, path, annotation) triples.

    Returns:
        A `kerasll.keypoints.Figures` at the project's image size; head sizes
        are NaN where the head segment is not placed.
    """
    from kerasll.keypoints.figures import Figures

    config = manifest.config
    height, width = config.image_size
    count, names = len(rows), config.keypoints["names"]
    points = np.zeros((count, len(names), 2), dtype=np.float32)
    flags = np.zeros((count, len(names)), dtype=np.int8)
    for number, (_, _, annotation) in enumerate(rows):
        scale = (width / annotation["width"], height / annotation["height"])
        for joint, point in enumerate(annotation["keypoints"]):
            if point is None:
                continue
            # Continuous coordinates to pixel centers at integers, inside.
            points[number, joint] = [
                min(point[0] * scale[0] - 0.5, width - 0.5 - 1e-3),
                min(point[1] * scale[1] - 0.5, height - 0.5 - 1e-3),
            ]
            flags[number, joint] = 2
    head_sizes = np.full(count, np.nan, dtype=np.float32)
    if set(HEAD_SEGMENT) <= set(names):
        top, neck = (names.index(name) for name in HEAD_SEGMENT)
        placed = (flags[:, top] > 0) & (flags[:, neck] > 0)
        head_sizes[placed] = np.linalg.norm(points[placed, top] - points[placed, neck],
                                            axis=-1)
    areas = np.ones(count, dtype=np.float32)
    for number in range(count):
        placed = points[number][flags[number] > 0]
        if len(placed):
            extent = placed.max(axis=0) - placed.min(axis=0)
            areas[number] = max(1.0, float(extent[0] * extent[1]))
    return Figures(_pixels(manifest, rows), points, flags, head_sizes, areas,
                   skeleton(config))


def has_head(config, annotation):
    """Whether a keypoint annotation places the head segment."""
    index = {name: number for number, name in enumerate(config.keypoints["names"])}
    return all(annotation["keypoints"][index[name]] is not None
               for name in HEAD_SEGMENT)


def project_task(manifest, train, test):
    """The project's `kerasll.tasks` task over two lists of labeled rows.

    Keypoint projects whose schema has OKS sigmas get the OKS-scored task
    (which needs no head sizes), the others the PCKh-scored one, whose test
    split keeps the figures with a head segment (those of `train` when
    `test` has none); training is the same. `status` computes both metrics
    itself where it can.

    Args:
        manifest: the open `Manifest`.
        train, test: (item_id, path, annotation) rows (non-empty).

    Returns:
        A `DetectionTask` or `KeypointTask`.

    Raises:
        ProjectError: the task refuses the data (e.g. no figure with a head
            segment to score PCKh by).
    """
    kind = project_kind(manifest.config.task)
    try:
        return kind.build_task(manifest, train, test)
    except ValueError as error:
        raise ProjectError(
            f"Expected labeled items the {kind.name} task can use. Received: {error}"
        ) from error


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A trained detection or keypoint model, ready to save and export.

    Attributes:
        learner: the trained `LossLearner`.
        deployable: its device form (`Task.deployable`).
        verify_data: uint8 inputs to verify the export on.
        model_name: what was built.
        labeled: items trained on.
        counts: what the training set holds (objects per class, or placed
            keypoints per name).
    """

    learner: object
    deployable: object
    verify_data: np.ndarray
    model_name: str
    labeled: int
    counts: dict


def fit(manifest, config, model=None, width=1.0, seed=0):
    """Trains the task's model with a loss head on the training split.

    Args:
        manifest: the open `Manifest` of a detection or keypoints project.
        config: a `TrainingConfig`.
        model: the task's model name (default: the task's).
        width: channel multiplier.
        seed: seed of initialisation, epoch order and augmentation.

    Returns:
        A `Fitted`.

    Raises:
        ProjectError: fewer than 2 labeled training items, an unknown model,
            or data the task refuses.
    """
    from kerasll.active.training import train_model

    train, held = labeled_split(manifest)
    if len(train) < 2:
        raise ProjectError(
            f"Expected at least 2 labeled items to train on (besides the held-out "
            f"ones). Received {len(train)} (and {len(held)} held out); import labels "
            "first (`kerasll project labels`)"
        )
    task = project_task(manifest, train, held or train)
    model = model or task.default_model()[0]
    try:
        task.check_model(model)
    except ValueError as error:
        raise ProjectError(str(error)) from error
    x, y = task.training_arrays(np.arange(len(train)))
    learner = train_model(
        lambda: task.build_model(model, width, config.weight_decay), x, y, config,
        with_head=True, augmentation=task.augmentation, seed=seed, loss=task.loss(),
        metrics=task.compile_metrics(), taps=task.taps,
    )
    return Fitted(learner, task.deployable(learner), task.train.images[:256],
                  f"{model} (width {width:g})", len(train),
                  project_kind(manifest.config.task).counts(
                      manifest.config, [row[2] for row in train]))


def load_learner(folder):
    """The `LossLearner` a `train` saved in a model folder."""
    import keras

    from kerasll import LossLearner  # noqa: F401  registers it for load_model
    from kerasll.project.model_versions import LEARNER_FILE

    return keras.models.load_model(folder / LEARNER_FILE, compile=False)


def true_losses(manifest, folder, rows):
    """The task loss of labeled items under a trained model.

    Args:
        manifest: the open `Manifest`.
        folder: the model's folder (`models/<version>/`).
        rows: (item_id, path, annotation) rows.

    Returns:
        (len(rows),) float64 losses (MultiBox loss, or heatmap MSE).
    """
    task = project_task(manifest, rows, rows)
    view = task.view(load_learner(folder), "train", 64)
    return np.asarray(view.true_loss(np.arange(len(rows))), dtype=np.float64)
