"""Final statuses in memory, kept for a bounded time and count, oldest forgotten first."""

from __future__ import annotations

from collections import deque

from broker._messages import MessageStatus
from broker.stores._records import StatusPolicy, StatusRecord


class StatusLog:
    def __init__(self, policy: StatusPolicy) -> None:
        self.policy = policy
        self._statuses: dict[str, StatusRecord] = {}
        self._order: deque[tuple[float, str]] = deque()  # (recorded at, id), oldest first

    def __len__(self) -> int:
        return len(self._statuses)

    def record(self, message_id: str, status: MessageStatus, error: str | None, at: float) -> None:
        self._statuses[message_id] = StatusRecord(status, error, at)
        self._order.append((at, message_id))
        self.forget(at)

    def get(self, message_id: str, now: float) -> StatusRecord | None:
        self.forget(now)
        return self._statuses.get(message_id)

    def forget(self, now: float) -> None:
        order = self._order
        statuses = self._statuses
        horizon = now - self.policy.retention
        max_count = self.policy.max_count
        while order and (order[0][0] <= horizon or len(statuses) > max_count):
            recorded_at, message_id = order.popleft()
            entry = statuses.get(message_id)
            if entry is not None and entry.at == recorded_at:  # not re-recorded since
                del statuses[message_id]
