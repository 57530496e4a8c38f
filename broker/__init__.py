"""Tidings broker core: the pinned public API (see DESIGN.md)."""

from broker._broker import Broker
from broker._errors import (
    BrokerError,
    ChannelNotFoundError,
    InvalidArgumentError,
    InvalidChannelError,
    InvalidPublishTimeError,
    InvalidRepeatError,
    InvalidRepeatExpiryError,
    MessageTooLargeError,
    NotCancellableError,
    SchedulerFullError,
    SelectorError,
    SlowConsumerError,
    StoreError,
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
    "InvalidRepeatExpiryError",
    "Message",
    "MessageStatus",
    "MessageTooLargeError",
    "NotCancellableError",
    "Overflow",
    "PublishResult",
    "SchedulerFullError",
    "SelectorError",
    "SlowConsumerError",
    "StoreError",
    "Subscription",
]
