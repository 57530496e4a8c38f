"""The in-process broker: channels, publish, subscribe, status, statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, cast, get_args

import anyio
import anyio.abc
import msgspec
from anyio.lowlevel import cancel_shielded_checkpoint

from broker._errors import (
    ChannelNotFoundError,
    InvalidArgumentError,
    InvalidPublishTimeError,
    InvalidRepeatError,
    NotCancellableError,
)
from broker._fanout import Channel, Group
from broker._ids import MessageIds
from broker._messages import (
    BrokerStatistics,
    Message,
    MessageStatus,
    PublishResult,
)
from broker._statuses import StatusLog
from broker._subscription import Overflow, Subscription
from broker._validation import (
    check_channel,
    check_headers,
    check_publisher_id,
    normalize_payload,
)
from broker.selectors import compile_selector

_OVERFLOW_POLICIES = get_args(Overflow)


class Broker:
    """An in-process pub/sub broker; `async with Broker() as broker:` runs it.

    The broker owns a task group for its background work; leaving the context
    ends every subscription (after it yields what it holds) and stops that work.
    """

    def __init__(
        self,
        *,
        max_message_size: int = 1_048_576,
        status_retention: float | timedelta = timedelta(hours=24),
        max_statuses: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        retention = (
            status_retention.total_seconds()
            if isinstance(status_retention, timedelta)
            else float(status_retention)
        )
        for name, value in (
            ("max_message_size", max_message_size),
            ("max_statuses", max_statuses),
            ("status_retention", retention),
        ):
            if not value > 0:
                raise InvalidArgumentError(f"{name} must be positive")
        self._max_message_size = max_message_size
        self._clock = clock
        self._statuses = StatusLog(retention=retention, max_count=max_statuses, clock=clock)
        self._channels: dict[str, Channel] = {}
        self._new_id = MessageIds()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Broker:
        if self._task_group is not None:
            raise RuntimeError("a Broker can be started only once")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._running = False
        for channel in self._channels.values():
            channel.end_subscriptions(None)
        task_group = cast(anyio.abc.TaskGroup, self._task_group)  # set by __aenter__
        task_group.cancel_scope.cancel()
        # The body's own exception propagates as it is, not wrapped in an exception group.
        await task_group.__aexit__(None, None, None)
        return None

    def _check_running(self) -> None:
        if not self._running:
            raise RuntimeError("the broker is not running: use 'async with Broker() as broker'")

    def _channel(self, name: str) -> Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[check_channel(name)] = Channel(name)
        return channel

    # -- subscribe ---------------------------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        *,
        selector: str | None = None,
        max_pending: int = 10_000,
        overflow: Overflow = "close",
    ) -> Subscription:
        """A subscription to `channel`, registered when its `async with` is entered.

        Raises SelectorError (5050) for an invalid selector, 5044 for a bad channel name.
        """
        if channel not in self._channels:
            check_channel(channel)
        if selector is not None and not isinstance(selector, str):
            raise InvalidArgumentError("selector must be a string or None")
        compiled = compile_selector(selector)
        if type(max_pending) is not int or max_pending < 1:
            raise InvalidArgumentError("max_pending must be a positive integer")
        if overflow not in _OVERFLOW_POLICIES:
            raise InvalidArgumentError(f"overflow must be one of {', '.join(_OVERFLOW_POLICIES)}")

        def attach(sub: Subscription) -> tuple[Channel, Group]:
            self._check_running()
            target = self._channel(channel)
            return target, target.attach(sub, compiled)

        return Subscription(attach, channel, compiled.text, max_pending, overflow)

    # -- publish -----------------------------------------------------------------------------

    async def publish(
        self,
        channel: str,
        message: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        publisher_id: str | None = None,
        delay: float | timedelta | None = None,
        publish_at: datetime | None = None,
        repeat_every: float | timedelta | None = None,
        repeat_expires_at: datetime | None = None,
    ) -> PublishResult:
        """Publish `message`; returns once it is queued to every matching subscription."""
        self._check_running()
        if delay is not None or publish_at is not None:
            raise InvalidPublishTimeError("delayed publishing is not supported by this version")
        if repeat_every is not None or repeat_expires_at is not None:
            raise InvalidRepeatError("repeating publishing is not supported by this version")
        target = self._channel(channel)
        checked = check_headers(headers)
        payload = normalize_payload(message, checked, self._max_message_size)
        message_id = self._new_id()
        envelope = Message(
            message_id=message_id,
            channel=channel,
            message=payload,
            headers=checked,
            publisher_id=check_publisher_id(publisher_id),
            timestamp=int(self._clock() * 1000),
        )
        pressure = target.dispatch(envelope)
        self._statuses.record(message_id, MessageStatus.PUBLISHED)
        if pressure:
            # Some queue is past half full: let consumers run before the next publish.
            await cancel_shielded_checkpoint()
        return PublishResult(message_id, MessageStatus.PUBLISHED)

    # -- status, cancel, channels ------------------------------------------------------------

    async def get_status(self, message_id: str) -> PublishResult:
        status = self._statuses.get(message_id) if isinstance(message_id, str) else None
        return PublishResult(str(message_id), status or MessageStatus.UNKNOWN)

    async def cancel(self, message_id: str) -> PublishResult:
        """Cancel a scheduled message; anything else raises 5040."""
        status = (await self.get_status(message_id)).status
        raise NotCancellableError(f"message {message_id} cannot be cancelled: it is {status}")

    async def delete_channel(self, channel: str) -> None:
        """Delete a channel; its live subscriptions end with BrokerError 5010."""
        target = self._channels.pop(channel, None) if isinstance(channel, str) else None
        if target is None:
            raise ChannelNotFoundError(f"channel {channel!r} does not exist")
        target.end_subscriptions(ChannelNotFoundError(f"channel {channel!r} was deleted"))

    def statistics(self) -> BrokerStatistics:
        channels = {name: msgspec.structs.replace(c.stats) for name, c in self._channels.items()}
        return BrokerStatistics(
            channels=channels,
            subscribers=sum(s.subscribers for s in channels.values()),
            published=sum(s.published for s in channels.values()),
            delivered=sum(s.delivered for s in channels.values()),
            dropped=sum(s.dropped for s in channels.values()),
        )
