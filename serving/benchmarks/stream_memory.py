"""Memory of stream selection: peak RSS after 10k, 100k and 1M items.

Feeds synthetic predicted losses (N(0, 1), drifting by +1 halfway) through a
`StreamSelector` (rate 0.01, window 2,000, audit sample of 100) in batches of
256, as `kerasll-score --stream` does, and prints the process's peak resident
memory at each milestone. Flat numbers mean the selector's memory does not
grow with the stream. Needs only kerasll-serving (no model is run).

    python serving/benchmarks/stream_memory.py [--items 1000000]
"""

import argparse
import resource
import sys

import numpy as np

from kerasll_serving.selector import StreamSelector

BATCH = 256
MILESTONES = (10_000, 100_000, 1_000_000)


def peak_rss_mib():
    """The process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=MILESTONES[-1])
    items = parser.parse_args().items
    rng = np.random.default_rng(0)
    selector = StreamSelector(0.01, window=2000, audit=100, seed=0)
    milestones = [m for m in MILESTONES if m <= items] or [items]
    print(f"{'items':>10}  {'kept':>7}  {'share':>6}  {'threshold':>9}  peak RSS")
    seen = 0
    while seen < items:
        count = min(BATCH, items - seen)
        losses = rng.normal(size=count) + (1.0 if seen >= items // 2 else 0.0)
        selector.offer(np.arange(seen, seen + count), losses, 0.0)
        seen += count
        if milestones and seen >= milestones[0]:
            milestones.pop(0)
            print(f"{seen:>10,}  {selector.kept:>7,}  {selector.kept / seen:>6.2%}  "
                  f"{selector.threshold:>9.3f}  {peak_rss_mib():.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
