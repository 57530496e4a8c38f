"""Per-channel fan-out: subscription groups by selector, and the equality index.

Subscriptions with the same canonical selector form one group, so a selector
is evaluated once per message however many subscribe with it. Groups whose
selector requires `header = literal` (or IN) sit in an index by that value:
a message only meets the groups its header values can satisfy, so
non-matching equality subscribers cost nothing per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from broker._messages import ChannelStatistics, Message
from broker.selectors import EqualityKey, Selector
from broker.selectors._values import numeric

if TYPE_CHECKING:
    from broker._subscription import Subscription

_Bucket = dict["Group", None]
TRIM_INTERVAL = 256


class Group:
    """Subscriptions sharing one selector, reading one log of the messages it matched.

    Bounds are checked exactly but rarely: each reader has a mark with
    unread <= head - mark, so no reader can pass half or all of max_pending
    before the head passes mark + that; the group checks then (half full makes
    the publisher yield so consumers catch up), or after TRIM_INTERVAL
    messages to free what every reader has taken.
    """

    __slots__ = (
        "_event",
        "base",
        "check_len",
        "exact",
        "key",
        "log",
        "readers",
        "selector",
        "stats",
    )

    def __init__(self, selector: Selector, stats: ChannelStatistics) -> None:
        self.selector = selector
        self.key = selector.equality
        self.exact = self.key is not None and self.key.exact
        self.stats = stats
        self.readers: dict[Subscription, None] = {}
        self.log: list[Message] = []
        self.base = 0  # absolute position of log[0]
        self.check_len = TRIM_INTERVAL  # compact when the log reaches this length
        self._event: anyio.Event | None = None

    @property
    def head(self) -> int:
        return self.base + len(self.log)

    def add(self, sub: Subscription) -> None:
        self.readers[sub] = None
        sub._pos = sub._mark = self.head
        self.check_len = min(self.check_len, len(self.log) + sub.max_pending // 2 + 1)

    def waiter(self) -> anyio.Event:
        """One event for every caught-up reader: a publish wakes them with one set()."""
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        return event

    def wake(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    def publish(self, message: Message) -> bool:
        """Append once for all readers; True when a reader is filling up (publisher yields)."""
        log = self.log
        log.append(message)
        self.stats.delivered += len(self.readers)
        event = self._event
        if event is not None:
            self._event = None
            event.set()
        return len(log) >= self.check_len and self.compact()

    def compact(self) -> bool:
        """Enforce every reader's bound, free what all have taken, plan the next check."""
        head = self.head
        pressure = False
        next_check = head + TRIM_INTERVAL
        for sub in list(self.readers):
            unread = sub.settle(self)
            if sub in self.readers:
                # Check again when it may pass half full (publisher yields) or its bound.
                half = sub.max_pending // 2
                filling = unread > half
                pressure = pressure or filling
                next_check = min(next_check, sub._mark + (sub.max_pending if filling else half) + 1)
        low = min((sub._pos for sub in self.readers), default=head)
        if low > self.base:
            self.log = self.log[low - self.base :]  # a new list: batches already taken are slices
            self.base = low
        self.check_len = next_check - self.base
        return pressure


