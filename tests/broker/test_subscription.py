"""Bounded subscription queues and overflow policies."""

from __future__ import annotations

import asyncio

import pytest

from broker import Broker, BrokerError, SlowConsumerError, Subscription


async def drain(sub: Subscription) -> list[object]:
    return [msg.message async for msg in sub]


async def test_overflow_close_yields_what_it_holds_then_slow_consumer_error() -> None:
    async with Broker() as broker:
        slow = broker.subscribe("c", max_pending=5)
        fast = broker.subscribe("c", max_pending=100)
        async with slow, fast:
            for i in range(8):
                await broker.publish("c", i)
            got: list[object] = []
            with pytest.raises(SlowConsumerError) as info:
                async for msg in slow:
                    got.append(msg.message)
            assert info.value.code == 5051
            assert isinstance(info.value, BrokerError)
            assert got == [0, 1, 2, 3, 4]
            assert slow.closed
            # closed at the first message that did not fit; later ones were not its concern
            assert slow.dropped == 1
            # the other subscriber is unaffected
            assert [(await anext(fast)).message for _ in range(8)] == list(range(8))
            stats = broker.statistics().channels["c"]
            assert stats.dropped == 1
            assert stats.delivered == 8 + 5
            assert stats.subscribers == 1
            await broker.publish("c", 8)
            assert fast.pending == 1


async def test_overflow_close_detected_by_publisher_bounds_memory() -> None:
    async with Broker() as broker, broker.subscribe("c", max_pending=200) as sub:
        for i in range(1000):
            await broker.publish("c", i)
        # nobody read: the publisher's own bound check closed the subscription
        assert sub.closed
        assert sub.pending == 200
        assert broker.statistics().channels["c"].subscribers == 0
        assert broker._channels["c"].idle
        got: list[object] = []
        with pytest.raises(SlowConsumerError):
            async for msg in sub:
                got.append(msg.message)
        assert got == list(range(200))


async def test_overflow_drop_oldest_keeps_the_newest_and_counts_drops() -> None:
    async with (
        Broker() as broker,
        broker.subscribe("c", max_pending=5, overflow="drop_oldest") as sub,
    ):
        for i in range(12):
            await broker.publish("c", i)
        assert [(await anext(sub)).message for _ in range(5)] == [7, 8, 9, 10, 11]
        assert sub.dropped == 7
        assert broker.statistics().channels["c"].dropped == 7
        assert not sub.closed
        await broker.publish("c", 12)
        assert (await anext(sub)).message == 12


async def test_drop_oldest_enforced_by_publisher_while_a_batch_is_half_read() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c", max_pending=100, overflow="drop_oldest")
        async with sub:
            for i in range(100):
                await broker.publish("c", i)
            assert (await anext(sub)).message == 0  # takes 0..99 as the current batch
            for i in range(100, 400):
                await broker.publish("c", i)
            received = [m.message async for m in _take(sub, 100)]
            assert received == list(range(300, 400))
            assert sub.dropped == 299


async def test_drop_oldest_trims_inside_the_current_batch() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c", max_pending=100, overflow="drop_oldest")
        async with sub:
            for i in range(100):
                await broker.publish("c", i)
            assert (await anext(sub)).message == 0  # batch now holds 1..99
            for i in range(100, 140):
                await broker.publish("c", i)
            # 139 unread > 100: the 39 oldest of the batch go, the rest stay in order
            received = [m.message async for m in _take(sub, 100)]
            assert received == list(range(40, 140))
            assert sub.dropped == 39


async def _take(sub: Subscription, n: int):  # type: ignore[no-untyped-def]
    count = 0
    async for msg in sub:
        yield msg
        count += 1
        if count == n:
            return


async def test_consumer_that_keeps_up_is_never_cut_off() -> None:
    """A tight publish loop yields once queues pass half full, so consumers keep up."""
    async with Broker() as broker, broker.subscribe("c", max_pending=100) as sub:
        received = 0

        async def consume() -> None:
            nonlocal received
            async for _ in sub:
                received += 1
                if received == 5000:
                    return

        task = asyncio.create_task(consume())
        for i in range(5000):
            await broker.publish("c", i)
        await asyncio.wait_for(task, 10)
        assert received == 5000
        assert sub.dropped == 0
        assert len(broker._channels["c"].groups[""].log) <= 100 + 64


async def test_close_discards_and_stops_iteration() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c")
        async with sub:
            await broker.publish("c", 1)
            sub.close()
            sub.close()  # idempotent
            assert sub.pending == 0
            assert await drain(sub) == []
            with pytest.raises(StopAsyncIteration):
                await anext(sub)
            await broker.publish("c", 2)
            assert sub.pending == 0


