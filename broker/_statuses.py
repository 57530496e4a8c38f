"""Message statuses, kept for a bounded time and count, then read as "unknown"."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from broker._messages import MessageStatus


class StatusLog:
    def __init__(self, *, retention: float, max_count: int, clock: Callable[[], float]) -> None:
        self._retention = retention
        self._max_count = max_count
        self._clock = clock
        self._entries: OrderedDict[str, tuple[MessageStatus, float]] = OrderedDict()

    def record(self, message_id: str, status: MessageStatus) -> None:
        entries = self._entries
        now = self._clock()
        entries[message_id] = (status, now)
        entries.move_to_end(message_id)
        while len(entries) > self._max_count:
            entries.popitem(last=False)
        self._expire(now)

    def get(self, message_id: str) -> MessageStatus:
        self._expire(self._clock())
        entry = self._entries.get(message_id)
        return MessageStatus.UNKNOWN if entry is None else entry[0]

    def _expire(self, now: float) -> None:
        entries = self._entries
        horizon = now - self._retention
        while entries:
            oldest = next(iter(entries.values()))
            if oldest[1] > horizon:
                break
            entries.popitem(last=False)
