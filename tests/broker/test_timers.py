"""The timing wheel: never early, O(1) cancel, far deadlines, bounded batches, due order."""

from __future__ import annotations

import gc
import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker import _timers as timers_module
from broker._timers import COMPACT_AT, TimingWheel

YEAR_MS = 365 * 24 * 3600 * 1000


def test_clear_drops_every_timer_and_the_wheel_still_works() -> None:
    wheel: TimingWheel[str] = TimingWheel(0)
    timers = [wheel.schedule(due, f"t{due}") for due in (0, 0, 5, 5_000, 10**9)]
    assert wheel.advance(0, limit=1) == ["t0"]  # the other t0 stays ready
    wheel.clear()
    assert len(wheel) == 0
    assert not any(timer.pending for timer in timers)  # and out of their slots' cycles
    assert wheel.next_due() is None
    assert wheel.advance(10**10) == []
    wheel.schedule(10**10 + 5, "after")
    assert wheel.next_due() == 10**10 + 5
    assert wheel.advance(10**10 + 5) == ["after"]


def test_timers_are_not_tracked_by_the_garbage_collector() -> None:
    wheel: TimingWheel[str] = TimingWheel(0)
    timer = wheel.schedule(10, "x")
    assert not gc.is_tracked(timer)  # a full collection does not walk pending timers
    wheel.clear()


def test_fires_at_its_millisecond_never_before() -> None:
    wheel: TimingWheel[str] = TimingWheel(now_ms=1000.0)
    wheel.schedule(1010.3, "a")  # rounds up to 1011
    assert wheel.advance(1010.0) == []
    assert wheel.advance(1010.99) == []
    assert wheel.next_due() == 1011
    assert wheel.advance(1011.0) == ["a"]
    assert len(wheel) == 0
    assert wheel.next_due() is None


def test_a_deadline_in_the_past_is_due_at_the_next_advance() -> None:
    wheel: TimingWheel[int] = TimingWheel(now_ms=500)
    wheel.schedule(100, 1)
    assert wheel.next_due() == 500
    assert wheel.advance(500) == [1]


def test_far_future_deadlines_fire_exactly_then() -> None:
    wheel: TimingWheel[str] = TimingWheel(now_ms=0)
    wheel.schedule(3 * YEAR_MS + 7, "far")
    wheel.schedule(5, "near")
    assert wheel.advance(5) == ["near"]
    fired: list[str] = []
    wakeups = 0
    while (due := wheel.next_due()) is not None:
        wakeups += 1
        assert due <= 3 * YEAR_MS + 7  # a driver sleeping until next_due is never late
        fired += wheel.advance(due)
        assert fired == [] or wheel.now >= 3 * YEAR_MS + 7
    assert fired == ["far"]
    assert wakeups < 20  # one wake per level on the way down, not one per tick


def test_cancel_is_final() -> None:
    wheel: TimingWheel[str] = TimingWheel(now_ms=0)
    keep = wheel.schedule(10, "keep")
    drop = wheel.schedule(10, "drop")
    assert drop.pending
    assert wheel.cancel(drop)
    assert not drop.pending
    assert not wheel.cancel(drop)
    assert len(wheel) == 1
    assert wheel.advance(10) == ["keep"]
    assert not wheel.cancel(keep)  # already handed out


def test_cancel_of_a_ready_timer_and_of_a_whole_bucket() -> None:
    wheel: TimingWheel[str] = TimingWheel(now_ms=0)
    timers = [wheel.schedule(10, f"t{i}") for i in range(3)]
    lone = wheel.schedule(20_000, "lone")
    assert wheel.advance(10, limit=1) == ["t0"]
    assert wheel.cancel(timers[1])  # ready, not handed out yet
    assert wheel.advance(10) == ["t2"]
    assert wheel.cancel(lone)  # its bucket is now empty but still queued
    assert wheel.next_due() is None
    assert wheel.advance(30_000) == []


def test_batches_are_bounded_and_in_due_order_after_a_jump() -> None:
    wheel: TimingWheel[int] = TimingWheel(now_ms=0)
    for i in reversed(range(2500)):
        wheel.schedule(i * 7 + 1, i)  # across many buckets and levels
    batches = []
    while batch := wheel.advance(2500 * 7, limit=1000):
        batches.append(batch)
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert [i for b in batches for i in b] == list(range(2500))