async def test_close_wakes_a_waiting_consumer() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        task = asyncio.create_task(drain(sub))
        await asyncio.sleep(0)
        sub.close()
        assert await asyncio.wait_for(task, 5) == []


async def test_anext_waits_for_a_message() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        task = asyncio.create_task(anext(sub))
        await asyncio.sleep(0)
        assert not task.done()
        await broker.publish("c", "late")
        assert (await asyncio.wait_for(task, 5)).message == "late"


async def test_anext_raises_the_error_after_held_messages() -> None:
    async with Broker() as broker, broker.subscribe("c", max_pending=2) as sub:
        for i in range(3):
            await broker.publish("c", i)
        assert (await anext(sub)).message == 0
        assert (await anext(sub)).message == 1
        with pytest.raises(SlowConsumerError):
            await anext(sub)


async def test_reading_before_entering_is_an_error() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c")
        with pytest.raises(RuntimeError, match="async with"):
            await anext(sub)
        with pytest.raises(RuntimeError, match="async with"):
            await drain(sub)


async def test_a_subscription_is_entered_once() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c")
        async with sub:
            with pytest.raises(RuntimeError, match="once"):
                await sub.__aenter__()
        with pytest.raises(RuntimeError, match="once"):
            await sub.__aenter__()
        closed_early = broker.subscribe("c")
        closed_early.close()
        assert closed_early.pending == 0
        with pytest.raises(RuntimeError, match="once"):
            await closed_early.__aenter__()


async def test_subscription_repr_and_attributes() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c", selector="a=1", max_pending=7, overflow="drop_oldest")
        assert (sub.channel, sub.selector, sub.max_pending, sub.overflow) == (
            "c",
            "a = 1",
            7,
            "drop_oldest",
        )
        assert "new" in repr(sub)
        async with sub:
            assert "open" in repr(sub)
        assert "closed" in repr(sub)


async def test_overflow_of_last_reader_during_dispatch_drops_group_after_dispatch() -> None:
    async with Broker() as broker:
        # Several groups matched by one message; one group's only reader overflows mid-dispatch.
        a = broker.subscribe("c", selector="x = 1", max_pending=1)
        b = broker.subscribe("c", selector="x IN (1, 2)", max_pending=1000)
        c = broker.subscribe("c", selector="y > 0", max_pending=1)
        d = broker.subscribe("c", selector="y IS NOT NULL", max_pending=1)
        async with a, b, c, d:
            for _ in range(70):
                await broker.publish("c", "m", headers={"x": 1, "y": 1})
            assert a.closed
            assert c.closed
            assert d.closed
            assert not b.closed
            assert set(broker._channels["c"].groups) == {"x IN (1, 2)"}
            assert b.pending == 70


async def test_notify_when_ready_arms_a_one_shot_callback_across_subscriptions() -> None:
    async with Broker() as broker:
        first = broker.subscribe("a")
        second = broker.subscribe("b", selector="n > 1")
        with pytest.raises(RuntimeError, match="async with"):
            first.notify_when_ready(lambda: None)
        async with first, second:
            calls: list[str] = []
            assert first.notify_when_ready(lambda: calls.append("a")) is False
            assert second.notify_when_ready(lambda: calls.append("b")) is False
            await broker.publish("b", 0, headers={"n": 1})  # not matched: nobody is woken
            assert calls == []
            await broker.publish("b", 1, headers={"n": 2})
            assert calls == ["b"]
            await broker.publish("b", 2, headers={"n": 3})
            assert calls == ["b"]  # one shot: armed again only by asking again
            assert second.notify_when_ready(lambda: calls.append("b2")) is True  # queued
            assert [m.message for m in second.take(10)] == [1, 2]
            assert second.notify_when_ready(lambda: calls.append("b3")) is False
            await broker.publish("a", "x")
            assert calls == ["b", "a"]
            assert first.take(1)[0].message == "x"
            # A batch partly read is ready without a publish.
            await broker.publish("a", "y")
            await broker.publish("a", "z")
            assert (await anext(first)).message == "y"
            assert first.notify_when_ready(lambda: None) is True
            assert (await anext(first)).message == "z"
            # Ending wakes the armed: the reader finds it closed, and why.
            assert second.error is None
            await broker.delete_channel("b")
            assert calls == ["b", "a", "b3"]
            assert second.notify_when_ready(lambda: None) is True
            assert second.error is not None
            assert second.error.code == 5010
