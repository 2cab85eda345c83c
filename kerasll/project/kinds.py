"""What a project's task decides, in one object per task kind.

The project's modules ask `project_kind(config.task)` instead of testing the
task's name: the Label Studio labeling config and how predictions and
annotations pass through it, `train` (its schedule and model), the ranking
audit's true loss, the held-out metric, the pool view `select` scores, and
the strategies a kind's model cannot serve. The interface is
`ProjectKind`, owned here by its consumer; `Classification`, `Detection`
and `Keypoints` implement it.

Everything here imports only NumPy at import time; a method that needs a
model imports Keras (through the tasks) when it runs.
"""

import abc

import numpy as np

from kerasll.project import regions
from kerasll.project.errors import ManifestError, ProjectError
from kerasll.project.picks import number
from kerasll.project.schema import DEFAULT_IMAGE_SIZE
from kerasll.tasks.metrics import MAP50, OKS_AP, PCKH

# The Label Studio names every labeling config uses: the image and the
# question its annotations answer.
FROM_NAME = "label"
TO_NAME = "image"


class ProjectKind(abc.ABC):
    """The interface: what the labeling loop asks a task kind.

    Attributes:
        name: the task kind (one of `kerasll.tasks.KINDS`; the keys of
            `PROJECT_KINDS`).
        class_counts: the fewest and most class names (None: no bound).
        classes_wanted, classes_example: the words and the `--classes`
            example of the message refusing other class names.
        default_classes: `init`'s classes when none are given (or None).
        keypoint_schema: whether the project has a keypoint schema.
        label_noun: what `label_names` are, for messages.
        tag, child, options: the Label Studio control tag, its labels' tag
            and the control's extra attributes.
        one_class_per_image: whether a label is a class name, so that a
            CSV column or a folder per class can hold labels.
        keras_audit: whether the ranking audit and the held-out metric read
            the saved Keras model (so `status` starts TensorFlow).
    """

    name = None
    class_counts = (1, None)
    classes_wanted = classes_example = default_classes = None
    keypoint_schema = False
    label_noun = "classes"
    tag = child = options = None
    one_class_per_image = False
    keras_audit = True

    def label_names(self, config):
        """The labels of the labeling config: the classes."""
        return config.classes

    def init_settings(self, image_size, keypoints):
        """Settings `init` fixes: (image size or None, keypoint schema)."""
        size = DEFAULT_IMAGE_SIZE if image_size is None else tuple(image_size)
        return size, keypoints

    def training_defaults(self):
        """`TrainingConfig` arguments of `train` that differ from the paper's."""
        from kerasll.tasks import task_class

        return dict(task_class(self.name).training_defaults)

    @abc.abstractmethod
    def prediction_results(self, row, config):
        """The Label Studio results of a pick's stored prediction.

        Args:
            row: the pick, an `AnnotationFileRow`.
            config: the `ProjectConfig`.
        """

    @abc.abstractmethod
    def read_annotation(self, manifest, item_id, result, where):
        """An annotation's result as the stored label text, or None (no label).

        Raises:
            LabelsError: a malformed region, or one outside its image.
        """

    def check_labels(self, manifest, records, source):
        """Raises `LabelsError` for labels the project cannot hold."""

    @abc.abstractmethod
    def label_counts(self, manifest, labels):
        """{name: count} over (item_id, path, label text) rows, in order."""

    @abc.abstractmethod
    def fit(self, manifest, config, model, width, backbone, flip, seed):
        """Trains the kind's model: (a fitted model, its augmentation record).

        The fitted model has `learner`, `deployable`, `verify_data`,
        `model_name`, `labeled` and `counts`.
        """

    def class_names(self, config):
        """The class names the exported model's metadata carries (or None)."""
        return config.classes

    @abc.abstractmethod
    def audit_picks(self, manifest, folder, rows):
        """True losses of labeled items under a round's model.

        Args:
            manifest: the open `Manifest`.
            folder: the model's folder, relative to the project.
            rows: (item_id, absolute path, label text) rows.

        Returns:
            ((len(rows),) float64 true losses, error rate or None).
        """

    def held_out(self, manifest, audit):
        """(held-out labeled items, {metric: value}), or (None, None) for a
        kind without a held-out split."""
        return None, None

    @abc.abstractmethod
    def pool_view(self, manifest, model_path, paths):
        """The model view `select` scores the pool through."""

    @abc.abstractmethod
    def predictions(self, manifest, view, indices):
        """(predictions as stored, confidences) of picked view positions."""

    def device_prediction(self, row):
        """(prediction, confidence) of a device picks row to store."""
        return None, None

    def refuse_strategy(self, name, error):
        """The `ProjectError` for a strategy reading what the model lacks."""
        return ProjectError(
            f"Expected a strategy the {self.name} model can serve. Received "
            f"{name!r}: {error}"
        )


