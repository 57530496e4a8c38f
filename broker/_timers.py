"""A hierarchical timing wheel: O(1) schedule and cancel, 1 ms ticks, never early.

Pure: no asyncio and no clock of its own. The caller passes the current time
(in milliseconds, from whatever clock it injects) to `advance` and asks
`next_due` how long it may sleep. Layout follows Kafka's TimingWheel: each
level has 64 buckets of 64^level ms; a deadline beyond a level's span goes to
the next level, created on demand, so deadlines years away cost the same as
near ones. Non-empty buckets sit in a heap by their start time; when one comes
due its timers either fire or drop to a finer level.

Deadlines are rounded *up* to a whole tick, and a timer fires only once the
time passed to `advance` has reached that tick, so nothing fires early.
"""

from __future__ import annotations

import heapq
import math
from itertools import islice
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

WHEEL_SIZE = 64

COMPACT_AT = 64  # a bucket's list is rebuilt once cancels leave 3/4 of it dead


class Timer(msgspec.Struct, Generic[T], gc=False, eq=False):
    """A scheduled item; keep it to cancel.

    Not tracked by the garbage collector (gc=False): a million pending timers
    would otherwise make every full collection walk them all, stalling the loop
    for tens of ms. Its cycle with the bucket holding it is broken by `advance`,
    `cancel` and `clear`, never left to the collector.
    """

    due: int  # whole milliseconds, rounded up from the requested deadline
    item: T
    slot: _Bucket | None = None  # where it waits (a bucket, or the ready list)

    @property
    def pending(self) -> bool:
        return self.slot is not None


class _Bucket:
    """Timers in a list (8 B each, against about 40 for a set or dict entry).

    A cancelled timer stays in the list, dead (its `slot` no longer this bucket,
    its item dropped), until the bucket is emptied, or rebuilt once 3/4 of it is
    dead: at most 3 dead entries per live one (plus COMPACT_AT), 48 B each.
    `head` is used by the ready list only: entries before it are handed out.
    """

    __slots__ = ("head", "live", "start", "timers")

    def __init__(self) -> None:
        self.start = -1  # ms at which this bucket comes due; -1 while not in the heap
        self.timers: list[Timer[Any]] = []
        self.live = 0
        self.head = 0

    def add(self, timer: Timer[Any]) -> None:
        self.timers.append(timer)
        self.live += 1
        timer.slot = self

    def compact(self) -> None:
        """Drop the dead entries (and those before `head`)."""
        self.timers = [t for t in islice(self.timers, self.head, None) if t.slot is self]
        self.head = 0

    def take_all(self) -> list[Timer[Any]]:
        """Empty the bucket: its live timers, in the order they came."""
        timers = [t for t in islice(self.timers, self.head, None) if t.slot is self]
        self.timers, self.live, self.head = [], 0, 0
        return timers


class _Level:
    __slots__ = ("buckets", "span", "tick")

    def __init__(self, tick: int) -> None:
        self.tick = tick
        self.span = tick * WHEEL_SIZE
        self.buckets = [_Bucket() for _ in range(WHEEL_SIZE)]


class TimingWheel(Generic[T]):
    def __init__(self, now_ms: float) -> None:
        self._now = math.floor(now_ms)  # the last whole millisecond advanced to
        self._levels: list[_Level] = [_Level(1)]
        self._heap: list[tuple[int, int, _Bucket]] = []  # (start, seq, bucket)
        self._ready = _Bucket()  # due, not yet handed out, in due order once sorted
        self._ready_tail = 0  # due time of the last timer made ready
        self._ready_unsorted = False
        self._count = 0
        self._seq = 0

    def __len__(self) -> int:
        """Timers scheduled and neither handed out nor cancelled."""
        return self._count

    @property
    def now(self) -> int:
        return self._now

    def schedule(self, deadline_ms: float, item: T) -> Timer[T]:
        """Schedule `item` for `deadline_ms`; one not after `now` is due at the next advance."""
        timer = Timer(math.ceil(deadline_ms), item)
        self._count += 1
        self._place(timer)
        return timer

    def cancel(self, timer: Timer[T]) -> bool:
        """Unschedule in O(1) (amortized); False when already handed out or cancelled."""
        bucket = timer.slot
        if bucket is None:
            return False
        timer.slot = None
        timer.item = None  # type: ignore[assignment]  # dead in its list until compacted
        bucket.live -= 1
        self._count -= 1
        held = len(bucket.timers) - bucket.head
        if bucket.live * 4 < held and held >= COMPACT_AT:  # 3/4 dead: O(1) amortized
            bucket.compact()
        return True

    def clear(self) -> None:
        """Drop every timer (breaking each one's cycle with its bucket)."""
        for bucket in [self._ready, *(b for level in self._levels for b in level.buckets)]:
            for timer in bucket.take_all():
                timer.slot = None
            bucket.start = -1
        self._heap.clear()
        self._count = 0

    def next_due(self) -> int | None:
        """The earliest ms at which `advance` may have work (None: nothing scheduled)."""
        if self._ready.live:
            return self._now
        heap = self._heap
        while heap:
            start, _, bucket = heap[0]
            if bucket.live:
                return start
            heapq.heappop(heap)  # emptied by cancels
            bucket.take_all()
            bucket.start = -1
        return None

    def advance(self, now_ms: float, limit: int = 1000) -> list[T]:
        """Move time to `now_ms`; hand out at most `limit` due items, earliest first.

        Every bucket that has come due is emptied (its timers become ready or
        move to a finer level) even past `limit`, so buckets are never reused
        while holding timers of an earlier turn of the wheel.
        """
        now = math.floor(now_ms)
        self._now = max(self._now, now)
        heap = self._heap
        ready = self._ready
        while heap and heap[0][0] <= self._now:
            _, _, bucket = heapq.heappop(heap)
            bucket.start = -1
            for timer in bucket.take_all():
                self._place(timer)
        timers = ready.timers
        if self._ready_unsorted:
            # A coarse bucket, a jump over several buckets or a past deadline came in
            # out of order: restore due order (a stable sort, so FIFO per due time).
            timers[ready.head :] = sorted(islice(timers, ready.head, None), key=_due)
            self._ready_unsorted = False
        out: list[T] = []
        index, end = ready.head, len(timers)
        while index < end and len(out) < limit:
            timer = timers[index]
            index += 1
            if timer.slot is ready:  # else cancelled
                timer.slot = None
                out.append(timer.item)
        ready.live -= len(out)
        self._count -= len(out)
        if index == end:
            timers.clear()
            ready.head = 0
        elif index >= COMPACT_AT and index * 2 > end:
            del timers[:index]  # hand-outs are not kept for long
            ready.head = 0
        else:
            ready.head = index
        return out

    def _place(self, timer: Timer[Any]) -> None:
        due = timer.due
        if due <= self._now:
            ready = self._ready
            if ready.live and due < self._ready_tail:
                self._ready_unsorted = True
            else:
                self._ready_tail = due
            ready.add(timer)
            return
        delta = due - self._now
        levels = self._levels
        index = 0
        while delta >= levels[index].span:
            index += 1
            if index == len(levels):
                levels.append(_Level(levels[-1].span))
        level = levels[index]
        bucket = level.buckets[(due // level.tick) % WHEEL_SIZE]
        bucket.add(timer)
        # A queued bucket always holds this same turn of the wheel: within one span
        # ahead of `now` each bucket index stands for one start only.
        if bucket.start < 0:
            start = bucket.start = due - due % level.tick
            self._seq += 1
            heapq.heappush(self._heap, (start, self._seq, bucket))


def _due(timer: Timer[Any]) -> int:
    return timer.due
