"""broker.testing.VirtualClock: time that moves only when a test says so; and real-time sleeps."""

from __future__ import annotations

import time

import anyio
import pytest

from broker._clock import sleeper_for
from broker.testing import DEFAULT_START, VirtualClock


async def test_sleepers_wake_in_deadline_order_as_the_clock_passes_them() -> None:
    clock = VirtualClock()
    assert clock() == DEFAULT_START
    woken: list[str] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woken.append(name)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sleeper, "late", DEFAULT_START + 20)
        tasks.start_soon(sleeper, "soon", DEFAULT_START + 10)
        tasks.start_soon(sleeper, "past", DEFAULT_START - 5)
        await clock.advance(9.999)
        assert woken == ["past"]
        await clock.advance(0.001)
        assert woken == ["past", "soon"]
        clock.set(DEFAULT_START + 30)
    assert woken == ["past", "soon", "late"]


def test_a_virtual_clock_never_goes_backwards() -> None:
    clock = VirtualClock(100.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(99.0)
    assert clock() == 100.0


async def test_a_real_time_sleep_is_never_shorter_than_a_millisecond() -> None:
    """uvloop counts whole ms: re-sleeping a fraction of one would spin until it passed."""
    sleep_until = sleeper_for(time.time)
    started = time.monotonic()
    await sleep_until(time.time() + 0.0001)
    assert time.monotonic() - started >= 0.001
