"""Tidings broker core: the pinned public API (see DESIGN.md)."""

from broker._broker import Broker
from broker._errors import (
    BrokerError,
    ChannelNotFoundError,
    InvalidArgumentError,
    InvalidChannelError,
    InvalidPublishTimeError,
    InvalidRepeatError,
    MessageTooLargeError,
    NotCancellableError,
    SelectorError,
    SlowConsumerError,
)
from broker._messages import (
    BrokerStatistics,
    ChannelStatistics,
    HeaderValue,
    Message,
    MessageStatus,
    PublishResult,
)
from broker._subscription import Overflow, Subscription

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerStatistics",
    "ChannelNotFoundError",
    "ChannelStatistics",
    "HeaderValue",
    "InvalidArgumentError",
    "InvalidChannelError",
    "InvalidPublishTimeError",
    "InvalidRepeatError",
    "Message",
    "MessageStatus",
    "MessageTooLargeError",
    "NotCancellableError",
    "Overflow",
    "PublishResult",
    "SelectorError",
    "SlowConsumerError",
    "Subscription",
]
