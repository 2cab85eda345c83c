"""RESULTS.md §4.1: memory of stream selection (`kerasll-score --stream`).

The measurement lives with kerasll-serving (`serving/benchmarks/
stream_memory.py`, which needs no TensorFlow); this section runs it in a
process of its own, so that the peak resident memory is the selector's, and
renders its milestones.

    python benchmarks/run.py --sections stream_memory
"""

import json
import subprocess
import sys
from pathlib import Path

SERVING = Path(__file__).resolve().parents[1] / "serving"
SCRIPT = SERVING / "benchmarks" / "stream_memory.py"


def section_figures(data, folder):
    """Peak RSS of stream selection at each milestone, in a process of its own.

    Args:
        data: the CIFAR-10 npz (unused: the losses are synthetic).
        folder: the section's folder (unused: nothing but its figures is kept).

    Returns:
        {"milestones": the script's `--json` answer}.

    Raises:
        subprocess.CalledProcessError: the script failed.
    """
    done = subprocess.run([sys.executable, str(SCRIPT), "--json"], check=True,
                          capture_output=True, text=True)
    return {"milestones": json.loads(done.stdout)}


def section_markdown(figures):
    """RESULTS.md §4.1 from `section_figures`' answer (`run.Section.markdown`)."""
    rows = "\n".join(
        f"| {row['items']:,} | {row['kept']:,} | {100 * row['share']:.2f}% | "
        f"{row['threshold']:.3f} | {row['peak_rss_mib']:.1f} |"
        for row in figures["milestones"])
    return f"""### 4.1 Memory of stream selection (`kerasll-score --stream`)

Command: `python serving/benchmarks/stream_memory.py` — synthetic predicted
losses (N(0, 1), shifted by +1 halfway) through a `StreamSelector` (rate
0.01, window 2,000, audit sample of 100) in batches of 256, as
`kerasll-score --stream` feeds it; peak resident memory of the process
(numpy and kerasll-serving only, no model) after each milestone. Flat
means the selector's memory does not grow with the stream.

| items seen | kept | share kept | threshold | peak RSS MiB |
|---|---|---|---|---|
{rows}
"""
