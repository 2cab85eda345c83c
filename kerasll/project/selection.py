"""`select`: a round of picks, scored here or merged from devices.

Scored here: the current model's ONNX file scores the pool (items neither
labeled nor picked before) with `kerasll_serving.PoolScorer`, exactly as a
device would, and the top K become a round.

Merged: each device ran `kerasll-score models/<version>/model.onnx POOL` and
sent back its picks file. Each pick is matched to a project item (see
`kerasll.project.picks`); items are deduplicated (the same content from two
devices is one item), labeled or already picked items are dropped, and the
global top K by predicted loss become a round. The picks carry no model
version, so it is checked by re-scoring the picked items with the current
model: a predicted loss that differs means the picks came from another model.
"""

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from kerasll.project.errors import PicksError, ProjectError
from kerasll.project.manifest import now
from kerasll.project.picks import ItemIndex, number, parse_picks_argument, read_picks
from kerasll.project.training import MODEL_FILE

# |device - here| allowed between predicted losses of the same model: the
# same graph on another provider or Pillow build differs by far less, a
# model trained on other labels by far more.
LOSS_RTOL = 1e-3
LOSS_ATOL = 1e-3


@dataclasses.dataclass(frozen=True)
class Pick:
    """One picked item of a round.

    Attributes:
        item_id: the project item.
        predicted_loss: its predicted loss.
        prediction: the model's class for it (or None).
        confidence: the model's confidence (or None).
        device: the device whose picks named it (None when scored here).
    """

    item_id: int
    predicted_loss: float
    prediction: str = None
    confidence: float = None
    device: str = None


@dataclasses.dataclass(frozen=True)
class RoundResult:
    """What `select` recorded.

    Attributes:
        round_id: the new round.
        model_version: the model whose scores picked it.
        picks: the `Pick`s, best first.
        candidates: items that could have been picked.
        notes: what was dropped and why.
    """

    round_id: int
    model_version: str
    picks: tuple
    candidates: int
    notes: tuple = ()

    def summary(self):
        """One line for the CLI."""
        how = "at random" if self.model_version is None else (
            f"with model {self.model_version}")
        line = (
            f"Round {self.round_id}: picked {len(self.picks)} of {self.candidates} "
            f"candidate(s) {how}"
        )
        return "; ".join([line, *self.notes])


def _current_model(manifest):
    current = manifest.current_model()
    if current is None:
        raise ProjectError(
            "Expected a trained model to score with. Received a project with none; "
            "run `kerasll project train` first"
        )
    version, folder = current
    return version, folder / MODEL_FILE


def score_items(model_path, paths, k=None):
    """Scores image files with an exported model, as a device would.

    `kerasll_serving.PoolScorer` streams the files (a temporary list file)
    and keeps only the top K in memory; no TensorFlow is involved.

    Args:
        model_path: the `.onnx` file.
        paths: absolute image paths.
        k: how many of the highest predicted losses to keep; default all.

    Returns:
        (dict path -> `kerasll_serving.Pick`, number of unreadable files).
    """
    from kerasll_serving import PoolScorer

    with tempfile.TemporaryDirectory(prefix="kerasll-project-") as folder:
        listing = Path(folder, "pool.txt")
        listing.write_text("".join(f"{path}\n" for path in paths), encoding="utf-8")
        scorer = PoolScorer(model_path, providers="cpu")
        result = scorer.score(listing, k=min(k or len(paths), len(paths)),
                              progress=False)
    return {pick.item: pick for pick in result.picks}, result.skipped


def _open_pool(manifest):
    pool = manifest.pool()
    if not pool:
        raise ProjectError(
            "Expected unlabeled items that no round picked yet. Received an empty "
            "pool; add items with `kerasll project add`"
        )
    return pool


def select_here(manifest, k):
    """Scores the pool with the current model and records its top K.

    Args:
        manifest: the open `Manifest`.
        k: picks to keep.

    Returns:
        A `RoundResult`.

    Raises:
        ProjectError: no trained model, or an empty pool.
    """
    version, model_path = _current_model(manifest)
    pool = _open_pool(manifest)
    scored, skipped = score_items(model_path, [os.fspath(path) for _, path in pool],
                                  k)
    picks = []
    for item_id, path in pool:
        pick = scored.get(os.fspath(path))
        if pick is not None:
            picks.append(Pick(item_id, pick.predicted_loss, _text(pick.prediction),
                              pick.confidence))
    notes = [f"{skipped} unreadable item(s) skipped"] if skipped else []
    return _record(manifest, version, k, "scored here", picks, len(pool), notes)


