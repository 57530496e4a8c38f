"""An independent, deliberately simple reference implementation of SELECTORS.md.

It exists only to check the real implementation (``broker.selectors``) in tests, so it
favours obviousness over speed: a hand-written tokenizer, a recursive-descent parser that
uses loops for every operator chain (so long chains never recurse), and a tree-walking
evaluator over plain tuples. Nothing here imports from ``broker``.

Values are plain Python objects: ``None`` (NULL / UNKNOWN), ``bool``, ``int``, ``float`` and
``str``. Because ``bool`` is a subclass of ``int`` in Python, every type test below checks
for ``bool`` first.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HeaderValue",
    "OracleSelectorError",
    "oracle_error_position",
    "oracle_matches",
    "oracle_valid",
]

HeaderValue = str | int | float | bool | None
Value = str | int | float | bool | None
Node = tuple[Any, ...]

MAX_LENGTH = 4096
MAX_OPEN_PARENS = 64

WHITESPACE = frozenset(" \t\n\r\f")
ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASCII_DIGITS = "0123456789"
IDENT_START = frozenset(ASCII_LETTERS + "_$")
IDENT_PART = frozenset(ASCII_LETTERS + ASCII_DIGITS + "_$")
DIGITS = frozenset(ASCII_DIGITS)
KEYWORDS = frozenset(
    ["NOT", "AND", "OR", "BETWEEN", "LIKE", "ESCAPE", "IN", "IS", "NULL", "TRUE", "FALSE"]
)
TWO_CHAR_OPERATORS = ("<>", "!=", "<=", ">=")
ONE_CHAR_OPERATORS = frozenset("=<>+-*/(),")
COMPARISON_OPERATORS = frozenset(["=", "<>", "<", "<=", ">", ">="])

# [0-9] rather than \d: \d also matches non-ASCII digits such as '٢'.
_EXP = r"(?:[eE][+-]?[0-9]+)"
NUMBER_LITERAL_RE = re.compile(rf"[0-9]+\.[0-9]*{_EXP}?|[0-9]+{_EXP}?|\.[0-9]+{_EXP}?")
NUMERIC_STRING_RE = re.compile(rf"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+){_EXP}?")


class OracleSelectorError(ValueError):
    """An invalid selector, with the 0-based position of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (position {position})")
        self.position = position


# --------------------------------------------------------------------------- numbers


