"""Quickstart: publish with headers, subscribe selectively, read statuses and statistics.

Run with `make run` (until the server exists, this is what it starts).
"""

from __future__ import annotations

import asyncio

from broker import Broker, BrokerError, SelectorError


async def main() -> None:
    async with Broker() as broker:
        # Every subscription sees only messages whose headers satisfy its selector.
        tokyo = broker.subscribe("news", selector="city = 'Tokyo' AND priority > 3")
        everything = broker.subscribe("news")
        async with tokyo, everything:
            await broker.publish(
                "news", {"text": "Quake drill at noon"}, headers={"city": "Tokyo", "priority": 5}
            )
            await broker.publish(
                "news", {"text": "Light rain"}, headers={"city": "Tokyo", "priority": 1}
            )
            result = await broker.publish(
                "news",
                {"text": "Harbour closed"},
                headers={"city": "Osaka", "priority": 9},
                publisher_id="port-authority",
            )

            msg = await anext(tokyo)
            print(f"tokyo subscriber got: {msg.message['text']!r} {msg.headers}")
            print(f"tokyo subscriber has {tokyo.pending} more (the low-priority one was filtered)")

            async for msg in everything:
                print(f"everything subscriber got: {msg.message['text']!r} from {msg.publisher_id}")
                if everything.pending == 0:
                    break

            status = await broker.get_status(result.message_id)
            print(f"status of {status.message_id}: {status.status}")

            try:
                broker.subscribe("news", selector="priority >> 3")
            except SelectorError as exc:
                print(f"bad selector refused: {exc}")
            try:
                await broker.cancel(result.message_id)
            except BrokerError as exc:
                print(f"cancel refused: {exc}")

            stats = broker.statistics().channels["news"]
            print(
                f"channel 'news': {stats.subscribers} subscribers, {stats.published} published, "
                f"{stats.delivered} delivered, {stats.dropped} dropped"
            )


if __name__ == "__main__":
    asyncio.run(main())
