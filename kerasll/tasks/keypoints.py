"""Human pose: the paper's third task (stacked hourglass), behind the `Task` seam.

Data: `Figures` (`kerasll.keypoints`: stick figures drawn on CIFAR-10
backgrounds, or the people of a user's COCO keypoint JSON cropped into
figures). Model: a small hourglass (`build_hourglass`), the features of its
last hourglass tapped by the loss head. Loss: the heatmap mean squared error
per image over its labeled joints. Metric: PCKh@0.5 for figures with head
sizes (`KeypointTask`, with OKS keypoint AP through pycocotools as its
secondary metric), OKS keypoint AP for COCO people, whose skeleton has no
head segment (`CocoKeypointTask`). Views:
`KeypointModelView`, whose uncertainty is the mean entropy of the joints'
heatmaps and whose features are the hourglass features pooled per image.

Augmentation: each labeled figure is trained on together with its mirror
image (`kerasll.keypoints.mirror`: left and right joints swap labels), so an
epoch covers twice the labeled figures.
"""

import hashlib
from pathlib import Path

import numpy as np
from kerasll_serving.validation import validate_arguments

from kerasll.keypoints.figures import Figures
from kerasll.keypoints.figures import mirror as mirror_figures
from kerasll.keypoints.figures import split_figures
from kerasll.keypoints.heatmaps import encode_heatmaps
from kerasll.keypoints.inference import inference_learner, inference_model
from kerasll.keypoints.loss import HeatmapLoss
from kerasll.keypoints.metric import oks_average_precision, pckh
from kerasll.keypoints.model import (
    HOURGLASS_FILTERS,
    STEM_FILTERS,
    build_hourglass,
    feature_map_names,
)
from kerasll.keypoints.sizes import SIDE_MULTIPLE
from kerasll.keypoints.view import KeypointModelView
from kerasll.learner import LossLearner
from kerasll.models import scaled_channels
from kerasll.tasks import CIFAR_ITEM_COUNTS
from kerasll.tasks.metrics import OKS_AP, PCKH
from kerasll.tasks.splits import SplitTask, check_loader_arguments

# Figures hold one person each: the picks' class histogram has one class.
PERSON = "person"
# Where OKS AP puts a non-finite predicted keypoint: pixels from any image.
_FAR_OFF = -1e6


