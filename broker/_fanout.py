"""Per-channel fan-out: subscription groups by selector, and the equality index.

Subscriptions with the same canonical selector form one group, so a selector
is evaluated once per message however many subscribe with it. Groups whose
selector requires `header = literal` (or IN) sit in an index by that value:
a message only meets the groups its header values can satisfy, so
non-matching equality subscribers cost nothing per message.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from broker._errors import BrokerError
from broker._messages import ChannelStatistics, Message
from broker.selectors import RangeKey, Selector
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
        "_notify",
        "base",
        "check_len",
        "exact",
        "log",
        "predicate",
        "readers",
        "selector",
        "stats",
    )

    def __init__(self, selector: Selector, stats: ChannelStatistics) -> None:
        self.selector = selector
        self.predicate = selector.evaluator  # called directly: one call less per message
        key = selector.equality or selector.range
        self.exact = key is not None and key.exact  # an index hit alone proves a match
        self.stats = stats
        self.readers: dict[Subscription, None] = {}
        self.log: list[Message] = []
        self.base = 0  # absolute position of log[0]
        self.check_len = TRIM_INTERVAL  # compact when the log reaches this length
        self._event: anyio.Event | None = None
        self._notify: dict[Subscription, Callable[[], object]] = {}  # one-shot, see notify()

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

    def notify(self, sub: Subscription, callback: Callable[[], object]) -> None:
        """Call `callback` once, at the next publish or wake (for a reader that waits on
        several subscriptions at once, such as a websocket connection's writer)."""
        self._notify[sub] = callback

    def wake(self) -> None:
        event = self._event
        if event is not None:
            self._event = None
            event.set()
        self._fire()

    def _fire(self) -> None:
        notify = self._notify
        if notify:
            self._notify = {}
            for callback in notify.values():
                callback()

    def publish(self, message: Message) -> bool:
        """Append once for all readers; True when a reader is filling up (publisher yields)."""
        log = self.log
        log.append(message)
        self.stats.delivered += len(self.readers)
        event = self._event
        if event is not None:
            self._event = None
            event.set()
        if self._notify:
            self._fire()
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


class _Bounds:
    """Groups requiring `header <op> bound` for one op, sorted by bound."""

    __slots__ = ("bounds", "groups", "op")

    def __init__(self, op: str) -> None:
        self.op = op
        self.bounds: list[int | float] = []
        self.groups: list[Group] = []

    def add(self, bound: int | float, group: Group) -> None:
        at = bisect_right(self.bounds, bound)
        self.bounds.insert(at, bound)
        self.groups.insert(at, group)

    def remove(self, bound: int | float, group: Group) -> None:
        first = bisect_left(self.bounds, bound)
        at = first + self.groups[first:].index(group)  # among equal bounds, this group
        del self.bounds[at]
        del self.groups[at]

    def matching(self, value: int | float) -> list[Group]:
        """The groups whose `value <op> bound` is TRUE."""
        op = self.op
        if op == ">":  # bound < value
            return self.groups[: bisect_left(self.bounds, value)]
        if op == ">=":
            return self.groups[: bisect_right(self.bounds, value)]
        if op == "<":  # bound > value
            return self.groups[bisect_right(self.bounds, value) :]
        return self.groups[bisect_left(self.bounds, value) :]


class _RangeIndex:
    """Groups requiring a numeric comparison on one header: found by bisection."""

    __slots__ = ("by_op",)

    def __init__(self) -> None:
        self.by_op: dict[str, _Bounds] = {}

    def add(self, key: RangeKey, group: Group) -> None:
        bounds = self.by_op.get(key.op)
        if bounds is None:
            bounds = self.by_op[key.op] = _Bounds(key.op)
        bounds.add(key.bound, group)

    def remove(self, key: RangeKey, group: Group) -> None:
        bounds = self.by_op[key.op]
        bounds.remove(key.bound, group)
        if not bounds.groups:
            del self.by_op[key.op]

    def matching(self, value: Any) -> list[Group]:
        kind = type(value)
        if kind is str:
            value = numeric(value)
            if value is None:
                return []
        elif kind is not int and kind is not float:
            return []  # NULL and booleans never compare with numbers
        found: list[Group] = []
        for bounds in self.by_op.values():
            found += bounds.matching(value)
        return found


class Channel:
    """A channel's statistics and, while it has subscribers, its fan-out structures."""

    __slots__ = (
        "_deferred",
        "_dispatching",
        "all",
        "groups",
        "index",
        "name",
        "ranges",
        "scan",
        "stats",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = ChannelStatistics()
        self.groups: dict[str, Group] = {}  # by canonical selector text
        self.all: Group | None = None  # subscribers without a selector
        self.scan: dict[Group, None] = {}  # selectors no index can narrow (a dict: O(1) removal)
        self.index: dict[str, _ValueIndex] = {}  # equality keys, by header name
        self.ranges: dict[str, _RangeIndex] = {}  # numeric range keys, by header name
        self._dispatching = False
        self._deferred: list[Group] = []

    def attach(self, sub: Subscription, selector: Selector) -> Group:
        group = self.groups.get(selector.text)
        if group is None:
            group = self.groups[selector.text] = Group(selector, self.stats)
            key = selector.equality
            bound = selector.range
            if selector.matches_all:
                self.all = group
            elif key is not None:
                self.index.setdefault(key.name, _ValueIndex()).add(group, key.values)
            elif bound is not None:
                self.ranges.setdefault(bound.name, _RangeIndex()).add(bound, group)
            else:
                self.scan[group] = None
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
        selector = group.selector
        del self.groups[selector.text]
        key = selector.equality
        bound = selector.range
        if group is self.all:
            self.all = None
        elif key is not None:
            values = self.index[key.name]
            values.remove(group, key.values)
            if values.empty:
                del self.index[key.name]
        elif bound is not None:
            ranges = self.ranges[bound.name]
            ranges.remove(bound, group)
            if not ranges.by_op:
                del self.ranges[bound.name]
        else:
            del self.scan[group]

    def end_subscriptions(self, error: BrokerError | None) -> None:
        """End every subscription: each yields what it holds, then raises `error` or stops."""
        for group in list(self.groups.values()):
            for sub in list(group.readers):
                sub.end(error)

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
                if group.predicate(headers) is True and group.publish(message):
                    pressure = True
            index = self.index
            if index:
                # Walk the smaller side: the message's headers or the indexed header names.
                for name in headers if len(headers) < len(index) else index:
                    values = index.get(name)
                    value = headers.get(name)
                    if values is not None and value is not None:
                        bucket = values.lookup(value)
                        if bucket is not None and _publish_to(bucket, message):
                            pressure = True
            for name, ranges in self.ranges.items():
                value = headers.get(name)
                if value is not None and _publish_to(ranges.matching(value), message):
                    pressure = True
        finally:
            self._dispatching = False
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            for group in deferred:
                self._drop_group(group)
        return pressure


def _publish_to(candidates: Iterable[Group], message: Message) -> bool:
    """Publish to the candidates an index found whose whole selector holds."""
    pressure = False
    headers = message.headers
    for group in candidates:
        if (group.exact or group.predicate(headers) is True) and group.publish(message):
            pressure = True
    return pressure
