"""Subscriptions behave exactly like a bounded deque per subscriber (the simple model),
however publishes, reads and closes interleave: bounds are exact, not approximate."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from broker import Broker, SlowConsumerError, Subscription


@dataclass
class Model:
    limit: int
    drop_oldest: bool
    queue: deque[int] = field(default_factory=deque)
    dropped: int = 0
    failed: bool = False  # closed as a slow consumer
    closed: bool = False  # closed by the user

    def offer(self, n: int) -> None:
        if self.failed or self.closed:
            return
        if len(self.queue) < self.limit:
            self.queue.append(n)
        elif self.drop_oldest:
            self.queue.popleft()
            self.queue.append(n)
            self.dropped += 1
        else:
            self.failed = True
            self.dropped += 1


subscriber_specs = st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 9), st.just(0)),
        st.tuples(st.just("read"), st.integers(0, 2), st.integers(1, 8)),
        st.tuples(st.just("close"), st.integers(0, 2), st.just(0)),
    ),
    max_size=25,
)


async def read(sub: Subscription, model: Model, k: int) -> None:
    for _ in range(k):
        if model.queue:
            expected = model.queue.popleft()
            assert (await anext(sub)).message == expected
        elif model.failed:
            try:
                await anext(sub)
            except SlowConsumerError:
                return
            raise AssertionError("expected SlowConsumerError")
        else:
            assert sub.pending == 0
            return


@settings(max_examples=300, deadline=None)
@given(subscriber_specs, operations)
def test_subscriptions_match_the_bounded_deque_model(
    specs: list[tuple[int, bool]], ops: list[tuple[str, int, int]]
) -> None:
    async def scenario() -> None:
        async with Broker() as broker:
            models = [Model(limit, drop) for limit, drop in specs]
            subs = [
                broker.subscribe(
                    "c", max_pending=m.limit, overflow="drop_oldest" if m.drop_oldest else "close"
                )
                for m in models
            ]
            for sub in subs:
                await sub.__aenter__()
            counter = 0
            for op, a, b in ops:
                if op == "publish":
                    for _ in range(a):
                        await broker.publish("c", counter)
                        for m in models:
                            m.offer(counter)
                        counter += 1
                elif a < len(subs):
                    sub, model = subs[a], models[a]
                    if op == "close":
                        sub.close()
                        model.closed = True
                        model.queue.clear()
                    elif not model.closed:
                        await read(sub, model, b)
                for sub, m in zip(subs, models, strict=True):
                    if not m.closed:
                        assert sub.pending == len(m.queue)
                        assert sub.dropped == m.dropped
                        assert sub.closed == m.failed
            stats = broker.statistics().channels.get("c")
            assert stats is None or stats.dropped == sum(m.dropped for m in models)

    asyncio.run(scenario())
