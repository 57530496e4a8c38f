"""A subscription: a read position in its group's shared log, and a batch being read.

Publishing appends a message once per selector group, never once per
subscriber. A consumer takes everything new as one batch (a list slice) and
iterates it in C via a list iterator kept on the subscription, so breaking out
of `async for` loses nothing and a consumer is woken once per batch, not per
message (PERFORMANCE.md). Bounds are enforced by the group (`Group.compact`)
at the exact message that could break one, so no subscription ever holds more
than max_pending unread messages.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from itertools import islice
from operator import length_hint
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypeAlias, cast

from broker._errors import BrokerError, SlowConsumerError
from broker._messages import Message

if TYPE_CHECKING:
    from broker._fanout import Channel, Group

Overflow: TypeAlias = Literal["close", "drop_oldest"]

_EMPTY: Iterator[Message] = iter(())


class Subscription:
    """Async context manager (registers / unregisters) and async iterator of Message."""

    __slots__ = (
        "_attach",
        "_batch",
        "_channel",
        "_closed",
        "_drop_oldest",
        "_error",
        "_group",
        "_mark",
        "_pos",
        "channel",
        "dropped",
        "max_pending",
        "overflow",
        "selector",
    )

    def __init__(
        self,
        attach: Callable[[Subscription], tuple[Channel, Group]],
        channel: str,
        selector: str,
        max_pending: int,
        overflow: Overflow,
    ) -> None:
        self._attach = attach
        self._channel: Channel | None = None
        self._group: Group | None = None
        self._pos = 0  # absolute log position of the next message not yet in a batch
        self._mark = 0  # unread <= group head - mark, whatever is published from now on
        self._batch: Iterator[Message] = _EMPTY
        self._drop_oldest = overflow == "drop_oldest"
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
        self._channel, self._group = self._attach(self)
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
        self._batch = _EMPTY
        self._end(None, keep=False)

    def end(self, error: BrokerError | None) -> None:
        """Stop receiving; iteration yields what is queued, then raises `error` or stops."""
        self._end(error, keep=True)

    def _end(self, error: BrokerError | None, *, keep: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        group = self._group
        if group is None:
            return
        if keep:
            room = max(0, self.max_pending - self._batch_left())
            held = group.log[self._pos - group.base :][:room]
            if held:
                self._batch = iter([*self._batch, *held])
        group.readers.pop(self, None)
        group.wake()
        cast("Channel", self._channel).detach(self, group)  # set together with _group

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BrokerError | None:
        """Why the broker ended this subscription (slow consumer, channel deleted), if it did."""
        return self._error

    @property
    def pending(self) -> int:
        """Messages received and not yet read."""
        group = self._group
        unread = 0 if group is None or self._closed else group.base + len(group.log) - self._pos
        return unread + self._batch_left()

    def _batch_left(self) -> int:
        return length_hint(self._batch)

    # -- bounds ------------------------------------------------------------------------------

    def settle(self, group: Group) -> int:
        """Apply the overflow policy if more than max_pending are unread; returns unread."""
        head = group.head
        in_batch = self._batch_left()
        unread = head - self._pos + in_batch
        excess = unread - self.max_pending
        if excess > 0:
            self.dropped += excess
            group.stats.dropped += excess
            if not self._drop_oldest:
                group.stats.delivered -= excess  # refused, never queued
                self._end(SlowConsumerError(), keep=True)
                return self.max_pending
            if excess >= in_batch:
                self._batch = _EMPTY
                self._pos += excess - in_batch
            else:
                self._batch = iter(list(self._batch)[excess:])
            unread = self.max_pending
        self._mark = head - unread
        return unread

    # -- consumer side -----------------------------------------------------------------------

    def _refill(self) -> bool:
        """Take everything new as the next batch; False when there is nothing."""
        group = self._group
        if group is None:
            raise RuntimeError("enter the subscription with 'async with' before reading it")
        if self._closed or self._pos >= group.head:
            return False
        # No bound check here: the group checks at the exact message that could break one.
        log = group.log
        self._batch = iter(log[self._pos - group.base :])
        self._pos = group.head
        return True

    async def _wait(self) -> None:
        await cast("Group", self._group).waiter().wait()  # _refill checked it is set

    def notify_when_ready(self, callback: Callable[[], object]) -> bool:
        """True if a read would not wait (messages queued, or closed); else False, and
        `callback` is called once when that may have changed. For one task that waits on
        several subscriptions: arm each, then wait for any callback; never blocks."""
        if self._batch_left() or self._closed:
            return True
        group = self._group
        if group is None:
            raise RuntimeError("enter the subscription with 'async with' before reading it")
        if self._pos < group.head:
            return True
        group.notify(self, callback)
        return False

    def take(self, limit: int) -> list[Message]:
        """Up to `limit` queued messages, without waiting (for pollers); [] when none."""
        taken = list(islice(self._batch, limit))
        while len(taken) < limit and self._refill():
            taken.extend(islice(self._batch, limit - len(taken)))
        return taken

    def __aiter__(self) -> AsyncGenerator[Message, None]:
        return self._iterate()

    async def _iterate(self) -> AsyncGenerator[Message, None]:
        # An async generator over a list iterator: the cheapest per-message resume available.
        while True:
            for message in self._batch:
                yield message
            if self._refill():
                continue
            if self._closed:
                if self._error is not None:
                    raise self._error
                return
            await self._wait()

    async def __anext__(self) -> Message:
        while True:
            for message in self._batch:
                return message
            if self._refill():
                continue
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            await self._wait()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._channel else "new"
        return (
            f"<Subscription {self.channel!r} selector={self.selector!r} {state} "
            f"pending={self.pending} dropped={self.dropped}>"
        )
