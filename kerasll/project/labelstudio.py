"""The Label Studio formats: labeling config, import tasks, JSON export.

A task's `data` holds the image URL and the kerasll ids (`kerasll_project`,
`kerasll_item`, `kerasll_round`) that come back in Label Studio's JSON export,
so labels are matched to items by id and a file of another project is
refused. The model's class and confidence go in as a prediction
(pre-annotation); its predicted loss is in `data.kerasll_predicted_loss`.
"""

from xml.sax.saxutils import quoteattr

from kerasll.project.errors import LabelsError
from kerasll.project.records import LabelRecord, TaskRow

FROM_NAME = "label"
TO_NAME = "image"


def label_config(classes):
    """The labeling config: one image, one single-choice class question.

    Args:
        classes: the project's class names.

    Returns:
        The XML text.
    """
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in classes)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${TO_NAME}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" '
        'showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def task(row: TaskRow):
    """One Label Studio import task with the model's pre-annotation.

    Args:
        row: the `TaskRow`.

    Returns:
        A JSON-ready dict.
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
                "score": row.confidence,
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [row.prediction]},
                    }
                ],
            }
        ]
    return entry


def parse_export(tasks, project_id, source):
    """Reads the labels out of a Label Studio JSON export.

    Cancelled (skipped) annotations and annotations without a class choice
    are ignored; every other annotation is one label by its annotator.

    Args:
        tasks: the parsed JSON (a list of tasks).
        project_id: the project's id.
        source: the file name, for messages.

    Returns:
        A list of `LabelRecord`.

    Raises:
        LabelsError: not a task list, tasks without kerasll ids, or tasks of
            another project.
    """
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
        for annotation in task_entry.get("annotations") or ():
            if annotation.get("was_cancelled"):
                continue
            label = _choice(annotation.get("result") or ())
            if label is None:
                continue
            records.append(
                LabelRecord(
                    item_id=_item_id(data["kerasll_item"], source),
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


def _choice(result):
    for region in result:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = (region.get("value") or {}).get("choices") or []
            if choices:
                return str(choices[0])
    return None


def _annotator(completed_by):
    """`user:<id>`: exports give the user as an id or as a dict with one."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return "unknown" if completed_by is None else f"user:{completed_by}"
