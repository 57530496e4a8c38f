"""Delayed and repeating publishing through the pinned API, on a virtual clock (no sleeps)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest
from anyio.lowlevel import checkpoint

from broker import Broker, BrokerError, Message, MessageStatus, Subscription, _broker
from broker.push_options import PushOptions
from broker.stores import (
    MemoryStore,
    Release,
    Schedule,
    ScheduledMessage,
    StatusPolicy,
    Write,
)
from broker.testing import VirtualClock

START = 1_767_225_600.0  # the VirtualClock's default start, 2026-01-01T00:00:00Z


def at(seconds_after_start: float) -> datetime:
    return datetime.fromtimestamp(START + seconds_after_start, UTC)


async def take(sub: Subscription) -> list[Message]:
    got = []
    while sub.pending:
        got.append(await anext(sub))
    return got


@contextlib.asynccontextmanager
async def running(
    clock: VirtualClock | None = None, **options: object
) -> AsyncIterator[tuple[Broker, Subscription, VirtualClock]]:
    clock = clock or VirtualClock()
    async with Broker(clock=clock, **options) as broker, broker.subscribe("c") as sub:  # type: ignore[arg-type]
        yield broker, sub, clock


async def status(broker: Broker, message_id: str) -> MessageStatus:
    return (await broker.get_status(message_id)).status


# -- one-shots ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [2.5, timedelta(seconds=2.5)])
async def test_a_delayed_message_arrives_at_its_due_time_and_not_before(
    delay: float | timedelta,
) -> None:
    async with running() as (broker, sub, clock):
        result = await broker.publish("c", {"text": "later"}, headers={"k": 1}, delay=delay)
        assert result.status is MessageStatus.SCHEDULED
        assert await status(broker, result.message_id) is MessageStatus.SCHEDULED
        await clock.advance(2.499)
        assert sub.pending == 0
        await clock.advance(0.001)
        [message] = await take(sub)
        assert message.message_id == result.message_id
        assert (message.message, message.headers) == ({"text": "later"}, {"k": 1})
        assert message.timestamp == (START + 2.5) * 1000
        assert await status(broker, result.message_id) is MessageStatus.PUBLISHED
        await clock.advance(3600)
        assert sub.pending == 0  # a one-shot fires once


async def test_publish_at_takes_any_time_zone() -> None:
    async with running() as (broker, sub, clock):
        tokyo = timezone(timedelta(hours=9))
        await broker.publish("c", "x", publish_at=at(60).astimezone(tokyo))
        await clock.advance(59.999)
        assert sub.pending == 0
        await clock.advance(0.001)
        assert [m.message for m in await take(sub)] == ["x"]


async def test_a_zero_delay_or_a_publish_at_of_now_is_scheduled_and_fires_at_once() -> None:
    async with running() as (broker, sub, clock):
        first = await broker.publish("c", 1, delay=0)
        second = await broker.publish("c", 2, publish_at=at(0))
        assert first.status == second.status == MessageStatus.SCHEDULED
        await clock.advance(0)
        assert [m.message for m in await take(sub)] == [1, 2]


async def test_messages_due_together_arrive_in_publish_order_over_several_batches() -> None:
    async with running() as (broker, sub, clock):
        for number in range(2500):  # more than one release batch (1000)
            await broker.publish("c", number, delay=10)
        await broker.publish("c", "earlier", delay=5)
        await clock.advance(20)
        got = [m.message for m in await take(sub)]
        assert got == ["earlier", *range(2500)]


async def test_scheduled_messages_reach_only_matching_selectors() -> None:
    clock = VirtualClock()
    async with (
        Broker(clock=clock) as broker,
        broker.subscribe("c", selector="city = 'Tokyo'") as sub,
    ):
        await broker.publish("c", "no", headers={"city": "Osaka"}, delay=1)
        await broker.publish("c", "yes", headers={"city": "Tokyo"}, delay=1)
        await clock.advance(1)
        assert [m.message for m in await take(sub)] == ["yes"]


async def test_an_earlier_message_wakes_a_driver_sleeping_until_a_later_one() -> None:
    async with running() as (broker, sub, clock):
        await broker.publish("c", "late", delay=3600)
        await clock.advance(1)  # the driver now sleeps until +3600 s
        await broker.publish("c", "soon", delay=1)
        await clock.advance(1)
        assert [m.message for m in await take(sub)] == ["soon"]


# -- repeats -----------------------------------------------------------------------------------


async def test_a_repeat_keeps_its_id_and_stays_scheduled_until_it_expires() -> None:
    async with running() as (broker, sub, clock):
        result = await broker.publish(
            "c", "tick", repeat_every=10, repeat_expires_at=at(30), publisher_id="cron"
        )
        for _ in range(3):
            assert await status(broker, result.message_id) is MessageStatus.SCHEDULED
            await clock.advance(10)
        got = await take(sub)
        # Starts one period from now; the expiry itself is the last due time.
        assert [m.timestamp for m in got] == [(START + n) * 1000 for n in (10, 20, 30)]
        assert {m.message_id for m in got} == {result.message_id}
        assert {m.publisher_id for m in got} == {"cron"}
        assert await status(broker, result.message_id) is MessageStatus.PUBLISHED
        await clock.advance(100)
        assert sub.pending == 0


async def test_a_repeat_from_publish_at_with_a_timedelta_period() -> None:
    async with running() as (broker, sub, clock):
        await broker.publish(
            "c",
            "tick",
            publish_at=at(5),
            repeat_every=timedelta(minutes=1),
            repeat_expires_at=at(125),
        )
        await clock.advance(200)
        # Late by more than a period: the missed due times fold into one delivery.
        assert len(await take(sub)) == 1
        assert broker.statistics().scheduled == 0


async def test_repeats_do_not_drift_when_a_delivery_is_late() -> None:
    async with running() as (broker, sub, clock):
        await broker.publish("c", "tick", repeat_every=10)  # due at 10, 20, 30 ...
        await clock.advance(15)  # the first delivery happens 5 s late
        assert [m.timestamp for m in await take(sub)] == [(START + 15) * 1000]
        await clock.advance(4.999)
        assert sub.pending == 0
        await clock.advance(0.001)  # the second is due at start + 2 periods, not 15 + 10
        assert [m.timestamp for m in await take(sub)] == [(START + 20) * 1000]


async def test_missed_due_times_fold_into_one_delivery_then_the_schedule_resumes() -> None:
    async with running() as (broker, sub, clock):
        await broker.publish("c", "tick", delay=1, repeat_every=1)  # due at 1, 2, 3 ...
        await clock.advance(10.5)
        assert len(await take(sub)) == 1
        await clock.advance(0.499)
        assert sub.pending == 0
        await clock.advance(0.001)
        assert len(await take(sub)) == 1


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"delay": -1}, 5030),
        ({"delay": True}, 5030),
        ({"delay": "5"}, 5030),
        ({"delay": float("nan")}, 5030),
        ({"delay": float("inf")}, 5030),
        ({"delay": 1e12}, 5030),
        ({"delay": timedelta(seconds=-1)}, 5030),
        ({"publish_at": datetime(2030, 1, 1)}, 5030),  # naive
        ({"publish_at": at(-1)}, 5030),
        ({"publish_at": START + 60}, 5030),
        ({"publish_at": "2030-01-01T00:00:00Z"}, 5030),
        ({"delay": 1, "publish_at": at(60)}, 5030),
        ({"repeat_every": 0}, 5031),
        ({"repeat_every": -5}, 5031),
        ({"repeat_every": 0.0001}, 5031),
        ({"repeat_every": True}, 5031),
        ({"repeat_every": "60"}, 5031),
        ({"repeat_every": float("nan")}, 5031),
        ({"repeat_every": 1e12}, 5031),
        ({"repeat_every": timedelta(0)}, 5031),
        ({"repeat_expires_at": at(60)}, 5003),
        ({"delay": 5, "repeat_expires_at": at(60)}, 5003),
        ({"repeat_every": 10, "repeat_expires_at": at(-1)}, 5003),
        ({"repeat_every": 10, "repeat_expires_at": datetime(2030, 1, 1)}, 5003),
        ({"repeat_every": 10, "repeat_expires_at": 1e12}, 5003),
        ({"repeat_every": 10, "publish_at": at(60), "repeat_expires_at": at(59)}, 5003),
        ({"repeat_every": 10, "repeat_expires_at": at(9)}, 5003),  # before the first delivery
    ],
)
async def test_invalid_timing_is_refused_with_its_code_and_nothing_is_scheduled(
    options: dict[str, object], code: int
) -> None:
    async with running() as (broker, sub, clock):
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", 1, **options)  # type: ignore[arg-type]
        assert info.value.code == code
        assert info.value.message
        assert broker.statistics().scheduled == 0
        await clock.advance(10**6)
        assert sub.pending == 0


async def test_a_scheduled_publish_checks_the_message_like_an_immediate_one() -> None:
    async with running(max_message_size=100) as (broker, _, _clock):
        for bad, code in [
            ({"channel": "a/b"}, 5044),
            ({"message": "x" * 200}, 5052),
            ({"headers": {"k": object()}}, 8002),
            ({"publisher_id": 5}, 8002),
        ]:
            arguments: dict[str, object] = {"channel": "c", "message": 1, **bad}
            with pytest.raises(BrokerError) as info:
                await broker.publish(delay=1, **arguments)  # type: ignore[arg-type]
            assert info.value.code == code
        assert broker.statistics().scheduled == 0


async def test_max_scheduled_is_a_bound_with_code_5053() -> None:
    async with running(max_scheduled=2) as (broker, sub, clock):
        await broker.publish("c", 1, delay=1)
        await broker.publish("c", 2, delay=1)
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", 3, delay=1)
        assert info.value.code == 5053
        await broker.publish("c", "now")  # immediate publishing is not affected
        await clock.advance(1)
        assert [m.message for m in await take(sub)] == ["now", 1, 2]
        await broker.publish("c", 4, delay=1)  # room again once they fired


# -- cancel and status -------------------------------------------------------------------------


async def test_cancel_stops_a_scheduled_message_and_then_reads_cancelled() -> None:
    async with running() as (broker, sub, clock):
        result = await broker.publish("c", "x", delay=10)
        cancelled = await broker.cancel(result.message_id)
        assert (cancelled.message_id, cancelled.status) == (result.message_id, "cancelled")
        assert await status(broker, result.message_id) is MessageStatus.CANCELLED
        await clock.advance(20)
        assert sub.pending == 0
        with pytest.raises(BrokerError) as info:
            await broker.cancel(result.message_id)
        assert info.value.code == 5040
        assert "cancelled" in info.value.message


async def test_cancel_of_a_repeat_keeps_the_deliveries_made_before_it() -> None:
    async with running() as (broker, sub, clock):
        result = await broker.publish("c", "tick", repeat_every=10)
        await clock.advance(10)
        await clock.advance(15)
        await broker.cancel(result.message_id)
        await clock.advance(100)
        assert len(await take(sub)) == 2
        assert await status(broker, result.message_id) is MessageStatus.CANCELLED
        assert broker.statistics().scheduled == 0


async def test_cancel_of_a_fired_one_shot_is_5040_and_it_stays_published() -> None:
    async with running() as (broker, _, clock):
        result = await broker.publish("c", "x", delay=1)
        await clock.advance(1)
        with pytest.raises(BrokerError) as info:
            await broker.cancel(result.message_id)
        assert info.value.code == 5040
        assert "published" in info.value.message
        assert await status(broker, result.message_id) is MessageStatus.PUBLISHED


async def test_a_cancel_of_a_non_string_id_is_5040() -> None:
    async with running() as (broker, _, _clock):
        with pytest.raises(BrokerError) as info:
            await broker.cancel(7)  # type: ignore[arg-type]
        assert info.value.code == 5040


async def test_a_pending_message_reads_scheduled_beyond_status_retention() -> None:
    async with running(status_retention=60, max_statuses=1) as (broker, sub, clock):
        later = await broker.publish("c", "later", delay=86_400)
        for number in range(3):
            await broker.publish("c", number)
        await clock.advance(3600)
        assert await status(broker, later.message_id) is MessageStatus.SCHEDULED
        await clock.advance(86_400)
        assert await status(broker, later.message_id) is MessageStatus.PUBLISHED
        await clock.advance(61)
        assert await status(broker, later.message_id) is MessageStatus.UNKNOWN
        assert len(await take(sub)) == 4


class GatedStore(MemoryStore):
    """A MemoryStore whose writes of releases wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = anyio.Event()
        self.writing = anyio.Event()

    async def write(self, writes: Sequence[Write], at: float) -> None:
        if any(isinstance(w, Release) for w in writes):
            self.writing.set()
            await self.gate.wait()
        await super().write(writes, at)


