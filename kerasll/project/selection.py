"""`select`: a round of picks, scored here or merged from devices.

Strategies are the simulator's (`kerasll.active.strategies`), by the same
specs and parameters: `learning_loss_safe` by default, whose head earns its
share of each round from the audit of earlier rounds (`kerasll.project.audits`),
and which is `random`, item for item, until it has.

Scored here (`select_with_strategy`): a classification project's current
model's ONNX file scores the pool (items neither labeled nor picked before)
with onnxruntime, exactly as a device would: predicted loss and class
probabilities, the view the strategy reads. A strategy that needs
penultimate features (coreset, badge, diverse) is refused: the exported
model does not output them. A detection or keypoint project's saved Keras
learner scores it through its task's model view
(`kerasll.project.kinds`: predicted loss, uncertainty, pooled features),
and each pick records the model's boxes or keypoints as the pre-annotation
`tasks` writes.

Merged: each device ran `kerasll-score models/<version>/model.onnx POOL` and
sent back its picks file. Each pick is matched to a project item (see
`kerasll.project.picks`); items are deduplicated (the same content from two
devices is one item), labeled or already picked items are dropped. The safe
rule takes its head share of K from the devices' top picks by predicted
loss and the rest from their uniform audit samples (`kerasll-score --audit
N`: the N smallest audit keys over all devices); a top-K strategy
(`learning_loss`) takes the global top K by predicted loss. The picks carry no model
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
from kerasll.project.kinds import project_kind
from kerasll.project.manifest import now
from kerasll.project.model_versions import MODEL_FILE
from kerasll.project.picks import ItemIndex, number, parse_picks_argument, read_picks

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
        role: "pick" (chosen by the score) or "audit" (drawn at random to
            audit it).
        score: the strategy's score of the item (None without one).
    """

    item_id: int
    predicted_loss: float
    prediction: str = None
    confidence: float = None
    device: str = None
    role: str = "pick"
    score: float = None


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


DEFAULT_STRATEGY = "learning_loss_safe"
_TOP_BY_PREDICTED_LOSS = ("predicted_loss", "top")


def pool_view(model_path, paths, batch_size=256):
    """What a strategy may read of pool images, from an exported classifier.

    Args:
        model_path: the `.onnx` file.
        paths: image files.
        batch_size: images decoded and scored at once.

    Returns:
        A `kerasll.active.view.ArrayModelView` over `paths` (by position)
        with class probabilities and predicted losses.
    """
    from kerasll_serving.model import ScoringModel
    from kerasll_serving.predictions import softmax
    from kerasll_serving.preprocess import InputAdapter

    from kerasll.active.view import ArrayModelView

    model = ScoringModel(model_path, providers="cpu")
    adapter = InputAdapter(model.contract)
    losses, outputs = [], []
    for start in range(0, len(paths), batch_size):
        pixels = np.stack([adapter.decode_image(p) for p in paths[start:start + batch_size]])
        loss, output = model.run(adapter.prepare(pixels))
        losses.append(np.asarray(loss, dtype=np.float64))
        outputs.append(np.asarray(output, dtype=np.float64))
    output = np.concatenate(outputs)
    probabilities = softmax(output) if model.contract.from_logits else output
    return ArrayModelView(probabilities=probabilities, predicted_loss=np.concatenate(losses))


def _strategy(spec):
    from kerasll.active.errors import ExperimentError
    from kerasll.active.strategies import get_strategy

    try:
        return get_strategy(spec)
    except ExperimentError as error:
        raise ProjectError(str(error)) from error


def _next_round(manifest):
    return manifest.query("SELECT COALESCE(MAX(id), 0) + 1 FROM rounds")[0][0]


