"""Tokenizer for the selector language (SELECTORS.md §1): longest match, positions kept."""

from __future__ import annotations

import re
from enum import Enum, auto
from typing import NamedTuple

from broker._errors import SelectorError

MAX_LENGTH = 4096

KEYWORDS = frozenset(
    {"NOT", "AND", "OR", "BETWEEN", "LIKE", "ESCAPE", "IN", "IS", "NULL", "TRUE", "FALSE"}
)


class Kind(Enum):
    IDENT = auto()
    STRING = auto()
    INTEGER = auto()
    FLOAT = auto()
    KEYWORD = auto()
    OP = auto()
    END = auto()


class Token(NamedTuple):
    kind: Kind
    text: str  # keyword in upper case; operator as written except "!=" which reads "<>"
    value: str | int | float | None
    pos: int


# Only the characters SELECTORS.md names are whitespace (no NBSP, no vertical tab).
_WHITESPACE = " \t\n\r\f"
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# digits [. digits*] [exp] | . digits [exp]; the exponent needs digits, else "1e" is 1 then e.
_NUMBER = re.compile(r"(?:[0-9]+(\.[0-9]*)?|(\.)[0-9]+)([eE][+-]?[0-9]+)?")
_OPERATORS = ("<>", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", ",")


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise SelectorError(f"selector is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tokens: list[Token] = []
    pos = 0
    end = len(text)
    while pos < end:
        ch = text[pos]
        if ch in _WHITESPACE:
            pos += 1
            continue
        if ch == "'":
            pos = _string(text, pos, tokens)
            continue
        m = _IDENT.match(text, pos)
        if m is not None:
            word = m.group()
            upper = word.upper()
            if upper in KEYWORDS:
                tokens.append(Token(Kind.KEYWORD, upper, None, pos))
            else:
                tokens.append(Token(Kind.IDENT, word, word, pos))
            pos = m.end()
            continue
        m = _NUMBER.match(text, pos)
        if m is not None:
            tokens.append(_number(m, pos))
            pos = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, pos):
                tokens.append(Token(Kind.OP, "<>" if op == "!=" else op, None, pos))
                pos += len(op)
                break
        else:
            raise SelectorError(f"unexpected character {ch!r}", pos)
    tokens.append(Token(Kind.END, "end of selector", None, end))
    return tokens


def _string(text: str, start: int, tokens: list[Token]) -> int:
    parts: list[str] = []
    pos = start + 1
    while True:
        close = text.find("'", pos)
        if close < 0:
            raise SelectorError("string literal is not closed", start)
        parts.append(text[pos:close])
        if text.startswith("'", close + 1):  # '' stands for one quote
            parts.append("'")
            pos = close + 2
            continue
        tokens.append(Token(Kind.STRING, text[start : close + 1], "".join(parts), start))
        return close + 1


def _number(m: re.Match[str], pos: int) -> Token:
    literal = m.group()
    if m.group(1) is None and m.group(2) is None and m.group(3) is None:
        return Token(Kind.INTEGER, literal, int(literal), pos)
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise SelectorError(f"numeric literal {literal} is out of range", pos)
    return Token(Kind.FLOAT, literal, value, pos)
