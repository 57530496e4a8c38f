"""A broker process on a SqliteStore, run by test_crash_recovery.py as a real subprocess.

    python scheduled_process.py schedule DB COUNT START_MS WINDOW_MS [STEP_MS]
    python scheduled_process.py schedule-receive DB COUNT START_MS WINDOW_MS [STEP_MS]
    python scheduled_process.py receive DB

`schedule` schedules COUNT one-shot messages on channel "crash", due at
START_MS + i * WINDOW_MS // COUNT rounded down to a multiple of STEP_MS (epoch
ms; STEP_MS 1, the default, spreads them evenly, a larger one makes bursts);
the due time also travels in the "due" header. It prints `S <id> <due_ms>` for
each, then `scheduled <COUNT> late <L>` once every one is in the store (L: how
many were asked for a due time already past, and so were scheduled with
delay=0), then waits forever (to be killed). `schedule-receive` does the same
with a subscriber opened before the first publish.

`receive` opens the broker on the store, subscribes before any other await,
prints `ready <pending>`, then reads until the scheduler holds nothing and a
sentinel published after that has come back, and prints `done`.

Both subscribers print every message they get as `R <id> <due_ms> <recv_ms>
<timestamp_ms>`, flushed at once, where recv_ms is this process's clock when it
read the message and timestamp_ms the broker's delivery timestamp.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import anyio

from broker import Broker, Subscription
from broker.stores import SqliteStore

CHANNEL = "crash"
WORKERS = 50  # concurrent publishes, so SqliteStore's group commit shares transactions
MAX_PENDING = 1_000_000  # per subscription: every message may be released at once


def print_received(message_id: str, due: object, timestamp: int) -> None:
    recv_ms = math.floor(time.time() * 1000)
    print(f"R {message_id} {due} {recv_ms} {timestamp}", flush=True)


async def print_all(sub: Subscription) -> None:
    async for message in sub:
        print_received(message.message_id, message.headers["due"], message.timestamp)


async def schedule(broker: Broker, count: int, start_ms: int, window_ms: int, step_ms: int) -> None:
    indexes: Iterator[int] = iter(range(count))
    late = 0

    async def worker() -> None:
        nonlocal late
        for i in indexes:  # shared: each index is taken by exactly one worker
            due_ms = start_ms + i * window_ms // count // step_ms * step_ms
            if due_ms > math.ceil(time.time() * 1000):
                at = datetime.fromtimestamp(due_ms / 1000, tz=UTC)
                result = await broker.publish(
                    CHANNEL, {"n": i}, headers={"due": due_ms}, publish_at=at
                )
            else:  # too slow to schedule it ahead: still never delivered before due_ms
                late += 1
                result = await broker.publish(CHANNEL, {"n": i}, headers={"due": due_ms}, delay=0)
            print(f"S {result.message_id} {due_ms}")

    async with anyio.create_task_group() as tg:
        for _ in range(WORKERS):
            tg.start_soon(worker)
    print(f"scheduled {count} late {late}", flush=True)


async def run_schedule(
    path: str, count: int, start_ms: int, window_ms: int, step_ms: int, listen: bool
) -> None:
    async with Broker(store=SqliteStore(path)) as broker:
        if not listen:
            await schedule(broker, count, start_ms, window_ms, step_ms)
            await anyio.sleep_forever()
        async with (
            broker.subscribe(CHANNEL, max_pending=MAX_PENDING) as sub,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(print_all, sub)
            await schedule(broker, count, start_ms, window_ms, step_ms)
            await anyio.sleep_forever()


async def run_receive(path: str) -> None:
    broker = Broker(store=SqliteStore(path))
    # No await between starting and subscribing: messages overdue at start are released to it.
    async with broker, broker.subscribe(CHANNEL, max_pending=MAX_PENDING) as sub:
        print(f"ready {broker.statistics().scheduled}", flush=True)
        sentinel_sent = False
        while True:
            if not sentinel_sent and broker.statistics().scheduled == 0:
                # Every release the scheduler will make is in the subscription before this.
                await broker.publish(CHANNEL, None, headers={"sentinel": True})
                sentinel_sent = True
            message = await anext(sub)
            if message.headers.get("sentinel"):
                break
            print_received(message.message_id, message.headers["due"], message.timestamp)
    print("done", flush=True)


def main(argv: list[str]) -> None:
    mode, path, *rest = argv
    if mode in ("schedule", "schedule-receive"):
        count, start_ms, window_ms, step_ms = (int(arg) for arg in [*rest, "1"][:4])
        listen = mode == "schedule-receive"
        anyio.run(run_schedule, path, count, start_ms, window_ms, step_ms, listen)
    elif mode == "receive" and not rest:
        anyio.run(run_receive, path)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