@pytest.mark.parametrize("repeat", [False, True])
async def test_a_cancel_racing_a_fire_ends_in_exactly_one_final_state(repeat: bool) -> None:
    store = GatedStore()
    clock = VirtualClock()
    async with Broker(clock=clock, store=store) as broker, broker.subscribe("c") as sub:
        options: dict[str, object] = {"repeat_every": 10} if repeat else {"delay": 10}
        result = await broker.publish("c", "x", **options)  # type: ignore[arg-type]
        outcome: list[object] = []

        async def cancel() -> None:
            try:
                outcome.append((await broker.cancel(result.message_id)).status)
            except BrokerError as exc:
                outcome.append(exc.code)

        async with anyio.create_task_group() as tasks:
            clock.set(START + 10)
            await store.writing.wait()  # the due time is being recorded ...
            tasks.start_soon(cancel)  # ... when the cancel comes in
            await anyio.wait_all_tasks_blocked()
            store.gate.set()
        await clock.advance(100)
        assert len(await take(sub)) == 1  # the delivery before the cancel, and no other
        final = await status(broker, result.message_id)
        if repeat:
            assert outcome == [MessageStatus.CANCELLED]
            assert final is MessageStatus.CANCELLED
        else:
            assert outcome == [5040]
            assert final is MessageStatus.PUBLISHED


