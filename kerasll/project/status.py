"""`status`: what the project holds, and how well the loss head ranked.

Once a round's picks are labeled, their true loss under the model that
picked them (cross-entropy of its prediction against the annotators' label)
can be compared with the loss it predicted. Over all picks of a top-K round
this is biased (the picks are the head's favourites); the audit slice of a
strategy's round (`kerasll.project.audits`) is a uniform sample, and its
Kendall's tau is what the safe rule trusts the head by.

A detection or keypoint project's true loss is its task's loss (MultiBox, or
the heatmap error) of the people's boxes or keypoints, and `status` also
reports the current model's task metric on the labeled held-out split
(`kerasll.project.annotated`: mAP@0.5, or PCKh@0.5 and OKS AP); these load
the saved Keras models, so `status` of these projects starts TensorFlow.
"""

import dataclasses
import math

import numpy as np

from kerasll.project.audits import round_audits
from kerasll.project.kinds import project_kind


@dataclasses.dataclass(frozen=True)
class RoundAudit:
    """One round's picks against their labels.

    Attributes:
        round_id: the round.
        model_version: the model that picked.
        source: "scored here" or the device picks files.
        picks: items picked.
        labeled: of those, items labeled since.
        error_rate: share of labeled picks the model got wrong (None if none).
        mean_true_loss: their mean cross-entropy under that model.
        spearman: Spearman correlation of predicted and true loss (None for
            fewer than 3 labeled picks or constant values).
        audit: the round's `RoundAuditEvidence` when it drew an audit slice.
    """

    round_id: int
    model_version: str
    source: str
    picks: int
    labeled: int
    error_rate: float = None
    mean_true_loss: float = None
    spearman: float = None
    audit: object = None

    def line(self):
        """One line for the CLI."""
        how = self.source if self.model_version is None else (
            f"by {self.model_version} ({self.source})")
        text = (
            f"round {self.round_id}: {self.picks} picked {how}, "
            f"{self.labeled} labeled"
        )
        if self.mean_true_loss is not None:
            spearman = "n/a" if self.spearman is None else f"{self.spearman:.3f}"
            wrong = ("" if self.error_rate is None else
                     f"model wrong on {self.error_rate:.0%} of them, ")
            text += (
                f"; {wrong}mean true loss {self.mean_true_loss:.3f}, "
                f"Spearman(predicted, true loss) {spearman}"
            )
        if self.audit is not None:
            evidence = self.audit
            tau = "n/a" if math.isnan(evidence.tau) else (
                f"{evidence.tau:.3f} (one-sided p {evidence.p_value:.3g})")
            text += (
                f"; audit ({evidence.strategy}): {evidence.labeled} of "
                f"{evidence.audited} random item(s) labeled, Kendall tau of score "
                f"vs true loss {tau}"
            )
        return text


@dataclasses.dataclass(frozen=True)
class ProjectStatus:
    """Counts, class histogram and per-round audits.

    Attributes:
        items: items in the project.
        labeled: items with at least one label.
        open: items neither labeled nor picked (the next pool).
        devices: items per source device.
        histogram: training labels per class (detection: boxes per class;
            keypoints: placed keypoints per name).
        models: trained model versions, oldest first.
        rounds: a `RoundAudit` per round.
        held_out: labeled held-out items (detection and keypoints).
        metrics: the current model's task metrics on them, {name: value}.
    """

    items: int
    labeled: int
    open: int
    devices: dict
    histogram: dict
    models: tuple
    rounds: tuple
    held_out: int = None
    metrics: dict = None

    def lines(self):
        """The status as printable lines."""
        devices = ", ".join(f"{name} {count}" for name, count in self.devices.items())
        histogram = ", ".join(f"{name}: {count}" for name, count in
                              self.histogram.items())
        rows = [
            f"Items: {self.items} ({devices or 'none'}); labeled {self.labeled}, "
            f"open pool {self.open}",
            f"Classes: {histogram}",
            f"Models: {', '.join(self.models) or 'none'}",
        ]
        if self.held_out is not None:
            values = ", ".join(f"{name} {value:.3f}"
                               for name, value in (self.metrics or {}).items())
            rows.append(f"Held-out: {self.held_out} labeled item(s); current model: "
                        f"{values or 'not measured'}")
        rows.extend(audit.line() for audit in self.rounds)
        return rows


def project_status(manifest, audit=True):
    """Summarises the project.

    Args:
        manifest: the open `Manifest`.
        audit: whether to score labeled picks for the ranking audit.

    Returns:
        A `ProjectStatus`.
    """
    labels = manifest.training_labels()
    kind = project_kind(manifest.config.task)
    histogram = kind.label_counts(manifest, labels)
    devices = dict(manifest.query(
        "SELECT device, COUNT(*) FROM items GROUP BY device ORDER BY device"
    ))
    models = tuple(row[0] for row in manifest.query(
        "SELECT version FROM models ORDER BY rowid"
    ))
    truth = {item_id: label for item_id, _, label in labels}
    evidence = {e.round_id: e for e in round_audits(manifest)} if audit else {}
    rounds = tuple(
        dataclasses.replace(
            _audit_round(manifest, row, truth, audit), audit=evidence.get(row[0])
        )
        for row in manifest.query(
            "SELECT rounds.id, rounds.model_version, rounds.source, models.folder "
            "FROM rounds LEFT JOIN models ON models.version = rounds.model_version "
            "ORDER BY rounds.id"
        )
    )
    held_out, metrics = kind.held_out(manifest, audit)
    return ProjectStatus(
        held_out=held_out,
        metrics=metrics,
        items=manifest.query("SELECT COUNT(*) FROM items")[0][0],
        labeled=len(labels),
        open=len(manifest.pool()),
        devices=devices,
        histogram=histogram,
        models=models,
        rounds=rounds,
    )


def _audit_round(manifest, row, truth, audit):
    round_id, version, source, folder = row
    picks = manifest.query(
        "SELECT picks.item_id, picks.predicted_loss, items.path FROM picks "
        "JOIN items ON items.id = picks.item_id WHERE round_id = ? ORDER BY rank",
        (round_id,),
    )
    labeled = [(item_id, loss, path) for item_id, loss, path in picks
               if item_id in truth]
    base = RoundAudit(round_id, version, source, len(picks), len(labeled))
    if not audit or not labeled or folder is None:
        return base
    true_loss, error_rate = project_kind(manifest.config.task).audit_picks(
        manifest, folder, [(item_id, manifest.resolve(path), truth[item_id])
                           for item_id, _, path in labeled])
    predicted = np.array([loss for _, loss, _ in labeled])
    return dataclasses.replace(
        base,
        error_rate=error_rate,
        mean_true_loss=float(true_loss.mean()),
        spearman=_spearman(predicted, true_loss),
    )


def _spearman(a, b):
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    value = float(spearmanr(a, b).statistic)
    return None if math.isnan(value) else value
