"""Does learning loss pay on real CIFAR-10? Selection quality, side by side.

Runs `kerasll simulate` on CIFAR-10 with every strategy on shared seeds and
turns its `results.csv` into the tables of RESULTS.md: accuracy per cycle
(mean and spread), final accuracy, area under the accuracy-vs-labels curve,
the paired difference to `random` per trial, and the head's rank accuracy.

    python benchmarks/selection.py --out benchmarks/output/selection          # CPU protocol
    python benchmarks/selection.py --full --out benchmarks/output/paper       # paper, for a GPU
"""

import argparse
import collections
import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path

STRATEGIES = "learning_loss,learning_loss_diverse,random,entropy,coreset"

# A protocol that finishes in under an hour on 2 CPU cores. Initial set,
# budget and subset are scaled together (1/2 of the paper's); the model is the
# CPU-sized CNN at half width; epochs per cycle are cut from 200 to 12, with
# the paper's schedule kept as fractions (lr drop and head detach at 80% and
# 60% of the epochs).
CPU_PROTOCOL = {
    "--model": "small_cnn",
    "--width": "0.5",
    "--initial": "500",
    "--budget": "500",
    "--subset": "5000",
    "--cycles": "5",
    "--epochs": "12",
    "--trials": "3",
}

# The paper's CIFAR-10 settings (ResNet-18, 10 cycles of 1,000 from 1,000,
# subset 10,000, 200 epochs, 5 trials in its figure).
PAPER_PROTOCOL = {
    "--model": "resnet18",
    "--initial": "1000",
    "--budget": "1000",
    "--subset": "10000",
    "--cycles": "10",
    "--epochs": "200",
    "--trials": "5",
}


def simulate_command(out_dir, data_path, full=False, resume=False, seed=0):
    """The `kerasll simulate` command line of the chosen protocol."""
    protocol = PAPER_PROTOCOL if full else CPU_PROTOCOL
    command = [
        str(Path(sys.executable).with_name("kerasll")), "simulate",
        "--dataset", "cifar10", "--data", str(data_path),
        "--strategies", STRATEGIES, "--seed", str(seed), "--out", str(out_dir),
    ]
    for flag, value in protocol.items():
        command += [flag, value]
    if resume:
        command.append("--resume")
    return command


def read_results(path):
    """Rows of results.csv with numeric fields converted."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key in ("trial", "cycle", "labeled"):
                row[key] = int(row[key])
            row["accuracy"] = float(row["accuracy"])
            rank = row.get("rank_accuracy", "")
            row["rank_accuracy"] = float(rank) if rank not in ("", None) else None
            rows.append(row)
    return rows


def _trapezoid_area(labeled, accuracy):
    """Area under accuracy vs labels, normalised by the label range."""
    area = sum(
        (labeled[i + 1] - labeled[i]) * (accuracy[i] + accuracy[i + 1]) / 2
        for i in range(len(labeled) - 1)
    )
    span = labeled[-1] - labeled[0]
    return area / span if span else accuracy[0]


def _mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def tables(rows):
    """Markdown tables of the selection benchmark.

    Args:
        rows: rows of results.csv from `read_results`.

    Returns:
        Markdown text with the per-cycle, final, paired-difference and rank
        accuracy tables.
    """
    by_run = collections.defaultdict(list)
    for row in rows:
        by_run[(row["strategy"], row["trial"])].append(row)
    for run in by_run.values():
        run.sort(key=lambda row: row["cycle"])
    strategies = sorted({s for s, _ in by_run}, key=STRATEGIES.split(",").index)
    trials = sorted({t for _, t in by_run})
    cycles = sorted({row["cycle"] for row in rows})
    labels = {row["cycle"]: row["labeled"] for row in rows}

    def per_cycle_table(metric, names):
        rows = ["| strategy | " + " | ".join(str(labels[c]) for c in cycles) + " |",
                "|---" * (len(cycles) + 1) + "|"]
        for strategy in names:
            cells = [
                _mean_sd([r[metric] for t in trials for r in by_run[(strategy, t)]
                          if r["cycle"] == c])
                for c in cycles
            ]
            rows.append(f"| {strategy} | " + " | ".join(cells) + " |")
        return rows

    lines = ["Test accuracy after the last epoch of each cycle (mean ± sd over trials):", ""]
    lines += per_cycle_table("accuracy", strategies)

    def final(strategy, trial):
        return by_run[(strategy, trial)][-1]["accuracy"]

    def area(strategy, trial):
        run = by_run[(strategy, trial)]
        return _trapezoid_area([r["labeled"] for r in run], [r["accuracy"] for r in run])

    lines += ["", "Final cycle, area under the curve, and paired difference to random "
              "(same trial, same initial set):", ""]
    lines.append("| strategy | final accuracy | AUC | final - random per trial | "
                 "mean final - random |")
    lines.append("|---|---|---|---|---|")
    for strategy in strategies:
        diffs = (
            [final(strategy, t) - final("random", t) for t in trials]
            if "random" in strategies else []
        )
        per_trial = ", ".join(f"{d:+.4f}" for d in diffs) or "-"
        mean_diff = f"{statistics.mean(diffs):+.4f}" if diffs else "-"
        lines.append(
            f"| {strategy} | {_mean_sd([final(strategy, t) for t in trials])} | "
            f"{_mean_sd([area(strategy, t) for t in trials])} | {per_trial} | {mean_diff} |"
        )

    ranked = [s for s in strategies if any(
        r["rank_accuracy"] is not None for t in trials for r in by_run[(s, t)])]
    if ranked:
        lines += ["", "The head's rank accuracy on the test set (share of pairs ordered "
                  "like the true loss; 0.5 is chance):", ""]
        lines += per_cycle_table("rank_accuracy", ranked)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/output/selection")
    parser.add_argument("--data", default=os.environ.get(
        "KERASLL_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/cifar10.npz")))
    parser.add_argument("--full", action="store_true",
                        help="the paper's settings (ResNet-18, 200 epochs): a GPU job")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--report-only", action="store_true",
                        help="only print the tables of an existing run")
    args = parser.parse_args()
    if not args.report_only:
        if not Path(args.data).is_file():
            sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
        subprocess.run(simulate_command(args.out, args.data, args.full, args.resume),
                       check=True)
    print(tables(read_results(Path(args.out) / "results.csv")))


if __name__ == "__main__":
    main()
