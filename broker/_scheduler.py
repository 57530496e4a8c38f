"""Delayed and repeating publishing: the timing wheel, its driver, the store, cancel.

Pending messages live in a TimingWheel keyed by due time in epoch ms. One
driver task sleeps until the wheel's next due time (no asyncio handle per
timer, no polling; scheduling something earlier interrupts the sleep), then
takes at most `batch_size` due messages, records them in the store in one
transaction, and only then releases them to subscribers. Firing and cancelling
hold one lock, so a cancel racing a fire sees either the message still
scheduled (and cancels it, after the deliveries already made) or finished.

Catch-up: a due time that has passed while the process was down or busy is
folded into one delivery; a repeat then continues at the first of its due
times (start + n * period) still ahead. A due time is never delivered early.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

import anyio
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from broker._clock import Clock, sleeper_for
from broker._errors import SchedulerFullError
from broker._mutex import Mutex
from broker._timers import Timer, TimingWheel
from broker.stores._protocol import Store
from broker.stores._records import Cancel, Release, Schedule, ScheduledMessage

log = logging.getLogger("tidings.scheduler")

BATCH_SIZE = 500  # due messages released per store transaction and per event-loop turn
RETRY_AFTER = 1.0  # seconds before a batch whose store write failed is tried again


class Scheduler:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        release: Callable[[ScheduledMessage, int], bool],
        *,
        max_pending: int,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep_until = sleeper_for(clock)
        # (message, timestamp ms) -> hands one delivery to subscribers; True when some
        # subscription is past half full, and consumers should run before the next.
        self._release = release
        self._max_pending = max_pending
        self._batch_size = batch_size
        self._wheel: TimingWheel[ScheduledMessage] = TimingWheel(clock() * 1000)
        self._timers: dict[str, Timer[ScheduledMessage]] = {}
        self._reserved = 0  # schedules whose store write is in flight
        self._lock = Mutex()  # free: no event-loop turn, no cancellation check
        self._sleep: anyio.CancelScope | None = None
        self._sleeping_until = -math.inf  # ms the driver sleeps until; -inf while it works

    def __len__(self) -> int:
        return len(self._timers)

    def close(self) -> None:
        """Forget every pending message (the broker has stopped; the store keeps them)."""
        self._wheel.clear()
        self._timers.clear()

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._timers

    async def load(self, messages: Iterable[ScheduledMessage]) -> None:
        """Put messages read from the store back on the wheel (at start)."""
        expired = []
        for message in messages:
            if message.finished(message.next_index):  # cannot happen unless edited by hand
                expired.append(Release(message.message_id, message.next_index, done=True))
            else:
                self._add(message)
        if expired:
            await self._store.write(expired, self._clock())

    async def schedule(self, message: ScheduledMessage) -> None:
        if len(self._timers) + self._reserved >= self._max_pending:
            raise SchedulerFullError(f"{self._max_pending} messages are already scheduled")
        self._reserved += 1
        try:
            await self._store.write([Schedule(message)], self._clock())
        finally:
            self._reserved -= 1
        self._add(message)

    async def cancel(self, message_id: str) -> bool:
        """Cancel a pending message; False when it is not pending (any more)."""
        async with self._lock:
            timer = self._timers.get(message_id)
            if timer is None:
                return False
            await self._store.write([Cancel(message_id)], self._clock())
            self._wheel.cancel(timer)
            del self._timers[message_id]
            return True

    async def cancel_channel(self, channel: str) -> int:
        """Cancel every pending message of `channel`; returns how many."""
        async with self._lock:
            doomed = [t for t in self._timers.values() if t.item.channel == channel]
            if doomed:
                cancels = [Cancel(t.item.message_id) for t in doomed]
                await self._store.write(cancels, self._clock())
            for timer in doomed:
                del self._timers[timer.item.message_id]
                self._wheel.cancel(timer)  # drops its item
            return len(doomed)

    def _add(self, message: ScheduledMessage) -> None:
        due = message.due(message.next_index)
        self._timers[message.message_id] = self._wheel.schedule(due, message)
        if due < self._sleeping_until and self._sleep is not None:
            self._sleep.cancel()  # the driver sleeps past this one: wake it

    # -- the driver --------------------------------------------------------------------------

    async def run(self) -> None:
        wheel = self._wheel
        while True:
            due = wheel.next_due()
            if due is None or due > self._clock() * 1000:
                self._sleeping_until = math.inf if due is None else due
                with anyio.CancelScope() as self._sleep:
                    await self._sleep_until(self._sleeping_until / 1000)
                self._sleep = None
                self._sleeping_until = -math.inf
                continue
            # Closing: what is due stays scheduled in the store, for the next start's
            # subscribers, rather than being released while they are already gone.
            await checkpoint_if_cancelled()
            async with self._lock:
                batch = wheel.advance(self._clock() * 1000, self._batch_size)
                if batch:
                    # Shielded: once the store has recorded a due time, release it.
                    with anyio.CancelScope(shield=True):
                        await self._fire(batch)
            await checkpoint()  # a full batch is followed by the next only after others ran

    async def _fire(self, batch: list[ScheduledMessage]) -> None:
        now = self._clock()
        now_ms = math.floor(now * 1000)
        releases = []
        for message in batch:
            following = message.next_index + 1
            period = message.period
            if period is not None and message.due(following) <= now_ms:
                following = (now_ms - message.first_due) // period + 1  # late: fold
            releases.append(Release(message.message_id, following, message.finished(following)))
        try:
            await self._store.write(releases, now)
        except Exception:
            log.exception("recording %d due messages failed; retrying in %ss", len(batch), 1)
            for message in batch:
                timer = self._wheel.schedule(now_ms + RETRY_AFTER * 1000, message)
                self._timers[message.message_id] = timer
            return
        for message, release in zip(batch, releases, strict=True):
            if release.done:
                del self._timers[message.message_id]
            else:
                message.next_index = release.next_index
                self._add(message)
            if self._release(message, now_ms):
                await checkpoint()