def test_same_due_time_fires_in_schedule_order() -> None:
    wheel: TimingWheel[int] = TimingWheel(now_ms=0)
    for i in range(5):
        wheel.schedule(300_000, i)
    for i in range(5, 10):
        wheel.schedule(299_999.5, i)  # the same millisecond once rounded up
    assert wheel.advance(400_000) == list(range(10))


def held(wheel: TimingWheel[object]) -> int:
    """Entries the wheel's lists hold, cancelled ones included."""
    buckets = [wheel._ready, *(b for level in wheel._levels for b in level.buckets)]
    return sum(len(b.timers) - b.head for b in buckets)


def test_cancelled_timers_do_not_pile_up() -> None:
    wheel: TimingWheel[object] = TimingWheel(now_ms=0)
    keep = wheel.schedule(YEAR_MS, "keep")
    for i in range(10_000):  # schedule and cancel, far ahead, in one bucket
        assert wheel.cancel(wheel.schedule(YEAR_MS, i))
    assert held(wheel) <= 2 * COMPACT_AT
    for i in range(10_000):  # and among ready ones, past the head
        assert wheel.cancel(wheel.schedule(0, i))
    assert held(wheel) <= 4 * COMPACT_AT
    assert wheel.advance(YEAR_MS) == ["keep"]
    assert not keep.pending
    assert held(wheel) == 0


def test_a_long_ready_list_is_trimmed_as_it_is_handed_out() -> None:
    wheel: TimingWheel[int] = TimingWheel(now_ms=0)
    for i in range(1000):
        wheel.schedule(5, i)
    got = []
    while batch := wheel.advance(5, limit=300):
        got += batch
        assert held(wheel) == 1000 - len(got)
    assert got == list(range(1000))


def test_time_never_goes_back() -> None:
    wheel: TimingWheel[str] = TimingWheel(now_ms=100)
    wheel.advance(50)
    assert wheel.now == 100
    wheel.schedule(100, "now")
    assert wheel.advance(99) == ["now"]


class WheelAgainstModel(RuleBasedStateMachine):
    """Schedule, cancel and advance in any order: the wheel hands out exactly what a
    sorted list would, never early, earliest first, in batches of at most `limit`."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 10_000.0
        self.wheel: TimingWheel[int] = TimingWheel(self.now)
        self.model: dict[int, tuple[int, int]] = {}  # item -> (due ms, schedule order)
        self.timers: dict[int, object] = {}
        self.next_item = 0

    @rule(
        offset=st.one_of(
            st.floats(-50, 300, allow_nan=False),
            st.integers(0, 100_000),
            st.integers(0, 3 * YEAR_MS),
        )
    )
    def schedule(self, offset: float) -> None:
        item = self.next_item
        self.next_item += 1
        deadline = self.now + offset
        self.timers[item] = self.wheel.schedule(deadline, item)
        self.model[item] = (math.ceil(deadline), item)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.timers:
            return
        item = data.draw(st.sampled_from(sorted(self.timers)))
        expected = item in self.model
        assert self.wheel.cancel(self.timers.pop(item)) is expected  # type: ignore[arg-type]
        self.model.pop(item, None)

    @rule(
        step=st.one_of(st.floats(0, 400, allow_nan=False), st.integers(0, 2 * YEAR_MS)),
        limit=st.integers(1, 5),
    )
    def advance(self, step: float, limit: int) -> None:
        self.now += step
        got = self.wheel.advance(self.now, limit=limit)
        due = sorted(
            (order for order in self.model.values() if order[0] <= math.floor(self.now)),
        )
        expected = [item for _, item in due[:limit]]
        assert got == expected
        for item in got:
            del self.model[item]
            self.timers.pop(item, None)

    @rule()
    def sleep_until_next_due(self) -> None:
        due = self.wheel.next_due()
        if not self.model:
            assert due is None
            return
        earliest = min(d for d, _ in self.model.values())
        assert due is not None
        assert due <= max(earliest, math.floor(self.now))  # waking then is never late

    @invariant()
    def counts_agree(self) -> None:
        assert len(self.wheel) == len(self.model)


TestWheelAgainstModel = WheelAgainstModel.TestCase
TestWheelAgainstModel.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


class WheelCompactingOften(WheelAgainstModel):
    """The same, with every list rebuilt at the first chance: order and counts survive."""

    def __init__(self) -> None:
        self.saved = timers_module.COMPACT_AT
        timers_module.COMPACT_AT = 2
        super().__init__()

    def teardown(self) -> None:
        timers_module.COMPACT_AT = self.saved


TestWheelCompactingOften = WheelCompactingOften.TestCase
TestWheelCompactingOften.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None
)