# -- channels ----------------------------------------------------------------------------------


async def test_deleting_a_channel_cancels_its_scheduled_messages() -> None:
    async with running() as (broker, sub, clock):
        doomed = await broker.publish("gone", "x", delay=10)
        kept = await broker.publish("c", "kept", delay=10)
        await broker.delete_channel("gone")  # exists from its scheduled publish
        assert await status(broker, doomed.message_id) is MessageStatus.CANCELLED
        await clock.advance(10)
        assert [m.message for m in await take(sub)] == ["kept"]
        assert await status(broker, kept.message_id) is MessageStatus.PUBLISHED
        assert "gone" not in broker.statistics().channels


class YieldingStore(MemoryStore):
    """Lets other tasks run during every write, as a store on a worker thread does."""

    async def write(self, writes: Sequence[Write], at: float) -> None:
        await checkpoint()
        await super().write(writes, at)


async def test_a_channel_deleted_twice_at_once_is_deleted_once() -> None:
    store = YieldingStore()
    async with Broker(clock=VirtualClock(), store=store) as broker:
        await broker.publish("gone", "x", delay=10)
        codes: list[int] = []

        async def delete() -> None:
            try:
                await broker.delete_channel("gone")
            except BrokerError as exc:
                codes.append(exc.code)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(delete)
            tasks.start_soon(delete)
        assert codes == [5010]


