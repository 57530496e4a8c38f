"""Message statuses, kept for a bounded time and count, then read as "unknown"."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from broker._messages import MessageStatus


class StatusLog:
    """Statuses by message id; oldest forgotten first, by age or when over max_count."""

    def __init__(self, *, retention: float, max_count: int, clock: Callable[[], float]) -> None:
        self._retention = retention
        self._max_count = max_count
        self._clock = clock
        self._statuses: dict[str, tuple[MessageStatus, float]] = {}
        self._order: deque[tuple[float, str]] = deque()  # (recorded at, id), oldest first

    def record(self, message_id: str, status: MessageStatus) -> None:
        now = self._clock()
        self._statuses[message_id] = (status, now)
        self._order.append((now, message_id))
        self._forget(now)

    def get(self, message_id: str) -> MessageStatus:
        self._forget(self._clock())
        entry = self._statuses.get(message_id)
        return MessageStatus.UNKNOWN if entry is None else entry[0]

    def _forget(self, now: float) -> None:
        order = self._order
        statuses = self._statuses
        horizon = now - self._retention
        while order and (order[0][0] <= horizon or len(statuses) > self._max_count):
            recorded_at, message_id = order.popleft()
            entry = statuses.get(message_id)
            if entry is not None and entry[1] == recorded_at:  # not re-recorded since
                del statuses[message_id]
