"""Whatever mix of selectors is subscribed, each subscription receives exactly the
messages its compiled selector matches: the indexes never add or lose a delivery."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from broker import Broker, HeaderValue
from broker.selectors import compile_selector

# Few distinct values, so that headers often hit a bound or key exactly.
values = st.sampled_from([None, True, False, 1, 2, 2.0, -1, 0.5, "1", "01", "2", " 2", "x", ""])
literal_text = st.sampled_from(["1", "2", "-1", "0.5", "2.0", "'1'", "'x'", "'2'", "TRUE"])
header = st.sampled_from(["a", "b"])
simple = st.one_of(
    st.builds(lambda h, v: f"{h} = {v}", header, literal_text),
    st.builds(lambda v, h: f"{v} = {h}", literal_text, header),
    st.builds(
        lambda h, op, v: f"{h} {op} {v}",
        header,
        st.sampled_from(["<", "<=", ">", ">=", "<>"]),
        literal_text,
    ),
    st.builds(
        lambda h, vs: f"{h} IN ({', '.join(vs)})",
        header,
        st.lists(literal_text, min_size=1, max_size=3),
    ),
    st.builds(lambda h: f"{h} IS NULL", header),
    st.builds(
        lambda h, neg, lo, hi: f"{h} {neg}BETWEEN {lo} AND {hi}",
        header,
        st.sampled_from(["", "NOT "]),
        literal_text,
        literal_text,
    ),
    st.just(""),
)
selectors = st.one_of(
    simple,
    st.builds(lambda x, y: f"{x} AND {y}", simple.filter(bool), simple.filter(bool)),
    st.builds(lambda x, y: f"{x} OR {y}", simple.filter(bool), simple.filter(bool)),
)
headers = st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(selectors, min_size=1, max_size=12), st.lists(headers, min_size=1, max_size=6))
def test_every_subscription_gets_exactly_what_its_selector_matches(
    chosen: list[str], messages: list[dict[str, HeaderValue]]
) -> None:
    async def scenario() -> None:
        async with Broker() as broker:
            subs = [broker.subscribe("c", selector=s) for s in chosen]
            for sub in subs:
                await sub.__aenter__()
            for n, h in enumerate(messages):
                await broker.publish("c", n, headers=h)
            for text, sub in zip(chosen, subs, strict=True):
                compiled = compile_selector(text)
                expected = [n for n, h in enumerate(messages) if compiled.matches(h)]
                got = [(await anext(sub)).message for _ in range(sub.pending)]
                assert got == expected, (text, messages)
                sub.close()
            assert broker._channels["c"].idle

    asyncio.run(scenario())
