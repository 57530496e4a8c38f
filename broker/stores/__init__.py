"""Stores for scheduled messages and statuses: `Broker(store=SqliteStore(path))`."""

from broker._errors import StoreError
from broker.stores._memory import MemoryStore
from broker.stores._protocol import Store
from broker.stores._records import (
    Cancel,
    RecordStatus,
    Release,
    Schedule,
    ScheduledMessage,
    StatusPolicy,
    StatusRecord,
    Write,
)
from broker.stores._sqlite import SqliteStore

__all__ = [
    "Cancel",
    "MemoryStore",
    "RecordStatus",
    "Release",
    "Schedule",
    "ScheduledMessage",
    "SqliteStore",
    "StatusPolicy",
    "StatusRecord",
    "Store",
    "StoreError",
    "Write",
]