class Classification(ProjectKind):
    """A class per image, scored here and on devices by the exported model."""

    name = "classification"
    class_counts = (2, None)
    classes_wanted = "at least two distinct, non-empty class names"
    classes_example = "cat,dog"
    tag, child = "Choices", "Choice"
    options = ' choice="single" showInline="true"'
    one_class_per_image = True
    keras_audit = False

    def init_settings(self, image_size, keypoints):
        return image_size, keypoints

    def training_defaults(self):
        # A small model on a few hundred images: the paper's SGD, 30 epochs.
        return {"epochs": 30, "batch_size": 64, "learning_rate": 0.05}

    def prediction_results(self, row, config):
        return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                 "score": row.confidence, "value": {"choices": [row.prediction]}}]

    def read_annotation(self, manifest, item_id, result, where):
        for region in result:
            if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
                choices = (region.get("value") or {}).get("choices") or []
                if choices:
                    return str(choices[0])
        return None

    def check_labels(self, manifest, records, source):
        from kerasll.project.labels import check_classes

        check_classes(manifest, {record.label for record in records}, source)

    def label_counts(self, manifest, labels):
        histogram = {name: 0 for name in manifest.config.classes}
        for _, _, label in labels:
            histogram[label] += 1
        return histogram

    def fit(self, manifest, config, model, width, backbone, flip, seed):
        import dataclasses

        from kerasll.project.model_versions import fit_classifier
        from kerasll.tasks import SMALL_CLASSIFIER

        fitted = fit_classifier(manifest, config, model or SMALL_CLASSIFIER, width,
                                backbone, flip, seed)
        return fitted, dataclasses.asdict(fitted.augmentation)

    def audit_picks(self, manifest, folder, rows):
        from kerasll.project.audits import class_probabilities
        from kerasll.project.model_versions import MODEL_FILE

        classes = manifest.config.classes
        probabilities = class_probabilities(manifest.root / folder / MODEL_FILE,
                                            [path for _, path, _ in rows])
        target = np.array([classes.index(label) for _, _, label in rows])
        chosen = probabilities[np.arange(len(target)), target]
        return (-np.log(np.clip(chosen, 1e-12, 1.0)),
                float(np.mean(probabilities.argmax(axis=1) != target)))

    def pool_view(self, manifest, model_path, paths):
        from kerasll.project.selection import pool_view

        return pool_view(model_path, paths)

    def predictions(self, manifest, view, indices):
        probabilities = view.probabilities(indices)
        return ([manifest.config.classes[int(row.argmax())] for row in probabilities],
                [float(row.max()) for row in probabilities])

    def device_prediction(self, row):
        return row.get("prediction") or None, number(row.get("confidence"))

    def refuse_strategy(self, name, error):
        return ProjectError(
            f"Expected a strategy that reads predicted losses or class "
            f"probabilities. Received {name!r}, which reads what the "
            f"exported model does not output ({error}); use it in kerasll simulate"
        )


class _Annotated(ProjectKind):
    """Regions from people (`kerasll.project.regions`), the task's model
    trained on the labeled items outside the held-out split
    (`kerasll.project.annotated`)."""

    child = "Label"

    def read_annotation(self, manifest, item_id, result, where):
        from kerasll.project.labelstudio import image_size

        width, height = image_size(manifest, item_id, where)
        return regions.encode(self.read_regions(manifest.config, result, width,
                                                height, where))

    @abc.abstractmethod
    def read_regions(self, config, result, width, height, where):
        """The annotation dict of a result, in pixels of its image."""

    def label_counts(self, manifest, labels):
        return self.counts(manifest.config,
                           [regions.decode(label) for _, _, label in labels])

    @abc.abstractmethod
    def counts(self, config, annotations):
        """{name: count} over annotation dicts."""

    def fit(self, manifest, config, model, width, backbone, flip, seed):
        from kerasll.project.annotated import fit

        if backbone is not None or flip:
            raise ProjectError(
                f"Expected no --backbone or --flip for a {self.name} project (it "
                "trains its task's model, with mirror images). Received: "
                f"backbone={backbone!r}, flip={flip}"
            )
        return fit(manifest, config, model, width, seed), "the task's mirror images"

    def audit_picks(self, manifest, folder, rows):
        from kerasll.project.annotated import true_losses

        return true_losses(manifest, manifest.root / folder, [
            (item, path, regions.decode(label)) for item, path, label in rows]), None

    def held_out(self, manifest, audit):
        from kerasll.project.annotated import labeled_split, load_learner, project_task

        _, held = labeled_split(manifest)
        current = manifest.current_model()
        if not (audit and current is not None and held
                and self.scorable(manifest.config, held)):
            return len(held), {}
        # Evaluation reads only `test`.
        task = project_task(manifest, held, held)
        view = task.view(load_learner(manifest.root / current[1]), "test", 64)
        return len(held), self.metrics(task, view)

    def scorable(self, config, held):
        """Whether held-out rows can give a metric."""
        return True

    @abc.abstractmethod
    def build_task(self, manifest, train, test):
        """The `kerasll.tasks` task over labeled rows (see
        `kerasll.project.annotated.project_task`).

        Raises:
            ValueError: the task refuses the data.
        """

    @abc.abstractmethod
    def metrics(self, task, view):
        """{metric name: value} of a view on the task's test split."""

    def pool_view(self, manifest, model_path, paths):
        from kerasll.project.annotated import load_learner
        from kerasll.project.images import decode_many

        pixels = decode_many(paths, manifest.config.image_size,
                             manifest.config.color_mode)
        return self.view(manifest, load_learner(model_path.parent), pixels)

    @abc.abstractmethod
    def view(self, manifest, learner, pixels):
        """The task's model view over decoded pool images."""