# -- restarts on one store ---------------------------------------------------------------------


async def test_a_new_broker_on_the_same_store_resumes_scheduled_messages() -> None:
    store = MemoryStore()
    clock = VirtualClock()
    async with Broker(clock=clock, store=store) as broker:
        one_shot = await broker.publish("c", "one", delay=10)
        repeat = await broker.publish("c", "tick", repeat_every=10)
        immediate = await broker.publish("c", "now")
        kept = await broker.publish("c", "kept", delay=1000)
    clock.set(START + 35)  # "down" across 10, 20 and 30
    async with Broker(clock=clock, store=store) as broker, broker.subscribe("c") as sub:
        await clock.advance(0)
        got = await take(sub)
        # Overdue: the one-shot fires once, the repeat fires once ...
        assert sorted(m.message for m in got) == ["one", "tick"]
        assert await status(broker, one_shot.message_id) is MessageStatus.PUBLISHED
        assert await status(broker, immediate.message_id) is MessageStatus.PUBLISHED
        assert await status(broker, kept.message_id) is MessageStatus.SCHEDULED
        # ... and continues on its schedule, at 40, not 35 + 10.
        await clock.advance(4.999)
        assert sub.pending == 0
        await clock.advance(0.001)
        assert [m.message_id for m in await take(sub)] == [repeat.message_id]


async def test_a_stored_repeat_already_past_its_expiry_ends_without_a_delivery() -> None:
    store = MemoryStore()
    await store.open(StatusPolicy())
    stale = ScheduledMessage(
        "message:stale", "c", b'"x"', {}, None, first_due=0, period=10, expires=15, next_index=2
    )
    await store.write([Schedule(stale)], 0)
    async with running(store=store) as (broker, sub, clock):
        await clock.advance(100)
        assert sub.pending == 0
        assert await status(broker, "message:stale") is MessageStatus.PUBLISHED


