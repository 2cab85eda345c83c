"""kerasll_serving.validation, the one validator of every entry point: its
known answers, its messages in the house style, its declarations."""

import math
import os
from numbers import Integral, Real

import numpy as np
import pytest

from kerasll_serving.validation import (
    ArgumentError,
    Interval,
    StrOptions,
    describe,
    validate_arguments,
)

NAN, INF = float("nan"), float("inf")


def _accepts(constraints, value):
    try:
        validate_arguments({"x": constraints}, {"x": value})
    except ArgumentError:
        return False
    return True


CASES = [
    # constraint, value, accepted
    (Interval(Integral, 1, None, closed="left"), 1, True),
    (Interval(Integral, 1, None, closed="left"), np.int64(3), True),
    (Interval(Integral, 1, None, closed="left"), 10**40, True),
    (Interval(Integral, 1, None, closed="left"), 0, False),
    (Interval(Integral, 1, None, closed="left"), -1, False),
    (Interval(Integral, 1, None, closed="left"), 2.5, False),
    (Interval(Integral, 1, None, closed="left"), 2.0, False),
    (Interval(Integral, 1, None, closed="left"), True, False),
    (Interval(Integral, 1, None, closed="left"), np.bool_(True), False),
    (Interval(Integral, 1, None, closed="left"), NAN, False),
    (Interval(Integral, 1, None, closed="left"), INF, False),
    (Interval(Integral, 1, None, closed="left"), None, False),
    (Interval(Integral, 1, None, closed="left"), "3", False),
    (Interval(Integral, 13, 17, closed="both"), 17, True),
    (Interval(Integral, 13, 17, closed="left"), 17, False),
    (Interval(Real, 0, None, closed="left"), 0, True),
    (Interval(Real, 0, None, closed="left"), 2.5, True),
    (Interval(Real, 0, None, closed="left"), np.float32(0.5), True),
    (Interval(Real, 0, None, closed="left"), -1, False),
    (Interval(Real, 0, None, closed="left"), NAN, False),
    (Interval(Real, 0, None, closed="left"), INF, False),
    (Interval(Real, 0, None, closed="left"), True, False),
    (Interval(Real, 0, None, closed="left"), None, False),
    (Interval(Real, 0, None, closed="left"), "1.0", False),
    (Interval(Real, 0, None, closed="neither"), 0, False),
    (Interval(Real, 0, 1, closed="left"), 1.0, False),
    (Interval(Real, 0, 1, closed="both"), 1.0, True),
    (Interval(Real, None, None, closed="neither"), -1e300, True),
    (Interval(Real, None, None, closed="neither"), -INF, False),
    (Interval(Real, 0, math.inf, closed="both"), INF, True),
    (Interval(Real, 0, math.inf, closed="left"), INF, False),
    (Interval(Real, 0, math.inf, closed="both"), NAN, False),
    (StrOptions(("fp32", "fp16")), "fp16", True),
    (StrOptions(("fp32", "fp16")), "int4", False),
    (StrOptions(("fp32", "fp16")), None, False),
    (StrOptions(("fp32", "fp16")), 1, False),
    ("boolean", True, True),
    ("boolean", np.bool_(False), True),
    ("boolean", 1, False),
    ("boolean", None, False),
    ("boolean", "yes", False),
    ("callable", len, True),
    ("callable", "len", False),
    (None, None, True),
    (None, 0, False),
    (str, "x", True),
    (str, b"x", False),
    (os.PathLike, "x", False),
]


@pytest.mark.parametrize("constraint, value, accepted", CASES)
def test_known_answers(constraint, value, accepted):
    assert _accepts([constraint], value) is accepted


def test_any_constraint_of_the_list_accepts():
    constraints = [Interval(Integral, 1, None, closed="left"), None]
    assert _accepts(constraints, None) and _accepts(constraints, 4)
    assert not _accepts(constraints, 0)


@pytest.mark.parametrize(
    "constraints, value, message",
    [
        (
            [Interval(Integral, 1, None, closed="left")],
            2.5,
            "Expected x to be an integer >= 1. Received: x=2.5",
        ),
        (
            [Interval(Real, 0, None, closed="left")],
            INF,
            "Expected x to be a finite number >= 0. Received: x=inf",
        ),
        (
            [Interval(Real, 0, 1, closed="left")],
            NAN,
            "Expected x to be a finite number in [0, 1). Received: x=nan",
        ),
        (
            [Interval(Real, 0, None, closed="neither")],
            0,
            "Expected x to be a finite number > 0. Received: x=0",
        ),
        (
            [Interval(Real, 0, math.inf, closed="both")],
            -1,
            "Expected x to be a number in [0, inf]. Received: x=-1",
        ),
        (
            [Interval(Integral, 1, None, closed="left"), None],
            True,
            "Expected x to be an integer >= 1 or None. Received: x=True",
        ),
        (
            [StrOptions(("fp32", "fp16", "int8"))],
            "int4",
            "Expected x to be one of ['fp32', 'fp16', 'int8']. Received: x='int4'",
        ),
        (
            ["boolean", "callable", None],
            1,
            "Expected x to be a boolean, a callable or None. Received: x=1",
        ),
        ([str], 3, "Expected x to be a str. Received: x=3"),
    ],
)
def test_messages_in_the_house_style(constraints, value, message):
    with pytest.raises(ArgumentError) as info:
        validate_arguments({"x": constraints}, {"x": value})
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_checked_values_are_plain_python_and_unknown_names_pass():
    checked = validate_arguments(
        {"n": [Interval(Integral, 1, None, closed="left")],
         "r": [Interval(Real, 0, None, closed="left")],
         "b": ["boolean"]},
        {"n": np.int64(3), "r": np.float32(0.5), "b": np.bool_(True), "other": "x"},
    )
    assert checked == {"n": 3, "r": 0.5, "b": True, "other": "x"}
    assert [type(checked[key]) for key in ("n", "r", "b")] == [int, float, bool]


def test_the_callers_error_class_is_raised():
    class MyError(ValueError):
        pass

    with pytest.raises(MyError, match="Received: k=0"):
        validate_arguments({"k": [Interval(Integral, 1, None, closed="left")]},
                           {"k": 0}, MyError)


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError, match="closed"):
        Interval(Real, 0, 1, closed="open")
    with pytest.raises(ValueError, match="left <= right"):
        Interval(Real, 1, 0, closed="both")
    with pytest.raises(ValueError, match="kind"):
        Interval(float, 0, 1, closed="both")
    with pytest.raises(ValueError, match="Expected a constraint"):
        describe(["integer"])
    assert describe([StrOptions({"b", "a"})]) == "one of ['a', 'b']"
