"""The `kerasll` command line: the layer above the library.

Each sub-command is a thin click layer over the library: it parses, calls
one function and turns library errors into one line (`click.ClickException`,
exit code 1); click's own usage errors are one line too (exit code 2).
Each sub-command's module is imported only when it runs, so `kerasll --help`
and `kerasll score` (the TensorFlow-free `kerasll_serving` scorer) never
import `kerasll`, and the `kerasll project` commands that do not train never
import TensorFlow. The commands that train start TensorFlow through
`kerasll_cli.notices.start_tensorflow`, which keeps its C++ start-up notices
off the terminal (`demo` and `simulate` before their modules load; `export`,
`project train` and `project select` scoring here when they run).

- `simulate`: `kerasll_cli.simulate`; `demo`: `kerasll_cli.demo`;
  `export`: `kerasll_cli.export`; `project`: `kerasll_cli.project`;
  `score`: `kerasll_serving.cli`.
"""

import contextlib
import importlib

import click

_COMMANDS = {
    "demo": ("kerasll_cli.demo", "demo_command"),
    "simulate": ("kerasll_cli.simulate", "simulate_command"),
    "export": ("kerasll_cli.export", "export_command"),
    "project": ("kerasll_cli.project", "project_group"),
    "score": ("kerasll_serving.cli", "main"),
}
# The commands whose modules import TensorFlow as they load.
_LOAD_TENSORFLOW = {"demo", "simulate"}

_HELP = {
    "demo": "Compare strategies on the embedded digits and show what they pick.",
    "simulate": "Run a pool-based active-learning experiment.",
    "export": "Export a trained LossLearner to ONNX for device scoring.",
    "project": "The labeling loop: add, train, select, tasks, labels, status.",
    "score": "Score a pool with an exported model (TensorFlow-free).",
}


@contextlib.contextmanager
def one_line_usage():
    """Shows a click usage error raised inside as one line, `Error: <message>`.

    Raises:
        click.ClickException: for a `click.UsageError`, with its message and
            exit code (2), which click shows without the usage and "Try
            --help" lines. A bare group's help (`NoArgsIsHelpError`) passes.
    """
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as error:
        shown = click.ClickException(error.format_message())
        shown.exit_code = error.exit_code
        raise shown from error


class _LazyGroup(click.Group):
    """Loads a sub-command's module when it runs; shows every usage error of
    the group and its sub-commands as one line (`one_line_usage`)."""

    def make_context(self, info_name, args, parent=None, **extra):
        with one_line_usage():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx):
        with one_line_usage():
            return super().invoke(ctx)

    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        module, attribute = _COMMANDS[name]
        if name in _LOAD_TENSORFLOW:
            from kerasll_cli.notices import start_tensorflow

            start_tensorflow()
        command = getattr(importlib.import_module(module), attribute)
        command.name = name
        return command

    def format_commands(self, ctx, formatter):
        rows = [(name, _HELP[name]) for name in sorted(_COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="kerasll")
def main():
    """kerasll: Learning Loss for Active Learning in Keras, scored on devices."""
