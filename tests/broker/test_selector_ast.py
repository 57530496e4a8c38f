"""Printing a selector tree and parsing it back is stable; compiled selectors are shared."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.selectors import compile_selector, parse, unparse
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
    Node,
    Not,
    Or,
    Unary,
)

names = st.sampled_from(["a", "b", "price", "city", "$x", "_y", "order", "AND_1"])
literals = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=0, max_value=10**30),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
in_items = st.one_of(
    st.text(max_size=4),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
like_patterns = st.text(alphabet="ab%_!'\n", max_size=8).filter(
    lambda p: not p.endswith("!") or p.endswith("!!")
)


def _escape_ok(pattern: str) -> bool:
    i = 0
    while i < len(pattern):
        if pattern[i] == "!":
            if i + 1 == len(pattern):
                return False
            i += 1
        i += 1
    return True


def _trees(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    ops = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
    arith = st.builds(
        lambda first, rest: Arith(first, tuple(rest)),
        children,
        st.one_of(
            st.lists(st.tuples(st.sampled_from("+-"), children), min_size=1, max_size=3),
            st.lists(st.tuples(st.sampled_from("*/"), children), min_size=1, max_size=3),
        ),
    )
    return st.one_of(
        st.builds(Unary, st.booleans(), children),
        arith,
        st.builds(Compare, ops, children, children),
        st.builds(Between, st.booleans(), children, children, children),
        st.builds(lambda xs: And(tuple(xs)), st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda xs: Or(tuple(xs)), st.lists(children, min_size=2, max_size=3)),
        st.builds(Not, children),
    )


leaves: st.SearchStrategy[Node] = st.one_of(
    st.builds(Const, literals),
    st.builds(Ident, names),
    st.builds(IsNull, st.booleans(), names),
    st.builds(
        lambda neg, name, items: In(neg, name, tuple(items)),
        st.booleans(),
        names,
        st.lists(in_items, min_size=1, max_size=3),
    ),
    st.builds(Like, st.booleans(), names, st.text(alphabet="ab%_'", max_size=5), st.none()),
    st.builds(Like, st.booleans(), names, like_patterns.filter(_escape_ok), st.just("!")),
)
trees = st.recursive(leaves, _trees, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(trees)
def test_print_then_parse_gives_the_same_tree(tree: Node) -> None:
    text = unparse(tree)
    assert parse(text) == tree
    assert unparse(parse(text)) == text  # type: ignore[arg-type]


def test_canonical_text_examples() -> None:
    assert unparse(parse("a=1AND b=2")) == "a = 1 AND b = 2"  # type: ignore[arg-type]
    assert unparse(parse("x = 3 -- 1")) == "x = 3 - -1"  # type: ignore[arg-type]
    assert unparse(parse("NOT NOT NOT a")) == "NOT a"  # type: ignore[arg-type]
    assert unparse(parse("NOT NOT a")) == "NOT (NOT a)"  # type: ignore[arg-type]
    assert unparse(parse("a != 'it''s'")) == "a <> 'it''s'"  # type: ignore[arg-type]
    assert unparse(parse("(a + b) * -(c)")) == "(a + b) * -c"  # type: ignore[arg-type]
    assert unparse(parse("a not between 1 and 2")) == "a NOT BETWEEN 1 AND 2"  # type: ignore[arg-type]
    assert parse(None) is None
    assert parse("  \n\t") is None


def test_compiled_selectors_are_shared_and_printable() -> None:
    first = compile_selector("price>5")
    assert compile_selector("price>5") is first
    assert first.text == "price > 5"
    assert repr(first) == "Selector('price > 5')"
    everything = compile_selector(None)
    assert everything.matches_all
    assert everything.matches({})
    assert everything.evaluator({}) is True
    assert compile_selector("a > 1").evaluator({}) is None  # UNKNOWN, not FALSE
    assert compile_selector("").matches_all
