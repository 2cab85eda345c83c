"""Typed errors of `kerasll.project`.

Every error raised on purpose is a `ProjectError` (a `ValueError`) with a
one-line message that says what was received and what was expected. It is
raised before the manifest's transaction commits, so the manifest keeps its
previous state; the CLI prints the message and exits with code 1.
"""


class ProjectError(ValueError):
    """Base class: a project command cannot run on this input."""


class ManifestError(ProjectError):
    """The folder holds no project, or its manifest is of another version."""


class SourceError(ProjectError):
    """Items to add that cannot be read (missing, empty, undecodable)."""


class LabelsError(ProjectError):
    """A labels file with unknown classes, unknown items or another project."""


class PicksError(ProjectError):
    """Device picks of unknown items or from another model version."""


class ProjectBusyError(ProjectError):
    """Another command holds the manifest's write lock past the timeout."""
