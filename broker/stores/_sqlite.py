"""The SQLite store (WAL): scheduled messages and statuses that survive a restart or kill -9.

All access goes through stdlib sqlite3 on worker threads, so the event loop
never blocks on the disk. Writes are group-committed: whatever is queued when
a commit starts goes into that one transaction, so concurrent publishers share
commits, and a batch of due times is recorded in the transaction that releases
it. A committed transaction is in the WAL file, which survives the process
being killed; with synchronous="NORMAL" (the default) the last transactions may
be lost to a power failure, with "FULL" every commit is fsynced.

One process at a time: `open` takes an exclusive lock on `<path>.lock`, so a
second server on the same data directory refuses to start instead of firing
every scheduled message twice.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Literal, TypeAlias, TypeVar, cast

import anyio
import msgspec
from anyio import to_thread

from broker._errors import StoreError
from broker._messages import MessageStatus
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

SCHEMA_VERSION = 1
RECENT_STATUSES = 10_000  # committed statuses also kept in memory (at most max_statuses)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduled (
    message_id TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    next_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS statuses (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    error TEXT,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS statuses_at ON statuses (at);
"""

T = TypeVar("T")
_Handles: TypeAlias = "tuple[sqlite3.Connection, sqlite3.Connection, IO[str]]"
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(ScheduledMessage).decode


class _Batch:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None


class SqliteStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        self.path = Path(path)
        self._synchronous = synchronous
        self._policy = StatusPolicy()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._queue: list[tuple[Write, float]] = []
        self._batch = _Batch()  # the batch the queued writes will commit in
        self._unflushed: dict[str, StatusRecord] = {}
        # The statuses committed last, so that asking for a message just published (what
        # clients do) costs no read on a worker thread; bounded, oldest out first.
        self._recent: OrderedDict[str, StatusRecord] = OrderedDict()
        self._write_lock = anyio.Lock()
        self._read_lock = anyio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self, policy: StatusPolicy) -> list[ScheduledMessage]:
        if self._writer is not None:
            raise StoreError(f"{self.path} is already open")
        self._policy = policy
        return await to_thread.run_sync(self._open)

    def _open(self) -> list[ScheduledMessage]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(f"{self.path}.lock", "a")  # noqa: SIM115 -- held until close()
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise StoreError(f"{self.path} is in use by another process") from None
        try:
            writer = self._connect()
            version = writer.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                writer.close()
                raise StoreError(
                    f"{self.path} has schema version {version}; this Tidings reads up to "
                    f"{SCHEMA_VERSION}"
                )
            writer.executescript(_SCHEMA)
            writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            rows = writer.execute("SELECT record, next_index FROM scheduled").fetchall()
        except BaseException:
            lock_file.close()
            raise
        self._writer, self._reader, self._lock_file = writer, self._connect(), lock_file
        pending = []
        for record, next_index in rows:
            message = _decode(record)
            message.next_index = next_index
            pending.append(message)
        return pending

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute(f"PRAGMA synchronous = {self._synchronous}")
        con.execute("PRAGMA busy_timeout = 5000")
        return con

    async def close(self) -> None:
        if self._writer is None:
            return
        await self.flush()
        with anyio.CancelScope(shield=True):
            async with self._write_lock, self._read_lock:
                handles = cast(_Handles, (self._writer, self._reader, self._lock_file))  # all set
                await to_thread.run_sync(_close_all, handles)
                self._writer = self._reader = self._lock_file = None
                self._recent.clear()

    # -- writes ------------------------------------------------------------------------------

    async def write(self, writes: Sequence[Write], at: float) -> None:
        for write in writes:
            self._enqueue(write, at)
        await self._commit()

    def write_behind(self, write: Write, at: float) -> int:
        self._enqueue(write, at)
        return len(self._queue)

    async def flush(self) -> None:
        if self._queue:
            await self._commit()

    def _enqueue(self, write: Write, at: float) -> None:
        if self._writer is None:
            raise StoreError(f"{self.path} is not open")
        self._queue.append((write, at))
        ended = final_status(write)
        if ended is not None:
            message_id, status, error = ended
            self._unflushed[message_id] = StatusRecord(status, error, at)

    async def _commit(self) -> None:
        batch = self._batch
        # Shielded: a write that was queued always ends committed or failed, never unknown.
        with anyio.CancelScope(shield=True):
            async with self._write_lock:
                if not batch.done:
                    queued, self._queue = self._queue, []
                    self._batch = _Batch()
                    try:
                        await to_thread.run_sync(self._execute, queued)
                    except Exception as exc:
                        batch.error = exc
                    finally:
                        batch.done = True
                        self._committed(queued, failed=batch.error is not None)
        if batch.error is not None:
            raise StoreError(f"writing to {self.path} failed: {batch.error}") from batch.error

    def _committed(self, queued: list[tuple[Write, float]], *, failed: bool) -> None:
        """Statuses of a batch leave `_unflushed` (unless a later write replaced them) and,
        if it committed, join `_recent`."""
        recent = self._recent
        size = min(RECENT_STATUSES, self._policy.max_count)
        for write, at in queued:
            ended = final_status(write)
            if ended is None:
                continue
            message_id, status, error = ended
            record = self._unflushed.get(message_id)
            if record is None or record != StatusRecord(status, error, at):
                continue  # a later write of this message's status is still queued
            del self._unflushed[message_id]
            if not failed:
                recent.pop(message_id, None)
                recent[message_id] = record
                if len(recent) > size:
                    recent.popitem(last=False)

    def _execute(self, queued: list[tuple[Write, float]]) -> None:
        con = self._open_writer()  # raises if closed while the batch waited
        inserts, updates, deletes, statuses = [], [], [], []
        latest = 0.0
        for write, at in queued:
            latest = max(latest, at)
            if isinstance(write, Schedule):
                message = write.message
                inserts.append((message.message_id, _encode(message), message.next_index))
            elif isinstance(write, Release) and not write.done:
                updates.append((write.next_index, write.message_id))
            elif isinstance(write, Release | Cancel):
                deletes.append((write.message_id,))
            ended = final_status(write)
            if ended is not None:
                statuses.append((ended[0], ended[1].value, ended[2], at))
        policy = self._policy
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany("INSERT INTO scheduled VALUES (?, ?, ?)", inserts)
            con.executemany("UPDATE scheduled SET next_index = ? WHERE message_id = ?", updates)
            con.executemany("DELETE FROM scheduled WHERE message_id = ?", deletes)
            if statuses:
                con.executemany(
                    "INSERT OR REPLACE INTO statuses (message_id, status, error, at) "
                    "VALUES (?, ?, ?, ?)",
                    statuses,
                )
                con.execute("DELETE FROM statuses WHERE at <= ?", (latest - policy.retention,))
                con.execute(
                    "DELETE FROM statuses WHERE seq <= (SELECT max(seq) FROM statuses) - ?",
                    (policy.max_count,),
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    # -- for other tables (users, devices): the same file, connections and threads ----------

    async def ensure_schema(self, script: str) -> None:
        """Run a `CREATE ... IF NOT EXISTS` script (idempotent) on the writer connection."""
        with anyio.CancelScope(shield=True):
            async with self._write_lock:
                await to_thread.run_sync(self._script, script)

    def _script(self, script: str) -> None:
        self._open_writer().executescript(script)

    async def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` in one write transaction on a worker thread; its result.

        Committed when `work` returns, rolled back when it raises (the exception
        propagates as it is). Shielded, so a started transaction always finishes.
        """
        with anyio.CancelScope(shield=True):
            async with self._write_lock:
                result = await to_thread.run_sync(self._transact, work)
        return result

    def _transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        con = self._open_writer()
        con.execute("BEGIN IMMEDIATE")
        try:
            result = work(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return result

    async def query(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run read-only `work(connection)` on the reader connection (WAL: never blocked)."""
        async with self._read_lock:
            return await to_thread.run_sync(self._query, work)

    def _query(self, work: Callable[[sqlite3.Connection], T]) -> T:
        con = self._reader
        if con is None:
            raise StoreError(f"{self.path} is not open")
        return work(con)

    def _open_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StoreError(f"{self.path} is not open")
        return self._writer

    # -- reads -------------------------------------------------------------------------------

    async def get_status(self, message_id: str, now: float) -> StatusRecord | None:
        record = self._unflushed.get(message_id) or self._recent.get(message_id)
        if record is None:
            async with self._read_lock:
                record = await to_thread.run_sync(self._read_status, message_id)
        if record is None or record.at <= now - self._policy.retention:
            return None
        return record

    def _read_status(self, message_id: str) -> StatusRecord | None:
        row = self._query(
            lambda con: con.execute(
                "SELECT status, error, at FROM statuses WHERE message_id = ?", (message_id,)
            ).fetchone()
        )
        return None if row is None else StatusRecord(MessageStatus(row[0]), row[1], row[2])


def _close_all(handles: _Handles) -> None:
    for handle in handles:
        handle.close()
