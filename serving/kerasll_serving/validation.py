"""Argument constraints, declared once per parameter and checked by one validator.

Modelled on scikit-learn's `_parameter_constraints`, whose validator is
private API and lives in a package this TensorFlow-free floor does not
depend on. Every public entry point of kerasll and kerasll_serving declares

    PARAMETER_CONSTRAINTS = {
        "cycles": [Interval(Integral, 1, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions(("ranking", "mse"))],
        "warm_start_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "run_eagerly": ["boolean"],
    }

and calls `validate_arguments`, so `2.5`, `True`, NaN and infinities get the
same answer everywhere, in one style: "Expected cycles to be an integer >= 1.
Received: cycles=2.5".

A parameter's constraints are a list; a value is valid when it satisfies
any of them:
- `Interval(Integral, left, right, closed=...)`: an integer (never a bool, a
  float or a string) within the bounds.
- `Interval(Real, left, right, closed=...)`: a real number (never a bool or
  NaN) within the bounds. A bound of None is unbounded but still finite; an
  interval takes infinities only when a bound is `math.inf` and closed.
- `StrOptions(options)`: one of the given strings.
- `"boolean"`: `True` or `False` (numpy booleans included, never 0 or 1).
- `"callable"`: anything callable.
- `None`: the value None.
- a class (`str`, `os.PathLike`, `TrainingConfig`): an instance of it.
"""

import math
import operator
from numbers import Integral, Real

import numpy as np

_CLOSED = ("left", "right", "both", "neither")


class ArgumentError(ValueError):
    """An argument outside its declared constraints (the validator's default)."""


