"""Tasks: what differs between classification and detection, behind one seam.

- `ClassificationTask` (`kerasll.tasks.classification`) and `DetectionTask`
  (`kerasll.tasks.detection`) implement `kerasll.active.task.Task`, the
  interface the active-learning engine owns (data, models, per-item loss,
  metric, model views).
- `task_class`, `load_task`: a task's class by name, a task from a data
  source.
"""

KINDS = ("classification", "detection")


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
    raise ValueError(f"Expected task in {list(KINDS)}. Received: task={kind!r}")


def load_task(kind, source, data=None, seed=0, image_size=None, **kwargs):
    """Loads a data source as a task of the given kind.

    Args:
        kind: one of `KINDS`.
        source: the data set (see `kerasll.data.load_dataset` for
            classification, `kerasll.tasks.detection.load_detection_task` for
            detection).
        data: the CIFAR-10 npz, for "cifar10".
        seed: seed of generated scenes and of splits.
        image_size: (height, width) to resize images to.
        **kwargs: more arguments of the detection loader (scene counts,
            images folder).

    Returns:
        A `Task`.

    Raises:
        ValueError: an unknown kind, or the loader's errors (`DataError`,
            `SceneDataError`, `AnnotationError` are `ValueError`s).
    """
    task_class(kind)
    if kind == "detection":
        from kerasll.tasks.detection import load_detection_task

        return load_detection_task(source, data, seed, image_size, **kwargs)
    if kwargs:
        raise ValueError(
            f"Expected no detection options for a classification task. Received "
            f"{sorted(kwargs)}"
        )
    from kerasll.data import load_dataset
    from kerasll.tasks.classification import ClassificationTask

    return ClassificationTask(
        load_dataset(source, data=data, seed=seed, image_size=image_size)
    )


__all__ = ["KINDS", "load_task", "task_class"]
