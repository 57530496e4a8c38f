"""Property tests: broker.selectors agrees with the independent oracle on random input.

* Random selector *text* generated from the grammar of SELECTORS.md (random keyword case,
  random whitespace, every literal form, LIKE/ESCAPE, IN, BETWEEN, IS [NOT] NULL, nested
  parentheses, arithmetic), matched against random headers over the same names.
* Arbitrary and mutated text: compile_selector raises SelectorError exactly when the oracle
  says the text is invalid, and never raises anything else.

Whenever a selector is valid, ``NOT (selector)`` is checked too, which tells FALSE apart from
UNKNOWN (both are "not delivered").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import SelectorError
from broker.selectors import compile_selector
from tests.broker.deliveries import broker_deliveries
from tests.broker.selector_oracle import HeaderValue, oracle_matches, oracle_valid

Headers = dict[str, HeaderValue]
Draw = Callable[..., object]

PROPERTY_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NAMES = ["a", "b", "c", "price", "city", "flag"]


# --------------------------------------------------------------------------- agreement


def assert_agreement(text: str, headers_list: list[Headers]) -> None:
    """compile_selector and the oracle agree on validity and, if valid, on every match."""
    if not oracle_valid(text):
        with pytest.raises(SelectorError) as info:
            compile_selector(text)
        assert info.value.code == 5050
        assert 0 <= info.value.position <= len(text)
        return
    selector = compile_selector(text)
    negated_text = f"NOT ({text})"
    negated = compile_selector(negated_text) if oracle_valid(negated_text) else None
    for headers in headers_list:
        expected = oracle_matches(text, headers)
        assert selector.matches(headers) is expected, (text, headers)
        if negated is not None:
            expected_negated = oracle_matches(negated_text, headers)
            assert negated.matches(headers) is expected_negated, (negated_text, headers)


# --------------------------------------------------------------------------- header values

NUMERIC_SHAPED = [
    "7",
    " 7",
    "7 ",
    "1e3",
    "01",
    "1.0",
    "1",
    "0",
    "-0",
    "-0.0",
    "+1",
    ".5",
    "5.",
    "2",
    "-3",
    "1e400",
    "1e-400",
    "NaN",
    "inf",
    "0x10",
    "1_000",
    "٢",
    "",
    "true",
    "TRUE",
    "9007199254740993",
    "9007199254740993.0",
    "1" + "0" * 400,
    "1" + "0" * 5000,
]

header_values: st.SearchStrategy[HeaderValue] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10),
    st.integers(-9, 9),
    st.sampled_from([-7, -2, -1, 0, 1, 2, 3, 7, -0.5, 2.5, "-7", "3", "2.5"]),
    st.integers(),
    st.sampled_from([2**53 + 1, 2**62, 2**63, -(2**63), 10**400, -(10**400), 10**30 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.0, 0.0, 0.5, 1.0, 1.5, 1e308, -1e308, 9007199254740992.0, 5e-324]),
    st.sampled_from(NUMERIC_SHAPED),
    st.text(alphabet="ab%_!\\'.xé😀\n 7", max_size=6),
    st.text(max_size=4),
)

headers_strategy: st.SearchStrategy[Headers] = st.dictionaries(
    st.sampled_from(NAMES), header_values, max_size=len(NAMES)
)
headers_lists = st.lists(headers_strategy, min_size=1, max_size=4)


# --------------------------------------------------------------------------- selector text

WHITESPACE = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\r\n", "\f", " \n\t "])
OPTIONAL_WHITESPACE = st.sampled_from(["", "", "", " ", "\n"])
# how many more operands a chain gets: usually none, so generated selectors stay small
FEW = st.sampled_from([0, 0, 0, 0, 1, 1, 2])

# The grammar productions below are plain functions of one ``draw`` (the selector_text
# composite's), using only strategies built once at import: building strategies per draw
# is what makes recursive hypothesis generators slow.


def _keyword_strategy(word: str) -> st.SearchStrategy[str]:
    mixed = st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flips: "".join(
            c.upper() if up else c.lower() for c, up in zip(word, flips, strict=True)
        )
    )
    return st.one_of(
        st.sampled_from([word.upper(), word.upper(), word.lower(), word.title()]), mixed
    )


KEYWORDS = {
    word: _keyword_strategy(word)
    for word in [
        *("NOT", "AND", "OR", "BETWEEN", "LIKE", "ESCAPE"),
        *("IN", "IS", "NULL", "TRUE", "FALSE"),
    ]
}


def kw(draw: Draw, word: str) -> str:
    """A keyword in random letter case, with whitespace on both sides."""
    return f"{draw(WHITESPACE)}{draw(KEYWORDS[word])}{draw(WHITESPACE)}"


def punct(draw: Draw, symbol: str) -> str:
    """Punctuation with optional whitespace on both sides."""
    return f"{draw(OPTIONAL_WHITESPACE)}{symbol}{draw(OPTIONAL_WHITESPACE)}"


identifier = st.sampled_from(NAMES)

DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=4)
EXPONENT = st.tuples(
    st.sampled_from(["e", "E"]),
    st.sampled_from(["", "+", "-"]),
    st.one_of(st.integers(0, 20).map(str), st.sampled_from(["308", "309", "400", "0400"])),
).map("".join)
INTEGER_VALUES = st.one_of(
    st.integers(0, 5),
    st.integers(0, 9),
    st.integers(0, 3),
    st.integers(0, 10**20),
    st.sampled_from([2**53 + 1, 2**62, 2**63, 10**30 + 1, 10**400]),
)
LEADING_ZEROS = st.sampled_from(["", "", "", "0", "00"])
FINITE_FLOATS = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)


@st.composite
def integer_literal(draw: Draw) -> str:
    return f"{draw(LEADING_ZEROS)}{draw(INTEGER_VALUES)}"


@st.composite
def approximate_literal(draw: Draw) -> str:
    form = draw(st.integers(0, 5))
    whole = draw(DIGITS)
    fraction = draw(DIGITS)
    if form == 0:
        return f"{whole}.{fraction}"
    if form == 1:
        return f".{fraction}"
    if form == 2:
        return f"{whole}."
    if form == 3:
        return f"{whole}{draw(EXPONENT)}"
    if form == 4:
        return f"{whole}.{draw(st.sampled_from(['', fraction]))}{draw(EXPONENT)}"
    return repr(draw(FINITE_FLOATS))  # '1.5', '1e+100', '5e-324', ...


number_literal = st.one_of(integer_literal(), approximate_literal())

STRING_CONTENT = st.one_of(
    st.sampled_from(NUMERIC_SHAPED[:-1]),
    st.text(alphabet="ab%_!\\'.xé😀\n 7", max_size=6),
)


def quote(content: str) -> str:
    return "'" + content.replace("'", "''") + "'"


string_literal = STRING_CONTENT.map(quote)
boolean_literal = st.one_of(KEYWORDS["TRUE"], KEYWORDS["FALSE"])
literal = st.one_of(number_literal, string_literal, boolean_literal)
SIGNS = st.sampled_from(["", "", "", "", "-", "+", "- -", "--", "+-", "-+-"])
PRIMARY_FORMS = st.sampled_from(["identifier", "identifier", "identifier", "literal", "literal"])
PRIMARY_FORMS_WITH_GROUP = st.sampled_from(
    ["identifier", "identifier", "identifier", "literal", "literal", "group"]
)
PRODUCT_OPERATORS = st.sampled_from(["*", "/"])
SUM_OPERATORS = st.sampled_from(["+", "-"])
COMPARISON_OPERATORS = st.sampled_from(["=", "<>", "!=", "<", "<=", ">", ">="])
PREDICATE_FORMS = st.sampled_from(["bare", "compare", "compare", "between", "in", "like", "is"])
IN_ITEM_SIGNS = st.sampled_from(["", "", "-", "+", "- "])
LIKE_PATTERN = st.text(alphabet="ab%_!\\.*😀\n'", max_size=8)
ESCAPE_CHARACTER = st.sampled_from(["!", "!", "\\", "%", "_", "a", "'", "😀"])


def primary(draw: Draw, depth: int) -> str:
    choice = draw(PRIMARY_FORMS_WITH_GROUP if depth > 0 else PRIMARY_FORMS)
    if choice == "identifier":
        return str(draw(identifier))
    if choice == "literal":
        return str(draw(literal))
    inner = or_expression(draw, depth - 1)
    return f"{punct(draw, '(')}{inner}{punct(draw, ')')}"


def unary(draw: Draw, depth: int) -> str:
    return f"{draw(SIGNS)}{primary(draw, depth)}"


def product(draw: Draw, depth: int) -> str:
    text = unary(draw, depth)
    for _ in range(draw(FEW)):
        text += f"{punct(draw, str(draw(PRODUCT_OPERATORS)))}{unary(draw, depth)}"
    return text


def sum_expression(draw: Draw, depth: int) -> str:
    text = product(draw, depth)
    for _ in range(draw(FEW)):
        text += f"{punct(draw, str(draw(SUM_OPERATORS)))}{product(draw, depth)}"
    return text


def left_operand(draw: Draw, depth: int) -> str:
    """Usually an identifier, maybe parenthesized; rarely anything else (an error)."""
    form = draw(st.integers(0, 19))
    name = str(draw(identifier))
    if form < 14:
        return name
    if form < 17:
        return f"({name})"
    if form < 19:
        return f"( ({name}) )"
    return sum_expression(draw, depth)


def in_item(draw: Draw) -> str:
    form = draw(st.integers(0, 3))
    if form == 0:
        return str(draw(string_literal))
    if form == 1:
        return str(draw(boolean_literal))
    return f"{draw(IN_ITEM_SIGNS)}{draw(number_literal)}"


def predicate(draw: Draw, depth: int) -> str:
    form = draw(PREDICATE_FORMS)
    if form == "bare":
        return sum_expression(draw, depth)
    if form == "compare":
        left = sum_expression(draw, depth)
        op = punct(draw, str(draw(COMPARISON_OPERATORS)))
        return f"{left}{op}{sum_expression(draw, depth)}"
    negation = kw(draw, "NOT") if draw(st.booleans()) else ""
    if form == "between":
        head = f"{sum_expression(draw, depth)}{negation}{kw(draw, 'BETWEEN')}"
        low = sum_expression(draw, depth)
        return f"{head}{low}{kw(draw, 'AND')}{sum_expression(draw, depth)}"
    operand = left_operand(draw, depth)
    if form == "in":
        items = [in_item(draw) for _ in range(1 + draw(FEW) + draw(FEW))]
        body = punct(draw, ",").join(items)
        return f"{operand}{negation}{kw(draw, 'IN')}({body})"
    if form == "like":
        text = f"{operand}{negation}{kw(draw, 'LIKE')}{quote(str(draw(LIKE_PATTERN)))}"
        if draw(st.booleans()):
            text += f"{kw(draw, 'ESCAPE')}{quote(str(draw(ESCAPE_CHARACTER)))}"
        return text
    middle = kw(draw, "NOT") if draw(st.booleans()) else ""
    return f"{operand}{kw(draw, 'IS')}{middle}{kw(draw, 'NULL')}"


def not_expression(draw: Draw, depth: int) -> str:
    nots = "".join(kw(draw, "NOT") for _ in range(draw(FEW)))
    return f"{nots}{predicate(draw, depth)}"


def and_expression(draw: Draw, depth: int) -> str:
    parts = [not_expression(draw, depth) for _ in range(1 + draw(FEW))]
    return kw(draw, "AND").join(parts)


def or_expression(draw: Draw, depth: int) -> str:
    parts = [and_expression(draw, depth) for _ in range(1 + draw(FEW))]
    return kw(draw, "OR").join(parts)


@st.composite
def selector_text(draw: Draw) -> str:
    before = draw(st.sampled_from(["", "", " ", "\n\t"]))
    after = draw(st.sampled_from(["", "", " ", "\r\n"]))
    return f"{before}{or_expression(draw, 2)}{after}"


# --------------------------------------------------------------------------- broken text

SOUP_TOKENS = [
    *NAMES,
    "NOT",
    "not",
    "AND",
    "Or",
    "BETWEEN",
    "LIKE",
    "ESCAPE",
    "IN",
    "is",
    "NULL",
    "TRUE",
    "false",
    "order",
    "nullable",
    "AND_1",
    "città",
    "=",
    "<>",
    "!=",
    "!",
    "==",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "--",
    "*",
    "/",
    "/*",
    "(",
    ")",
    ",",
    "%",
    ";",
    ".",
    "'x'",
    "''",
    "'",
    "'it''s'",
    "'%a_'",
    "'!'",
    '"x"',
    "`",
    "0",
    "1",
    "007",
    ".5",
    "7.",
    "1e3",
    "1.e3",
    "1e",
    "1.2.3",
    "0x10",
    "10L",
    "1_000",
    "1e400",
    "9223372036854775808",
    "\u00a0",
    "\v",
    "\x1c",
    "\u3000",
    "😀",
    "٢",
]

SOUP_SEPARATORS = st.sampled_from(["", " ", " ", " ", "\t", "\n", "\f"])


@st.composite
def token_soup(draw: Draw) -> str:
    tokens = draw(st.lists(st.sampled_from(SOUP_TOKENS), min_size=1, max_size=12))
    text = str(tokens[0])
    for token in tokens[1:]:
        text += f"{draw(SOUP_SEPARATORS)}{token}"
    return text


MUTATION_CHARACTERS = st.one_of(
    st.sampled_from(list("()'\",.!=<>+-*/%_ \t\n\f\v\u00a0\x1ceE0123456789aNnOoTtLl$`;😀é")),
    st.sampled_from(["NOT ", " NULL", " IN ", " IS ", " AND ", " ESCAPE ", "''", "1e", "(("]),
    st.characters(),
)


@st.composite
def mutated_selector(draw: Draw) -> str:
    text = str(draw(selector_text()))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if action == "delete" and text:
            end = min(len(text), position + draw(st.integers(1, 3)))
            text = text[:position] + text[end:]
        elif action == "insert":
            text = text[:position] + str(draw(MUTATION_CHARACTERS)) + text[position:]
        elif action == "replace" and position < len(text):
            text = text[:position] + str(draw(MUTATION_CHARACTERS)) + text[position + 1 :]
        else:
            end = min(len(text), position + draw(st.integers(1, 8)))
            text = text[:end] + text[position:]
    return text


@st.composite
def near_limits(draw: Draw) -> str:
    """Selectors around the 64-parentheses and 4096-character limits."""
    core = str(draw(selector_text()))
    if draw(st.booleans()):
        depth = draw(st.integers(60, 66))
        core = "(" * depth + core + ")" * depth
    if draw(st.booleans()):
        target = draw(st.integers(4090, 4100))
        core = core + " " * max(0, target - len(core))
    return core


# --------------------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(text=selector_text(), headers_list=headers_lists)
def test_generated_selectors_match_like_the_oracle(text: str, headers_list: list[Headers]) -> None:
    assert_agreement(text, headers_list)


@PROPERTY_SETTINGS
@given(text=mutated_selector(), headers_list=headers_lists)
def test_mutated_selectors_agree_on_validity(text: str, headers_list: list[Headers]) -> None:
    assert_agreement(text, headers_list)


@PROPERTY_SETTINGS
@given(text=token_soup(), headers=headers_strategy)
def test_token_soup_agrees_on_validity(text: str, headers: Headers) -> None:
    assert_agreement(text, [headers])


@PROPERTY_SETTINGS
@given(text=st.text(max_size=40), headers=headers_strategy)
def test_arbitrary_text_agrees_on_validity(text: str, headers: Headers) -> None:
    assert_agreement(text, [headers])


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=near_limits(), headers=headers_strategy)
def test_selectors_near_the_limits_agree(text: str, headers: Headers) -> None:
    assert_agreement(text, [headers])


# --------------------------------------------------------------------------- through the broker
#
# SELECTORS.md §6: the broker groups subscriptions by selector and keeps an equality index
# for `header = literal` / IN selectors; deliveries must still be exactly what each selector
# defines.

# literals and header values from one small pool, so that a header often equals a bound
POOL_LITERALS = [
    *("0", "1", "2", "1.0", "-1", "0.5", "-0.0", "'1'", "'01'", "'10'", "'9'"),
    *("TRUE", "FALSE", "'x'", "9007199254740993", "9007199254740992.0"),
]
POOL_VALUES: list[HeaderValue] = [
    *(0, 1, 2, 1.0, -1, 0.5, -0.0, "1", "01", "10", "9", True, False, "x", "1.0"),
    *(9007199254740993, 9007199254740992.0, "9007199254740993", None),
]
INDEX_LITERAL = st.one_of(
    st.sampled_from(POOL_LITERALS),
    st.sampled_from(POOL_LITERALS),
    literal,
    st.tuples(st.sampled_from(["-", "+", "- -"]), number_literal).map("".join),
    st.sampled_from(["(1 = 1)", "(1 = 2)", "(1 / 0)", "+'1'", "-'2'", "1e0", "'01'", "'1.0'"]),
    st.sampled_from(["'9'", "'10'", "+'9'", "-0.0", "2.5", "9007199254740992.0"]),
    st.sampled_from(["9007199254740993", "1 + 1", "2 * 1.5", "(7 / 2)", "'7' / 2"]),
)


INDEX_OPERATORS = st.sampled_from(["=", "=", "<", "<=", ">", ">=", "<>"])


@st.composite
def indexable_selector(draw: Draw) -> str:
    """Shapes the broker's equality and range indexes handle: h = v, v < h, h IN (...),
    h >= v AND ..., and the near misses they must not index (NOT IN, <>)."""
    name = str(draw(st.sampled_from(NAMES[:3])))
    value = str(draw(INDEX_LITERAL))
    op = str(draw(INDEX_OPERATORS))
    form = draw(st.integers(0, 4))
    if form == 0:
        return f"{name} {op} {value}"
    if form == 1:
        return f"{value} {op} {name}"
    if form == 2:
        items = [in_item(draw) for _ in range(1 + draw(FEW) + draw(FEW))]
        negation = " NOT" if draw(st.integers(0, 4)) == 0 else ""
        return f"{name}{negation} IN ({', '.join(items)})"
    rest = or_expression(draw, 1)
    if form == 3:
        return f"{name} {op} {value} AND {rest}"
    return f"({rest}) AND {name} {op} {value}"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    selectors=st.lists(
        st.one_of(indexable_selector(), indexable_selector(), selector_text()),
        min_size=1,
        max_size=12,
    ),
    headers_list=st.lists(
        st.one_of(
            headers_strategy,
            st.dictionaries(
                st.sampled_from(NAMES[:3]),
                st.one_of(
                    st.sampled_from(POOL_VALUES), st.sampled_from(POOL_VALUES), header_values
                ),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=10,
    ),
)
def test_broker_delivers_what_the_oracle_says(
    selectors: list[str], headers_list: list[Headers]
) -> None:
    valid = [selector for selector in selectors if oracle_valid(selector)]
    received = asyncio.run(broker_deliveries(valid, headers_list))
    for selector, got in zip(valid, received, strict=True):
        expected = [
            number
            for number, headers in enumerate(headers_list)
            if oracle_matches(selector, headers)
        ]
        assert got == expected, (selector, [headers_list[n] for n in set(got) ^ set(expected)])
