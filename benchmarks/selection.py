"""Does learning loss pay, and when? Selection quality in three regimes.

Runs `kerasll simulate` once per regime with every strategy on shared seeds
and reads its results back from `results.csv` (`kerasll.active.records`); the
tables here are built as `summary.md`'s are (one home for the statistics):

- `cifar10-cold`: real CIFAR-10 from 500 to 2,500 labels, models at 27-47%
  accuracy: the cold-start regime the paper's method is not built for;
- `cifar10-warm`: real CIFAR-10 from 5,000 labels on, models above 65%: the
  regime where the paper's curve has learning loss ahead of random;
- `digits`: the embedded 8x8 digits, accurate models, 10 trials;
- `cifar10-*-decoupled`: `learning_loss_decoupled` on the same protocols and
  seeds, paired with the runs above (the cost of joint training, isolated).

    python benchmarks/selection.py --regimes digits --out benchmarks/output/selection
    python benchmarks/selection.py --paper --out benchmarks/output/paper   # a GPU job
"""

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

STRATEGIES = "learning_loss,learning_loss_safe,random,random_control,entropy,coreset"
DIGITS_STRATEGIES = (
    "learning_loss,learning_loss_safe,learning_loss_decoupled,random,random_control,"
    "entropy,coreset"
)
DEFAULT_DATA = os.environ.get(
    "KERASLL_DATA",
    str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"),
)


@dataclasses.dataclass(frozen=True)
class Regime:
    """One `kerasll simulate` protocol and what it changes from the paper.

    Attributes:
        name: the regime's key.
        title: a heading for RESULTS.md.
        dataset: `--dataset` value.
        strategies: `--strategies` value.
        options: the other simulate options, flag to value ("" for a flag).
        deviations: how it departs from the paper's protocol (PAPER.md).
        extends: the regime whose runs this one adds strategies to. Seeds of
            the initial sets, training and candidate subsets depend on the
            trial and cycle only, so runs of two experiments with the same
            protocol are paired exactly as runs of one.
        task: `--task` value ("classification" or "detection").
    """

    name: str
    title: str
    dataset: str
    strategies: str
    options: dict
    deviations: tuple
    extends: str = None
    task: str = "classification"

    def command(self, out_dir, data_path=None, resume=False, seed=0):
        """The `kerasll simulate` command line of this regime."""
        command = [
            str(Path(sys.executable).with_name("kerasll")), "simulate",
            "--task", self.task, "--dataset", self.dataset,
            "--strategies", self.strategies, "--seed", str(seed),
            "--out", str(out_dir),
        ]
        if self.dataset == "cifar10":
            command += ["--data", str(data_path)]
        for flag, value in self.options.items():
            command += [flag] + value.split()
        if resume:
            command.append("--resume")
        return command

    def shown_command(self):
        """The command as a reader would type it."""
        options = " ".join(f"{k} {v}".strip() for k, v in self.options.items())
        task = "" if self.task == "classification" else f"--task {self.task} "
        return (f"kerasll simulate {task}--dataset {self.dataset} --strategies "
                f"{self.strategies} {options}")


_JPEG = ("The CIFAR-10 copy is JPEG-decoded (see its README), so absolute "
         "accuracies are not comparable with published numbers.")

REGIMES = {
    regime.name: regime
    for regime in (
        Regime(
            name="cifar10-cold",
            title="CIFAR-10, cold start (500 -> 2,500 labels)",
            dataset="cifar10",
            strategies=STRATEGIES,
            options={
                "--model": "small_cnn", "--width": "0.5", "--initial": "500",
                "--budget": "500", "--subset": "5000", "--cycles": "5",
                "--epochs": "12", "--trials": "3",
            },
            deviations=(
                "model: the CPU-sized CNN at half width instead of ResNet-18;",
                "initial set 500, K = 500, M = 5,000 (the paper's 1,000 / 1,000 / "
                "10,000 halved), 5 cycles (500 -> 2,500 labels) instead of 10;",
                "12 epochs per cycle instead of 200, the schedule's shape kept (lr "
                "0.1 dropped 10x at 80% of the epochs, head detached at 60%);",
                "3 trials instead of 5; every cycle retrains from scratch (the "
                "paper's code warm-starts).",
                _JPEG,
            ),
        ),
        Regime(
            name="cifar10-warm",
            title="CIFAR-10, accurate models (5,000 -> 8,000 labels)",
            dataset="cifar10",
            strategies=STRATEGIES,
            options={
                "--model": "small_cnn", "--width": "1.0", "--initial": "5000",
                "--budget": "1000", "--subset": "10000", "--cycles": "4",
                "--epochs": "20", "--warm-start": "", "--warm-start-epochs": "6",
                "--trials": "8",
            },
            deviations=(
                "model: the CPU-sized CNN (full width) instead of ResNet-18;",
                "initial set 5,000 instead of 1,000 (so the curve starts where the "
                "paper's gains appear), K = 1,000 and M = 10,000 as in the paper, "
                "4 cycles (5,000 -> 8,000 labels) instead of 10;",
                "20 epochs in the first cycle; later cycles warm-start from the "
                "previous weights (as the paper's code does) for 6 epochs each, "
                "instead of 200 epochs per cycle, with the schedule's shape kept "
                "(lr 0.1 dropped 10x at 80% of each cycle's epochs, the joint head "
                "detached at 60%);",
                "the first cycle's model is trained once per trial and way of "
                "training (plain, joint head, decoupled head) and shared by the "
                "strategies that train that way (deterministic: same numbers as "
                "training it for each);",
                "8 paired trials instead of the paper's 5 (the evidence standard "
                "asks for 8 before a claim).",
                _JPEG,
            ),
        ),
        Regime(
            name="digits",
            title="Digits (embedded 8x8, 100 -> 500 labels)",
            dataset="digits",
            strategies=DIGITS_STRATEGIES,
            options={
                "--model": "small_cnn", "--width": "0.5", "--initial": "100",
                "--budget": "100", "--subset": "400", "--cycles": "5",
                "--epochs": "40", "--batch-size": "32", "--trials": "10",
            },
            deviations=(
                "data: scikit-learn's 1,797 8x8 digits (1,437 train / 360 test) "
                "instead of CIFAR-10; model: the CPU-sized CNN at half width;",
                "initial set 100, K = 100, M = 400, 5 cycles (100 -> 500 labels);",
                "40 epochs per cycle, batch 32, from scratch; 10 trials.",
            ),
        ),
    )
}

