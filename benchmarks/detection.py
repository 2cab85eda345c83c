"""Learning loss on detection: the paper's second experiment at CPU scale.

An SSD-style detector on scenes of real CIFAR-10 objects (`kerasll simulate
--task detection`), every strategy on shared seeds, mAP@0.5 through
pycocotools, the loss head's rank accuracy on the test scenes per cycle.

    python benchmarks/detection.py   # state in benchmarks/runs/detection/
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from selection import (  # noqa: E402
    DEFAULT_DATA,
    Regime,
    recorded,
    regime_metric,
    run_regime,
)

RUNS = HERE / "runs" / "detection"
CURVES = HERE / "curves-detection.png"

DETECTION = Regime(
    name="detection",
    title="Detection: SSD on CIFAR-10 scenes (500 -> 1,250 labeled scenes)",
    task="detection",
    dataset="cifar10",
    strategies="learning_loss,learning_loss_safe,random,entropy,coreset",
    options={
        "--scenes": "5000 500", "--initial": "500", "--budget": "250",
        "--subset": "2000", "--cycles": "4", "--epochs": "20", "--trials": "5",
    },
    deviations=(
        "data: 64x64 scenes of 1-4 CIFAR-10 objects pasted onto CIFAR-10 "
        "backgrounds (5,000 pool scenes from the train split, 500 test scenes "
        "from the test split) instead of PASCAL VOC 2007+2012;",
        "model: a small SSD (3 strided stem convolutions, 4 feature maps of 8x8 "
        "to 1x1, 340 default boxes, BatchNorm) instead of SSD300 on VGG-16;",
        "initial set 500, K = 250 from M = 2,000 per cycle, 4 cycles (500 -> "
        "1,250 scenes) instead of 1,000 + 1,000 per cycle from all of VOC;",
        "20 epochs per cycle over each labeled scene and its mirror image, SGD "
        "lr 0.1 dropped 10x at 80%, batch 32, weight decay 5e-4, the joint head "
        "detached at 60% of the epochs, from scratch each cycle; the paper "
        "trains 300 epochs at lr 0.001 with SSD's photometric and crop "
        "augmentations;",
        "entropy: mean over the image's detections after NMS (SSD's score "
        "threshold 0.01, IoU 0.45, top 200) of the entropy of each detection's "
        "class distribution; core-set: k-center on the feature maps pooled "
        "per image;",
        "mAP: VOC-style at IoU 0.5 through pycocotools (101-point interpolated "
        "AP, not VOC2007's 11-point); 5 trials.",
    ),
)


def measure_nms(images=64, repeats=3, seed=0):
    """Milliseconds per image of numpy decoding + SSD's NMS (`select_detections`).

    Random logits put every default box of every class above SSD's 0.01
    score threshold: the worst case for the greedy NMS.

    Returns:
        Dict with `boxes`, `classes`, `images` and `ms_per_image` (best of
        `repeats`).
    """
    import time

    import numpy as np

    from kerasll.detection import (
        build_ssd,
        decode_predictions,
        default_boxes_for,
        select_detections,
    )

    classes = 10
    anchors = default_boxes_for(build_ssd((64, 64, 3), classes))
    logits = np.random.default_rng(seed).normal(size=(images, len(anchors), 4 + classes + 1))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        boxes, probabilities = decode_predictions(logits.astype("float32"), anchors)
        select_detections(boxes, probabilities)
        best = min(best, time.perf_counter() - start)
    return {"boxes": len(anchors), "classes": classes, "images": images,
            "ms_per_image": 1e3 * best / images}


def measure_uncertainty_rankings(data_path, scenes=1000, epochs=20, seed=0):
    """How well each per-image uncertainty score ranks scenes by their loss.

    Trains one detector without a head on `scenes` random pool scenes of the
    benchmark's data (the benchmark's recipe), then takes the Spearman
    correlation of every measure x reduction with the true per-image
    MultiBox loss on the test scenes, next to the scene's object count.

    Returns:
        Dict with `scenes`, `map` and `spearman` ({score name: rho}).
    """
    import numpy as np

    from kerasll.active.diagnostics import spearman as spearman_of
    from kerasll.active.training import train_model
    from kerasll.tasks.detection import DetectionTask, load_detection_task

    pool, test = (int(n) for n in DETECTION.options["--scenes"].split())
    loaded = load_detection_task("cifar10", data_path, train_count=pool, test_count=test)
    labeled = np.random.default_rng(seed).choice(loaded.pool_size, scenes, replace=False)
    x, y = loaded.training_arrays(labeled)
    training = DetectionTask.training_config(epochs=epochs)
    model = train_model(
        lambda: loaded.build_model("ssd", 1.0, training.weight_decay), x, y,
        training, with_head=False, augmentation=None, seed=seed,
        loss=loaded.loss(), metrics=[], taps=loaded.taps,
    )
    items = np.arange(len(loaded.test))
    spearman = {}
    for reduction in ("mean", "max"):
        task = DetectionTask(loaded.name, loaded.train, loaded.test, reduction=reduction)
        view = task.view(model, "test", 256)
        true_loss = view.true_loss(items)
        for measure in ("entropy", "margin", "least_confidence"):
            score = view.uncertainty(items, measure)
            spearman[f"{measure}, {reduction}"] = spearman_of(true_loss, score)
    objects = [len(labels) for labels in loaded.test.labels]
    spearman["number of objects"] = spearman_of(true_loss, objects)
    return {"scenes": scenes, "map": task.evaluate(view),
            "spearman": {name: float(rho) for name, rho in spearman.items()}}


def section_figures(data, folder):
    """Runs (or resumes) the detection benchmark with its state in `folder`.

    Args:
        data: the CIFAR-10 npz.
        folder: the section's folder (the run's state and results.csv).

    Returns:
        Its tables, NMS timing and uncertainty rankings; also plots its
        curves (`CURVES`).
    """
    from kerasll.active.curves import plot_curves
    from kerasll.active.summary import format_summary, per_cycle_table

    regime, out_dir = DETECTION, folder
    records = run_regime(regime, out_dir, data)
    metric = regime_metric(regime)
    description, seconds = recorded(out_dir)
    plot_curves(records, CURVES, title=regime.title, metric=metric)
    return {
        "seconds": seconds,  # the cycles' wall times, as for selection
        "command": regime.shown_command(),
        "summary": format_summary(records, description, metric),
        "rank": per_cycle_table(
            records, "rank_accuracy", "Loss head's rank accuracy on the test scenes"
        ),
        "spearman": per_cycle_table(
            records, "head_spearman", "Loss head's Spearman with the true loss"
        ),
        "entropy_spearman": per_cycle_table(
            records, "entropy_spearman",
            "Detection entropy's Spearman with the true loss",
        ),
        "nms": measure_nms(),
        "uncertainty": measure_uncertainty_rankings(data),
    }


def _summary_sections(summary):
    """summary.md of a regime without its title, headings two levels down."""
    lines = summary.splitlines()
    body = lines[lines.index("") + 1:] if lines and lines[0].startswith("# ") else lines
    return "\n".join("##" + line if line.startswith("## ") else line for line in body)


DETECTION_READING = """### What the detection run says

