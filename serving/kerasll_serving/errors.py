"""Typed errors of the pool scorer.

Every error the library raises on purpose is a `ServingError`, a `ValueError`
subclass, so callers (and the CLI) can tell bad input from bugs. Messages say
what was received and what was expected, on one line.
"""


def first_line(error):
    """The first non-empty line of an error's message, whitespace collapsed.

    The one way kerasll shows a library's error (tracebacks, multi-line
    reports) on one line.

    Args:
        error: an exception.

    Returns:
        One line of text; the error's type name when its message is empty.
    """
    for line in str(error).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(error).__name__


class ServingError(ValueError):
    """Base class of every error kerasll-serving raises on purpose."""


class ModelError(ServingError):
    """The model file is missing or is not a loadable ONNX model."""


class ProviderError(ServingError):
    """The requested ONNX Runtime execution provider is missing or fails to load."""


class PoolError(ServingError):
    """The pool is empty, of an unknown kind, or does not fit the model input."""


class OutputError(ServingError):
    """An output path has an unsupported extension or cannot be written."""


class CheckpointError(ServingError):
    """A resume checkpoint is unreadable or belongs to another model/pool/run."""


class MissingDependencyError(ServingError):
    """An optional dependency (e.g. Ray for `engine="ray"`) is not installed."""


class EngineError(ServingError):
    """The Ray engine cannot start, or cannot reach the requested cluster."""