# The pools collection devices see (issue 17): long-tailed, near-duplicate
# frames, and both. Every strategy is paired with random and the A/A control
# on common random numbers.
DEVICE_STRATEGIES = (
    "random,random_control,learning_loss_safe,learning_loss_balanced,entropy,badge"
)
_DEVICE_OPTIONS = {
    "--model": "small_cnn", "--width": "0.5", "--initial": "500",
    "--budget": "250", "--subset": "2500", "--cycles": "4", "--epochs": "12",
}
_DEVICE_DEVIATIONS = (
    "model: the CPU-sized CNN at half width instead of ResNet-18;",
    "initial set 500 drawn from the (skewed) pool, K = 250, M = 2,500, 4 cycles "
    "(500 -> 1,250 labels) instead of 1,000 / 1,000 / 10,000 and 10 cycles;",
    "12 epochs per cycle from scratch instead of 200 (lr 0.1 dropped 10x at 80%);",
    "the test set is CIFAR-10's balanced 10,000 images, so test accuracy is the "
    "balanced accuracy; worst-class recall is reported beside it.",
    _JPEG,
)
for _name, _title, _extra, _trials in (
    ("cifar10-longtail", "CIFAR-10, long-tailed pool (imbalance 20)",
     {"--long-tail": "20"}, "5"),
    ("cifar10-redundant", "CIFAR-10, redundant pool (4 near-duplicates per image)",
     {"--duplicates": "4"}, "5"),
    ("cifar10-device", "CIFAR-10, long-tailed and redundant pool (the device's)",
     {"--long-tail": "20", "--duplicates": "4"}, "8"),
):
    REGIMES[_name] = Regime(
        name=_name,
        title=_title,
        dataset="cifar10",
        strategies=DEVICE_STRATEGIES,
        options={**_DEVICE_OPTIONS, **_extra, "--trials": _trials},
        deviations=_DEVICE_DEVIATIONS,
    )


def _decoupling_ablation(base):
    """`learning_loss_decoupled` on `base`'s protocol, paired with its runs."""
    return Regime(
        name=f"{base.name}-decoupled",
        title=f"{base.title}: decoupling ablation",
        dataset=base.dataset,
        strategies="learning_loss_decoupled",
        options=base.options,
        deviations=base.deviations,
        extends=base.name,
    )


for _base in [REGIMES["cifar10-cold"], REGIMES["cifar10-warm"]]:
    _ablation = _decoupling_ablation(_base)
    REGIMES[_ablation.name] = _ablation

# The paper's CIFAR-10 settings, for a GPU (ResNet-18, 1,000 -> 10,000
# labels, subset 10,000, 200 epochs, 5 trials in its figure).
PAPER = Regime(
    name="paper",
    title="CIFAR-10, the paper's protocol",
    dataset="cifar10",
    strategies=STRATEGIES,
    options={
        "--model": "resnet18", "--initial": "1000", "--budget": "1000",
        "--subset": "10000", "--cycles": "10", "--epochs": "200", "--trials": "5",
    },
    deviations=(_JPEG,),
)


def run_regime(regime, out_dir, data_path=DEFAULT_DATA):
    """Runs (or resumes) one regime's experiment and returns its records.

    Args:
        regime: a `Regime`.
        out_dir: its results folder; an interrupted run there is resumed.
        data_path: the CIFAR-10 npz (CIFAR regimes only).

    Returns:
        The experiment's `CycleRecord`s.
    """
    from kerasll.active.records import RESULTS_FILE, read_results_csv

    out_dir = Path(out_dir)
    resume = (out_dir / "state.json").exists()
    subprocess.run(regime.command(out_dir, data_path, resume=resume), check=True)
    return read_results_csv(out_dir / RESULTS_FILE, regime_metric(regime))


