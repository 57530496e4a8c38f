"""The scheduler's lock: exclusive, FIFO, and a cancelled waiter never strands it."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from broker._mutex import Mutex


async def test_a_free_lock_is_taken_without_a_turn_of_the_loop() -> None:
    mutex = Mutex()
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with mutex:  # no checkpoint: not even a cancelled scope stops it
            assert mutex.locked
    assert not mutex.locked


async def test_waiters_get_the_lock_one_at_a_time_in_arrival_order() -> None:
    mutex = Mutex()
    order: list[str] = []

    async def worker(name: str) -> None:
        async with mutex:
            order.append(f"{name} in")
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            order.append(f"{name} out")

    async with anyio.create_task_group() as tasks:
        for name in "abc":
            tasks.start_soon(worker, name)
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert not mutex.locked


async def test_a_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    mutex = Mutex()
    got: list[str] = []

    async def waiter(name: str) -> None:
        async with mutex:
            got.append(name)

    doomed = anyio.CancelScope()

    async def cancelled() -> None:
        with doomed:
            await waiter("cancelled")

    async with anyio.create_task_group() as tasks:
        await mutex.__aenter__()
        tasks.start_soon(cancelled)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(waiter, "kept")
        await anyio.wait_all_tasks_blocked()
        doomed.cancel()
        await anyio.wait_all_tasks_blocked()
        await mutex.__aexit__(None, None, None)
    assert got == ["kept"]
    assert not mutex.locked


async def test_a_waiter_cancelled_as_the_lock_is_handed_to_it_passes_it_on() -> None:
    mutex = Mutex()
    got: list[str] = []
    await mutex.__aenter__()

    async def first() -> None:
        async with mutex:
            got.append("first")  # pragma: no cover -- cancelled, never gets it

    async def second() -> None:
        async with mutex:
            got.append("second")

    scope = anyio.CancelScope()

    async def doomed() -> None:
        with scope:
            await first()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()  # `first` is cancelled, but before it resumes...
        await mutex.__aexit__(None, None, None)  # ...the lock is handed to it
    assert got == ["second"]
    assert not mutex.locked


@pytest.mark.parametrize("error", [RuntimeError, KeyError])
async def test_an_error_inside_releases_the_lock(error: type[Exception]) -> None:
    mutex = Mutex()
    with pytest.raises(error):
        async with mutex:
            raise error("boom")
    assert not mutex.locked
