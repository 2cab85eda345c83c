"""Typed errors of `kerasll.export`.

Everything the exporter raises on purpose is an `ExportError` (a `ValueError`)
or a `LearnerTypeError` (a `TypeError`), with a one-line message that says
what was received and what was expected. The CLI turns both into a one-line
message and exit code 1. Whenever one is raised, no file has been written.
"""


class ExportError(ValueError):
    """Bad export arguments or data, or a graph that could not be exported."""


class VerificationError(ExportError):
    """The exported graph disagrees with Keras (fp32) or with fp32 (fp16/int8)."""


class RankingError(VerificationError):
    """A lower-precision graph does not keep the fp32 predicted-loss ranking.

    Attributes:
        trials: the `kerasll.export.verify.RankingTrial` of every setting
            tried, in order (none passed).
    """

    def __init__(self, message, trials):
        super().__init__(message)
        self.trials = tuple(trials)


class LearnerTypeError(TypeError):
    """The object to export is not a built `kerasll.LossLearner`."""
