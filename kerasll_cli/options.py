"""Options and error handling shared by the `kerasll` sub-commands."""

import dataclasses

import click


def library_errors():
    """The typed library errors shown to the user as one line (imported lazily)."""
    from kerasll.active.errors import ExperimentError
    from kerasll.data import DataError

    return (ExperimentError, DataError)


def config_default(config_class, name):
    """The default of a config dataclass field: the one place it is written.

    Args:
        config_class: a dataclass (`ExperimentConfig`, `TrainingConfig`).
        name: one of its fields.

    Returns:
        The field's default value.

    Raises:
        KeyError: no field of that name.
    """
    return {field.name: field.default for field in dataclasses.fields(config_class)}[
        name
    ]


def number(name, default, help, type=int):
    """A numeric option. Its range is the library's to check: a bad value is
    the library's one-line error, which says what is expected."""
    return click.option(name, type=type, default=default,
                        show_default=default is not None, help=help)


def out_option(**kwargs):
    """--out: the folder a command writes into (simulate and demo)."""
    return click.option("--out", "out_dir", type=click.Path(file_okay=False),
                        **kwargs)