def complete_trials(records, strategies, cycles):
    """The records of the trials every strategy finished (all cycles).

    Args:
        records: `CycleRecord`s of a run that may still be going.
        strategies: the regime's strategy names.
        cycles: cycles per run.

    Returns:
        The records of complete trials, and the sorted list of those trials.
    """
    done = {}
    for record in records:
        done.setdefault(record.trial, set()).add((record.strategy, record.cycle))
    full = sorted(t for t, runs in done.items() if len(runs) == strategies * cycles)
    return [r for r in records if r.trial in full], full


def report(regimes, out):
    """Markdown of regimes run so far: command, deviations, the regime map and
    the summary tables of the complete trials (nothing is run).

    Args:
        regimes: `Regime`s.
        out: the folder holding one results folder per regime.

    Returns:
        Markdown lines.
    """
    from kerasll.active.records import RESULTS_FILE, read_results_csv
    from kerasll.active.summary import format_summary

    lines, records = [], {}
    for regime in regimes:
        path = out / regime.name / RESULTS_FILE
        metric = regime_metric(regime)
        cycles = int(regime.options["--cycles"])
        strategies = len(regime.strategies.split(","))
        kept, trials = complete_trials(read_results_csv(path, metric), strategies, cycles)
        records[regime.name] = kept
        planned = regime.options.get("--trials")
        lines += [
            f"### {regime.title}",
            "",
            f"Command: `{regime.shown_command()}` ({len(trials)} of {planned} trials "
            "complete; rerunning it resumes the rest).",
            "",
            "Deviations from the paper:",
            "",
            *[f"- {line}" for line in regime.deviations],
            "",
        ]
        summary = format_summary(kept, metric=metric).splitlines()
        lines += [line.replace("## ", "#### ", 1) if line.startswith("## ") else line
                  for line in summary if not line.startswith("# ")]
    return regime_map(records) + [""] + lines


def regime_metric(regime):
    """The `kerasll.active.records.Metric` of a regime's task."""
    from kerasll.tasks import task_class

    return task_class(regime.task).metric()


def regime_map(records_by_regime):
    """The headline table: every strategy against random, in every regime.

    Args:
        records_by_regime: {regime name: `CycleRecord`s}.

    Returns:
        Markdown lines.
    """
    from kerasll.active.statistics import compare_to_baseline, noise_floor
    from kerasll.active.summary import format_p_value, summarize

    records_by_regime = merge_extensions(records_by_regime)
    lines = [
        "| regime | strategy | final accuracy | Δ final vs random | Wilcoxon p | "
        "Δ AUC vs random | Wilcoxon p | trials better | A/A floor (final) | "
        "beyond the floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, records in records_by_regime.items():
        summary = summarize(records)
        floor = noise_floor(summary)
        limit = None if floor is None else floor["floor_final"]
        shown = "unknown (no random_control)" if limit is None else f"{limit:.4f}"
        for strategy, runs in summary.items():
            finals = [run["final"] for run in runs.values()]
            comparison = compare_to_baseline(summary, strategy)
            if strategy == "random" or comparison is None:
                lines.append(f"| {name} | {strategy} | {sum(finals) / len(finals):.4f}"
                             f" | - | - | - | - | - | {shown} | - |")
                continue
            beyond = "-" if limit is None else (
                "yes" if abs(comparison["mean_final"]) > limit else "no")
            lines.append(
                f"| {name} | {strategy} | {sum(finals) / len(finals):.4f} | "
                f"{comparison['mean_final']:+.4f} | {format_p_value(comparison['final_p'])} | "
                f"{comparison['mean_auc']:+.4f} | {format_p_value(comparison['auc_p'])} | "
                f"{comparison['better']}/{len(comparison['trials'])} | {shown} | "
                f"{beyond} |"
            )
    return lines


def merge_extensions(records_by_regime):
    """Adds each extending regime's records to the regime it extends.

    Args:
        records_by_regime: {regime name: `CycleRecord`s}.

    Returns:
        {regime name: `CycleRecord`s} without the extending regimes' keys.
    """
    merged = {}
    for name, records in records_by_regime.items():
        base = REGIMES[name].extends if name in REGIMES else None
        key = base if base in records_by_regime else name
        merged.setdefault(key, []).extend(records)
    return merged


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/output/selection")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--regimes", default=",".join(REGIMES),
                        help=f"comma-separated, from {list(REGIMES)}")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's settings (ResNet-18, 200 epochs): a GPU job")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: print the Markdown of the trials the "
                        "regimes' results.csv hold (complete trials only)")
    args = parser.parse_args()
    regimes = [PAPER] if args.paper else [REGIMES[n] for n in args.regimes.split(",")]
    if args.report:
        print("\n".join(report(regimes, Path(args.out))))
        return
    if any(r.dataset == "cifar10" for r in regimes) and not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 npz not found at {args.data}; pass --data or set KERASLL_DATA")
    records = {r.name: run_regime(r, Path(args.out) / r.name, args.data) for r in regimes}
    print("\n".join(regime_map(records)))


if __name__ == "__main__":
    main()
