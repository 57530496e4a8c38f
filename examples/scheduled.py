"""Delayed, repeating and cancelled messages on a durable SQLite store.

    python examples/scheduled.py [path/to/tidings.db]

Run it twice: scheduled messages and statuses live in the SQLite file, so what
the first run left pending (the hourly reminder) is still there on the next.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from broker import Broker, BrokerError
from broker.stores import SqliteStore


async def main(path: str) -> None:
    async with Broker(store=SqliteStore(path)) as broker, broker.subscribe("alerts") as sub:
        pending = broker.statistics().scheduled
        print(f"opened {path}: {pending} scheduled message(s) left by earlier runs")
        now = datetime.now(UTC)
        once = await broker.publish("alerts", "tea is ready", delay=0.3)
        ticks = await broker.publish(
            "alerts",
            "tick",
            publish_at=now + timedelta(seconds=0.5),
            repeat_every=0.25,
            repeat_expires_at=now + timedelta(seconds=1),
        )
        dropped = await broker.publish("alerts", "never sent", delay=60)
        await broker.publish("reminders", "hourly reminder", repeat_every=timedelta(hours=1))
        print(f"scheduled: {once.status}, {ticks.status}, {dropped.status}")
        print(f"cancelled: {(await broker.cancel(dropped.message_id)).status}")
        try:
            await broker.publish("alerts", "too late", publish_at=now - timedelta(days=1))
        except BrokerError as exc:
            print(f"refused: {exc}")

        received = []
        while len(received) < 4:  # the one-shot, then ticks at +0.5, +0.75, +1.0 s
            async with asyncio.timeout(5):
                msg = await anext(sub)
            late_ms = msg.timestamp - int(now.timestamp() * 1000)
            received.append(msg.message)
            print(f"got {msg.message!r} at +{late_ms} ms")
        for name, result in (("one-shot", once), ("repeat", ticks), ("cancelled", dropped)):
            print(f"{name}: {(await broker.get_status(result.message_id)).status}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "data/tidings.db"))
