"""A subscription: a bounded queue filled by the publisher, drained by one consumer.

The publisher appends references without awaiting; the consumer is woken only
on the empty -> non-empty transition and then drains without awaiting while
messages are queued (PERFORMANCE.md: wake per batch, not per message).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypeAlias

import anyio

from broker._errors import BrokerError, SlowConsumerError
from broker._messages import Message

if TYPE_CHECKING:
    from broker._fanout import Channel

Overflow: TypeAlias = Literal["close", "drop_oldest"]


class Offer(Enum):
    QUEUED = 1  # queued; the queue is filling, so the publisher should yield
    EVICTED = 2  # queued after dropping the oldest message (drop_oldest)
    REFUSED = 3  # not queued: the subscription ended as a slow consumer (close)


class Subscription:
    """Async context manager (registers / unregisters) and async iterator of Message."""

    __slots__ = (
        "_attach",
        "_channel",
        "_closed",
        "_drop_oldest",
        "_error",
        "_high_water",
        "_limit",
        "_queue",
        "_waiter",
        "channel",
        "dropped",
        "max_pending",
        "overflow",
        "selector",
    )

    def __init__(
        self,
        attach: Callable[[Subscription], Channel],
        channel: str,
        selector: str,
        max_pending: int,
        overflow: Overflow,
    ) -> None:
        self._attach = attach
        self._channel: Channel | None = None
        self._queue: deque[Message] = deque()
        self._limit = max_pending
        # Past this fill the publisher yields once, so consumers that keep up get to run.
        self._high_water = max(1, max_pending // 2)
        self._drop_oldest = overflow == "drop_oldest"
        self._waiter: anyio.Event | None = None
        self._closed = False
        self._error: BrokerError | None = None
        self.channel = channel
        self.selector = selector  # canonical text; "" matches every message
        self.max_pending = max_pending
        self.overflow = overflow
        self.dropped = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        if self._channel is not None or self._closed:
            raise RuntimeError("a subscription can be entered only once")
        self._channel = self._attach(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe now; queued messages are discarded and iteration stops."""
        self._queue.clear()
        self.end(None)

    def end(self, error: BrokerError | None) -> None:
        """Stop receiving; iteration yields what is queued, then raises `error` or stops."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        channel = self._channel
        if channel is not None:
            channel.detach(self)
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- publisher side (called by Channel.dispatch only when past the high-water mark) -----

    def offer_slow(self, message: Message) -> Offer:
        """Queue a message when the queue is past its high-water mark."""
        queue = self._queue
        if len(queue) < self._limit:
            queue.append(message)
            self._wake()
            return Offer.QUEUED
        self.dropped += 1
        if self._drop_oldest:
            queue.popleft()
            queue.append(message)
            return Offer.EVICTED
        self.end(SlowConsumerError())
        return Offer.REFUSED

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    # -- consumer side -----------------------------------------------------------------------

    async def _wait(self) -> None:
        if self._channel is None:
            raise RuntimeError("enter the subscription with 'async with' before reading it")
        waiter = self._waiter
        if waiter is None:
            waiter = self._waiter = anyio.Event()
        await waiter.wait()

    def __aiter__(self) -> AsyncGenerator[Message, None]:
        return self._iterate()

    async def _iterate(self) -> AsyncGenerator[Message, None]:
        # An async generator resumes cheaper than a coroutine per __anext__ call.
        queue = self._queue
        while True:
            while queue:
                yield queue.popleft()
            if self._closed:
                if self._error is not None:
                    raise self._error
                return
            await self._wait()

    async def __anext__(self) -> Message:
        queue = self._queue
        while not queue:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            await self._wait()
        return queue.popleft()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._channel else "new"
        return (
            f"<Subscription {self.channel!r} selector={self.selector!r} {state} "
            f"pending={len(self._queue)} dropped={self.dropped}>"
        )
