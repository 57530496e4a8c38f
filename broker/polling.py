"""Polling subscriptions (Backendless's older subscribe API): held by id, read by polls.

`POST messaging/<channel>/subscribe` opens one; `GET messaging/<channel>/<id>`
takes what arrived since the last poll. Each is an ordinary broker
subscription (same selectors, bounded queue: the oldest messages go first when
a poller falls behind). One not polled for `ttl` seconds is closed by `sweep`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from broker._broker import Broker
from broker._errors import BrokerError
from broker._messages import Message
from broker._subscription import Subscription


class UnknownSubscriptionError(BrokerError):
    def __init__(self, message: str) -> None:
        super().__init__(5002, message)


class TooManySubscriptionsError(BrokerError):
    def __init__(self, message: str) -> None:
        super().__init__(999, message)


class _Poller:
    __slots__ = ("channel", "last_poll", "subscription")

    def __init__(self, channel: str, subscription: Subscription, now: float) -> None:
        self.channel = channel
        self.subscription = subscription
        self.last_poll = now


class PollingSubscriptions:
    def __init__(
        self,
        broker: Broker,
        *,
        ttl: float = 60.0,
        max_subscriptions: int = 10_000,
        max_pending: int = 10_000,
        max_batch: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._broker = broker
        self._ttl = ttl
        self._max = max_subscriptions
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._clock = clock
        self._pollers: dict[str, _Poller] = {}

    def __len__(self) -> int:
        return len(self._pollers)

    async def subscribe(self, channel: str, selector: str | None) -> str:
        self.sweep()
        if len(self._pollers) >= self._max:
            raise TooManySubscriptionsError(
                f"{self._max} polling subscriptions are open; poll or let some expire"
            )
        subscription = self._broker.subscribe(
            channel, selector=selector, max_pending=self._max_pending, overflow="drop_oldest"
        )
        await subscription.__aenter__()
        subscription_id = secrets.token_hex(16)
        self._pollers[subscription_id] = _Poller(channel, subscription, self._clock())
        return subscription_id

    def poll(self, channel: str, subscription_id: str) -> list[Message]:
        """What arrived since the last poll (at most max_batch); 5002 if unknown or expired."""
        self.sweep()
        poller = self._pollers.get(subscription_id)
        if poller is None or poller.channel != channel:
            raise UnknownSubscriptionError(
                f"subscription {subscription_id!r} on channel {channel!r} is unknown or expired"
            )
        poller.last_poll = self._clock()
        messages = poller.subscription.take(self._max_batch)
        if poller.subscription.closed and not poller.subscription.pending:
            del self._pollers[subscription_id]  # its channel was deleted: this was the last poll
        return messages

    def sweep(self) -> None:
        """Close the subscriptions not polled within ttl."""
        horizon = self._clock() - self._ttl
        for subscription_id in [k for k, p in self._pollers.items() if p.last_poll <= horizon]:
            self._pollers.pop(subscription_id).subscription.close()

    def close(self) -> None:
        for poller in self._pollers.values():
            poller.subscription.close()
        self._pollers.clear()