- **No strategy separates from random at these budgets.** From 500 to 1,250
  labeled scenes (mAP 0.13 -> 0.21, against the paper's 0.71 at 10,000 VOC
  images) every strategy ends within 0.006 mAP of `random` on average, with
  every Wilcoxon p at 0.31 or above (5 trials; the floor is 0.0625).
- **Joint training costs the detector what it cost the classifier.** On the
  same 500 random scenes and seed, the paper's joint schedule gives mAP 0.087
  against 0.132 without a head, and `learning_loss` has the lowest area under
  the curve (-0.020 against random, lower in all 5 trials, p = 0.062); it
  catches up by 1,250 scenes.
- **`learning_loss_safe` is the best of the five, by a hint.** Its detector is
  the plain one; its head earned 14% then 21% of the batches on its audits;
  it has the best mean final mAP (+0.005, 3/5 trials) and area (+0.003):
  within noise, as on CIFAR-10.
- **The head learns a task-agnostic signal; detection entropy does not.**
  The head's test rank accuracy rises from 0.52-0.54 to 0.58-0.61 and its
  Spearman with the per-image MultiBox loss from 0.04-0.17 to 0.30-0.37,
  while the mean entropy over an image's detections correlates negatively
  with that loss (Spearman -0.08 to -0.17): it ranks these scenes the wrong
  way round, and `entropy` is the one strategy behind random in 4 of 5 trials.
  The table above shows why: averaging over the detections (SSD keeps every
  box above a 0.01 score) turns every measure negative, taking the max makes
  them weakly positive (+0.05 to +0.09), and the plain object count (+0.31)
  ranks better than any of them; the head reaches +0.30 to +0.37. The
  benchmark keeps the paper's mean; `DetectionTask(reduction="max")` is the
  other choice.
