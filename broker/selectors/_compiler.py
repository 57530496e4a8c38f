"""Compile a selector tree once into nested closures (no tree walk per message).

Subtrees without header names are folded to constants, and the common shapes
(`header <op> literal`, IN, LIKE, IS NULL) get closures specialised for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from broker.selectors._ast import (
    And,
    Arith,
    Between,
    Compare,
    Const,
    Ident,
    In,
    IsNull,
    Like,
    Literal,
    Node,
    Not,
    Unary,
)
from broker.selectors._like import compile_like
from broker.selectors._values import COMPARATORS, Value, arith, compare, numeric, to_number

Headers: TypeAlias = Mapping[str, Any]
Evaluator: TypeAlias = Callable[[Headers], Value]

FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class _Compiled:
    __slots__ = ("constant", "fn")

    def __init__(self, fn: Evaluator, constant: bool) -> None:
        self.fn = fn
        self.constant = constant


def compile_node(node: Node) -> Evaluator:
    return _compile(node).fn


def constant_value(node: Node) -> tuple[bool, Value]:
    """(True, value) when the node holds no header name, else (False, None)."""
    compiled = _compile(node)
    return (True, compiled.fn({})) if compiled.constant else (False, None)


def _const(value: Value) -> _Compiled:
    return _Compiled(lambda _h: value, True)


def _compile(node: Node) -> _Compiled:
    result = _build(node)
    if result.constant and not isinstance(node, Const):
        return _const(result.fn({}))
    return result


def _build(node: Node) -> _Compiled:
    match node:
        case Const(value=value):
            return _const(value)
        case Ident(name=name):
            return _Compiled(lambda h: h.get(name), False)
        case Unary(negate=negate, operand=operand):
            return _unary(negate, _compile(operand))
        case Arith(first=first, rest=rest):
            return _arith(_compile(first), [(op, _compile(o)) for op, o in rest])
        case Compare(op=op, left=left, right=right):
            return _compare(op, left, right)
        case Between(negated=negated, operand=operand, low=low, high=high):
            return _between(negated, _compile(operand), _compile(low), _compile(high))
        case In(negated=negated, name=name, items=items):
            return _Compiled(_in(negated, name, items), False)
        case Like(negated=negated, name=name, pattern=pattern, escape=escape):
            return _Compiled(_like(negated, name, pattern, escape), False)
        case IsNull(negated=negated, name=name):
            if negated:
                return _Compiled(lambda h: h.get(name) is not None, False)
            return _Compiled(lambda h: h.get(name) is None, False)
        case Not(operand=operand):
            return _not(_compile(operand))
        case And(items=items):
            return _and([_compile(item) for item in items])
        case _:
            return _or([_compile(item) for item in node.items])


def _unary(negate: bool, operand: _Compiled) -> _Compiled:
    f = operand.fn
    if negate:

        def neg(h: Headers) -> Value:
            n = to_number(f(h))
            return None if n is None else -n

        return _Compiled(neg, operand.constant)
    return _Compiled(lambda h: to_number(f(h)), operand.constant)


def _arith(first: _Compiled, rest: list[tuple[str, _Compiled]]) -> _Compiled:
    head = first.fn
    tail = [(op, c.fn) for op, c in rest]
    constant = first.constant and all(c.constant for _, c in rest)
    if len(tail) == 1:
        ((op, second),) = tail
        return _Compiled(lambda h: arith(op, to_number(head(h)), to_number(second(h))), constant)

    def evaluate(h: Headers) -> Value:
        acc = to_number(head(h))
        for op, g in tail:
            acc = arith(op, acc, to_number(g(h)))
        return acc

    return _Compiled(evaluate, constant)


def _compare(op: str, left: Node, right: Node) -> _Compiled:
    lc = _compile(left)
    rc = _compile(right)
    if isinstance(left, Ident) and rc.constant:
        return _header_vs_constant(op, left.name, rc.fn({}))
    if isinstance(right, Ident) and lc.constant:
        return _header_vs_constant(FLIPPED[op], right.name, lc.fn({}))
    lf = lc.fn
    rf = rc.fn
    if rc.constant and not lc.constant:  # e.g. `a * b > 5`: the constant is read once
        value = rf({})
        return _Compiled(lambda h: compare(op, lf(h), value), False)
    return _Compiled(lambda h: compare(op, lf(h), rf(h)), lc.constant and rc.constant)


def _header_vs_constant(op: str, name: str, value: Value) -> _Compiled:
    """`name <op> value`, the most common predicate, in one closure."""
    cmp = COMPARATORS[op]
    kind = type(value)
    if kind is int or kind is float:

        def vs_number(h: Headers) -> Value:
            v = h.get(name)
            k = type(v)
            if k is int or k is float:
                return cmp(v, value)
            if k is str:
                n = numeric(v)
                return None if n is None else cmp(n, value)
            return None

        return _Compiled(vs_number, False)
    if kind is str:
        as_number = numeric(value)

        def vs_string(h: Headers) -> Value:
            v = h.get(name)
            k = type(v)
            if k is str:
                return cmp(v, value)
            if (k is int or k is float) and as_number is not None:
                return cmp(v, as_number)
            return None

        return _Compiled(vs_string, False)
    if kind is bool and op in ("=", "<>"):
        equal = op == "="

        def vs_boolean(h: Headers) -> Value:
            v = h.get(name)
            return (v is value) is equal if type(v) is bool else None

        return _Compiled(vs_boolean, False)
    return _const(None)  # NULL, or a boolean ordered: UNKNOWN whatever the header holds


def _between(negated: bool, operand: _Compiled, low: _Compiled, high: _Compiled) -> _Compiled:
    of, lf, hf = operand.fn, low.fn, high.fn

    def between(h: Headers) -> Value:
        v = of(h)
        result = _and3(compare(">=", v, lf(h)), compare("<=", v, hf(h)))
        return _not3(result) if negated else result

    return _Compiled(between, operand.constant and low.constant and high.constant)


def _in(negated: bool, name: str, items: tuple[Literal, ...]) -> Evaluator:
    strings = {i for i in items if type(i) is str}
    numbers = {i for i in items if type(i) is int or type(i) is float}
    string_numbers = {n for n in map(numeric, strings) if n is not None}
    booleans = {i for i in items if type(i) is bool}
    # Which header kinds meet an item whose comparison is UNKNOWN (so the IN cannot be FALSE).
    unknown_for_number = bool(booleans) or any(numeric(s) is None for s in strings)
    unknown_for_boolean = bool(strings or numbers)

    def member(h: Headers) -> Value:
        v = h.get(name)
        k = type(v)
        if k is str:
            if v in strings:
                return True
            n = numeric(v)
            if n is None:
                return None if (numbers or booleans) else False
            return True if n in numbers else (None if booleans else False)
        if k is int or k is float:
            return (
                True
                if (v in numbers or v in string_numbers)
                else (None if unknown_for_number else False)
            )
        if k is bool:
            return True if v in booleans else (None if unknown_for_boolean else False)
        return None

    if not negated:
        return member
    return lambda h: _not3(member(h))


def _like(negated: bool, name: str, pattern: str, escape: str | None) -> Evaluator:
    matcher = compile_like(pattern, escape)

    def like(h: Headers) -> Value:
        v = h.get(name)
        if type(v) is not str:
            return None
        return matcher(v) is not negated

    return like


def _not3(value: Value) -> Value:
    if value is True:
        return False
    if value is False:
        return True
    return None


def _and3(a: Value, b: Value) -> Value:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return None


def _not(operand: _Compiled) -> _Compiled:
    f = operand.fn
    return _Compiled(lambda h: _not3(f(h)), operand.constant)


def _and(items: list[_Compiled]) -> _Compiled:
    fns = [c.fn for c in items]
    constant = all(c.constant for c in items)
    if len(fns) == 2:
        f, g = fns

        def and2(h: Headers) -> Value:
            a = f(h)
            if a is False:
                return False
            b = g(h)
            if b is False:
                return False
            return True if (a is True and b is True) else None

        return _Compiled(and2, constant)

    def and_n(h: Headers) -> Value:
        result: Value = True
        for fn in fns:
            v = fn(h)
            if v is False:
                return False
            if v is not True:
                result = None
        return result

    return _Compiled(and_n, constant)


def _or(items: list[_Compiled]) -> _Compiled:
    fns = [c.fn for c in items]

    def or_n(h: Headers) -> Value:
        result: Value = False
        for fn in fns:
            v = fn(h)
            if v is True:
                return True
            if v is not False:
                result = None
        return result

    return _Compiled(or_n, all(c.constant for c in items))