def select_with_strategy(manifest, k, spec=DEFAULT_STRATEGY, seed=0):
    """Scores the pool with the current model and records a strategy's picks.

    The round's random numbers come from (seed, round number): its random
    order of the pool gives the audit slice. The safe rule's history is the
    audit of this strategy's earlier rounds, as far as people labeled it.

    Args:
        manifest: the open `Manifest`.
        k: picks to keep (at most the pool).
        spec: a strategy spec (`kerasll.active.strategies.get_strategy`).
        seed: seed of the round's random numbers.

    Returns:
        A `RoundResult`.

    Raises:
        ProjectError: no trained model, an empty pool, an unknown strategy,
            or one that reads what the exported model does not output.
    """
    from kerasll.active.batch import Draw
    from kerasll.active.errors import ExperimentError
    from kerasll.active.seeds import generator
    from kerasll.active.view import MissingOutputError
    from kerasll.project.audits import round_audits

    strategy = _strategy(spec)
    version, model_path = _current_model(manifest)
    pool = _open_pool(manifest)
    paths = [os.fspath(path) for _, path in pool]
    kind = project_kind(manifest.config.task)
    view = kind.pool_view(manifest, model_path, paths)
    round_number = _next_round(manifest)
    draw = Draw(
        generator(seed, "keys", strategy.stream, round_number).random(len(pool)),
        generator(seed, "draw", strategy.stream, round_number),
    )
    history = [e.audit for e in round_audits(manifest, strategy.name)]
    try:
        selection = strategy.select(view, np.arange(len(pool)), min(k, len(pool)),
                                    np.zeros(0, dtype=np.int64), draw, history)
    except MissingOutputError as error:
        raise kind.refuse_strategy(strategy.name, error) from error
    except ExperimentError as error:  # e.g. a measure heatmaps do not have.
        raise ProjectError(str(error)) from error
    audited = set() if selection.audit is None else set(selection.audit.tolist())
    chosen = selection.indices
    scores = strategy.score(view, chosen)
    predicted_loss = view.predicted_loss(chosen)
    predictions, confidences = kind.predictions(manifest, view, chosen)
    picks = [
        Pick(pool[index][0], float(loss), prediction, confidence,
             role="audit" if index in audited else "pick",
             score=None if scores is None else float(score))
        for index, loss, prediction, confidence, score in zip(
            chosen, predicted_loss, predictions, confidences,
            scores if scores is not None else chosen)
    ]
    notes = []
    if selection.audit is not None:
        notes.append(f"{strategy.name}: {len(picks) - len(audited)} by score, "
                     f"{len(audited)} random audit item(s)")
    return _record(manifest, version, k, f"scored here, {strategy.name} (seed {seed})",
                   picks, len(pool), notes, strategy=strategy.name)


def _text(value):
    return None if value is None else str(value)


