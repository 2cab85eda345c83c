"""A one-line progress bar with items/s and time left (no tqdm needed).

It draws only on a terminal: redirected to a file or a CI log, it stays
silent, and the run's summary line says what happened.
"""

import sys
import time

_BAR_WIDTH = 24
_REDRAW_SECONDS = 0.1


class Progress:
    """Shows `done/total` items with speed and time left on one line.

    Args:
        total: items to process in all.
        done: items already processed (e.g. by a resumed run's checkpoint).
        stream: where to draw; defaults to stderr.
        enabled: False to draw nothing; by default, draw only when `stream`
            is a terminal.
        clock: a monotonic clock returning seconds.
    """

    def __init__(self, total, done=0, stream=None, enabled=None, clock=time.monotonic):
        self.total = total
        self.done = done
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self._clock = clock
        self._start = clock()
        self._start_done = done
        self._drawn_at = None
        self._width = 0

    def update(self, count):
        """Adds `count` processed items and redraws (at most 10 times a second)."""
        self.done += count
        now = self._clock()
        if self.enabled and (
            self._drawn_at is None
            or now - self._drawn_at >= _REDRAW_SECONDS
            or self.done >= self.total
        ):
            self._drawn_at = now
            text = self.line(now)
            self._width = max(self._width, len(text))  # Cover a longer old line.
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()

    def close(self):
        """Ends the bar's line (when anything was drawn)."""
        if self.enabled and self._drawn_at is not None:
            self.stream.write("\n")
            self.stream.flush()

    def line(self, now):
        """Returns the bar text at time `now`."""
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * _BAR_WIDTH))
        elapsed = max(now - self._start, 1e-9)
        rate = (self.done - self._start_done) / elapsed
        left = (self.total - self.done) / rate if rate > 0 else None
        return (
            f"{fraction:4.0%} |{'#' * filled}{' ' * (_BAR_WIDTH - filled)}| "
            f"{self.done:,}/{self.total:,} {rate:,.0f} items/s "
            f"left {_clock_text(left)}"
        )


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _clock_text(seconds):
    if seconds is None:
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
