"""Value semantics of SELECTORS.md §3-4: numeric strings, comparisons, arithmetic.

Values are plain Python objects: None is NULL/UNKNOWN, and bool is checked
before int everywhere because a boolean is never a number here.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeAlias, cast

Number: TypeAlias = int | float
Value: TypeAlias = str | int | float | bool | None

_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INF = float("inf")


@lru_cache(maxsize=4096)
def numeric(text: str) -> Number | None:
    """The number a numeric string stands for, or None when it is not one."""
    if _NUMERIC.fullmatch(text) is None:
        return None
    if "." in text or "e" in text or "E" in text:
        value = float(text)
        return None if value in (_INF, -_INF) else value
    try:
        return int(text)
    except ValueError:  # over CPython's int-from-str digit limit; Decimal has none
        return int(Decimal(text))


def to_number(value: Value) -> Number | None:
    kind = type(value)
    if kind is int or kind is float:
        return cast(Number, value)
    if kind is str:
        return numeric(cast(str, value))
    return None


COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(op: str, left: Value, right: Value) -> bool | None:
    if left is None or right is None:
        return None
    lkind = type(left)
    rkind = type(right)
    if lkind is bool or rkind is bool:
        if lkind is rkind and op in ("=", "<>"):
            return (left == right) is (op == "=")
        return None
    if lkind is str:
        if rkind is not str:
            left = numeric(left)
            if left is None:
                return None
    elif rkind is str:
        right = numeric(right)
        if right is None:
            return None
    return COMPARATORS[op](left, right)


def arith(op: str, left: Number | None, right: Number | None) -> Number | None:
    if left is None or right is None:
        return None
    if type(left) is int and type(right) is int:
        if op == "/":
            if right == 0:
                return None
            quotient = abs(left) // abs(right)
            return quotient if (left < 0) == (right < 0) else -quotient
        return left + right if op == "+" else left - right if op == "-" else left * right
    try:
        a = float(left)
        b = float(right)
    except OverflowError:  # an integer too large to become a double
        return None
    if op == "/":
        if b == 0.0:
            return None
        result = a / b
    else:
        result = a + b if op == "+" else a - b if op == "-" else a * b
    return None if result in (_INF, -_INF) else result