def merge_picks(manifest, k, pick_files, spec=DEFAULT_STRATEGY):
    """Merges device picks into one round under a strategy's rule.

    The safe rule (`learning_loss_safe`, `predicted_loss+safe`) gives its
    head share of K (from the audit of its earlier rounds) to the devices'
    highest predicted losses and the rest to their audit samples, smallest
    audit key first (a uniform sample of every device's pool together).
    Top-K by predicted loss (`learning_loss`, `learning_loss_decoupled`,
    `predicted_loss+top`) takes the global top K. Devices return nothing
    else, so other strategies are refused.

    Args:
        manifest: the open `Manifest`.
        k: picks to keep.
        pick_files: `FILE` or `NAME=FILE` arguments (see
            `parse_picks_argument`).
        spec: a strategy spec.

    Returns:
        A `RoundResult`.

    Raises:
        PicksError: unknown items, picks whose predicted losses show another
            model version, or too few audit items for the safe rule.
        ProjectError: no trained model, or a strategy devices cannot serve.
    """
    from kerasll.active.batch_rules import Safe
    from kerasll.project.audits import round_audits

    strategy = _strategy(spec)
    rule = getattr(strategy, "rule", None)
    score = getattr(strategy, "score_function", None)
    safe = isinstance(rule, Safe) and score is not None and score.name == "predicted_loss"
    top = score is not None and (score.name, rule.name) == _TOP_BY_PREDICTED_LOSS
    if not (safe or top):
        raise ProjectError(
            "Expected a strategy devices can serve with their top picks and audit "
            "samples: learning_loss_safe (or predicted_loss+safe) or top-K by "
            f"predicted loss (learning_loss). Received {strategy.name!r}; score the "
            "pool here instead (select without --picks)"
        )
    version, model_path = _current_model(manifest)
    kind = project_kind(manifest.config.task)
    index = ItemIndex(manifest)
    best, audits = {}, {}
    for argument in pick_files:
        device, path = parse_picks_argument(argument, index.devices)
        for row in read_picks(path):
            item_id = index.find(str(row["item"]), device)
            # A class is a classifier's prediction; boxes and keypoints are
            # pre-annotated by `select` scoring here only.
            prediction, confidence = kind.device_prediction(row)
            pick = Pick(item_id, row["predicted_loss"], prediction, confidence,
                        device or Path(path).stem, score=row["predicted_loss"])
            role = str(row.get("role") or "pick")
            if "audit" in role.split("+"):
                key = number(row.get("audit_key"))
                if item_id not in audits or key < audits[item_id][0]:
                    audits[item_id] = (key, pick, path)
            if "pick" not in role.split("+"):
                continue
            kept = best.get(item_id)
            if kept is None or pick.predicted_loss > kept[0].predicted_loss:
                best[item_id] = (pick, path)
    checked = {item: (pick, path) for item, (_, pick, path) in audits.items()}
    _check_version(manifest, version, model_path, {**checked, **best})
    open_items = {item_id for item_id, _ in manifest.pool()}
    picks = [pick for pick, _ in best.values() if pick.item_id in open_items]
    notes = []
    if len(picks) < len(best):
        notes.append(f"{len(best) - len(picks)} labeled or already picked item(s) "
                     "dropped")
    source = "devices: " + ", ".join(pick_files)
    if top:
        return _record(manifest, version, k, source, picks, len(best), notes,
                       strategy=None)
    share = rule.share([e.audit for e in round_audits(manifest, strategy.name)])
    from_head = int(round(share * k))
    sample = sorted((key, pick.item_id, pick) for key, pick, _ in audits.values()
                    if pick.item_id in open_items)
    audited = [dataclasses.replace(pick, role="audit")
               for _, _, pick in sample[: k - from_head]]
    if len(audited) < k - from_head:
        raise PicksError(
            f"Expected at least {k - from_head} open audit items from the devices "
            f"for {strategy.name} (head share {share:.2f} of K={k}). Received "
            f"{len(audited)}; run kerasll-score with --audit {k} (or more)"
        )
    taken = {pick.item_id for pick in audited}
    head = sorted((p for p in picks if p.item_id not in taken),
                  key=lambda p: (-p.predicted_loss, p.item_id))[:from_head]
    notes.append(f"{strategy.name}: {len(head)} by predicted loss (head share "
                 f"{share:.2f}), {len(audited)} from the devices' audit samples")
    return _record(manifest, version, k, source, head + audited,
                   len(set(best) | set(audits)), notes, strategy=strategy.name)


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


def _record(manifest, version, k, source, picks, candidates, notes, strategy=None):
    """Records a round. Without `strategy` the picks are ranked by predicted
    loss and cut to K; with one, they are the strategy's, in its order."""
    scored = [pick for pick in picks
              if pick.predicted_loss is None or not math.isnan(pick.predicted_loss)]
    if len(scored) < len(picks):
        notes = [*notes, f"{len(picks) - len(scored)} NaN score(s) dropped"]
    if not scored:
        raise ProjectError(
            f"Expected at least one item to pick. Received {candidates} "
            "candidate(s), none open (unlabeled, not picked before) with a score"
        )
    ranked = scored if strategy is not None else sorted(
        scored, key=lambda pick: (-(pick.predicted_loss or 0.0), pick.item_id)
    )[:k]
    with manifest.transaction() as connection:
        cursor = connection.execute(
            "INSERT INTO rounds (model_version, k, source, created_at, strategy) "
            "VALUES (?, ?, ?, ?, ?)",
            (version, k, source, now(), strategy),
        )
        round_id = cursor.lastrowid
        connection.executemany(
            "INSERT INTO picks (round_id, item_id, rank, predicted_loss, prediction, "
            "confidence, device, role, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (round_id, pick.item_id, rank, pick.predicted_loss, pick.prediction,
                 pick.confidence, pick.device, pick.role, pick.score)
                for rank, pick in enumerate(ranked, 1)
            ],
        )
    return RoundResult(round_id, version, tuple(ranked), candidates, tuple(notes))
