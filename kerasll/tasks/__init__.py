"""Tasks: what differs between classification, detection and pose, behind one seam.

- `ClassificationTask` (`kerasll.tasks.classification`), `DetectionTask`
  (`kerasll.tasks.detection`) and `KeypointTask` (`kerasll.tasks.keypoints`)
  implement `kerasll.active.task.Task`, the interface the active-learning
  engine owns (data, models, per-item loss, metric, model views).
- `task_class`, `load_task`: a task's class by name, a task from a data
  source.
"""

KINDS = ("classification", "detection", "keypoints")

# The CPU-sized classifier (`kerasll.models.MODELS`): the classification
# task's default model below ResNet-18's smallest images, and a project's.
SMALL_CLASSIFIER = "small_cnn"

# Detection scenes and keypoint figures made from the CIFAR-10 copy: their
# (height, width) and how many go in the pool and in the test set.
CIFAR_ITEM_SIZE = (64, 64)
CIFAR_ITEM_COUNTS = (5000, 1000)


def task_class(kind):
    """The `Task` subclass of a task kind.

    Args:
        kind: one of `KINDS`.

    Returns:
        A `Task` subclass.

    Raises:
        ValueError: an unknown kind.
    """
    if kind == "classification":
        from kerasll.tasks.classification import ClassificationTask

        return ClassificationTask
    if kind == "detection":
        from kerasll.tasks.detection import DetectionTask

        return DetectionTask
    if kind == "keypoints":
        from kerasll.tasks.keypoints import KeypointTask

        return KeypointTask
    raise ValueError(f"Expected task in {list(KINDS)}. Received: task={kind!r}")


def load_task(
    kind,
    source,
    data=None,
    seed=0,
    image_size=None,
    imbalance_ratio=None,
    copies=None,
    **kwargs,
):
    """Loads a data source as a task of the given kind.

    Args:
        kind: one of `KINDS`.
        source: the data set (see `kerasll.data.load_dataset` for
            classification, `kerasll.tasks.detection.load_detection_task` for
            detection, `kerasll.tasks.keypoints.load_keypoint_task` for
            keypoints).
        data: the CIFAR-10 npz, for "cifar10".
        seed: seed of generated scenes and of splits.
        image_size: (height, width) to resize images to.
        imbalance_ratio: classification: make the pool long-tailed, the
            largest class this many times the smallest
            (`kerasll.pools.long_tailed`); the test set stays balanced.
        copies: classification: make every pool image `copies`
            near-duplicates, as consecutive frames are
            (`kerasll.pools.with_near_duplicates`), after `imbalance_ratio`.
        **kwargs: more arguments of the detection and keypoint loaders
            (scene or figure counts, images folder).

    Returns:
        A `Task`.

    Raises:
        ValueError: an unknown kind, or the loader's errors (`DataError`,
            `SceneDataError`, `AnnotationError` are `ValueError`s).
    """
    task_class(kind)
    pool_options = {"imbalance_ratio": imbalance_ratio, "copies": copies}
    if kind != "classification" and any(v is not None for v in pool_options.values()):
        raise ValueError(
            f"Expected no pool options (imbalance ratio, copies) for a {kind} "
            f"task. Received {pool_options}"
        )
    if kind == "detection":
        from kerasll.tasks.detection import load_detection_task

        return load_detection_task(source, data, seed, image_size, **kwargs)
    if kind == "keypoints":
        from kerasll.tasks.keypoints import load_keypoint_task

        return load_keypoint_task(source, data, seed, image_size, **kwargs)
    if kwargs:
        raise ValueError(
            f"Expected no detection options for a classification task. Received "
            f"{sorted(kwargs)}"
        )
    from kerasll.data import load_dataset
    from kerasll.pools import long_tailed, with_near_duplicates
    from kerasll.tasks.classification import ClassificationTask

    dataset = load_dataset(source, data=data, seed=seed, image_size=image_size)
    if imbalance_ratio is not None:
        dataset = long_tailed(dataset, imbalance_ratio, seed=seed)
    if copies is not None:
        dataset = with_near_duplicates(dataset, copies, seed=seed)
    return ClassificationTask(dataset)


__all__ = ["KINDS", "SMALL_CLASSIFIER", "load_task", "task_class"]
