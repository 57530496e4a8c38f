"""LIKE matching in at most len(pattern) x len(value) steps.

The pattern is cut at each unescaped '%' into fixed-length segments; the first
must match at the start, the last at the end, and the ones between are found
leftmost-first. Fixed-length segments make greedy search exact, so nothing
backtracks across '%' (a regex of '.*' runs can take exponential time).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ANY = object()  # '_' : any one code point


def compile_like(pattern: str, escape: str | None) -> Callable[[str], bool]:
    segments: list[list[object]] = [[]]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == escape:
            i += 1
            segments[-1].append(pattern[i])
        elif ch == "%":
            segments.append([])
        elif ch == "_":
            segments[-1].append(_ANY)
        else:
            segments[-1].append(ch)
        i += 1
    if all(_ANY not in parts for parts in segments):
        # The usual patterns ('abc', 'abc%', '%abc', '%abc%') as single string methods.
        texts = ["".join(str(p) for p in parts) for parts in segments]
        if len(texts) == 1:
            return texts[0].__eq__
        if len(texts) == 2:
            head, tail = texts
            if not tail:
                return lambda value: value.startswith(head)
            if not head:
                return lambda value: value.endswith(tail)
        if len(texts) == 3 and not texts[0] and not texts[2]:
            needle = texts[1]
            return lambda value: needle in value
    finders = [_segment(parts) for parts in segments]
    if len(finders) == 1:
        only = finders[0]
        return lambda value: len(value) == only.size and only.at(value, 0)
    return _Wildcard(finders).matches


class _Segment:
    __slots__ = ("_literal", "_regex", "size")

    def __init__(self, literal: str | None, regex: re.Pattern[str] | None, size: int) -> None:
        self._literal = literal
        self._regex = regex
        self.size = size

    def at(self, value: str, pos: int) -> bool:
        if self._literal is not None:
            return value.startswith(self._literal, pos)
        return self._regex is not None and self._regex.match(value, pos) is not None

    def find(self, value: str, start: int, end: int) -> int:
        """Leftmost position >= start where the segment fits before end, or -1."""
        if self._literal is not None:
            return value.find(self._literal, start, end)
        found = self._regex.search(value, start, end) if self._regex is not None else None
        return -1 if found is None else found.start()


def _segment(parts: list[object]) -> _Segment:
    if _ANY not in parts:
        return _Segment("".join(str(p) for p in parts), None, len(parts))
    source = "".join("." if p is _ANY else re.escape(str(p)) for p in parts)
    return _Segment(None, re.compile(source, re.DOTALL), len(parts))


class _Wildcard:
    __slots__ = ("_first", "_last", "_middle")

    def __init__(self, finders: list[_Segment]) -> None:
        self._first = finders[0]
        self._middle = finders[1:-1]
        self._last = finders[-1]

    def matches(self, value: str) -> bool:
        first = self._first
        last = self._last
        tail = len(value) - last.size  # where the last segment must start
        if tail < first.size or not first.at(value, 0) or not last.at(value, tail):
            return False
        pos = first.size
        for segment in self._middle:
            found = segment.find(value, pos, tail)
            if found < 0:
                return False
            pos = found + segment.size
        return True
