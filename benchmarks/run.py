"""`make bench`: run every benchmark and write benchmarks/RESULTS.md.

Each section of RESULTS.md is a `Section`: its run, and its Markdown from
what the run recorded (issue 18), both in its module `benchmarks/<section>.py`
(`section_figures(data, folder)`, `section_markdown(figures)`); this file
holds the table of sections, the header and the machine line. What a section
records lives in its committed folder `benchmarks/runs/<section>/`:
`figures.json` (its figures,
with when it finished, how long it took and the load) and, for the sections
built on `kerasll simulate` (selection, detection, pose), each run's state
and results.csv, from which an interrupted run resumes and the tables are
built. `benchmarks/runs/machine.json` describes the machine of the last run.
The scoring run's models and pools are too large to commit: they go to the
git-ignored scratch folder `benchmarks/output/`.

    python benchmarks/run.py --out benchmarks/RESULTS.md    # make bench
    python benchmarks/run.py --sections scoring             # one section
    python benchmarks/run.py --report-only                  # render only

`--report-only` runs nothing: it renders RESULTS.md from the committed
folders, byte for byte the committed file (tests/test_benchmarks_report.py).
A section whose raw figures were not kept holds its text as recorded
(`figures.json`: `markdown`, `recorded_from`) until it is run again.
"""

import argparse
import dataclasses
import datetime
import functools
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

from kerasll_serving.atomic import write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RUNS = HERE / "runs"
FIGURES = "figures.json"
MACHINE = RUNS / "machine.json"
DEFAULT_DATA = os.environ.get(
    "KERASLL_DATA", str(HERE.parents[1] / "shared" / "data" / "cifar10.npz")
)


def machine():
    """One paragraph describing this machine and the software stack."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    import keras
    import onnxruntime
    import tensorflow as tf

    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, no GPU; {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}, onnxruntime "
        f"{onnxruntime.__version__}"
    )


def read_figures(folder):
    """A section's saved `figures.json`.

    Args:
        folder: the section's folder (benchmarks/runs/<section>).

    Returns:
        The saved figures as a dict, or None before the section's first run.
    """
    path = Path(folder) / FIGURES
    return json.loads(path.read_text()) if path.is_file() else None


def run_section(section, data):
    """Runs one section and saves its figures in its folder.

    Args:
        section: a `Section`.
        data: the CIFAR-10 npz.

    Returns:
        The figures; `seconds` is the section's wall time unless it counts
        its own.
    """
    folder = RUNS / section.name
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    figures = section.run(data, folder)
    figures.setdefault("seconds", time.perf_counter() - start)
    figures["load_average"] = os.getloadavg()[1]  # 5-minute, at the end
    figures["cores"] = os.cpu_count()
    figures["finished"] = datetime.datetime.now().isoformat(timespec="minutes")
    write_text(folder / FIGURES, json.dumps(figures, indent=1) + "\n")
    return figures


def _measured(figures):
    """The line saying when a section was measured, how long it took and at
    what load; a recorded line where one was written by hand."""
    if "measured" in figures:
        return figures["measured"]
    load = figures.get("load_average")
    load_note = (f"; 5-minute load average at the end {load:.1f} on "
                 f"{figures['cores']} cores" if load is not None else "")
    return (f"(Measured {figures['finished']}, {figures['seconds'] / 60:.1f} "
            f"min{load_note}.)")


@dataclasses.dataclass(frozen=True)
class Section:
    """One benchmark section of RESULTS.md: how it runs and how it reads.

    Attributes:
        name: its key (`--sections`), folder (`benchmarks/runs/<name>/`) and
            module (`benchmarks/<name>.py`).
        run: (data, folder) -> figures (a JSON-friendly dict), saved as the
            folder's `figures.json`; the sections built on `kerasll
            simulate` keep their runs' states in the folder too.
        markdown: figures -> its RESULTS.md text.
        folder_figures: folder -> the figures its runs' states hold besides
            `figures.json`, or None for a section that keeps nothing else.
    """

    name: str
    run: Callable
    markdown: Callable
    folder_figures: Callable = None

    @classmethod
    def of(cls, name):
        """The section of module `name`: its `section_figures` (run),
        `section_markdown` and, if it has one, `folder_figures`.

        The modules import TensorFlow only inside their run functions, so
        that rendering stays light.
        """
        module = importlib.import_module(name)
        return cls(name, module.section_figures, module.section_markdown,
                   getattr(module, "folder_figures", None))

    def read(self, folder):
        """The section's figures: its `figures.json` merged with what its
        folder holds, or None before its first run."""
        saved = read_figures(folder)
        if self.folder_figures is None:
            return saved
        return {**(saved or {}), **self.folder_figures(folder)}

    def text(self, figures):
        """The section's RESULTS.md text from its figures.

        Figures that hold only the section's recorded text (`markdown`,
        `recorded_from`: its raw figures were not kept) give that text and
        where it was recorded from.
        """
        if "recorded_from" in figures:
            return (f"{figures['markdown'].strip()}\n\n(Recorded from "
                    f"{figures['recorded_from']}; `python benchmarks/run.py "
                    f"--sections {self.name}` measures it again and replaces this "
                    "text.)")
        measured = (_measured(figures) if "finished" in figures or "measured" in figures
                    else None)
        return "\n\n".join(filter(None, [self.markdown(figures).strip(), measured]))


