"""Per-channel fan-out: subscription groups by selector, and the equality index.

Subscriptions with the same canonical selector form one group, so a selector
is evaluated once per message however many subscribe with it. Groups whose
selector requires `header = literal` (or IN) sit in an index by that value:
a message only meets the groups its header values can satisfy, so
non-matching equality subscribers cost nothing per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker._messages import ChannelStatistics, Message
from broker._subscription import Offer
from broker.selectors import EqualityKey, Selector
from broker.selectors._values import numeric

if TYPE_CHECKING:
    from broker._subscription import Subscription

_Bucket = dict["Group", None]


class Group:
    __slots__ = ("exact", "key", "selector", "subscribers")

    def __init__(self, selector: Selector) -> None:
        self.selector = selector
        self.key = selector.equality
        self.exact = self.key is not None and self.key.exact
        self.subscribers: dict[Subscription, None] = {}

    def deliver(self, message: Message) -> tuple[int, int, bool]:
        """Queue to every subscriber: (queued, dropped, publisher should yield).

        The common case is inlined (no call, no allocation per subscriber).
        """
        refused = dropped = 0
        pressure = False
        for sub in self.subscribers:
            queue = sub._queue
            if len(queue) < sub._high_water:
                queue.append(message)
                waiter = sub._waiter
                if waiter is not None:
                    sub._waiter = None
                    waiter.set()
            else:
                outcome = sub.offer_slow(message)
                if outcome is Offer.REFUSED:
                    refused += 1
                    dropped += 1
                else:
                    pressure = True
                    dropped += outcome is Offer.EVICTED
        return len(self.subscribers) - refused, dropped, pressure


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
        self._deferred: list[Subscription] = []

    def attach(self, sub: Subscription, selector: Selector) -> None:
        group = self.groups.get(selector.text)
        if group is None:
            group = self.groups[selector.text] = Group(selector)
            key = group.key
            if selector.matches_all:
                self.all = group
            elif key is None:
                self.scan.append(group)
            else:
                self.index.setdefault(key.name, _ValueIndex()).add(group, key.values)
        group.subscribers[sub] = None
        self.stats.subscribers += 1

    def detach(self, sub: Subscription) -> None:
        if self._dispatching:  # never mutate what dispatch is iterating
            self._deferred.append(sub)
            return
        group = self.groups[sub.selector]
        del group.subscribers[sub]
        self.stats.subscribers -= 1
        if not group.subscribers:
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
        stats = self.stats
        stats.published += 1
        if not self.groups:
            return False
        headers = message.headers
        queued = dropped = 0
        pressure = False
        self._dispatching = True
        try:
            if self.all is not None:
                queued, dropped, pressure = self.all.deliver(message)
            for group in self.scan:
                if group.selector.matches(headers):
                    q, d, p = group.deliver(message)
                    queued += q
                    dropped += d
                    pressure = pressure or p
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
                        if group.exact or group.selector.matches(headers):
                            q, d, p = group.deliver(message)
                            queued += q
                            dropped += d
                            pressure = pressure or p
        finally:
            self._dispatching = False
        stats.delivered += queued
        stats.dropped += dropped
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            for sub in deferred:
                self.detach(sub)
        return pressure