class Detection(_Annotated):
    """Boxes of the object classes, by the task's SSD."""

    name = "detection"
    classes_wanted = "distinct, non-empty object class names"
    classes_example = "car,person"
    tag, options = "RectangleLabels", ""
    # Pre-annotated boxes: the detections (after SSD's NMS) scoring at least
    # this, at most `PREDICTED_BOXES` of them, so annotators correct a few
    # plausible boxes instead of deleting dozens.
    MIN_BOX_SCORE = 0.25
    PREDICTED_BOXES = 20

    def prediction_results(self, row, config):
        return regions.box_results(regions.decode(row.prediction), FROM_NAME, TO_NAME)

    def read_regions(self, config, result, width, height, where):
        return regions.read_boxes(result, config.classes, width, height, where)

    def counts(self, config, annotations):
        counts = {name: 0 for name in config.classes}
        for annotation in annotations:
            for name in annotation["classes"]:
                counts[name] += 1
        return counts

    def build_task(self, manifest, train, test):
        from kerasll.project.annotated import to_scenes
        from kerasll.tasks.detection import DetectionTask

        return DetectionTask("project", to_scenes(manifest, train),
                             to_scenes(manifest, test),
                             class_names=manifest.config.classes)

    def metrics(self, task, view):
        from kerasll.detection.metric import mean_average_precision

        value, _ = mean_average_precision(
            task.test.boxes, task.test.labels,
            view.detections(np.arange(len(task.test))), task.num_classes)
        return {MAP50.name: float(value)}

    def view(self, manifest, learner, pixels):
        from kerasll.detection.model import default_boxes_for
        from kerasll.detection.scenes import Scenes
        from kerasll.detection.view import DetectionModelView

        empty = range(len(pixels))
        scenes = Scenes(pixels, tuple(np.zeros((0, 4), np.float32) for _ in empty),
                        tuple(np.zeros(0, np.int64) for _ in empty),
                        manifest.config.classes)
        return DetectionModelView(learner, scenes, default_boxes_for(learner.backbone),
                                  64)

    def predictions(self, manifest, view, indices):
        """An image's boxes are its detections scoring at least
        `MIN_BOX_SCORE` (at most `PREDICTED_BOXES`, best first), its
        confidence its best score (0 without detections)."""
        classes = manifest.config.classes
        texts, confidences = [], []
        for found in view.detections(indices):
            scores = np.asarray(found.scores, dtype=np.float64)
            kept = np.flatnonzero(scores >= self.MIN_BOX_SCORE)[:self.PREDICTED_BOXES]
            boxes = np.clip(np.asarray(found.boxes, dtype=np.float64)[kept], 0.0, 1.0)
            texts.append(regions.encode({
                "boxes": np.round(boxes, 6).tolist(),
                "classes": [classes[int(found.classes[i])] for i in kept],
                "scores": np.round(scores[kept], 6).tolist(),
            }))
            confidences.append(float(scores.max()) if len(scores) else 0.0)
        return texts, confidences