SECTIONS = tuple(map(Section.of, (
    "selection", "loop_cost", "head_cost", "scoring", "int8_profile", "stream_memory",
    "detection", "project_commands", "pose",
)))


def render():
    """RESULTS.md text from what the sections' folders hold (nothing is run)."""
    recorded = json.loads(MACHINE.read_text()) if MACHINE.is_file() else {}
    parts = [
        "# Benchmark results",
        "",
        f"Machine: {recorded.get('machine', 'not recorded')}.",
        "",
        "Reproduce everything with `make bench` (= `python benchmarks/run.py --out "
        "benchmarks/RESULTS.md`); each section's command is given below. CIFAR-10 "
        "is read from `$KERASLL_DATA` or `../shared/data/cifar10.npz`.",
    ]
    saved = {section.name: section.read(RUNS / section.name) for section in SECTIONS}
    timed = [figures["seconds"] for figures in saved.values()
             if figures and "seconds" in figures]
    if timed:
        parts.append(f"\nTime of the sections below, added up: {sum(timed) / 60:.0f} "
                     "min (the selection regimes' cycle times, recorded while two or "
                     "three runs shared the cores, plus each other section's wall "
                     "time; a section recorded as text, its raw figures not kept, "
                     "gives its own).")
    for section in SECTIONS:
        figures = saved[section.name]
        parts += ["", section.text(figures) if figures
                  else f"## {section.name}: not run yet"]
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--sections", default=",".join(s.name for s in SECTIONS))
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: render from benchmarks/runs/")
    parser.add_argument("--retime-scoring", action="store_true",
                        help="scoring: only re-measure the speeds of its finished runs.")
    args = parser.parse_args()
    if not args.report_only:
        if not Path(args.data).is_file():
            sys.exit(f"CIFAR-10 npz not found at {args.data}; set KERASLL_DATA or --data")
        sections = {section.name: section for section in SECTIONS}
        if args.retime_scoring:
            scoring = sections["scoring"]
            sections["scoring"] = dataclasses.replace(
                scoring, run=functools.partial(scoring.run, retime=True))
        names = args.sections.split(",")
        unknown = [name for name in names if name not in sections]
        if unknown:
            sys.exit(f"unknown sections {unknown}; expected some of {list(sections)}")
        for name in names:
            run_section(sections[name], args.data)
            write_text(MACHINE, json.dumps({"machine": machine()}, indent=1) + "\n")
    text = render()
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
