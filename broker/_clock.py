"""Injected time: a clock is a callable returning epoch seconds; it may also know how to sleep.

The scheduler sleeps through `sleep_until` so a virtual clock (broker.testing)
can run timers without real waiting. A plain callable (time.time, a fake that
only reads) sleeps in real time, re-reading the clock on waking, so a clock set
back or a timer woken early never makes a message fire before its due time.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import anyio

Clock = Callable[[], float]


@runtime_checkable
class SleepingClock(Protocol):
    def __call__(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once the clock reads `deadline` (epoch seconds) or later; may be cancelled."""


def sleeper_for(clock: Clock) -> Callable[[float], Awaitable[None]]:
    if isinstance(clock, SleepingClock):
        return clock.sleep_until

    async def sleep_until(deadline: float) -> None:
        if math.isinf(deadline):
            await anyio.sleep_forever()
        # At least 1 ms: uvloop's timers count whole ms and may wake a fraction early;
        # re-sleeping the fraction would spin until it passed.
        await anyio.sleep(max(0.001, deadline - clock()))

    return sleep_until
