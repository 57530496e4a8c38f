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
from typing import Any, Generic, TypeAlias, TypeVar

import msgspec

T = TypeVar("T")

WHEEL_SIZE = 64

_Slot: TypeAlias = "dict[Timer[Any], None]"  # insertion-ordered set: O(1) add and remove


class Timer(msgspec.Struct, Generic[T], gc=False, eq=False):
    """A scheduled item; keep it to cancel.

    Not tracked by the garbage collector (gc=False; eq=False hashes by identity): a
    million pending timers would otherwise make every full collection walk them all,
    stalling the loop for tens of ms. Its cycle with the slot holding it is broken by
    `cancel`, `advance` and `clear`, never left to the collector.
    """

    due: int  # whole milliseconds, rounded up from the requested deadline
    item: T
    slot: _Slot | None = None  # where it waits: a bucket, or the ready set

    @property
    def pending(self) -> bool:
        return self.slot is not None


class _Bucket:
    __slots__ = ("start", "timers")

    def __init__(self) -> None:
        self.start = -1  # ms at which this bucket comes due; -1 while not in the heap
        self.timers: _Slot = {}


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
        self._ready: _Slot = {}  # due, not yet handed out, in due order once sorted
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
        """Unschedule in O(1); False when it was already handed out or cancelled."""
        slot = timer.slot
        if slot is None:
            return False
        del slot[timer]
        timer.slot = None
        self._count -= 1
        return True

    def clear(self) -> None:
        """Drop every timer (breaking each one's cycle with its slot)."""
        for level in self._levels:
            for bucket in level.buckets:
                bucket.start = -1
        for slot in [self._ready, *(b.timers for level in self._levels for b in level.buckets)]:
            for timer in slot:
                timer.slot = None
            slot.clear()
        self._heap.clear()
        self._count = 0

    def next_due(self) -> int | None:
        """The earliest ms at which `advance` may have work (None: nothing scheduled)."""
        if self._ready:
            return self._now
        heap = self._heap
        while heap:
            start, _, bucket = heap[0]
            if bucket.timers:
                return start
            heapq.heappop(heap)  # emptied by cancels
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
            timers, bucket.timers = bucket.timers, {}
            for timer in timers:
                self._place(timer)
        if self._ready_unsorted:
            # A coarse bucket, a jump over several buckets or a past deadline came in
            # out of order: restore due order (a stable sort, so FIFO per due time).
            ordered = sorted(ready, key=_due)
            ready.clear()
            ready.update(dict.fromkeys(ordered))
            self._ready_unsorted = False
        # One islice per batch: taking the first key one at a time would rescan the
        # slots every earlier delete left behind, quadratic in a burst of due timers.
        taken = list(islice(ready, limit))
        out: list[T] = []
        for timer in taken:
            del ready[timer]
            timer.slot = None
            out.append(timer.item)
        self._count -= len(taken)
        return out

    def _place(self, timer: Timer[Any]) -> None:
        due = timer.due
        if due <= self._now:
            ready = self._ready
            if ready and due < self._ready_tail:
                self._ready_unsorted = True
            else:
                self._ready_tail = due
            ready[timer] = None
            timer.slot = ready
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
        bucket.timers[timer] = None
        timer.slot = bucket.timers
        # A queued bucket always holds this same turn of the wheel: within one span
        # ahead of `now` each bucket index stands for one start only.
        if bucket.start < 0:
            start = bucket.start = due - due % level.tick
            self._seq += 1
            heapq.heappush(self._heap, (start, self._seq, bucket))


def _due(timer: Timer[Any]) -> int:
    return timer.due
