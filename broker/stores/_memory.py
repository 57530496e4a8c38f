"""The in-memory store: the default for Broker(); nothing survives the process.

An instance does survive the Broker that used it, so a new Broker on the same
MemoryStore resumes its scheduled messages, as a restart on SqliteStore would.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.stores._records import (
    Cancel,
    Release,
    Schedule,
    ScheduledMessage,
    StatusPolicy,
    StatusRecord,
    Write,
    final_status,
)
from broker.stores._status_log import StatusLog


class MemoryStore:
    def __init__(self) -> None:
        self._scheduled: dict[str, ScheduledMessage] = {}
        self._statuses = StatusLog(StatusPolicy())

    async def open(self, policy: StatusPolicy) -> list[ScheduledMessage]:
        self._statuses.policy = policy
        return list(self._scheduled.values())

    async def close(self) -> None:
        pass

    async def write(self, writes: Sequence[Write], at: float) -> None:
        for write in writes:
            self._apply(write, at)

    def write_behind(self, write: Write, at: float) -> int:
        self._apply(write, at)
        return 0

    async def flush(self) -> None:
        pass

    async def get_status(self, message_id: str, now: float) -> StatusRecord | None:
        return self._statuses.get(message_id, now)

    def _apply(self, write: Write, at: float) -> None:
        if isinstance(write, Schedule):
            # Shared with the broker, which advances next_index only after this store did.
            self._scheduled[write.message.message_id] = write.message
        elif isinstance(write, Release) and not write.done:
            self._scheduled[write.message_id].next_index = write.next_index
        elif isinstance(write, Release | Cancel):
            self._scheduled.pop(write.message_id, None)
        ended = final_status(write)
        if ended is not None:
            self._statuses.record(*ended, at)
