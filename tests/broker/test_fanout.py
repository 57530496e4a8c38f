"""Selective fan-out through the equality index gives exactly SELECTORS.md's results."""

from __future__ import annotations

import pytest

from broker import Broker, HeaderValue

EQUALITY_CASES: list[tuple[str, HeaderValue, bool]] = [
    # SELECTORS.md §6: the index must agree with `=`
    ("h = 1", 1, True),
    ("h = 1", 1.0, True),
    ("h = 1", "1", True),
    ("h = 1", "1.0", True),
    ("h = 1", "01", True),
    ("h = 1", True, False),
    ("h = 1", 2, False),
    ("h = '1'", 1, True),
    ("h = '1'", 1.0, True),
    ("h = '1'", "1", True),
    ("h = '1'", "1.0", False),
    ("h = TRUE", 1, False),
    ("h = TRUE", True, True),
    ("h = TRUE", False, False),
    ("h = FALSE", False, True),
    ("h = 'Tokyo'", "Tokyo", True),
    ("h = 'Tokyo'", "tokyo", False),
    ("'Tokyo' = h", "Tokyo", True),
    ("h = -5", -5, True),
    ("h = -5", "-5", True),
    ("h = 2 * 3", 6, True),
    ("h = 1.5", "1.5", True),
    ("h = 1.5", 1.5, True),
    ("h IN ('a', 2, TRUE)", "a", True),
    ("h IN ('a', 2, TRUE)", 2, True),
    ("h IN ('a', 2, TRUE)", "2", True),
    ("h IN ('a', 2, TRUE)", True, True),
    ("h IN ('a', 2, TRUE)", False, False),
    ("h IN ('a', 2, TRUE)", "b", False),
    ("h IN (1, 1.0, '1')", 1, True),
    ("h IN (1, 1.0, '1')", "1", True),
    ("h = 1 AND k > 2", 1, True),
    ("k > 2 AND h = 1", 1, True),
    ("h = 1 AND k > 5", 1, False),
    ("h = 9007199254740993", 9007199254740992.0, False),
]


@pytest.mark.parametrize(("selector", "value", "delivered"), EQUALITY_CASES)
async def test_indexed_selectors_match_like_the_language(
    selector: str, value: HeaderValue, delivered: bool
) -> None:
    async with Broker() as broker, broker.subscribe("c", selector=selector) as sub:
        await broker.publish("c", "m", headers={"h": value, "k": 3})
        await broker.publish("c", "m", headers={"k": 3})  # indexed header missing
        await broker.publish("c", "m", headers={"h": None, "k": 3})
        assert sub.pending == (1 if delivered else 0)


async def test_a_group_reached_through_two_index_buckets_gets_the_message_once() -> None:
    async with Broker() as broker, broker.subscribe("c", selector="h IN ('1', 1)") as sub:
        await broker.publish("c", "a", headers={"h": "1"})
        await broker.publish("c", "b", headers={"h": 1})
        assert [(await anext(sub)).message for _ in range(2)] == ["a", "b"]
        assert sub.pending == 0


async def test_many_subscribers_each_get_only_their_messages() -> None:
    cities = [f"c{i}" for i in range(50)]
    async with Broker() as broker:
        subs = {c: broker.subscribe("c", selector=f"city = '{c}'") for c in cities}
        everything = broker.subscribe("c")
        ranged = broker.subscribe("c", selector="n >= 40")
        for sub in [*subs.values(), everything, ranged]:
            await sub.__aenter__()
        for n, city in enumerate(cities):
            await broker.publish("c", n, headers={"city": city, "n": n, "extra": 1})
        for n, city in enumerate(cities):
            assert [(await anext(subs[city])).message] == [n]
            assert subs[city].pending == 0
        assert everything.pending == 50
        assert ranged.pending == 10
        # Unsubscribing every indexed group leaves no index behind.
        for sub in subs.values():
            sub.close()
        assert not broker._channels["c"].index


