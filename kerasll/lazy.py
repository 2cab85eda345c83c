"""Public names of a package that load on first use (PEP 562).

A package lists each public name with the module that defines it; nothing
is imported until a name is asked for, so light commands that import one
module of a package do not pay for (or need) TensorFlow.
"""

import importlib
import sys


def lazy_names(package, names):
    """A package's `__getattr__` and `__dir__` for names that load on use.

    Args:
        package: the package's `__name__`.
        names: public name -> the module that defines it.

    Returns:
        `(__getattr__, __dir__)`, to assign in the package's namespace.
        `__getattr__` imports a name's module on first access and caches the
        name in the package; it raises `AttributeError` for other names.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *names})

    return __getattr__, __dir__
