"""The `kerasll` command group, importable from the package.

The console script runs `kerasll_cli.main`, which does not import `kerasll`
(and so not TensorFlow); this name is for code that already imports it.
"""

from kerasll_cli import main

__all__ = ["main"]
