"""Memory of stream selection: peak RSS after 10k, 100k and 1M items.

Feeds synthetic predicted losses (N(0, 1), drifting by +1 halfway) through a
`StreamSelector` (rate 0.01, window 2,000, audit sample of 100) in batches of
256, as `kerasll-score --stream` does, and prints the process's peak resident
memory at each milestone. Flat numbers mean the selector's memory does not
grow with the stream. Needs only kerasll-serving (no model is run).

    python serving/benchmarks/stream_memory.py [--items 1000000] [--json]
"""

import argparse
import json
import resource
import sys
from pathlib import Path

import numpy as np

from kerasll_serving.selector import StreamSelector

BATCH = 256
MILESTONES = (10_000, 100_000, 1_000_000)


def peak_rss_mib():
    """The process's peak resident set size so far, in MiB.

    On Linux, VmHWM of /proc/self/status: `ru_maxrss` would also count the
    parent's memory when a large process (e.g. one that imported TensorFlow)
    started this one, since it survives the fork and exec.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def measure(items=MILESTONES[-1]):
    """Streams `items` synthetic scores through a selector.

    Args:
        items: how many items (the milestones up to it are reported).

    Returns:
        One dict per milestone: `items` seen, `kept`, `share` kept,
        `threshold` and `peak_rss_mib` of this process so far.
    """
    rng = np.random.default_rng(0)
    selector = StreamSelector(0.01, window=2000, audit=100, seed=0)
    milestones = [m for m in MILESTONES if m <= items] or [items]
    rows = []
    seen = 0
    while seen < items:
        count = min(BATCH, items - seen)
        losses = rng.normal(size=count) + (1.0 if seen >= items // 2 else 0.0)
        selector.offer(np.arange(seen, seen + count), losses, 0.0)
        seen += count
        if milestones and seen >= milestones[0]:
            milestones.pop(0)
            rows.append({"items": seen, "kept": selector.kept,
                         "share": selector.kept / seen,
                         "threshold": float(selector.threshold),
                         "peak_rss_mib": peak_rss_mib()})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=MILESTONES[-1])
    parser.add_argument("--json", action="store_true",
                        help="Print the milestones as JSON instead of a table.")
    args = parser.parse_args()
    rows = measure(args.items)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'items':>10}  {'kept':>7}  {'share':>6}  {'threshold':>9}  peak RSS")
    for row in rows:
        print(f"{row['items']:>10,}  {row['kept']:>7,}  {row['share']:>6.2%}  "
              f"{row['threshold']:>9.3f}  {row['peak_rss_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
