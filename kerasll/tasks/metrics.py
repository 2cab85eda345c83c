"""The tasks' metrics, importable without the tasks (or TensorFlow).

The `Task` classes name their metrics from here, and reports that read
results.csv (the benchmarks) use the same table, so a metric is named once.
"""

from kerasll.active.records import ACCURACY, Metric

MAP50 = Metric("mAP@0.5", "map50")
PCKH = Metric("PCKh@0.5", "pckh")
OKS_AP = Metric("OKS AP", "oks_ap")

# Task kind -> (its metric, its secondary metrics).
METRICS = {
    "classification": (ACCURACY, ()),
    "detection": (MAP50, ()),
    "keypoints": (PCKH, (OKS_AP,)),
}