def select_random(manifest, k, seed=0):
    """Picks K pool items at random: the cold start, before any model.

    Args:
        manifest: the open `Manifest`.
        k: picks to keep.
        seed: seed of the draw.

    Returns:
        A `RoundResult` whose model version and predicted losses are None.

    Raises:
        ProjectError: an empty pool.
    """
    pool = _open_pool(manifest)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pool), size=min(k, len(pool)), replace=False))
    picks = [Pick(pool[index][0], None) for index in chosen]
    return _record(manifest, None, k, f"at random (seed {seed})", picks, len(pool), [])


def _text(value):
    return None if value is None else str(value)


def merge_picks(manifest, k, pick_files):
    """Merges device picks into one round of the global top K.

    Args:
        manifest: the open `Manifest`.
        k: picks to keep.
        pick_files: `FILE` or `NAME=FILE` arguments (see
            `parse_picks_argument`).

    Returns:
        A `RoundResult`.

    Raises:
        PicksError: unknown items, or picks whose predicted losses show
            another model version.
        ProjectError: no trained model.
    """
    version, model_path = _current_model(manifest)
    index = ItemIndex(manifest)
    best = {}
    for argument in pick_files:
        device, path = parse_picks_argument(argument, index.devices)
        for row in read_picks(path):
            item_id = index.find(str(row["item"]), device)
            pick = Pick(item_id, row["predicted_loss"], row.get("prediction") or None,
                        number(row.get("confidence")), device or Path(path).stem)
            kept = best.get(item_id)
            if kept is None or pick.predicted_loss > kept[0].predicted_loss:
                best[item_id] = (pick, path)
    _check_version(manifest, version, model_path, best)
    open_items = {item_id for item_id, _ in manifest.pool()}
    picks = [pick for pick, _ in best.values() if pick.item_id in open_items]
    notes = []
    if len(picks) < len(best):
        notes.append(f"{len(best) - len(picks)} labeled or already picked item(s) "
                     "dropped")
    return _record(manifest, version, k, "devices: " + ", ".join(pick_files), picks,
                   len(best), notes)


def _check_version(manifest, version, model_path, best):
    """Re-scores the picked items; refuses picks of another model version."""
    paths = {
        item_id: os.fspath(manifest.resolve(path))
        for item_id, path in manifest.query("SELECT id, path FROM items")
    }
    scored, _ = score_items(model_path, sorted({paths[i] for i in best}))
    for item_id, (pick, source) in best.items():
        here = scored.get(paths[item_id])
        if here is None or math.isnan(pick.predicted_loss):
            continue
        if not np.isclose(pick.predicted_loss, here.predicted_loss, rtol=LOSS_RTOL,
                          atol=LOSS_ATOL):
            raise PicksError(
                f"Expected picks scored by the current model {version}. Received "
                f"{source!r}, whose predicted loss {pick.predicted_loss:.6g} for "
                f"{paths[item_id]!r} differs from the current model's "
                f"{here.predicted_loss:.6g}: it was scored by another model; "
                f"re-score with {model_path}"
            )


def _record(manifest, version, k, source, picks, candidates, notes):
    scored = [pick for pick in picks
              if pick.predicted_loss is None or not math.isnan(pick.predicted_loss)]
    if len(scored) < len(picks):
        notes = [*notes, f"{len(picks) - len(scored)} NaN score(s) dropped"]
    if not scored:
        raise ProjectError(
            f"Expected at least one item to pick. Received {candidates} "
            "candidate(s), none open (unlabeled, not picked before) with a score"
        )
    ranked = sorted(scored, key=lambda pick: (-(pick.predicted_loss or 0.0),
                                              pick.item_id))[:k]
    with manifest.transaction() as connection:
        cursor = connection.execute(
            "INSERT INTO rounds (model_version, k, source, created_at) "
            "VALUES (?, ?, ?, ?)",
            (version, k, source, now()),
        )
        round_id = cursor.lastrowid
        connection.executemany(
            "INSERT INTO picks (round_id, item_id, rank, predicted_loss, prediction, "
            "confidence, device) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (round_id, pick.item_id, rank, pick.predicted_loss, pick.prediction,
                 pick.confidence, pick.device)
                for rank, pick in enumerate(ranked, 1)
            ],
        )
    return RoundResult(round_id, version, tuple(ranked), candidates, tuple(notes))
