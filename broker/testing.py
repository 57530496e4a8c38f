"""Test helpers for code built on the broker: a virtual clock, in the manner of trio.testing.

clock = VirtualClock()
async with Broker(clock=clock) as broker:
    await broker.publish("news", "later", delay=60)
    await clock.advance(60)      # the message is delivered; nothing waited a minute
"""

from __future__ import annotations

import heapq
import itertools

import anyio
from anyio.lowlevel import checkpoint

DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class VirtualClock:
    """Epoch seconds that move only when told to; sleepers wake as it passes their deadline."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), event))
        await event.wait()

    def set(self, now: float) -> None:
        """Move to `now` (never backwards) and wake every sleeper whose deadline passed."""
        if now < self._now:
            raise ValueError("a VirtualClock never goes backwards")
        self._now = float(now)
        sleepers = self._sleepers
        while sleepers and sleepers[0][0] <= now:
            heapq.heappop(sleepers)[2].set()

    async def advance(self, seconds: float) -> None:
        """Move forward by `seconds`, then let every task run until all are blocked again."""
        self.set(self._now + seconds)
        await anyio.wait_all_tasks_blocked()
