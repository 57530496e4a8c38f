"""The data the broker hands out: msgspec Structs, cheap to create and to encode."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeAlias

import msgspec

from broker.push_options import PushOptions

HeaderValue: TypeAlias = str | int | float | bool | None
Headers: TypeAlias = dict[str, HeaderValue]


class MessageStatus(StrEnum):
    PUBLISHED = "published"
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Message(msgspec.Struct, frozen=True):
    """One delivered message. The same instance is shared by every subscriber: do not mutate."""

    message_id: str
    channel: str
    message: Any
    headers: Headers
    publisher_id: str | None
    timestamp: int  # epoch milliseconds
    push: PushOptions | None = None  # publishPolicy / pushBroadcast / pushSinglecast, if given


class PublishResult(msgspec.Struct, frozen=True):
    message_id: str
    status: MessageStatus
    error_message: str | None = None


class ChannelStatistics(msgspec.Struct):
    subscribers: int = 0
    published: int = 0
    delivered: int = 0  # messages placed in subscription queues
    dropped: int = 0  # messages lost to overflow (drop_oldest evictions, closed slow consumers)


class BrokerStatistics(msgspec.Struct):
    channels: dict[str, ChannelStatistics]
    subscribers: int
    published: int
    delivered: int
    dropped: int
    scheduled: int = 0  # delayed and repeating messages waiting for a due time