class KeypointTask(SplitTask):
    """Keypoints of one figure per image, on train and test `Figures`.

    Args:
        name: short name of the data set.
        train: the pool's `Figures`.
        test: the test `Figures` (same image size and skeleton).
        mirror: also train on the mirror image of every labeled figure.

    Raises:
        ValueError: an argument outside `parameter_constraints`, empty
            splits, different image shapes or skeletons, sides that are not
            multiples of 32, or test figures without positive head sizes
            (PCKh's normalizer).
    """

    kind = "keypoints"
    items = "figures"
    metric_name = PCKH.name
    metric_column = PCKH.column
    secondary_metrics = (OKS_AP,)
    models = ("hourglass",)
    # One small hourglass (stem 16/32, 48 channels, depth 3) on 64x64
    # figures, from scratch on the CPU: SGD lr 1.0 (with BatchNorm), batch
    # 32, 20 epochs over the figures and their mirror images; the paper's
    # pose weight lambda = 1e-4 for the loss-prediction loss. The heatmap
    # loss is small (targets are mostly 0), hence the large rate: on 300
    # CIFAR-10 figures (one seed), test PCKh@0.5 after 20 epochs was 0.16
    # at lr 0.1, 0.37 at 0.5, 0.55 at 1.0 and 0.60 at 2.0.
    training_defaults = {
        "epochs": 20, "batch_size": 32, "learning_rate": 1.0, "weight": 1e-4,
    }
    parameter_constraints = {
        "name": [str],
        "train": [Figures],
        "test": [Figures],
        **SplitTask.parameter_constraints,
    }

    def __init__(self, name, train, test, mirror=True):
        validate_arguments(
            self.parameter_constraints, {"name": name, "train": train, "test": test}
        )
        super().__init__(name, train, test, mirror)
        side = SIDE_MULTIPLE
        if train.images.shape[1] % side or train.images.shape[2] % side:
            raise ValueError(
                f"Expected figures whose height and width are multiples of {side} "
                f"(the hourglass' resolutions). Received figures of shape "
                f"{train.images.shape[1:]}"
            )
        if train.skeleton.names != test.skeleton.names:
            raise ValueError(
                "Expected train and test figures of one skeleton. Received "
                f"{list(train.skeleton.names)} and {list(test.skeleton.names)}"
            )
        self._check_test(test)

    def _check_test(self, test):
        """Raises unless the metric can score `test`."""
        sizes = np.asarray(test.head_sizes, dtype=np.float64)
        if not np.all(np.isfinite(sizes) & (sizes > 0)):
            raise ValueError(
                "Expected test figures with positive head sizes for PCKh. Received "
                f"{int(np.sum(~(np.isfinite(sizes) & (sizes > 0))))} without"
            )

    @property
    def class_names(self):
        return (PERSON,)

    @property
    def num_keypoints(self):
        """J, keypoints per figure."""
        return len(self.train.skeleton)

    def describe(self):
        labeled = int(np.sum(self.train.visibility > 0))
        return (
            f"{self.name}: {len(self.train)} train / {len(self.test)} test figures of "
            f"shape {self.input_shape}, {self.num_keypoints} keypoints "
            f"({labeled} labeled in the pool)"
        )

    def fingerprint(self):
        digest = hashlib.sha256()
        for figures in (self.train, self.test):
            digest.update(str(figures.images.shape).encode())
            for array, dtype in (
                (figures.images, np.uint8),
                (figures.keypoints, np.float32),
                (figures.visibility, np.int8),
                (figures.head_sizes, np.float32),
                (figures.areas, np.float32),
            ):
                digest.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
        skeleton = self.train.skeleton
        digest.update(
            f"skeleton={skeleton.names};{skeleton.flip_pairs};{skeleton.sigmas};"
            f"mirror={self.mirror};metric={self.metric_column}".encode()
        )
        return digest.hexdigest()

    def build_model(self, model, width, weight_decay):
        self.check_model(model)
        return build_hourglass(
            self.input_shape,
            self.num_keypoints,
            stem_filters=[scaled_channels(f, width) for f in STEM_FILTERS],
            filters=scaled_channels(HOURGLASS_FILTERS, width),
            weight_decay=weight_decay,
        )

    def taps(self, backbone):
        return feature_map_names(backbone)

    def loss(self):
        return HeatmapLoss()

    def encode_targets(self, figures):
        """The figures' heatmap targets, (n, h, w, J)."""
        return encode_heatmaps(
            figures.keypoints, figures.visibility, figures.image_size
        )

    def mirror_arrays(self, indices, images, targets):
        """The mirrored figures (left and right joints swap labels) and their
        heatmaps."""
        flipped = mirror_figures(self.train.take(indices))
        return flipped.images, self.encode_targets(flipped)

    def view(self, model, split, batch_size):
        return KeypointModelView(
            model, self.split(split).images, batch_size, targets=self.targets(split)
        )

    def evaluate(self, test_view):
        """PCKh@0.5 of the decoded keypoints over the test figures' labeled
        keypoints (flag >= 1)."""
        predicted, _ = test_view.keypoints(np.arange(len(test_view)))
        value, _ = pckh(
            self.test.keypoints, self.test.visibility, predicted, self.test.head_sizes
        )
        return value

    def evaluate_secondary(self, test_view):
        """{"oks_ap": OKS keypoint AP} of the decoded keypoints; none for a
        skeleton without OKS sigmas."""
        if self.test.skeleton.sigmas is None:
            return {}
        return {OKS_AP.column: self._oks_ap(test_view)}

    def _oks_ap(self, test_view):
        """OKS keypoint AP of the decoded keypoints, each figure scored by its
        mean keypoint confidence. A diverged network's non-finite keypoints
        count as far off (OKS 0), its non-finite scores as 0."""
        predicted, confidences = test_view.keypoints(np.arange(len(test_view)))
        predicted = np.where(np.isfinite(predicted), predicted, _FAR_OFF)
        scores = np.nan_to_num(confidences.mean(axis=-1), nan=0.0, posinf=0.0,
                               neginf=0.0)
        value, _ = oks_average_precision(
            self.test.keypoints, self.test.visibility, self.test.areas, predicted,
            scores, self.test.skeleton.sigmas,
        )
        return value

    def deployable(self, model):
        """Keypoints, confidences and (with a head) the predicted loss.

        Returns:
            `inference_learner` of a `LossLearner`, `inference_model` of a
            plain network: outputs "keypoints" and "confidences" (and
            "predicted_loss"), which `kerasll export` turns into a keypoints
            contract for `kerasll-score`.
        """
        if isinstance(model, LossLearner):
            return inference_learner(model)
        return inference_model(model)

    def item_classes(self, indices):
        """Class 0 ("person") for every figure."""
        return np.zeros(len(np.asarray(indices).reshape(-1)), dtype=np.int64)