def _digits_to_int(digits: str) -> int:
    """Exact int from ASCII digits of any length (int(str) refuses > 4300 digits)."""
    value = 0
    for start in range(0, len(digits), 1000):
        chunk = digits[start : start + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _parse_number(text: str) -> int | float | None:
    """A validated numeric text -> int (no '.' and no exponent) or finite float, else None."""
    if "." in text or "e" in text or "E" in text:
        result = float(text)  # Python's float() rounds correctly to nearest
        return None if math.isinf(result) else result
    sign = -1 if text.startswith("-") else 1
    return sign * _digits_to_int(text.lstrip("+-"))


def numeric_string_value(text: str) -> int | float | None:
    """The number a numeric string stands for, or None when the string is not numeric."""
    if NUMERIC_STRING_RE.fullmatch(text) is None:
        return None
    return _parse_number(text)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "keyword", "string", "number", "op", "eof"
    value: Any
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    depth = 0
    while i < n:
        c = text[i]
        if c in WHITESPACE:
            i += 1
        elif c in IDENT_START:
            j = i + 1
            while j < n and text[j] in IDENT_PART:
                j += 1
            word = text[i:j]
            if word.upper() in KEYWORDS:
                tokens.append(Token("keyword", word.upper(), i))
            else:
                tokens.append(Token("ident", word, i))
            i = j
        elif c == "'":
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise OracleSelectorError("unterminated string", i)
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    j += 1
                    break
                chars.append(text[j])
                j += 1
            tokens.append(Token("string", "".join(chars), i))
            i = j
        elif c in DIGITS or (c == "." and i + 1 < n and text[i + 1] in DIGITS):
            match = NUMBER_LITERAL_RE.match(text, i)
            assert match is not None
            value = _parse_number(match.group())
            if value is None:
                raise OracleSelectorError("infinite number", i)
            tokens.append(Token("number", value, i))
            i = match.end()
        elif text[i : i + 2] in TWO_CHAR_OPERATORS:
            op = text[i : i + 2]
            tokens.append(Token("op", "<>" if op == "!=" else op, i))
            i += 2
        elif c in ONE_CHAR_OPERATORS:
            if c == "(":
                depth += 1
                if depth > MAX_OPEN_PARENS:
                    raise OracleSelectorError("too many open parentheses", i)
            elif c == ")":
                depth -= 1
            tokens.append(Token("op", c, i))
            i += 1
        else:
            raise OracleSelectorError("invalid character", i)
    tokens.append(Token("eof", None, n))
    return tokens


# --------------------------------------------------------------------------- parser
#
# Nodes:
#   ("ident", name)                 ("lit", value)
#   ("unary", [signs], operand)     ("arith", first, [(op, operand), ...])
#   ("cmp", op, left, right)        ("between", operand, low, high)
#   ("in", name, [values])          ("like", name, [pattern items])
#   ("isnull", name, negated)       ("not", count, operand)
#   ("and", [operands])             ("or", [operands])
#
# A parenthesized expression is just its inner node, so "(a)" is ("ident", "a").


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def at(self, kind: str, value: Any = None) -> bool:
        token = self.peek()
        return token.kind == kind and (value is None or token.value == value)

    def expect(self, kind: str, value: Any) -> Token:
        if not self.at(kind, value):
            raise OracleSelectorError(f"expected {value}", self.peek().position)
        return self.take()

    def parse_selector(self) -> Node | None:
        if self.at("eof"):
            return None
        node = self.parse_or()
        if not self.at("eof"):
            raise OracleSelectorError("unexpected trailing token", self.peek().position)
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.at("keyword", "OR"):
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else ("or", operands)

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while self.at("keyword", "AND"):
            self.take()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else ("and", operands)

    def parse_not(self) -> Node:
        count = 0
        while self.at("keyword", "NOT"):
            self.take()
            count += 1
        node = self.parse_predicate()
        return ("not", count, node) if count else node

    def parse_predicate(self) -> Node:
        left_position = self.peek().position
        left = self.parse_sum()
        token = self.peek()
        if token.kind == "op" and token.value in COMPARISON_OPERATORS:
            self.take()
            return ("cmp", token.value, left, self.parse_sum())
        negated = False
        if token.kind == "keyword" and token.value == "NOT":
            self.take()
            negated = True
            token = self.peek()
            if not (token.kind == "keyword" and token.value in ("BETWEEN", "IN", "LIKE")):
                raise OracleSelectorError("expected BETWEEN, IN or LIKE", token.position)
        if token.kind != "keyword" or token.value not in ("BETWEEN", "IN", "LIKE", "IS"):
            return left
        self.take()
        node: Node
        if token.value == "BETWEEN":
            low = self.parse_sum()
            self.expect("keyword", "AND")
            high = self.parse_sum()
            node = ("between", left, low, high)
        elif token.value == "IN":
            name = self.identifier_name(left, left_position)
            self.expect("op", "(")
            values = [self.parse_in_item()]
            while self.at("op", ","):
                self.take()
                values.append(self.parse_in_item())
            self.expect("op", ")")
            node = ("in", name, values)
        elif token.value == "LIKE":
            name = self.identifier_name(left, left_position)
            pattern_token = self.take()
            if pattern_token.kind != "string":
                raise OracleSelectorError("LIKE needs a string", pattern_token.position)
            escape: str | None = None
            if self.at("keyword", "ESCAPE"):
                self.take()
                escape_token = self.take()
                if escape_token.kind != "string" or len(escape_token.value) != 1:
                    raise OracleSelectorError("bad ESCAPE", escape_token.position)
                escape = escape_token.value
            items = compile_like(pattern_token.value, escape, pattern_token.position)
            node = ("like", name, items)
        else:  # IS [NOT] NULL
            name = self.identifier_name(left, left_position)
            is_not = False
            if self.at("keyword", "NOT"):
                self.take()
                is_not = True
            self.expect("keyword", "NULL")
            node = ("isnull", name, is_not)
        return ("not", 1, node) if negated else node

    @staticmethod
    def identifier_name(node: Node, position: int) -> str:
        if node[0] != "ident":
            raise OracleSelectorError("left operand must be an identifier", position)
        name: str = node[1]
        return name

    def parse_in_item(self) -> Value:
        token = self.take()
        if token.kind == "string":
            value: Value = token.value
            return value
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE"):
            return token.value == "TRUE"
        sign = ""
        if token.kind == "op" and token.value in ("+", "-"):
            sign = token.value
            token = self.take()
        if token.kind == "number":
            number: int | float = token.value
            return -number if sign == "-" else number
        raise OracleSelectorError("IN items must be literals", token.position)

    def parse_sum(self) -> Node:
        first = self.parse_product()
        rest: list[tuple[str, Node]] = []
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            rest.append((self.take().value, self.parse_product()))
        return ("arith", first, rest) if rest else first

    def parse_product(self) -> Node:
        first = self.parse_unary()
        rest: list[tuple[str, Node]] = []
        while self.peek().kind == "op" and self.peek().value in ("*", "/"):
            rest.append((self.take().value, self.parse_unary()))
        return ("arith", first, rest) if rest else first

    def parse_unary(self) -> Node:
        signs: list[str] = []
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            signs.append(self.take().value)
        operand = self.parse_primary()
        return ("unary", signs, operand) if signs else operand

    def parse_primary(self) -> Node:
        token = self.take()
        if token.kind == "ident":
            return ("ident", token.value)
        if token.kind in ("string", "number"):
            return ("lit", token.value)
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE"):
            return ("lit", token.value == "TRUE")
        if token.kind == "op" and token.value == "(":
            inner = self.parse_or()
            self.expect("op", ")")
            return inner
        raise OracleSelectorError("expected an operand", token.position)


# --------------------------------------------------------------------------- LIKE

ANY_SEQUENCE = ("%",)
ANY_ONE = ("_",)


def compile_like(pattern: str, escape: str | None, position: int) -> list[tuple[str, ...]]:
    items: list[tuple[str, ...]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if escape is not None and c == escape:
            if i + 1 >= len(pattern):
                raise OracleSelectorError("escape character ends the pattern", position)
            items.append(("lit", pattern[i + 1]))
            i += 2
            continue
        if c == "%":
            items.append(ANY_SEQUENCE)
        elif c == "_":
            items.append(ANY_ONE)
        else:
            items.append(("lit", c))
        i += 1
    return items


def like_matches(items: list[tuple[str, ...]], value: str) -> bool:
    """Dynamic programming: reachable[j] is True when the items so far match value[:j]."""
    n = len(value)
    reachable = [False] * (n + 1)
    reachable[0] = True
    for item in items:
        following = [False] * (n + 1)
        if item == ANY_SEQUENCE:
            seen = False
            for j in range(n + 1):
                seen = seen or reachable[j]
                following[j] = seen
        elif item == ANY_ONE:
            for j in range(1, n + 1):
                following[j] = reachable[j - 1]
        else:
            for j in range(1, n + 1):
                following[j] = reachable[j - 1] and value[j - 1] == item[1]
        reachable = following
    return reachable[n]


# --------------------------------------------------------------------------- evaluation


def to_number(value: Value) -> int | float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return numeric_string_value(value)


def _python_compare(op: str, left: Any, right: Any) -> bool:
    # Python compares str by code point and int/float by exact mathematical value.
    if op == "=":
        return bool(left == right)
    if op == "<>":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def compare(op: str, left: Value, right: Value) -> bool | None:
    if left is None or right is None:
        return None
    left_is_bool = isinstance(left, bool)
    right_is_bool = isinstance(right, bool)
    if left_is_bool or right_is_bool:
        if left_is_bool and right_is_bool and op in ("=", "<>"):
            return _python_compare(op, left, right)
        return None
    if isinstance(left, str) and isinstance(right, str):
        return _python_compare(op, left, right)
    left_number = to_number(left)
    right_number = to_number(right)
    if left_number is None or right_number is None:
        return None
    return _python_compare(op, left_number, right_number)


def arithmetic(op: str, left: Value, right: Value) -> int | float | None:
    a = to_number(left)
    b = to_number(right)
    if a is None or b is None:
        return None
    if isinstance(a, int) and isinstance(b, int):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return None
        quotient = abs(a) // abs(b)  # truncate toward zero
        return quotient if (a < 0) == (b < 0) else -quotient
    try:
        x = float(a)
        y = float(b)
    except OverflowError:  # an integer too large to become a double
        return None
    if op == "+":
        result = x + y
    elif op == "-":
        result = x - y
    elif op == "*":
        result = x * y
    else:
        if y == 0.0:
            return None
        result = x / y
    return None if math.isinf(result) else result


def negate(value: int | float) -> int | float:
    return -value


def as_condition(value: Value) -> bool | None:
    return value if isinstance(value, bool) else None


def not3(value: bool | None) -> bool | None:
    return None if value is None else not value


def and3(left: bool | None, right: bool | None) -> bool | None:
    if left is False or right is False:
        return False
    if left is None or right is None:
        return None
    return True


def or3(left: bool | None, right: bool | None) -> bool | None:
    if left is True or right is True:
        return True
    if left is None or right is None:
        return None
    return False


def evaluate(node: Node, headers: Mapping[str, HeaderValue]) -> Value:
    kind = node[0]
    if kind == "ident":
        return headers.get(node[1])
    if kind == "lit":
        literal: Value = node[1]
        return literal
    if kind == "unary":
        value = evaluate(node[2], headers)
        for sign in reversed(node[1]):
            number = to_number(value)
            if number is None:
                return None
            value = negate(number) if sign == "-" else number
        return value
    if kind == "arith":
        value = evaluate(node[1], headers)
        for op, operand in node[2]:
            value = arithmetic(op, value, evaluate(operand, headers))
        return value
    if kind == "cmp":
        return compare(node[1], evaluate(node[2], headers), evaluate(node[3], headers))
    if kind == "between":
        value = evaluate(node[1], headers)
        low = compare(">=", value, evaluate(node[2], headers))
        high = compare("<=", value, evaluate(node[3], headers))
        return and3(low, high)
    if kind == "in":
        value = headers.get(node[1])
        result: bool | None = False
        for item in node[2]:
            result = or3(result, compare("=", value, item))
        return result
    if kind == "like":
        value = headers.get(node[1])
        if not isinstance(value, str):
            return None
        return like_matches(node[2], value)
    if kind == "isnull":
        is_null = headers.get(node[1]) is None
        return not is_null if node[2] else is_null
    if kind == "not":
        condition = as_condition(evaluate(node[2], headers))
        for _ in range(node[1]):
            condition = not3(condition)
        return condition
    if kind == "and":
        condition = True
        for operand in node[1]:
            condition = and3(condition, as_condition(evaluate(operand, headers)))
        return condition
    if kind == "or":
        condition = False
        for operand in node[1]:
            condition = or3(condition, as_condition(evaluate(operand, headers)))
        return condition
    raise AssertionError(f"unknown node {kind}")


# --------------------------------------------------------------------------- API


def _call_with_stack_room(function: Any, *args: Any) -> Any:
    """Parsing recurses about 8 frames per open parenthesis (at most 64 of them); make sure
    the caller's own stack depth (pytest, hypothesis) leaves room, and restore the limit."""
    previous = sys.getrecursionlimit()
    if previous < 5000:
        sys.setrecursionlimit(5000)
    try:
        return function(*args)
    finally:
        sys.setrecursionlimit(previous)


def oracle_compile(text: str | None) -> Node | None:
    """Parse a selector; None means "matches every message". Raises OracleSelectorError."""
    if text is None:
        return None
    if len(text) > MAX_LENGTH:
        raise OracleSelectorError("selector too long", MAX_LENGTH)
    tree: Node | None = _call_with_stack_room(Parser(tokenize(text)).parse_selector)
    return tree


def oracle_matches(text: str | None, headers: Mapping[str, HeaderValue]) -> bool:
    """True only when the selector is TRUE for these headers (raises if it is invalid)."""
    tree = oracle_compile(text)
    if tree is None:
        return True
    return _call_with_stack_room(evaluate, tree, headers) is True


def oracle_valid(text: str | None) -> bool:
    try:
        oracle_compile(text)
    except OracleSelectorError:
        return False
    return True


def oracle_error_position(text: str | None) -> int | None:
    """The position the oracle reports for an invalid selector, None if it is valid."""
    try:
        oracle_compile(text)
    except OracleSelectorError as error:
        return error.position
    return None
