"""Object detection: the paper's second task (SSD), behind the `Task` seam.

Data: `Scenes` (`kerasll.detection`: CIFAR-10 scenes, or a user's Pascal VOC
or COCO annotations). Model: the small SSD (`build_ssd`), its feature maps
tapped by the loss head. Loss: SSD's MultiBox loss per image. Metric:
mAP at IoU 0.5 through pycocotools. Views: `DetectionModelView`, whose
uncertainty scores are reduced per image over the detections after NMS and
whose features are the feature maps pooled per image.

Augmentation: each labeled scene is trained on together with its mirror
image (`kerasll.detection.augment`: the targets are mirrored with the
scene, no re-matching), so an epoch covers twice the labeled scenes.
"""

import hashlib
from pathlib import Path

import numpy as np
from kerasll_serving.validation import StrOptions, validate_arguments

from kerasll.detection.augment import mirror, mirror_permutation
from kerasll.detection.inference import inference_learner, inference_model
from kerasll.detection.loss import MultiBoxLoss
from kerasll.detection.matching import encode_batch
from kerasll.detection.metric import mean_average_precision
from kerasll.detection.model import (
    FEATURE_FILTERS,
    STEM_FILTERS,
    build_ssd,
    default_boxes_for,
    feature_map_names,
)
from kerasll.detection.scenes import split_scenes
from kerasll.detection.uncertainty import REDUCTIONS
from kerasll.detection.view import DetectionModelView
from kerasll.learner import LossLearner
from kerasll.models import scaled_channels
from kerasll.tasks import CIFAR_ITEM_COUNTS
from kerasll.tasks.metrics import MAP50
from kerasll.tasks.splits import SplitTask, check_loader_arguments


class DetectionTask(SplitTask):
    """Object detection on train and test `Scenes`.

    Args:
        name: short name of the data set.
        train: the pool's `Scenes`.
        test: the test `Scenes` (same image size and classes).
        class_names: one name per object class (default: the scenes',
            else "class_<i>").
        reduction: how the detections' uncertainties make an image's score
            ("mean", as the paper's detection baseline, or "max").
        mirror: also train on the mirror image of every labeled scene.

    Raises:
        ValueError: empty splits, different image shapes, labels outside
            the classes, or an argument outside `parameter_constraints`.
    """

    kind = "detection"
    items = "scenes"
    metric_name = MAP50.name
    metric_column = MAP50.column
    models = ("ssd",)
    # A small SSD on 64x64 scenes, from scratch on the CPU: SGD lr 0.1 (with
    # BatchNorm), batch 32, 20 epochs over the scenes and their mirror images.
    training_defaults = {"epochs": 20, "batch_size": 32, "learning_rate": 0.1}
    parameter_constraints = {
        **SplitTask.parameter_constraints,
        "reduction": [StrOptions(REDUCTIONS)],
    }

    def __init__(
        self, name, train, test, class_names=None, reduction="mean", mirror=True
    ):
        reduction = validate_arguments(
            self.parameter_constraints, {"reduction": reduction}
        )["reduction"]
        super().__init__(name, train, test, mirror)
        names = class_names or train.class_names
        highest = max(
            (int(labels.max()) for labels in train.labels + test.labels if len(labels)),
            default=0,
        )
        names = tuple(names or (f"class_{i}" for i in range(highest + 1)))
        if highest >= len(names):
            raise ValueError(
                f"Expected object labels in [0, {len(names)}). Received label {highest}"
            )
        self._class_names, self.reduction = names, reduction
        self._default_boxes, self._mirror_order = None, None

    @property
    def class_names(self):
        return self._class_names

    def describe(self):
        objects = sum(len(labels) for labels in self.train.labels)
        return (
            f"{self.name}: {len(self.train)} train / {len(self.test)} test scenes of "
            f"shape {self.input_shape} ({objects} train objects), "
            f"{self.num_classes} classes"
        )

    def fingerprint(self):
        digest = hashlib.sha256()
        for scenes in (self.train, self.test):
            digest.update(str(scenes.images.shape).encode())
            digest.update(np.ascontiguousarray(scenes.images).tobytes())
            for boxes, labels in zip(scenes.boxes, scenes.labels):
                digest.update(np.ascontiguousarray(boxes, dtype=np.float32).tobytes())
                digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        digest.update(f"reduction={self.reduction};mirror={self.mirror}".encode())
        return digest.hexdigest()

    def build_model(self, model, width, weight_decay):
        self.check_model(model)
        return build_ssd(
            self.input_shape,
            self.num_classes,
            stem_filters=[scaled_channels(f, width) for f in STEM_FILTERS],
            feature_filters=[scaled_channels(f, width) for f in FEATURE_FILTERS],
            weight_decay=weight_decay,
        )

    def taps(self, backbone):
        return feature_map_names(backbone)

    def loss(self):
        return MultiBoxLoss()

    @property
    def default_boxes(self):
        """(N, 4) default boxes of the task's SSD (their layout does not depend
        on the width)."""
        if self._default_boxes is None:
            detector = self.build_model(self.models[0], 1.0, 0.0)
            self._default_boxes = default_boxes_for(detector)
        return self._default_boxes

    def encode_targets(self, scenes):
        """The scenes' boxes matched to the default boxes, (n, N, 5)."""
        return encode_batch(scenes.boxes, scenes.labels, self.default_boxes)

    def mirror_arrays(self, indices, images, targets):
        """The mirrored scenes and their targets, mirrored with them (no
        re-matching)."""
        if self._mirror_order is None:
            self._mirror_order = mirror_permutation(self.default_boxes)
        return mirror(images, targets, self._mirror_order)

    def view(self, model, split, batch_size):
        return DetectionModelView(
            model,
            self.split(split),
            self.default_boxes,
            batch_size,
            targets=self.targets(split),
            reduction=self.reduction,
        )

    def evaluate(self, test_view):
        detections = test_view.detections(np.arange(len(test_view)))
        value, _ = mean_average_precision(
            self.test.boxes, self.test.labels, detections, self.num_classes
        )
        return value

    def deployable(self, model):
        """Boxes, class probabilities and (with a head) the predicted loss.

        Returns:
            `inference_learner` of a `LossLearner`, `inference_model` of a
            plain detector: outputs "boxes" and "scores" (and
            "predicted_loss"), which `kerasll export` turns into a detection
            contract for `kerasll-score`.
        """
        if isinstance(model, LossLearner):
            return inference_learner(model, self.default_boxes)
        return inference_model(model, self.default_boxes)

    def item_classes(self, indices):
        labels = [self.train.labels[i] for i in np.asarray(indices, dtype=np.int64)]
        return np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)


