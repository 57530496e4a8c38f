"""Selectors: SQL-92 conditions over message headers (SELECTORS.md is the contract).

`compile_selector(text)` parses and compiles once; the result is shared by
every subscription with the same canonical text.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from broker.selectors._ast import And as _And
from broker.selectors._ast import Compare, Ident, In, Literal, Node, unparse
from broker.selectors._compiler import compile_node, constant_value
from broker.selectors._parser import parse

__all__ = ["EqualityKey", "Selector", "compile_selector", "parse", "unparse"]


class EqualityKey:
    """`name = v` (or `name IN (v, ...)`) that must hold for the selector to be TRUE."""

    __slots__ = ("exact", "name", "values")

    def __init__(self, name: str, values: tuple[Literal, ...], exact: bool) -> None:
        self.name = name
        self.values = values
        self.exact = exact  # the key alone decides: any header meeting it makes the selector TRUE


class Selector:
    """A compiled selector. `matches(headers)` is True only when the condition is TRUE."""

    __slots__ = ("_fn", "equality", "text")

    def __init__(self, node: Node | None) -> None:
        self.text = "" if node is None else unparse(node)
        self._fn = None if node is None else compile_node(node)
        self.equality = None if node is None else _equality_key(node)

    @property
    def matches_all(self) -> bool:
        return self._fn is None

    def matches(self, headers: Mapping[str, Any]) -> bool:
        return self._fn is None or self._fn(headers) is True

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"


@lru_cache(maxsize=1024)
def compile_selector(text: str | None) -> Selector:
    """Parse and compile; raises SelectorError (code 5050, with .position) when invalid."""
    return Selector(parse(text))


def _equality_key(node: Node) -> EqualityKey | None:
    if isinstance(node, In) and not node.negated:
        return EqualityKey(node.name, node.items, exact=True)
    if isinstance(node, Compare) and node.op == "=":
        for header, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(header, Ident):
                constant, value = constant_value(other)
                if constant and value is not None:
                    return EqualityKey(header.name, (value,), exact=True)
    if isinstance(node, _And):
        for item in node.items:
            key = _equality_key(item)
            if key is not None:
                return EqualityKey(key.name, key.values, exact=False)
    return None
