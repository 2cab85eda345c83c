"""Typed errors of the active-learning engine.

All are `ValueError`s raised before any training starts, with a message that
says what was received and what is expected; the CLI turns them into one
line and exit code 1.
"""


class ExperimentError(ValueError):
    """Base class: an experiment cannot run as configured."""


class ProtocolError(ExperimentError):
    """Protocol sizes that cannot work (budget, subset, cycles, pool size)."""


class UnknownStrategyError(ExperimentError):
    """A strategy name that is not in the registry."""


class ResumeError(ExperimentError):
    """Nothing to resume, or saved state from a different configuration."""


class OutputExistsError(ExperimentError):
    """The results directory already holds results (use resume or overwrite)."""


class PoolError(ExperimentError):
    """An invalid operation on the pool (unknown or already labeled items)."""
