"""Any sequence of schedule / cancel / advance / restart behaves like a simple model.

The model is the specification written plainly: due times start + n * period,
missed due times folded into one delivery, expiry inclusive, cancel final.
Times are quarter seconds so every clock reading is exact in binary floating point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker import Broker, BrokerError, MessageStatus, Subscription
from broker.stores import MemoryStore
from broker.testing import VirtualClock

START = 1_767_225_600.0


@dataclass
class Expected:
    first_due: int  # ms
    period: int | None
    expires: int | None
    next_index: int = 0
    status: MessageStatus = MessageStatus.SCHEDULED
    deliveries: list[int] = field(default_factory=list)  # timestamps (ms)

    def due(self, index: int) -> int:
        return self.first_due + index * (self.period or 0)

    def finished(self, index: int) -> bool:
        if self.period is None:
            return index > 0
        return self.expires is not None and self.due(index) > self.expires

    def advance(self, now: int) -> None:
        if self.status is not MessageStatus.SCHEDULED or self.due(self.next_index) > now:
            return
        self.deliveries.append(now)
        following = self.next_index + 1
        if self.period is not None and self.due(following) <= now:
            following = (now - self.first_due) // self.period + 1
        self.next_index = following
        if self.finished(following):
            self.status = MessageStatus.PUBLISHED


@dataclass(frozen=True)
class Publish:
    delay: float | None
    every: int | None  # seconds
    expiry: float | None  # seconds after the first due time (whole ones can hit a due time)


@dataclass(frozen=True)
class Cancel:
    pick: int


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class Restart:
    pass


Op = Publish | Cancel | Advance | Restart

quarters = st.integers(min_value=0, max_value=200).map(lambda q: q / 4)
operations = st.lists(
    st.one_of(
        st.builds(
            Publish,
            st.one_of(st.none(), quarters),
            st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
            st.one_of(st.none(), quarters, st.integers(min_value=0, max_value=40)),
        ),
        st.builds(Cancel, st.integers(min_value=0, max_value=30)),
        st.builds(Advance, quarters),
        st.builds(Advance, quarters),
        st.just(Restart()),
    ),
    max_size=30,
)


def expect(op: Publish, now_ms: int) -> tuple[dict[str, object], Expected]:
    """The publish options for `op`, and what the model expects of it."""
    options: dict[str, object] = {}
    if op.delay is None and op.every is None:
        return options, Expected(now_ms, None, None, 1, MessageStatus.PUBLISHED, [now_ms])
    if op.delay is not None:
        options["delay"] = op.delay
        first = now_ms + round(op.delay * 1000)
    else:
        first = now_ms + (op.every or 0) * 1000  # a repeat starts one period from now
    period = expires = None
    if op.every is not None:
        options["repeat_every"] = op.every
        period = op.every * 1000
        if op.expiry is not None:
            expires = first + round(op.expiry * 1000)
            options["repeat_expires_at"] = datetime.fromtimestamp(expires / 1000, UTC)
    return options, Expected(first, period, expires)


async def check(ops: list[Op]) -> None:
    clock = VirtualClock(START)
    store = MemoryStore()
    expected: dict[str, Expected] = {}
    ids: list[str] = []
    received: dict[str, list[int]] = {}

    async def drain(sub: Subscription) -> None:
        while sub.pending:
            message = await anext(sub)
            received.setdefault(message.message_id, []).append(message.timestamp)

    broker = Broker(clock=clock, store=store)
    await broker.__aenter__()
    sub = broker.subscribe("c", max_pending=100_000)
    await sub.__aenter__()
    try:
        for op in ops:
            now_ms = math.floor(clock() * 1000)
            if isinstance(op, Publish):
                options, item = expect(op, now_ms)
                result = await broker.publish("c", len(ids), **options)  # type: ignore[arg-type]
                expected[result.message_id] = item
                ids.append(result.message_id)
            elif isinstance(op, Cancel):
                if not ids:
                    continue
                message_id = ids[op.pick % len(ids)]
                item = expected[message_id]
                if item.status is MessageStatus.SCHEDULED:
                    outcome = await broker.cancel(message_id)
                    assert outcome.status is MessageStatus.CANCELLED
                    item.status = MessageStatus.CANCELLED
                else:
                    with pytest.raises(BrokerError) as info:
                        await broker.cancel(message_id)
                    assert info.value.code == 5040
            elif isinstance(op, Advance):
                await clock.advance(op.seconds)
                now_ms = math.floor(clock() * 1000)
                for item in expected.values():
                    item.advance(now_ms)
            else:  # restart on the same store; the subscriber is back before any await
                await drain(sub)
                await sub.__aexit__(None, None, None)
                await broker.__aexit__(None, None, None)
                broker = Broker(clock=clock, store=store)
                await broker.__aenter__()
                sub = broker.subscribe("c", max_pending=100_000)
                await sub.__aenter__()
                await clock.advance(0)  # overdue messages fire now
                now_ms = math.floor(clock() * 1000)
                for item in expected.values():
                    item.advance(now_ms)
            await drain(sub)
            for message_id, item in expected.items():
                assert received.get(message_id, []) == item.deliveries, message_id
                assert (await broker.get_status(message_id)).status is item.status
            assert broker.statistics().scheduled == sum(
                item.status is MessageStatus.SCHEDULED for item in expected.values()
            )
    finally:
        await sub.__aexit__(None, None, None)
        await broker.__aexit__(None, None, None)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_the_scheduler_matches_the_model(ops: list[Op]) -> None:
    anyio.run(check, ops)
