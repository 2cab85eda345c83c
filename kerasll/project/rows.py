"""The rows that pass between the manifest and the annotation and label files."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class AnnotationFileRow:
    """One picked item to annotate: a row of a round's annotation file.

    Attributes:
        project_id: the project's id.
        round_id: the round that picked it.
        item_id: the item.
        path: its image file (absolute).
        image: the URL or path the annotation tool opens.
        model_version: the model that picked it.
        predicted_loss: that model's predicted loss.
        prediction: that model's class, or None.
        confidence: that model's confidence, or None.
    """

    project_id: str
    round_id: int
    item_id: int
    path: str
    image: str
    model_version: str
    predicted_loss: float
    prediction: str = None
    confidence: float = None


@dataclasses.dataclass(frozen=True)
class LabelRecord:
    """One label read from a labels file.

    Attributes:
        item_id: the item.
        label: the class name.
        annotator: who labeled it.
        labeled_at: when (as the file says), or "" when it does not say.
    """

    item_id: int
    label: str
    annotator: str
    labeled_at: str = ""