class _ValueIndex:
    """Groups by the literal their key holds, split the way `=` compares (SELECTORS.md §6)."""

    __slots__ = ("booleans", "numbers", "string_numbers", "strings")

    def __init__(self) -> None:
        self.strings: dict[str, _Bucket] = {}
        self.numbers: dict[int | float, _Bucket] = {}
        self.string_numbers: dict[int | float, _Bucket] = {}  # numeric string literals
        self.booleans: dict[bool, _Bucket] = {}

    def _buckets(self, value: Any) -> list[tuple[dict[Any, _Bucket], Any]]:
        if type(value) is bool:
            return [(self.booleans, value)]
        if type(value) is str:
            number = numeric(value)
            places: list[tuple[dict[Any, _Bucket], Any]] = [(self.strings, value)]
            return places if number is None else [*places, (self.string_numbers, number)]
        return [(self.numbers, value)]

    def add(self, group: Group, values: tuple[Any, ...]) -> None:
        for value in values:
            for table, key in self._buckets(value):
                table.setdefault(key, {})[group] = None

    def remove(self, group: Group, values: tuple[Any, ...]) -> None:
        for value in values:
            for table, key in self._buckets(value):
                bucket = table.get(key)
                if bucket is not None:
                    bucket.pop(group, None)
                    if not bucket:
                        del table[key]

    @property
    def empty(self) -> bool:
        return not (self.strings or self.numbers or self.string_numbers or self.booleans)

    def lookup(self, value: Any) -> _Bucket | None:
        """Groups whose `header = literal` is TRUE for this header value."""
        kind = type(value)
        if kind is str:
            first = self.strings.get(value)
            number = numeric(value)
            second = None if number is None else self.numbers.get(number)
        elif kind is bool:
            return self.booleans.get(value)
        else:
            first = self.numbers.get(value)
            second = self.string_numbers.get(value)
        if first is None:
            return second
        if second is None:
            return first
        return first | second  # one group keyed by both `1` and `'1'` is still met once


class Channel:
    """A channel's statistics and, while it has subscribers, its fan-out structures."""

    __slots__ = ("_deferred", "_dispatching", "all", "groups", "index", "name", "scan", "stats")

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = ChannelStatistics()
        self.groups: dict[str, Group] = {}  # by canonical selector text
        self.all: Group | None = None  # subscribers without a selector
        self.scan: list[Group] = []  # selectors the index cannot narrow
        self.index: dict[str, _ValueIndex] = {}
        self._dispatching = False
        self._deferred: list[Group] = []

    def attach(self, sub: Subscription, selector: Selector) -> Group:
        group = self.groups.get(selector.text)
        if group is None:
            group = self.groups[selector.text] = Group(selector, self.stats)
            key = group.key
            if selector.matches_all:
                self.all = group
            elif key is None:
                self.scan.append(group)
            else:
                self.index.setdefault(key.name, _ValueIndex()).add(group, key.values)
        group.add(sub)
        self.stats.subscribers += 1
        return group

    def detach(self, sub: Subscription, group: Group) -> None:
        """Called once per subscription, after it has left `group.readers`."""
        self.stats.subscribers -= 1
        if not group.readers and self.groups.get(group.selector.text) is group:
            if self._dispatching:  # never mutate what dispatch is iterating
                self._deferred.append(group)
            else:
                self._drop_group(group)

    def _drop_group(self, group: Group) -> None:
        del self.groups[group.selector.text]
        key: EqualityKey | None = group.key
        if group is self.all:
            self.all = None
        elif key is None:
            self.scan.remove(group)
        else:
            values = self.index[key.name]
            values.remove(group, key.values)
            if values.empty:
                del self.index[key.name]

    @property
    def idle(self) -> bool:
        return not self.groups

    def dispatch(self, message: Message) -> bool:
        """Queue `message` to every matching subscription; True if the publisher should yield."""
        self.stats.published += 1
        if not self.groups:
            return False
        headers = message.headers
        pressure = False
        self._dispatching = True
        try:
            if self.all is not None:
                pressure = self.all.publish(message)
            for group in self.scan:
                if group.selector.matches(headers) and group.publish(message):
                    pressure = True
            index = self.index
            if index:
                # Walk the smaller side: the message's headers or the indexed header names.
                names = headers if len(headers) < len(index) else index
                for name in names:
                    values = index.get(name)
                    value = headers.get(name)
                    if values is None or value is None:
                        continue
                    bucket = values.lookup(value)
                    if bucket is None:
                        continue
                    for group in bucket:
                        if (group.exact or group.selector.matches(headers)) and group.publish(
                            message
                        ):
                            pressure = True
        finally:
            self._dispatching = False
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            for group in deferred:
                self._drop_group(group)
        return pressure
