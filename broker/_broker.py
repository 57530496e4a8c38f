"""The in-process broker: channels, publish, subscribe, status, statistics."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, cast, get_args

import anyio
import anyio.abc
import msgspec
from anyio.lowlevel import cancel_shielded_checkpoint

from broker._clock import Clock
from broker._errors import (
    ChannelNotFoundError,
    InvalidArgumentError,
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
from broker._scheduler import Scheduler
from broker._subscription import Overflow, Subscription
from broker._timing import check_timing
from broker._validation import (
    check_channel,
    check_headers,
    check_publisher_id,
    decode_payload,
    encode_payload,
)
from broker.push_options import PushOptions, check_push_message
from broker.selectors import compile_selector
from broker.stores import MemoryStore, RecordStatus, ScheduledMessage, StatusPolicy, Store

_OVERFLOW_POLICIES = get_args(Overflow)
WRITE_BEHIND_LIMIT = 10_000  # statuses queued for the store before publish waits for a flush
# Statuses of immediate publishes are committed at most this often (seconds of wall time): one
# commit per interval, not one per publish, since a commit's fixed cost is several rows' worth.
STATUS_FLUSH_INTERVAL = 0.05

log = logging.getLogger("tidings.broker")


class PushSink(Protocol):
    """Where messages for devices go (broker.outbox.Outbox is one)."""

    async def accept(self, message: Message) -> None:
        """Take a push message; it is safe (durable) when this returns."""

    def accept_nowait(self, message: Message) -> None:
        """The same, from the timing wheel's release, which cannot wait."""


