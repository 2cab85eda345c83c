"""TensorFlow started with its C++ start-up notices kept off the terminal.

TensorFlow 2.21 prints notices while it loads and looks for devices ("Could
not find cuda drivers", oneDNN, absl's "All log messages before
absl::InitializeLog() is called ..." banner, a failed `cuInit` on a machine
without a GPU) before it applies TF_CPP_MIN_LOG_LEVEL, so the variable alone
cannot hide them. The commands that use TensorFlow call `start_tensorflow()`
before anything imports it.
"""

import logging
import os
import re
import sys
import tempfile

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# What the commands use when the user has not set TF_CPP_MIN_LOG_LEVEL: no
# INFO or WARNING logs from TensorFlow's C++ side once it has started.
DEFAULT_LEVEL = 2

# An absl log line: severity letter (I, W, E, F = levels 0..3), date, time
# ("00:00:<epoch seconds>" before absl is initialized), thread, file:line].
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITIES = b"IWEF"


def notice_level(line):
    """The absl severity of one line TensorFlow printed, or None for others.

    Args:
        line: bytes of one line of stderr.

    Returns:
        0 (INFO), 1 (WARNING), 2 (ERROR), 3 (FATAL), or None for a line that
        is not an absl log line (Python output, absl's banner).
    """
    match = _ABSL_LINE.match(line)
    return None if match is None else _SEVERITIES.index(match.group(1))


def kept_lines(lines, keep):
    """The lines of stderr that stay: all but absl notices below `keep`.

    absl's banner ("All log messages before absl::InitializeLog() ...")
    stays only when an absl line after it does.

    Args:
        lines: bytes lines, in order.
        keep: the lowest absl severity kept (0..3; 4 keeps none).

    Returns:
        The kept lines, in order.
    """
    kept, banner = [], None
    for line in lines:
        level = notice_level(line)
        if line.startswith(_ABSL_BANNER):
            banner = line
        elif level is None:
            kept.append(line)
        elif level >= keep:
            kept.extend([banner, line] if banner else [line])
            banner = None
    return kept


def start_tensorflow():
    """Imports TensorFlow and finds its devices without start-up notices.

    When TF_CPP_MIN_LOG_LEVEL is unset, it is set to 2 (TensorFlow honours it
    once started), every absl notice printed while TensorFlow starts is
    dropped, and the Python "tensorflow" logger shows errors only (no
    retracing warnings). A user's own TF_CPP_MIN_LOG_LEVEL is respected:
    start-up notices below that level are dropped, the rest shown (0 shows
    everything), and the Python logger is left alone. Other lines written to
    stderr meanwhile are written back in order; if the import fails, every
    captured line is written back. A no-op once TensorFlow is imported.

    Raises:
        ImportError: TensorFlow cannot be imported.
    """
    if "tensorflow" in sys.modules:
        return
    chosen = os.environ.get(LEVEL_VARIABLE)
    if chosen is None:
        os.environ[LEVEL_VARIABLE] = str(DEFAULT_LEVEL)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Start-up notices below `keep` are dropped; by default, all of them.
    keep = 4 if chosen is None else _level(chosen)
    if keep <= 0:
        _import_and_list_devices()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        failed = True
        os.dup2(captured.fileno(), 2)
        try:
            _import_and_list_devices()
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = captured if failed else kept_lines(captured, keep)
            sys.stderr.write(b"".join(kept).decode("utf-8", errors="replace"))
            sys.stderr.flush()


def _level(text):
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it: an integer, else 0."""
    try:
        return int(text)
    except ValueError:
        return 0


def _import_and_list_devices():
    import tensorflow as tf

    # Looking for devices is what prints the failed-cuInit notice.
    tf.config.list_physical_devices()
