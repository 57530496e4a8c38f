"""Recursive-descent parser for SELECTORS.md §2.

Chains are parsed with loops, never recursion, so only parentheses (at most
64 open) deepen the Python stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from broker._errors import SelectorError
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
    Or,
    Unary,
)
from broker.selectors._lexer import Kind, Token, tokenize

MAX_OPEN_PARENTHESES = 64
_COMPARE_OPS = frozenset({"=", "<>", "<", "<=", ">", ">="})


def parse(text: str | None) -> Node | None:
    """The tree of a selector, or None for one that matches everything (None, empty, blank)."""
    if text is None:
        return None
    tokens = tokenize(text)
    if tokens[0].kind is Kind.END:
        return None
    return _Parser(tokens).selector()


def _describe(token: Token) -> str:
    if token.kind is Kind.END:
        return "end of selector"
    return repr(token.text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    # -- token helpers -------------------------------------------------------------------------

    @property
    def _tok(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _is(self, kind: Kind, text: str) -> bool:
        token = self._tokens[self._index]
        return token.kind is kind and token.text == text

    def _error(self, message: str, token: Token | None = None) -> SelectorError:
        token = token or self._tok
        return SelectorError(f"{message}, found {_describe(token)}", token.pos)

    def _expect(self, kind: Kind, text: str, what: str) -> Token:
        if not self._is(kind, text):
            raise self._error(f"expected {what}")
        return self._advance()

    def _open(self) -> None:
        token = self._advance()
        self._depth += 1
        if self._depth > MAX_OPEN_PARENTHESES:
            raise SelectorError(
                f"more than {MAX_OPEN_PARENTHESES} parentheses open at once", token.pos
            )

    def _close(self) -> None:
        self._expect(Kind.OP, ")", "')'")
        self._depth -= 1

    # -- grammar ------------------------------------------------------------------------------

    def selector(self) -> Node:
        node = self._or()
        if self._tok.kind is not Kind.END:
            raise self._error("unexpected token after a complete condition")
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self._is(Kind.KEYWORD, "OR"):
            self._advance()
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Node:
        items = [self._not()]
        while self._is(Kind.KEYWORD, "AND"):
            self._advance()
            items.append(self._not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self) -> Node:
        count = 0
        while self._is(Kind.KEYWORD, "NOT"):
            self._advance()
            count += 1
        node = self._predicate()
        if count == 0:
            return node
        # NOT NOT x is not x (it reads x as a condition), but any longer run reduces to 1 or 2.
        return Not(node) if count % 2 else Not(Not(node))

    def _predicate(self) -> Node:
        left = self._sum()
        token = self._tok
        if token.kind is Kind.OP and token.text in _COMPARE_OPS:
            self._advance()
            return Compare(token.text, left, self._sum())
        if token.kind is not Kind.KEYWORD:
            return left
        negated = False
        if token.text == "NOT":
            following = self._tokens[self._index + 1]
            if following.kind is not Kind.KEYWORD or following.text not in {
                "BETWEEN",
                "IN",
                "LIKE",
            }:
                raise self._error("expected BETWEEN, IN or LIKE after NOT", following)
            self._advance()
            negated = True
            token = self._tok
        if token.text == "BETWEEN":
            self._advance()
            low = self._sum()
            self._expect(Kind.KEYWORD, "AND", "AND of BETWEEN")
            return Between(negated, left, low, self._sum())
        if token.text == "IN":
            name = self._identifier(left, token, "IN")
            self._advance()
            return In(negated, name, self._in_items())
        if token.text == "LIKE":
            name = self._identifier(left, token, "LIKE")
            self._advance()
            return self._like(negated, name)
        if token.text == "IS":
            name = self._identifier(left, token, "IS")
            self._advance()
            is_not = self._is(Kind.KEYWORD, "NOT")
            if is_not:
                self._advance()
            self._expect(Kind.KEYWORD, "NULL", "NULL after IS")
            return IsNull(is_not, name)
        return left

    def _identifier(self, left: Node, op: Token, word: str) -> str:
        if not isinstance(left, Ident):
            raise SelectorError(f"the left operand of {word} must be a header name", op.pos)
        return left.name

    def _in_items(self) -> tuple[Literal, ...]:
        if not self._is(Kind.OP, "("):
            raise self._error("expected '(' after IN")
        self._open()
        items = [self._in_item()]
        while self._is(Kind.OP, ","):
            self._advance()
            items.append(self._in_item())
        self._close()
        return tuple(items)

    def _in_item(self) -> Literal:
        token = self._advance()
        if token.kind is Kind.STRING:
            return cast(str, token.value)
        if token.kind is Kind.KEYWORD and token.text in {"TRUE", "FALSE"}:
            return token.text == "TRUE"
        sign = 1
        if token.kind is Kind.OP and token.text in {"+", "-"}:
            sign = -1 if token.text == "-" else 1
            token = self._advance()
        if token.kind in (Kind.INTEGER, Kind.FLOAT):
            return sign * cast(int | float, token.value)
        raise self._error("an IN list holds only string, number or boolean literals", token)

    def _like(self, negated: bool, name: str) -> Like:
        token = self._advance()
        if token.kind is not Kind.STRING:
            raise self._error("LIKE takes a string literal pattern", token)
        pattern = cast(str, token.value)
        escape: str | None = None
        if self._is(Kind.KEYWORD, "ESCAPE"):
            self._advance()
            token = self._advance()
            if token.kind is not Kind.STRING:
                raise self._error("ESCAPE takes a string literal", token)
            escape = cast(str, token.value)
            if len(escape) != 1:
                raise SelectorError("the ESCAPE string must be exactly one character", token.pos)
            _check_escapes(pattern, escape, token.pos)
        return Like(negated, name, pattern, escape)

    def _sum(self) -> Node:
        return self._chain(self._product, "+-")

    def _product(self) -> Node:
        return self._chain(self._unary, "*/")

    def _chain(self, operand: Callable[[], Node], ops: str) -> Node:
        first = operand()
        rest: list[tuple[str, Node]] = []
        while self._tok.kind is Kind.OP and self._tok.text in ops:
            rest.append((self._advance().text, operand()))
        return first if not rest else Arith(first, tuple(rest))

    def _unary(self) -> Node:
        signs = 0
        negate = False
        while self._tok.kind is Kind.OP and self._tok.text in "+-":
            negate ^= self._advance().text == "-"
            signs += 1
        node = self._primary()
        return Unary(negate, node) if signs else node

    def _primary(self) -> Node:
        token = self._tok
        if token.kind is Kind.IDENT:
            self._advance()
            return Ident(token.text)
        if token.kind in (Kind.STRING, Kind.INTEGER, Kind.FLOAT):
            self._advance()
            return Const(cast(Literal, token.value))
        if token.kind is Kind.KEYWORD and token.text in {"TRUE", "FALSE"}:
            self._advance()
            return Const(token.text == "TRUE")
        if self._is(Kind.OP, "("):
            self._open()
            node = self._or()
            self._close()
            return node
        if self._is(Kind.KEYWORD, "NULL"):
            raise self._error("NULL is allowed only in IS NULL and IS NOT NULL")
        raise self._error("expected a header name, a literal or '('")


def _check_escapes(pattern: str, escape: str, pos: int) -> None:
    i = 0
    while i < len(pattern):
        if pattern[i] == escape:
            if i + 1 == len(pattern):
                raise SelectorError("the LIKE pattern ends with its escape character", pos)
            i += 1
        i += 1
