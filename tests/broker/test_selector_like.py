"""The LIKE matcher's fast paths and its general segment search agree on edge cases."""

from __future__ import annotations

import pytest

from broker.selectors._like import compile_like


@pytest.mark.parametrize(
    ("pattern", "escape", "value", "expected"),
    [
        ("abc", None, "abc", True),
        ("abc", None, "abcd", False),
        ("ab%", None, "abzz", True),
        ("%bc", None, "zzbc", True),
        ("%b%", None, "zbz", True),
        ("%b%", None, "zzz", False),
        ("a%b%c", None, "axbyc", True),
        ("a%b%c", None, "axyc", False),  # the middle segment is missing
        ("a%b%c", None, "abc", True),
        ("a%bc%bc", None, "abcbc", True),
        ("a%b_%c", None, "abxc", True),
        ("a%b_%c", None, "abc", False),
        ("_%_", None, "ab", True),
        ("_%_", None, "a", False),
        ("10!%%", "!", "10% off", True),
        ("10!%%", "!", "10 off", False),
        ("%%", None, "", True),
    ],
)
def test_like_patterns(pattern: str, escape: str | None, value: str, expected: bool) -> None:
    assert compile_like(pattern, escape)(value) is expected
