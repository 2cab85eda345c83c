"""The tiny progress bar: drawn only on a terminal, with items/s and time left."""

import io

from kerasll_serving.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_draws_rate_and_time_left_on_a_terminal():
    stream, clock = Terminal(), Clock()
    bar = Progress(1000, stream=stream, clock=clock)
    clock.now += 2.0
    bar.update(250)
    assert bar.enabled
    last = stream.getvalue().split("\r")[-1]
    assert "250/1,000" in last and "125 items/s" in last and "left 0:00:06" in last
    assert " 25% |######" in last
    clock.now += 6.0
    bar.update(750)
    bar.close()
    assert stream.getvalue().split("\r")[-1] == (
        "100% |########################| 1,000/1,000 125 items/s left 0:00:00\n")


def test_redraws_at_most_ten_times_a_second():
    stream, clock = Terminal(), Clock()
    bar = Progress(100, stream=stream, clock=clock)
    for _ in range(50):
        bar.update(1)
    assert stream.getvalue().count("\r") == 1


def test_resumed_progress_counts_only_this_runs_speed():
    stream, clock = Terminal(), Clock()
    bar = Progress(100, done=60, stream=stream, clock=clock)
    clock.now += 1.0
    bar.update(10)
    assert "70/100 10 items/s left 0:00:03" in stream.getvalue()


def test_a_shorter_line_covers_the_previous_one():
    stream, clock = Terminal(), Clock()
    bar = Progress(10, stream=stream, clock=clock)
    clock.now += 0.001
    bar.update(1)  # Very fast at first: a long items/s figure.
    clock.now += 100.0
    bar.update(1)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip() != second


def test_silent_when_not_a_terminal_or_disabled():
    quiet_stream = io.StringIO()
    bar = Progress(10, stream=quiet_stream)
    bar.update(10)
    bar.close()
    assert quiet_stream.getvalue() == "" and not bar.enabled
    terminal = Terminal()
    bar = Progress(10, stream=terminal, enabled=False)
    bar.update(10)
    bar.close()
    assert terminal.getvalue() == ""