class Interval:
    """Numbers of one kind between two bounds.

    Args:
        kind: `numbers.Integral` (integers, no bools) or `numbers.Real`
            (integers and floats, no bools, no NaN).
        left: lower bound, or None for none.
        right: upper bound, or None for none.
        closed: which bounds belong to the interval: "left", "right",
            "both" or "neither".

    Raises:
        ValueError: another kind, an unknown `closed`, or left > right.
    """

    def __init__(self, kind, left, right, *, closed):
        if kind not in (Integral, Real):
            raise ValueError(
                "Expected kind to be numbers.Integral or numbers.Real. "
                f"Received: kind={kind!r}"
            )
        if closed not in _CLOSED:
            raise ValueError(
                f"Expected closed to be one of {list(_CLOSED)}. Received: "
                f"closed={closed!r}"
            )
        if left is not None and right is not None and left > right:
            raise ValueError(
                f"Expected left <= right. Received: left={left!r}, right={right!r}"
            )
        self.kind = kind
        self.left = left
        self.right = right
        self.closed = closed

    def is_satisfied_by(self, value):
        """Whether `value` is a number of this kind within the bounds."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        if not isinstance(value, Integral):
            if math.isnan(value):
                return False
            if math.isinf(value) and value not in (self.left, self.right):
                return False
        left_in = self.closed in ("left", "both")
        right_in = self.closed in ("right", "both")
        if self.left is not None:
            if not (operator.ge if left_in else operator.gt)(value, self.left):
                return False
        if self.right is not None:
            if not (operator.le if right_in else operator.lt)(value, self.right):
                return False
        return True

    def convert(self, value):
        """`value` as a plain `int` or `float` (numpy scalars included)."""
        return int(value) if self.kind is Integral else float(value)

    def __str__(self):
        if self.kind is Integral:
            noun = "an integer"
        elif any(math.isinf(bound or 0) for bound in (self.left, self.right)):
            noun = "a number"
        else:
            noun = "a finite number"
        left_in = self.closed in ("left", "both")
        right_in = self.closed in ("right", "both")
        if self.left is None and self.right is None:
            return noun
        if self.right is None:
            return f"{noun} {'>=' if left_in else '>'} {self.left:g}"
        if self.left is None:
            return f"{noun} {'<=' if right_in else '<'} {self.right:g}"
        return (
            f"{noun} in {'[' if left_in else '('}{self.left:g}, "
            f"{self.right:g}{']' if right_in else ')'}"
        )


class StrOptions:
    """One of a few strings.

    Args:
        options: the accepted strings, in the order messages list them (a
            set is listed sorted).
    """

    def __init__(self, options):
        if isinstance(options, (set, frozenset)):
            options = sorted(options)
        self.options = tuple(options)

    def is_satisfied_by(self, value):
        """Whether `value` is one of the options."""
        return isinstance(value, str) and value in self.options

    def convert(self, value):
        """`value` itself."""
        return value

    def __str__(self):
        return f"one of {list(self.options)}"


class _Predicate:
    """The values one test accepts ("boolean", "callable", None, a class).

    Args:
        test: value -> whether it is accepted.
        description: what `test` accepts, in words ("a boolean").
        convert: value -> the value the validator returns.
    """

    def __init__(self, test, description, convert=None):
        self.is_satisfied_by = test
        self.description = description
        self.convert = convert or (lambda value: value)

    def __str__(self):
        return self.description


def _instance_of(kind):
    """The `_Predicate` of a class: "an int", "a numpy.ndarray"."""
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", __name__):
        name = f"{kind.__module__.split('.')[0]}.{name}"
    article = "an" if name[0].lower() in "aeiou" else "a"
    return _Predicate(lambda value: isinstance(value, kind), f"{article} {name}")


_BOOLEAN = _Predicate(
    lambda value: isinstance(value, (bool, np.bool_)), "a boolean", bool
)
_CALLABLE = _Predicate(callable, "a callable")
_NONE = _Predicate(lambda value: value is None, "None")


def make_constraint(constraint):
    """The constraint object of one declared constraint.

    Args:
        constraint: an `Interval`, a `StrOptions`, "boolean", "callable",
            None, or a class.

    Returns:
        An object with `is_satisfied_by(value)`, `convert(value)` and a
        description as its `str`.

    Raises:
        ValueError: anything else.
    """
    if isinstance(constraint, (Interval, StrOptions)):
        return constraint
    if constraint is None:
        return _NONE
    if constraint == "boolean":
        return _BOOLEAN
    if constraint == "callable":
        return _CALLABLE
    if isinstance(constraint, type):
        return _instance_of(constraint)
    raise ValueError(
        "Expected a constraint: an Interval, a StrOptions, 'boolean', 'callable', "
        f"None or a class. Received: constraint={constraint!r}"
    )


def describe(constraints):
    """What a list of constraints accepts, in words ("an integer >= 1 or None")."""
    texts = [str(make_constraint(constraint)) for constraint in constraints]
    if len(texts) == 1:
        return texts[0]
    return f"{', '.join(texts[:-1])} or {texts[-1]}"


def validate_arguments(constraints, arguments, error=ArgumentError):
    """Checks arguments against their declared constraints.

    Args:
        constraints: parameter name -> list of constraints (see the module
            docstring); an argument with no entry is not checked.
        arguments: parameter name -> value.
        error: the exception class raised (a `ValueError` subclass of the
            caller's own error hierarchy).

    Returns:
        A dict of the checked arguments, numbers as plain `int`/`float` and
        booleans as `bool` (numpy scalars become Python ones).

    Raises:
        error: the first argument, in `arguments`' order, that satisfies
            none of its constraints, with the message "Expected <name> to be
            <description>. Received: <name>=<value!r>".
    """
    checked = {}
    for name, value in arguments.items():
        if name not in constraints:
            checked[name] = value
            continue
        options = [make_constraint(constraint) for constraint in constraints[name]]
        satisfied = next(
            (option for option in options if option.is_satisfied_by(value)), None
        )
        if satisfied is None:
            raise error(
                f"Expected {name} to be {describe(constraints[name])}. "
                f"Received: {name}={value!r}"
            )
        checked[name] = satisfied.convert(value)
    return checked