def load_detection_task(
    source, data=None, seed=0, image_size=None, train_count=None, test_count=None,
    images=None,
):
    """A `DetectionTask` from CIFAR-10 scenes or a user's annotations.

    Args:
        source: "cifar10" (scenes pasted from the CIFAR-10 copy), a Pascal
            VOC folder (holding `Annotations/` and `JPEGImages/`), or a COCO
            JSON file.
        data: the CIFAR-10 npz for "cifar10" (default: `KERASLL_DATA`, else
            `../shared/data/cifar10.npz`).
        seed: seed of the scenes, or of the train/test split of annotations.
        image_size: (height, width) of the scenes (default 64x64; CIFAR-10
            scenes are square).
        train_count: CIFAR-10 scenes in the pool (default 5,000).
        test_count: CIFAR-10 test scenes (default 1,000).
        images: folder of the images of a COCO file (default: the file's
            folder).

    Returns:
        A `DetectionTask`; annotations are split 80/20 with `seed`.

    Raises:
        ValueError: an argument outside `LOADER_CONSTRAINTS`, an unknown
            source, a missing file, bad annotations, a non-square size for
            CIFAR-10 scenes, or an option the source does
            not use (scene counts or `data` for annotations, `images` for
            anything but COCO).
    """
    from kerasll.detection.annotations import to_scenes
    from kerasll.detection.coco import load_coco
    from kerasll.detection.scenes import load_cifar_scenes
    from kerasll.detection.voc import load_voc

    height, width = check_loader_arguments(
        {
            "source": source, "data": data, "seed": seed, "image_size": image_size,
            "train_count": train_count, "test_count": test_count, "images": images,
        },
        square=False,
    )
    path = Path(str(source))
    source_type = "cifar10" if str(source) == "cifar10" else path.suffix or "folder"
    unused = {
        "train_count": train_count is not None and source_type != "cifar10",
        "test_count": test_count is not None and source_type != "cifar10",
        "data": data is not None and source_type != "cifar10",
        "images": images is not None and source_type != ".json",
    }
    if any(unused.values()):
        names = [name for name, given in unused.items() if given]
        raise ValueError(
            f"Expected no {names} for detection dataset {str(source)!r}: scene counts "
            "and data apply to cifar10, images to a COCO .json. Received them"
        )
    if str(source) == "cifar10":
        if height != width:
            raise ValueError(
                f"Expected square CIFAR-10 scenes. Received image_size={image_size}"
            )
        train, test = load_cifar_scenes(
            data,
            train_count=CIFAR_ITEM_COUNTS[0] if train_count is None else train_count,
            test_count=CIFAR_ITEM_COUNTS[1] if test_count is None else test_count,
            scene_size=height,
            seed=seed,
        )
        return DetectionTask("cifar10-scenes", train, test)
    if path.is_dir() and (path / "Annotations").is_dir():
        annotations = load_voc(path / "Annotations")
        folder = path / "JPEGImages"
    elif path.suffix == ".json" and path.is_file():
        annotations = load_coco(path)
        folder = Path(images) if images else path.parent
    else:
        raise ValueError(
            "Expected dataset 'cifar10', a Pascal VOC folder with Annotations/ and "
            f"JPEGImages/, or a COCO .json file. Received: {str(source)!r}"
        )
    scenes = to_scenes(annotations, folder, (height, width))
    train, test = split_scenes(scenes, seed=seed)
    return DetectionTask(path.stem or path.name, train, test)
