"""The Store protocol: where scheduled messages and final statuses live.

The broker keeps pending scheduled messages in its timing wheel and tells the
store every change as a `Write`. `write` is durable when it returns and applies
its writes atomically (one transaction): that is how a due time is recorded as
published together with its release to subscribers. Statuses of immediate
publishes go through `write_behind`, which a durable store may batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from broker.stores._records import ScheduledMessage, StatusPolicy, StatusRecord, Write


class Store(Protocol):
    async def open(self, policy: StatusPolicy) -> list[ScheduledMessage]:
        """Start using the store; returns the scheduled messages still pending."""

    async def close(self) -> None:
        """Make everything written durable and release the store (it may be opened again)."""

    async def write(self, writes: Sequence[Write], at: float) -> None:
        """Apply `writes` atomically and durably; `at` (epoch seconds) dates their statuses."""

    def write_behind(self, write: Write, at: float) -> int:
        """Queue a write for the next `flush`; returns how many are queued (0: applied now)."""

    async def flush(self) -> None:
        """Make every queued write durable."""

    async def get_status(self, message_id: str, now: float) -> StatusRecord | None:
        """The final status of a message, unless unknown or older than the policy keeps."""
