"""The Label Studio formats: labeling config, import tasks, JSON export.

A task's `data` holds the image URL and the kerasll ids (`kerasll_project`,
`kerasll_item`, `kerasll_round`) that come back in Label Studio's JSON export,
so labels are matched to items by id and a file of another project is
refused. The model's output goes in as a prediction (pre-annotation: the
class, the boxes or the keypoints, see `kerasll.project.regions`) whose
`score` is the predicted loss, so Label Studio sorts tasks by it; the
predicted loss is in `data.kerasll_predicted_loss` too.

One labeling config per task: a single-choice class question
(classification), rectangles with the object classes (detection), or
keypoints with the schema's names (keypoints).
"""

from pathlib import Path
from xml.sax.saxutils import quoteattr

from PIL import Image

from kerasll.project.errors import LabelsError
from kerasll.project.kinds import FROM_NAME, TO_NAME, project_kind
from kerasll.project.rows import AnnotationFileRow, LabelRecord


def label_config(config):
    """The labeling config of a project's task.

    Args:
        config: the `ProjectConfig`.

    Returns:
        The XML text: one image and a single-choice class question, rectangle
        labels (the classes) or keypoint labels (the schema's names).
    """
    kind = project_kind(config.task)
    labels = "\n".join(f"    <{kind.child} value={quoteattr(name)}/>"
                       for name in kind.label_names(config))
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${TO_NAME}" zoom="true"/>\n'
        f'  <{kind.tag} name="{FROM_NAME}" toName="{TO_NAME}"{kind.options}>\n'
        f"{labels}\n"
        f"  </{kind.tag}>\n"
        "</View>\n"
    )


def import_task(row: AnnotationFileRow, config):
    """One Label Studio import task with the model's pre-annotation.

    Args:
        row: the `AnnotationFileRow`.
        config: the `ProjectConfig` (its task and names).

    Returns:
        A JSON-ready dict; its prediction's `score` is the predicted loss.
    """
    data = {
        TO_NAME: row.image,
        "kerasll_project": row.project_id,
        "kerasll_item": row.item_id,
        "kerasll_round": row.round_id,
        "kerasll_predicted_loss": row.predicted_loss,
    }
    entry = {"data": data}
    if row.prediction is not None:
        entry["predictions"] = [
            {
                "model_version": row.model_version,
                "score": row.predicted_loss,
                "result": project_kind(config.task).prediction_results(row, config),
            }
        ]
    return entry


def parse_export(tasks, manifest, source):
    """Reads the labels out of a Label Studio JSON export.

    Cancelled (skipped) annotations are ignored, and so are classification
    annotations without a class choice; every other annotation is one label
    by its annotator. A detection or keypoint annotation becomes the item's
    boxes or keypoints in pixels of its image file
    (`kerasll.project.regions`), each region checked against that image's
    size and the project's classes or keypoint names.

    Args:
        tasks: the parsed JSON (a list of tasks).
        manifest: the open `Manifest` (its id, task, names and items).
        source: the file name, for messages.

    Returns:
        A list of `LabelRecord`.

    Raises:
        LabelsError: not a task list, tasks without kerasll ids, tasks of
            another project, or a malformed region or one outside its image.
    """
    config = manifest.config
    project_id, kind = config.project_id, project_kind(config.task)
    if not isinstance(tasks, list):
        raise LabelsError(
            f"Expected a Label Studio JSON export (a list of tasks). Received a "
            f"{type(tasks).__name__} in {source!r}"
        )
    records = []
    for task_entry in tasks:
        data = task_entry.get("data", {}) if isinstance(task_entry, dict) else {}
        if "kerasll_project" not in data or "kerasll_item" not in data:
            raise LabelsError(
                f"Expected tasks made by `kerasll project tasks` (with "
                f"data.kerasll_project and data.kerasll_item). Received task "
                f"{task_entry.get('id') if isinstance(task_entry, dict) else None!r} "
                f"without them in {source!r}"
            )
        if data["kerasll_project"] != project_id:
            raise LabelsError(
                f"Expected labels of project {project_id}. Received {source!r}, a "
                f"file of project {data['kerasll_project']}"
            )
        item_id = _item_id(data["kerasll_item"], source)
        for annotation in task_entry.get("annotations") or ():
            if annotation.get("was_cancelled"):
                continue
            result = annotation.get("result") or []
            if not isinstance(result, list):
                raise LabelsError(
                    f"Expected a list as the result of every annotation. Received "
                    f"a {type(result).__name__} in {source!r}"
                )
            where = (f"{source!r}, task {task_entry.get('id')!r} (item "
                     f"{item_id}), annotation {annotation.get('id')!r}")
            label = kind.read_annotation(manifest, item_id, result, where)
            if label is None:
                continue
            records.append(
                LabelRecord(
                    item_id=item_id,
                    label=label,
                    annotator=_annotator(annotation.get("completed_by")),
                    labeled_at=str(
                        annotation.get("updated_at") or annotation.get("created_at")
                        or ""
                    ),
                )
            )
    return records


def _item_id(value, source):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LabelsError(
            f"Expected integer kerasll_item ids in {source!r}. Received {value!r}"
        ) from None


def image_size(manifest, item_id, where):
    """(width, height) of an item's image file, from its header.

    Raises:
        LabelsError: an item the project does not have, or an unreadable
            image.
    """
    found = manifest.query("SELECT path FROM items WHERE id = ?", (item_id,))
    if not found:
        raise LabelsError(
            f"Expected items of the project. Received item id {item_id} in {where}, "
            "which the project does not have"
        )
    path = manifest.resolve(found[0][0])
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError) as error:
        raise LabelsError(
            f"Expected the item's image {str(Path(path))!r} to be readable. "
            f"Received: {type(error).__name__}: {error}"
        ) from error


def _annotator(completed_by):
    """`user:<id>`: exports give the user as an id or as a dict with one."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return "unknown" if completed_by is None else f"user:{completed_by}"