"""


def _uncertainty_rankings_markdown(figures):
    """The table of `measure_uncertainty_rankings`' answer, with its method."""
    rows = "\n".join(f"| {name} | {rho:+.3f} |"
                     for name, rho in figures["spearman"].items())
    return f"""### Which per-image uncertainty ranks scenes by their loss?

One detector without a head, trained with the benchmark's recipe on
{figures['scenes']:,} random pool scenes (seed 0; test mAP@0.5
{figures['map']:.3f}), scored on the 500 test scenes: Spearman of each
per-image score with the true per-image MultiBox loss
(`benchmarks/detection.py: measure_uncertainty_rankings`, run by the same
command). The benchmark's `entropy` is the first row (the paper's
detection baseline averages over the detected boxes).

| per-image score (measure, reduction over detections) | Spearman with the loss |
|---|---|
{rows}
"""


def section_markdown(figures):
    """RESULTS.md §5 from `section_figures`' answer (`run.Section.markdown`)."""
    regime = DETECTION
    deviations = "\n".join(f"- {line}" for line in regime.deviations)
    return "\n".join([
        "## 5. Detection: does the head generalise beyond classification?",
        "",
        "The paper's second experiment (SSD on PASCAL VOC: learning loss 0.7338 "
        "mAP, entropy 0.7222, core-set 0.7171, random 0.7117 at 10k images) at "
        "CPU scale. Command: `python benchmarks/run.py --sections detection` "
        "(runs `python benchmarks/detection.py`; an interrupted run resumes), i.e.",
        "",
        f"    {figures['command']}",
        "",
        f"({figures['seconds'] / 60:.0f} min: the cycles' wall times added up.) "
        "Every strategy shares each trial's initial scenes, training seeds and "
        "candidate subsets; p-values are two-sided Wilcoxon signed-rank tests of "
        "the per-trial differences to `random`.",
        "",
        "Deviations from the paper's protocol (PAPER.md):",
        deviations,
        "",
        _summary_sections(figures["summary"]).replace("\n#### ", "\n### "),
        "",
        "\n".join("#" + line if line.startswith("## ") else line
                  for line in figures["rank"] + figures["spearman"]
                  + figures["entropy_spearman"]),
        "",
        "Rank accuracy: share of the test pairs (i, n-1-i) the head orders like "
        "the true per-image MultiBox loss (0.5 = chance); Spearman over all test "
        "scenes. Strategies without a head have none.",
        "",
        "NMS runs in numpy outside the graph (the same code behind Keras and the "
        "device scorer, `kerasll_serving.detections`): decoding and SSD's "
        f"per-class NMS took {figures['nms']['ms_per_image']:.1f} ms per image "
        f"({figures['nms']['boxes']} default boxes, {figures['nms']['classes']} "
        "classes, random logits so that every box passes the 0.01 score "
        f"threshold: the worst case; best of 3 over {figures['nms']['images']} "
        "images, measured after the runs).",
        "",
        "![mAP vs labeled scenes](curves-detection.png)",
        "",
        _uncertainty_rankings_markdown(figures["uncertainty"]),
        "",
        DETECTION_READING,
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RUNS))
    parser.add_argument("--data", default=DEFAULT_DATA)
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
    records = run_regime(DETECTION, Path(args.out), args.data)
    from kerasll.active.summary import format_summary

    print(format_summary(records, metric=regime_metric(DETECTION)))


if __name__ == "__main__":
    main()