class FlakyStore(MemoryStore):
    """Fails the first `failures` release writes, as a full disk would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def write(self, writes: Sequence[Write], at: float) -> None:
        if self.failures and any(isinstance(w, Release) for w in writes):
            self.failures -= 1
            raise OSError("disk full")
        await super().write(writes, at)


async def test_a_due_time_the_store_cannot_record_is_retried_not_lost_or_doubled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(store=FlakyStore(failures=1)) as (broker, sub, clock):
        result = await broker.publish("c", "x", delay=5)
        await clock.advance(5)
        assert sub.pending == 0  # not delivered before it is recorded
        assert await status(broker, result.message_id) is MessageStatus.SCHEDULED
        assert "disk full" in caplog.text
        await clock.advance(1)
        assert [m.message for m in await take(sub)] == ["x"]
        assert await status(broker, result.message_id) is MessageStatus.PUBLISHED


class SlowStatusStore(MemoryStore):
    """Claims a long write-behind queue, and fails the first flush."""

    def __init__(self) -> None:
        super().__init__()
        self.queued = 0
        self.flushes = 0
        self.flushed = anyio.Event()

    def write_behind(self, write: Write, at: float) -> int:
        super().write_behind(write, at)
        self.queued += 1
        return self.queued

    async def flush(self) -> None:
        self.flushes += 1
        self.queued = 0
        self.flushed.set()
        self.flushed = anyio.Event()
        if self.flushes == 1:
            raise OSError("disk full")


async def test_status_writes_are_flushed_in_the_background_and_bounded(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_broker, "STATUS_FLUSH_INTERVAL", 0)
    store = SlowStatusStore()
    async with Broker(store=store, clock=VirtualClock()) as broker:
        await broker.publish("c", 1)
        await anyio.wait_all_tasks_blocked()
        assert store.flushes == 1
        assert "writing message statuses" in caplog.text
        await broker.publish("c", 2)  # the flush already asked for covers this one
        await anyio.wait_all_tasks_blocked()
        assert store.flushes == 2
        store.queued = 20_000  # over the write-behind bound: publish itself waits for a flush
        await broker.publish("c", 3)
        assert store.flushes == 3
        store.queued = 5  # a flush is already on its way: nothing more to ask for
        await broker.publish("c", 4)
        await anyio.wait_all_tasks_blocked()
        assert store.flushes == 3


async def test_statuses_of_a_burst_of_publishes_are_committed_together() -> None:
    store = SlowStatusStore()
    store.flushes = 1  # no failure this time
    async with Broker(store=store) as broker:
        for number in range(50):
            await broker.publish("c", number)
            if number == 24:
                for _ in range(5):  # the flusher runs, and waits out its interval
                    await checkpoint()
        assert (store.flushes, store.queued) == (1, 50)
        with anyio.fail_after(5):
            await store.flushed.wait()
        assert (store.flushes, store.queued) == (2, 0)  # one flush for all fifty


async def test_with_the_real_clock_a_delayed_message_arrives_after_its_delay() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        started = time.time()
        await broker.publish("c", "x", delay=0.05)
        with anyio.fail_after(5):
            message = await anext(sub)
        assert time.time() >= started + 0.05
        assert message.timestamp >= (started + 0.05) * 1000 - 1


async def test_a_burst_of_due_messages_lets_a_bounded_consumer_keep_up() -> None:
    clock = VirtualClock()
    async with Broker(clock=clock) as broker, broker.subscribe("c", max_pending=100) as sub:
        for number in range(3000):
            await broker.publish("c", number, delay=10)
        got: list[int] = []

        async def consume() -> None:
            async for message in sub:
                got.append(message.message)
                if len(got) == 3000:
                    return

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            await clock.advance(10)  # 3000 due at once into a queue of 100: never over it
        assert got == list(range(3000))
        assert sub.dropped == 0


async def test_push_options_ride_with_the_message_and_push_only_skips_subscribers() -> None:
    async with running() as (broker, sub, clock):
        both = PushOptions("BOTH", broadcast=3)
        await broker.publish("c", "to all", push=both)
        await broker.publish("c", {"any": "json"}, push=PushOptions())  # PUBSUB: no string rule
        await broker.publish("c", "devices only", push=PushOptions("PUSH"))
        await broker.publish("c", "later, devices only", push=PushOptions("PUSH"), delay=1)
        await broker.publish("c", "later, both", push=both, delay=1)
        await clock.advance(1)
        got = await take(sub)
        assert [(m.message, m.push) for m in got] == [
            ("to all", both),
            ({"any": "json"}, PushOptions()),
            ("later, both", both),
        ]
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", {"not": "a string"}, push=both)
        assert info.value.code == 5041
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", "x", push={"policy": "PUSH"})  # type: ignore[arg-type]
        assert info.value.code == 8002