class CocoKeypointTask(KeypointTask):
    """Keypoints of people cropped from a COCO keypoint JSON.

    COCO's skeleton has no head segment, so the metric is OKS keypoint AP
    (pycocotools, the skeleton's sigmas) instead of PCKh.

    Raises:
        ValueError: as `KeypointTask`, or a skeleton without OKS sigmas.
    """

    metric_name = OKS_AP.name
    metric_column = OKS_AP.column
    secondary_metrics = ()

    def _check_test(self, test):
        if test.skeleton.sigmas is None:
            raise ValueError(
                "Expected COCO keypoint names with known OKS sigmas for OKS AP. "
                f"Received: keypoints={list(test.skeleton.names)}"
            )

    def evaluate(self, test_view):
        """OKS AP of the decoded keypoints, each person scored by its mean
        keypoint confidence."""
        return self._oks_ap(test_view)

    def evaluate_secondary(self, test_view):
        """None: OKS AP is the metric, and COCO people have no head sizes."""
        return {}


def load_keypoint_task(
    source, data=None, seed=0, image_size=None, train_count=None, test_count=None,
    images=None,
):
    """A keypoint task from CIFAR-10-backed figures or a COCO keypoint JSON.

    Args:
        source: "cifar10" (figures drawn on CIFAR-10 backgrounds: the pool's
            on its training images, the test figures on its test images) or
            a COCO keypoint .json file.
        data: the CIFAR-10 npz for "cifar10" (default: `KERASLL_DATA`, else
            `../shared/data/cifar10.npz`).
        seed: seed of the figures (the test figures': seed + 1), or of the
            train/test split of a COCO file's people.
        image_size: (height, width), square, of the figures (default 64x64).
        train_count: figures in the pool (default 5,000; cifar10 only).
        test_count: test figures (default 1,000; cifar10 only).
        images: folder of the images of a COCO file (default: the file's
            folder).

    Returns:
        A `KeypointTask` (cifar10), or a `CocoKeypointTask` with the people
        of the file split 80/20 with `seed`.

    Raises:
        ValueError: an argument outside `LOADER_CONSTRAINTS`, an unknown
            source, a missing file, bad annotations, an image size other than
            two equal integers, or an option the source does not use (counts
            or `data` for a COCO file, `images` for cifar10).
    """
    from kerasll.data import load_dataset
    from kerasll.keypoints.coco import load_coco_keypoints, to_figures
    from kerasll.keypoints.figures import make_figures

    height, _ = check_loader_arguments(
        {
            "source": source, "data": data, "seed": seed, "image_size": image_size,
            "train_count": train_count, "test_count": test_count, "images": images,
        },
        square=True,
    )
    path = Path(str(source))
    cifar = str(source) == "cifar10"
    unused = {
        "train_count": train_count is not None and not cifar,
        "test_count": test_count is not None and not cifar,
        "data": data is not None and not cifar,
        "images": images is not None and cifar,
    }
    if any(unused.values()):
        names = [name for name, given in unused.items() if given]
        raise ValueError(
            f"Expected no {names} for keypoints dataset {str(source)!r}: figure "
            "counts and data apply to cifar10, images to a COCO .json. Received them"
        )
    if cifar:
        cifar10 = load_dataset("cifar10", data=data)
        default_train, default_test = CIFAR_ITEM_COUNTS
        train = make_figures(
            cifar10.x_train, default_train if train_count is None else train_count,
            image_size=height, seed=seed,
        )
        test = make_figures(
            cifar10.x_test, default_test if test_count is None else test_count,
            image_size=height, seed=seed + 1,
        )
        return KeypointTask("cifar10-figures", train, test)
    if not (path.suffix == ".json" and path.is_file()):
        raise ValueError(
            "Expected keypoints dataset 'cifar10' or a COCO keypoint .json file. "
            f"Received: {str(source)!r}"
        )
    annotations = load_coco_keypoints(path)
    figures = to_figures(annotations, Path(images) if images else path.parent, height)
    train, test = split_figures(figures, seed=seed)
    return CocoKeypointTask(path.stem, train, test)
