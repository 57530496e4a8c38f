"""What a store holds and the writes it applies, shared by every Store implementation."""

from __future__ import annotations

import msgspec

from broker._messages import Headers, MessageStatus
from broker.push_options import PushOptions


class ScheduledMessage(msgspec.Struct, gc=False):  # holds no containers of itself: no cycles
    """A delayed or repeating message waiting in the store and the timing wheel.

    Due times are `first_due + n * period` (epoch ms), so repeats never drift;
    every due time before `next_index` has been recorded as published.
    """

    message_id: str
    channel: str
    payload: bytes  # the message, JSON-encoded once at publish
    headers: Headers | None  # None for none: an empty dict costs 64 B per waiting message
    publisher_id: str | None
    first_due: int
    period: int | None = None  # ms; None for a one-shot
    expires: int | None = None  # epoch ms; the last due time may equal it
    next_index: int = 0
    push: PushOptions | None = None

    def due(self, index: int) -> int:
        if index == 0:
            return self.first_due  # the same int object: the wheel keeps it, not a copy
        return self.first_due + index * (self.period or 0)

    def finished(self, index: int) -> bool:
        """True when there is no due time at `index` (one-shot fired, or past expiry)."""
        if self.period is None:
            return index > 0
        return self.expires is not None and self.due(index) > self.expires


class Schedule(msgspec.Struct, tag=True):
    """Add a scheduled message (its status reads "scheduled" while it waits)."""

    message: ScheduledMessage


class Release(msgspec.Struct, tag=True):
    """Due times before `next_index` are published; `done` ends it with status "published"."""

    message_id: str
    next_index: int
    done: bool


class Cancel(msgspec.Struct, tag=True):
    """Remove a scheduled message; its status becomes "cancelled"."""

    message_id: str


class RecordStatus(msgspec.Struct, tag=True):
    """The final status of a message that was never scheduled (an immediate publish)."""

    message_id: str
    status: MessageStatus
    error: str | None = None


Write = Schedule | Release | Cancel | RecordStatus


class StatusRecord(msgspec.Struct, frozen=True, gc=False):  # no containers: no cycles
    status: MessageStatus
    error: str | None
    at: float  # epoch seconds when recorded


class StatusPolicy(msgspec.Struct, frozen=True):
    """How long final statuses are kept, and how many at most; older ones read "unknown"."""

    retention: float = 86_400.0
    max_count: int = 100_000


def final_status(write: Write) -> tuple[str, MessageStatus, str | None] | None:
    """(message id, status, error) that `write` leaves behind, if it ends a message."""
    if isinstance(write, RecordStatus):
        return write.message_id, write.status, write.error
    if isinstance(write, Cancel):
        return write.message_id, MessageStatus.CANCELLED, None
    if isinstance(write, Release) and write.done:
        return write.message_id, MessageStatus.PUBLISHED, None
    return None
