"""Selector syntax tree and its canonical printer.

Chains (OR, AND, + -, * /) are n-ary nodes and runs of NOT or unary signs are
collapsed while parsing, so the tree stays shallow however long the selector:
only parentheses (at most 64 open) add depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

Literal: TypeAlias = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Const:
    value: Literal


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    negate: bool  # False: unary plus, which only converts to a number
    operand: Node


@dataclass(frozen=True, slots=True)
class Arith:
    """first (op operand)*, left-associative; ops are all of one level (+ - or * /)."""

    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of = <> < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Between:
    negated: bool
    operand: Node
    low: Node
    high: Node


@dataclass(frozen=True, slots=True)
class In:
    negated: bool
    name: str
    items: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Like:
    negated: bool
    name: str
    pattern: str
    escape: str | None


@dataclass(frozen=True, slots=True)
class IsNull:
    negated: bool
    name: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node: TypeAlias = (
    Const | Ident | Unary | Arith | Compare | Between | In | Like | IsNull | Not | And | Or
)

# Binding levels, tightest first; a child printed where a looser one is found gets parentheses.
_PRIMARY, _UNARY, _PRODUCT, _SUM, _PREDICATE, _NOT, _AND, _OR = range(8)


def _level(node: Node) -> int:
    match node:
        case Const() | Ident():
            return _PRIMARY
        case Unary():
            return _UNARY
        case Arith(rest=rest):
            return _PRODUCT if rest[0][0] in "*/" else _SUM
        case Compare() | Between() | In() | Like() | IsNull():
            return _PREDICATE
        case Not():
            return _NOT
        case And():
            return _AND
    return _OR


def literal_text(value: Literal) -> str:
    if value is True:
        return "TRUE"
    if value is False:
        return "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def unparse(node: Node) -> str:
    """Canonical text: parsing it gives back an equal tree."""
    match node:
        case Const(value=value):
            return literal_text(value)
        case Ident(name=name):
            return name
        case Unary(negate=negate, operand=operand):
            return ("-" if negate else "+") + _child(operand, _PRIMARY)
        case Arith(first=first, rest=rest):
            limit = _UNARY if rest[0][0] in "*/" else _PRODUCT
            parts = [_child(first, limit)]
            for op, operand in rest:
                parts.append(op)
                parts.append(_child(operand, limit))
            return " ".join(parts)
        case Compare(op=op, left=left, right=right):
            return f"{_child(left, _SUM)} {op} {_child(right, _SUM)}"
        case Between(negated=negated, operand=operand, low=low, high=high):
            word = "NOT BETWEEN" if negated else "BETWEEN"
            return f"{_child(operand, _SUM)} {word} {_child(low, _SUM)} AND {_child(high, _SUM)}"
        case In(negated=negated, name=name, items=items):
            listed = ", ".join(literal_text(item) for item in items)
            return f"{name} {'NOT IN' if negated else 'IN'} ({listed})"
        case Like(negated=negated, name=name, pattern=pattern, escape=escape):
            text = f"{name} {'NOT LIKE' if negated else 'LIKE'} {literal_text(pattern)}"
            return text if escape is None else f"{text} ESCAPE {literal_text(escape)}"
        case IsNull(negated=negated, name=name):
            return f"{name} IS NOT NULL" if negated else f"{name} IS NULL"
        case Not(operand=operand):
            return "NOT " + _child(operand, _PREDICATE)
        case And(items=items):
            return " AND ".join(_child(item, _NOT) for item in items)
        case _:
            return " OR ".join(_child(item, _AND) for item in node.items)


def _child(node: Node, limit: int) -> str:
    text = unparse(node)
    return text if _level(node) <= limit else f"({text})"
