"""Selectors: SQL-92 conditions over message headers (SELECTORS.md is the contract).

`compile_selector(text)` parses and compiles once; the result is shared by
every subscription with the same canonical text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar, cast

from broker.selectors._ast import And as _And
from broker.selectors._ast import Between, Compare, Ident, In, Literal, Node, unparse
from broker.selectors._ast import Or as _Or
from broker.selectors._compiler import FLIPPED, compile_node, constant_value
from broker.selectors._parser import parse
from broker.selectors._values import Value

__all__ = ["EqualityKey", "RangeKey", "Selector", "compile_selector", "parse", "unparse"]


class EqualityKey:
    """`name = v` (or `name IN (v, ...)`) that must hold for the selector to be TRUE."""

    __slots__ = ("exact", "name", "values")

    def __init__(self, name: str, values: tuple[Literal, ...], exact: bool) -> None:
        self.name = name
        self.values = values
        self.exact = exact  # the key alone decides: any header meeting it makes the selector TRUE


class RangeKey:
    """`name <op> number` that must hold for the selector to be TRUE (header on the left)."""

    __slots__ = ("bound", "exact", "name", "op")

    def __init__(self, name: str, op: str, bound: int | float, exact: bool) -> None:
        self.name = name
        self.op = op  # one of < <= > >=
        self.bound = bound
        self.exact = exact


class Selector:
    """A compiled selector. `matches(headers)` is True only when the condition is TRUE.

    `equality` or else `range` names a condition the selector requires, which
    the fan-out indexes so that messages that cannot satisfy it cost nothing.
    """

    __slots__ = ("_fn", "equality", "range", "text")

    def __init__(self, node: Node | None) -> None:
        self.text = "" if node is None else unparse(node)
        self._fn = None if node is None else compile_node(node)
        self.equality = None if node is None else _required(node, _equality_key)
        self.range = None
        if node is not None and self.equality is None:
            self.range = _required(node, _range_key)

    @property
    def evaluator(self) -> Callable[[Mapping[str, Any]], Value]:
        """The compiled condition: True, False or None (UNKNOWN); TRUE means delivered."""
        return self._fn or _everything

    @property
    def matches_all(self) -> bool:
        return self._fn is None

    def matches(self, headers: Mapping[str, Any]) -> bool:
        return self._fn is None or self._fn(headers) is True

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"


def _everything(_headers: Mapping[str, Any]) -> Value:
    return True


@lru_cache(maxsize=16384)
def compile_selector(text: str | None) -> Selector:
    """Parse and compile; raises SelectorError (code 5050, with .position) when invalid."""
    return Selector(parse(text))


_Key = TypeVar("_Key", EqualityKey, RangeKey)


def _required(node: Node, find: Callable[[Node], _Key | None]) -> _Key | None:
    """The key of the node itself, or else of the first AND operand that has one."""
    key = find(node)
    if key is not None or not isinstance(node, _And):
        return key
    for item in node.items:
        key = find(item)
        if key is not None:
            key.exact = False  # the other operands still have to be evaluated
            return key
    return None


def _header_and_constant(node: Compare) -> tuple[str, str, Value] | None:
    """(header, op as if the header were on the left, constant) for `h op c` or `c op h`."""
    if isinstance(node.left, Ident):
        constant, value = constant_value(node.right)
        if constant:
            return node.left.name, node.op, value
    elif isinstance(node.right, Ident):
        constant, value = constant_value(node.left)
        if constant:
            return node.right.name, FLIPPED[node.op], value
    return None


def _equality_key(node: Node) -> EqualityKey | None:
    if isinstance(node, In) and not node.negated:
        return EqualityKey(node.name, node.items, exact=True)
    if isinstance(node, Compare) and node.op == "=":
        found = _header_and_constant(node)
        if found is not None and found[2] is not None:
            return EqualityKey(found[0], (found[2],), exact=True)
    if isinstance(node, _Or):
        # `h = 1 OR h = 'x'` is `h IN (1, 'x')` (IN is defined as that OR).
        keys = [_equality_key(item) for item in node.items]
        names = {key.name for key in keys if key is not None and key.exact}
        if len(names) == 1 and all(key is not None and key.exact for key in keys):
            values = tuple(v for key in keys if key is not None for v in key.values)
            return EqualityKey(names.pop(), values, exact=True)
    return None


def _range_key(node: Node) -> RangeKey | None:
    if isinstance(node, Compare) and node.op in ("<", "<=", ">", ">="):
        found = _header_and_constant(node)
        if found is not None and type(found[2]) in (int, float):
            return RangeKey(found[0], found[1], cast(int | float, found[2]), exact=True)
    if isinstance(node, Between) and not node.negated and isinstance(node.operand, Ident):
        # TRUE needs `h >= low` TRUE: index on that, evaluate the rest.
        constant, low = constant_value(node.low)
        if constant and type(low) in (int, float):
            return RangeKey(node.operand.name, ">=", cast(int | float, low), exact=False)
    return None