class Broker:
    """An in-process pub/sub broker; `async with Broker() as broker:` runs it.

    The broker owns a task group for its background work (the scheduler, status
    writes); leaving the context ends every subscription (after it yields what
    it holds), stops that work and closes the store.
    """

    def __init__(
        self,
        *,
        store: Store | None = None,
        max_message_size: int = 1_048_576,
        status_retention: float | timedelta = timedelta(hours=24),
        max_statuses: int = 100_000,
        max_scheduled: int = 1_000_000,
        clock: Clock = time.time,
    ) -> None:
        retention = (
            status_retention.total_seconds()
            if isinstance(status_retention, timedelta)
            else float(status_retention)
        )
        for name, value in (
            ("max_message_size", max_message_size),
            ("max_statuses", max_statuses),
            ("max_scheduled", max_scheduled),
            ("status_retention", retention),
        ):
            if not value > 0:
                raise InvalidArgumentError(f"{name} must be positive")
        self._max_message_size = max_message_size
        self._clock = clock
        self._store: Store = MemoryStore() if store is None else store
        self._status_policy = StatusPolicy(retention=retention, max_count=max_statuses)
        self._scheduler = Scheduler(
            self._store, clock, self._release_scheduled, max_pending=max_scheduled
        )
        self._flush_wanted = anyio.Event()
        self._channels: dict[str, Channel] = {}
        self._new_id = MessageIds()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._running = False
        self._push_sink: PushSink | None = None

    def send_push_to(self, sink: PushSink | None) -> None:
        """Route messages published with policy PUSH or BOTH to `sink` (the push outbox);
        without one they reach no device."""
        self._push_sink = sink

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Broker:
        if self._task_group is not None:
            raise RuntimeError("a Broker can be started only once")
        pending = await self._store.open(self._status_policy)
        self._task_group = task_group = anyio.create_task_group()
        await task_group.__aenter__()
        await self._scheduler.load(pending)
        task_group.start_soon(self._scheduler.run)
        task_group.start_soon(self._flush_statuses)
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
        try:
            # The body's own exception propagates as it is, not wrapped in an exception group.
            await task_group.__aexit__(None, None, None)
        finally:
            self._scheduler.close()
            with anyio.CancelScope(shield=True):
                await self._store.close()
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
        push: PushOptions | None = None,
    ) -> PublishResult:
        """Publish `message` now, or schedule it (delay / publish_at / repeat_every).

        An immediate message is queued to every matching subscription before this
        returns ("published"); a scheduled one is in the store ("scheduled").
        `push` (publishPolicy, pushBroadcast, pushSinglecast) rides along with the
        message; a policy of PUSH keeps it from the subscribers.
        """
        self._check_running()
        now = self._clock()
        timing = check_timing(now, delay, publish_at, repeat_every, repeat_expires_at)
        target = self._channel(channel)  # a scheduled publish creates the channel too
        checked = check_headers(headers)
        encoded = encode_payload(message, checked, self._max_message_size)
        checked_publisher = check_publisher_id(publisher_id)
        if push is not None:
            if not isinstance(push, PushOptions):
                raise InvalidArgumentError("push must be a PushOptions or None")
            if push.to_push:
                check_push_message(message)
        message_id = self._new_id()
        if timing is not None:
            await self._scheduler.schedule(
                ScheduledMessage(
                    message_id=message_id,
                    channel=channel,
                    payload=bytes(memoryview(encoded)),  # right-sized: msgspec's is not
                    headers=checked or None,
                    publisher_id=checked_publisher,
                    first_due=timing.first_due,
                    period=timing.period,
                    expires=timing.expires,
                    push=push,
                )
            )
            return PublishResult(message_id, MessageStatus.SCHEDULED)
        envelope = Message(
            message_id=message_id,
            channel=channel,
            message=decode_payload(encoded),
            headers=checked,
            publisher_id=checked_publisher,
            timestamp=int(now * 1000),
            push=push,
        )
        pressure = target.dispatch(envelope) if push is None or push.to_pubsub else False
        if push is not None and push.to_push and self._push_sink is not None:
            await self._push_sink.accept(envelope)
        queued = self._store.write_behind(RecordStatus(message_id, MessageStatus.PUBLISHED), now)
        if queued:
            if queued == 1:
                self._flush_wanted.set()
            elif queued >= WRITE_BEHIND_LIMIT:
                await self._store.flush()
        if pressure:
            # Some queue is past half full: let consumers run before the next publish.
            await cancel_shielded_checkpoint()
        return PublishResult(message_id, MessageStatus.PUBLISHED)

    def _release_scheduled(self, scheduled: ScheduledMessage, timestamp: int) -> bool:
        """Deliver one due time of a scheduled message (already recorded by the store)."""
        envelope = Message(
            message_id=scheduled.message_id,
            channel=scheduled.channel,
            message=decode_payload(scheduled.payload),
            headers={} if scheduled.headers is None else scheduled.headers,
            publisher_id=scheduled.publisher_id,
            timestamp=timestamp,
            push=scheduled.push,
        )
        push = scheduled.push
        if push is not None and push.to_push and self._push_sink is not None:
            self._push_sink.accept_nowait(envelope)
        if push is not None and not push.to_pubsub:
            return False
        return self._channel(scheduled.channel).dispatch(envelope)

    async def _flush_statuses(self) -> None:
        """Write statuses of immediate publishes in batches, off the publish path."""
        while True:
            await self._flush_wanted.wait()
            await anyio.sleep(STATUS_FLUSH_INTERVAL)
            self._flush_wanted = anyio.Event()
            try:
                await self._store.flush()
            except Exception:
                log.exception("writing message statuses to the store failed")

    # -- status, cancel, channels ------------------------------------------------------------

    async def get_status(self, message_id: str) -> PublishResult:
        """The current status; "unknown" once forgotten (status_retention, max_statuses)."""
        if not isinstance(message_id, str):
            return PublishResult(str(message_id), MessageStatus.UNKNOWN)
        if message_id in self._scheduler:
            return PublishResult(message_id, MessageStatus.SCHEDULED)
        record = await self._store.get_status(message_id, self._clock())
        if record is None:
            return PublishResult(message_id, MessageStatus.UNKNOWN)
        return PublishResult(message_id, record.status, record.error)

    async def cancel(self, message_id: str) -> PublishResult:
        """Cancel a scheduled (or repeating) message; anything else raises 5040."""
        self._check_running()
        if isinstance(message_id, str) and await self._scheduler.cancel(message_id):
            return PublishResult(message_id, MessageStatus.CANCELLED)
        status = (await self.get_status(message_id)).status
        raise NotCancellableError(f"message {message_id} cannot be cancelled: it is {status}")

    async def delete_channel(self, channel: str) -> None:
        """Delete a channel: its scheduled messages are cancelled and its live
        subscriptions end with BrokerError 5010."""
        target = self._channels.get(channel) if isinstance(channel, str) else None
        if target is None:
            raise ChannelNotFoundError(f"channel {channel!r} does not exist")
        await self._scheduler.cancel_channel(channel)
        if self._channels.get(channel) is not target:  # deleted while cancelling
            raise ChannelNotFoundError(f"channel {channel!r} does not exist")
        del self._channels[channel]
        target.end_subscriptions(ChannelNotFoundError(f"channel {channel!r} was deleted"))

    def statistics(self) -> BrokerStatistics:
        channels = {name: msgspec.structs.replace(c.stats) for name, c in self._channels.items()}
        return BrokerStatistics(
            channels=channels,
            subscribers=sum(s.subscribers for s in channels.values()),
            published=sum(s.published for s in channels.values()),
            delivered=sum(s.delivered for s in channels.values()),
            dropped=sum(s.dropped for s in channels.values()),
            scheduled=len(self._scheduler),
        )
