"""Learning loss on detection: the paper's second experiment at CPU scale.

An SSD-style detector on scenes of real CIFAR-10 objects (`kerasll simulate
--task detection`), every strategy on shared seeds, mAP@0.5 through
pycocotools, the loss head's rank accuracy on the test scenes per cycle.

    python benchmarks/detection.py --out benchmarks/output/detection
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from selection import DEFAULT_DATA, Regime, regime_metric, run_regime  # noqa: E402

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/output/detection")
    parser.add_argument("--data", default=DEFAULT_DATA)
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
    records = run_regime(DETECTION, Path(args.out), args.data)
    from kerasll.active.summary import format_summary

    print(format_summary(records, metric=regime_metric(DETECTION)))


if __name__ == "__main__":
    main()