class Keypoints(_Annotated):
    """Named keypoints of one figure class, by the task's hourglass."""

    name = "keypoints"
    class_counts = (1, 1)
    classes_wanted = "one figure class name"
    classes_example = default_classes = "person"
    keypoint_schema = True
    label_noun = "keypoints"
    tag, options = "KeyPointLabels", ' smart="false"'

    def label_names(self, config):
        return config.keypoints["names"]

    def init_settings(self, image_size, keypoints):
        """Checks the image size against the hourglass' resolutions (sides
        multiples of `kerasll.keypoints.sizes.SIDE_MULTIPLE`) and reads the schema
        (`kerasll.project.schema.keypoint_schema`)."""
        from kerasll.keypoints.sizes import SIDE_MULTIPLE
        from kerasll.project.schema import keypoint_schema

        schema = None if keypoints is None else keypoint_schema(keypoints)
        size, _ = super().init_settings(image_size, None)
        side = SIDE_MULTIPLE
        if any(int(value) % side or int(value) < side for value in size):
            raise ManifestError(
                f"Expected --image-size sides that are multiples of {side} for a "
                f"keypoints project (the hourglass' resolutions). Received: {size}"
            )
        return size, schema

    def prediction_results(self, row, config):
        return regions.keypoint_results(regions.decode(row.prediction),
                                        config.keypoints["names"], FROM_NAME, TO_NAME)

    def read_regions(self, config, result, width, height, where):
        return regions.read_keypoints(result, config.keypoints["names"], width, height,
                                      where)

    def counts(self, config, annotations):
        names = config.keypoints["names"]
        counts = {name: 0 for name in names}
        for annotation in annotations:
            for name, point in zip(names, annotation["keypoints"]):
                counts[name] += point is not None
        return counts

    def class_names(self, config):
        return None

    def build_task(self, manifest, train, test):
        from kerasll.project.annotated import has_head, to_figures
        from kerasll.tasks.keypoints import CocoKeypointTask, KeypointTask

        config = manifest.config
        if config.keypoints["sigmas"] is not None:
            return CocoKeypointTask("project", to_figures(manifest, train),
                                    to_figures(manifest, test))
        # PCKh scores only figures with a head segment.
        scored = [row for row in test if has_head(config, row[2])] or [
            row for row in train if has_head(config, row[2])]
        return KeypointTask("project", to_figures(manifest, train),
                            to_figures(manifest, scored))

    def scorable(self, config, held):
        from kerasll.project.annotated import has_head

        return (config.keypoints["sigmas"] is not None
                or any(has_head(config, row[2]) for row in held))

    def metrics(self, task, view):
        """PCKh@0.5 over the items with a head segment, where the schema has
        one, and OKS AP where it has sigmas."""
        from kerasll.keypoints.metric import oks_average_precision, pckh
        from kerasll.project.annotated import PCKH_THRESHOLD
        from kerasll.project.schema import HEAD_SEGMENT

        figures, metrics = task.test, {}
        predicted, confidences = view.keypoints(np.arange(len(figures)))
        heads = np.isfinite(figures.head_sizes)
        if set(HEAD_SEGMENT) <= set(figures.skeleton.names) and heads.any():
            value, _ = pckh(figures.keypoints[heads], figures.visibility[heads],
                            predicted[heads], figures.head_sizes[heads], PCKH_THRESHOLD)
            metrics[PCKH.name] = float(value)
        if figures.skeleton.sigmas is not None:
            value, _ = oks_average_precision(
                figures.keypoints, figures.visibility, figures.areas, predicted,
                confidences.mean(axis=-1), figures.skeleton.sigmas,
            )
            metrics[OKS_AP.name] = float(value)
        return metrics

    def view(self, manifest, learner, pixels):
        from kerasll.keypoints.view import KeypointModelView

        return KeypointModelView(learner, pixels, 64)

    def predictions(self, manifest, view, indices):
        """A figure's keypoints normalized to the image, its confidence its
        mean keypoint confidence."""
        height, width = manifest.config.image_size
        texts, confidences = [], []
        points, peaks = view.keypoints(indices)
        for figure, peak in zip(points, peaks):
            normalized = (np.asarray(figure, np.float64) + 0.5) / [width, height]
            texts.append(regions.encode({
                "keypoints": np.round(np.clip(normalized, 0.0, 1.0), 6).tolist(),
                "confidences": np.round(np.asarray(peak, np.float64), 6).tolist(),
            }))
            confidences.append(float(np.mean(peak)))
        return texts, confidences


PROJECT_KINDS = {
    kind.name: kind for kind in (Classification(), Detection(), Keypoints())
}


def project_kind(task):
    """The `ProjectKind` of a task name.

    Raises:
        ManifestError: an unknown task.
    """
    if task not in PROJECT_KINDS:
        raise ManifestError(
            f"Expected task in {list(PROJECT_KINDS)}. Received: {task!r}"
        )
    return PROJECT_KINDS[task]
