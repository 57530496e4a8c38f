"""Shared by the selector tests: what each of several subscriptions on one channel receives."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from broker import Broker, HeaderValue

Headers = dict[str, HeaderValue]


async def broker_deliveries(
    selectors: Sequence[str | None], headers_list: Sequence[Headers]
) -> list[list[int]]:
    """Subscribe every selector on one channel (all at once, so the broker's selector groups
    and indexes are in play), publish each headers dict; what each one received."""
    async with Broker() as broker, contextlib.AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(broker.subscribe("c", selector=selector))
            for selector in selectors
        ]
        for number, headers in enumerate(headers_list):
            await broker.publish("c", number, headers=headers)
        received: list[list[int]] = []
        for subscription in subscriptions:
            got: list[int] = []
            while subscription.pending:
                got.append((await anext(subscription)).message)
            received.append(got)
        return received