async def test_index_lookup_walks_the_smaller_side() -> None:
    """Many indexed header names and few message headers, and the other way round."""
    async with Broker() as broker:
        subs = [broker.subscribe("c", selector=f"h{i} = {i}") for i in range(20)]
        for sub in subs:
            await sub.__aenter__()
        await broker.publish("c", "few", headers={"h3": 3})
        await broker.publish("c", "many", headers={f"x{i}": i for i in range(40)} | {"h4": 4})
        assert [s.pending for s in subs] == [0, 0, 0, 1, 1] + [0] * 15


async def test_removing_a_group_keyed_by_equal_values_is_clean() -> None:
    async with Broker() as broker:
        async with broker.subscribe("c", selector="h IN (1, 1.0, TRUE, 'x')"):
            pass
        async with broker.subscribe("c", selector="h IN (1, 2)") as sub:
            await broker.publish("c", "m", headers={"h": 2})
            assert sub.pending == 1
        assert not broker._channels["c"].index


RANGE_CASES: list[tuple[str, HeaderValue, bool]] = [
    ("p > 5", 6, True),
    ("p > 5", 5, False),
    ("p > 5", 5.5, True),
    ("p > 5", "6", True),
    ("p > 5", "6.0", True),
    ("p > 5", " 6", False),
    ("p > 5", "abc", False),
    ("p > 5", True, False),
    ("p >= 5", 5, True),
    ("p >= 5", 4.999, False),
    ("p < 5", 4, True),
    ("p < 5", 5, False),
    ("p <= 5", 5.0, True),
    ("p <= 5", 6, False),
    ("5 < p", 6, True),
    ("5 >= p", 5, True),
    ("p > -2.5", -2, True),
    ("p > 9007199254740992", 9007199254740993, True),
    ("p > 9007199254740992.0", 9007199254740992, False),
    ("p > 5 AND q = 'x'", 6, False),
    ("q <> 'y' AND p > 5", 6, True),
    ("p BETWEEN 5 AND 7", 6, True),
    ("p BETWEEN 5 AND 7", 8, False),
    ("p BETWEEN 5 AND 7", "5", True),
    ("p BETWEEN 5 AND 7", 4.5, False),
    ("p = 6 OR p = 'x'", 6, True),
    ("p = 6 OR p = 'x'", "6", True),
    ("p = 6 OR p = 'x'", "x", True),
    ("p = 6 OR p = 'x'", "y", False),
    ("p = 6 OR p IN (7, 8)", 8, True),
    ("q = 'y' OR p = 6", 6, True),  # two headers: no index may narrow this one
    ("q = 'y' OR p = 6", 5, False),
]


@pytest.mark.parametrize(("selector", "value", "delivered"), RANGE_CASES)
async def test_range_indexed_selectors_match_like_the_language(
    selector: str, value: HeaderValue, delivered: bool
) -> None:
    async with Broker() as broker, broker.subscribe("c", selector=selector) as sub:
        channel = broker._channels["c"]
        # served by an index, not evaluated per message, unless the OR spans two headers
        assert bool(channel.scan) == selector.startswith("q = 'y' OR")
        await broker.publish("c", "m", headers={"p": value, "q": "z"})
        await broker.publish("c", "m", headers={"q": "z"})
        assert sub.pending == (1 if delivered else 0)


async def test_range_groups_with_equal_bounds_come_and_go_independently() -> None:
    async with Broker() as broker:
        a = broker.subscribe("c", selector="p > 5")
        b = broker.subscribe("c", selector="p > 5 AND q = 1")
        c = broker.subscribe("c", selector="p > 5.0")
        d = broker.subscribe("c", selector="p < 1")
        for sub in (a, b, c, d):
            await sub.__aenter__()
        b.close()
        await broker.publish("c", "m", headers={"p": 6, "q": 1})
        assert (a.pending, b.pending, c.pending, d.pending) == (1, 0, 1, 0)
        for sub in (a, c, d):
            sub.close()
        assert not broker._channels["c"].ranges


async def test_an_or_over_two_headers_delivers_on_either() -> None:
    async with Broker() as broker, broker.subscribe("c", selector="a = 1 OR b = 2") as sub:
        await broker.publish("c", "a", headers={"a": 1})
        await broker.publish("c", "b", headers={"b": 2})
        await broker.publish("c", "none", headers={"a": 2, "b": 1})
        assert [(await anext(sub)).message for _ in range(sub.pending)] == ["a", "b"]
