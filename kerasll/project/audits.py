"""What labeled audit items say about the score that picked them.

A round chosen by a strategy with a random audit slice (`learning_loss_safe`
and every `SCORE+safe` rule) records, per pick, its role ("pick" or
"audit") and the strategy's score. Once people label the audit items, the
round's model gives their true loss (cross-entropy of the label, or the
detection or pose task's loss of the boxes or keypoints), and Kendall's
tau of score against true loss shows how well the score ranks items it
never trained on: the evidence the safe rule sizes the next
round's head share with, and what `status` reports.
"""

import dataclasses

import numpy as np

from kerasll.project.kinds import project_kind


@dataclasses.dataclass(frozen=True)
class RoundAuditEvidence:
    """A round's labeled audit items under the model that picked them.

    Attributes:
        round_id: the round.
        strategy: the strategy that chose it.
        labeled: audit items labeled so far.
        audited: audit items in the round.
        audit: the `kerasll.active.batch.Audit` (score and true loss of the
            labeled ones).
        tau: Kendall's tau of score vs true loss (NaN with fewer than 3).
        p_value: one-sided p of tau > 0.
    """

    round_id: int
    strategy: str
    labeled: int
    audited: int
    audit: object
    tau: float
    p_value: float


def class_probabilities(model_path, paths):
    """Class probabilities of an exported classifier on image files.

    Args:
        model_path: the `.onnx` file.
        paths: image files.

    Returns:
        A (N, classes) float64 array.
    """
    from kerasll_serving.model import ScoringModel
    from kerasll_serving.predictions import softmax
    from kerasll_serving.preprocess import InputAdapter

    model = ScoringModel(model_path, providers="cpu")
    adapter = InputAdapter(model.contract)
    pixels = np.stack([adapter.decode_image(path) for path in paths])
    _, output = model.run(adapter.prepare(pixels))
    output = np.asarray(output, dtype=np.float64)
    return softmax(output) if model.contract.from_logits else output


def item_losses(manifest, folder, rows):
    """The true loss of labeled items under a round's model.

    Args:
        manifest: the open `Manifest`.
        folder: the model's folder, relative to the project.
        rows: (item_id, absolute path, label) of labeled items.

    Returns:
        (len(rows),) float64: cross-entropy under the exported classifier
        (no TensorFlow), or the task loss under the saved detector or pose
        model (`kerasll.project.annotated.true_losses`).
    """
    return project_kind(manifest.config.task).audit_picks(manifest, folder, rows)[0]


def round_audits(manifest, strategy=None):
    """The audit evidence of every round that drew an audit slice.

    Args:
        manifest: the open `Manifest`.
        strategy: only rounds of this strategy (its canonical name); None:
            every round.

    Returns:
        `RoundAuditEvidence`s, oldest round first.
    """
    from kerasll.active.batch import Audit
    from kerasll.active.diagnostics import ranking_evidence

    truth = {item_id: label for item_id, _, label in manifest.training_labels()}
    rounds = manifest.query(
        "SELECT rounds.id, rounds.strategy, models.folder FROM rounds "
        "JOIN models ON models.version = rounds.model_version "
        "WHERE rounds.strategy IS NOT NULL ORDER BY rounds.id"
    )
    evidence = []
    for round_id, name, folder in rounds:
        if strategy is not None and name != strategy:
            continue
        rows = manifest.query(
            "SELECT picks.item_id, picks.score, items.path FROM picks "
            "JOIN items ON items.id = picks.item_id "
            "WHERE picks.round_id = ? AND picks.role = 'audit' ORDER BY picks.rank",
            (round_id,),
        )
        if not rows:
            continue
        labeled = [(item, score, path) for item, score, path in rows if item in truth]
        if labeled:
            score = np.array([score for _, score, _ in labeled], dtype=np.float64)
            loss = item_losses(manifest, folder,
                               [(item, manifest.resolve(path), truth[item])
                                for item, _, path in labeled])
        else:
            score = loss = np.zeros(0)
        tau, p_value = ranking_evidence(loss, score)
        evidence.append(RoundAuditEvidence(
            round_id, name, len(labeled), len(rows), Audit(score, loss), tau, p_value
        ))
    return evidence
