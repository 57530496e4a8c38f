"""The durable push outbox: each (message, device) send is in the store before it is tried.

A message with publishPolicy PUSH or BOTH reaches the outbox in three steps,
each a transaction of the SqliteStore's file, so a restart (or a kill -9)
resumes where it stood and sends nothing twice that it had recorded as sent:

1. `accept` records the message (`push_messages`: one small row) before the
   publish answers. Scheduled messages are handed over with `accept_nowait`
   when released by the timing wheel and recorded at once by the outbox task.
2. The expander turns a message into one row per device of its audience
   (`Devices.audience`: the channel's live devices, by OS mask, device ids and
   segment query), a page of devices per transaction, with the page cursor
   kept on the message row, so expansion resumes after a restart without
   duplicates. Each OS's payload is built (and encoded) once per message.
3. The dispatcher takes due rows in key order, a batch per provider call, a few
   batches in flight, and commits each batch's results in one transaction:
   sent → deleted and counted; invalid token → deleted, counted failed, and the
   registration removed; retry (429 / 5xx / network) → due again after
   exponential backoff with jitter, or the provider's Retry-After; after
   `max_attempts`, or an error that cannot succeed → deleted, counted failed.

Delivery is at least once: a batch sent but not yet committed when the process
is killed is sent again. On a graceful stop (`running()` exits) batches in
flight finish and are committed first, so a restart duplicates nothing.
The delivery report of a message (`report`) is kept for `report_retention`.
"""

from __future__ import annotations

import logging
import math
import random
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final

import anyio
import anyio.abc
import msgspec

from broker._clock import Clock, sleeper_for
from broker._messages import Message
from broker.devices import Devices
from broker.notifications import Notification, Outcome, PushProvider, SendResult, build_payload
from broker.push_options import PushOptions, check_push_message
from broker.stores import SqliteStore

log = logging.getLogger("tidings.push")

__all__ = ["Outbox", "OutboxStatistics"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS push_messages (
    message_id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    cursor TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS push_outbox (
    key INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    os TEXT NOT NULL,
    token TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    due REAL NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS push_outbox_due ON push_outbox (due);
CREATE TABLE IF NOT EXISTS push_reports (
    message_id TEXT NOT NULL,
    os TEXT NOT NULL,
    sent INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (message_id, os)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS push_reports_created ON push_reports (created);
"""

NO_PROVIDER: Final = "no push provider is configured for"


class _Accepted(msgspec.Struct, frozen=True):
    """A push message as recorded in `push_messages` (what expansion needs)."""

    message_id: str
    channel: str
    message: str
    headers: dict[str, str | int | float | bool | None]
    push: PushOptions


class _Row(msgspec.Struct, frozen=True, array_like=True):
    key: int
    message_id: str
    device_id: str
    os: str
    token: str
    payload: bytes
    attempts: int
    created: float


_Recorded = tuple[str, bytes, float]  # a push_messages row: message_id, body, created


class OutboxStatistics(msgspec.Struct):
    accepted: int = 0  # push messages recorded
    queued: int = 0  # (message, device) sends recorded
    sent: int = 0
    failed: int = 0
    retried: int = 0
    invalid_tokens: int = 0
    dropped_unrecorded: int = 0  # scheduled pushes refused because accept_nowait was full


_encode = msgspec.json.Encoder().encode
_decode_accepted = msgspec.json.Decoder(_Accepted).decode
_decode_payload = msgspec.json.Decoder(dict[str, Any]).decode


class Outbox:
    """Push sends of one app, on its SqliteStore; `async with outbox.running():` runs it."""

    def __init__(
        self,
        store: SqliteStore,
        devices: Devices,
        providers: Mapping[str, PushProvider],
        *,
        clock: Clock = time.time,
        batch: int = 500,
        in_flight: int = 4,
        page: int = 5000,
        max_attempts: int = 8,
        backoff: tuple[float, float] = (1.0, 3600.0),
        report_retention: float = 86_400.0,
        max_unrecorded: int = 100_000,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._devices = devices
        self._providers = dict(providers)
        self._clock = clock
        self._sleep_until = sleeper_for(clock)
        self._batch = batch
        self._in_flight = in_flight
        self._page = page
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._report_retention = report_retention
        self._max_unrecorded = max_unrecorded
        self._rng = rng
        self._unrecorded: deque[Message] = deque()
        self._wake_expander = anyio.Event()
        self._wake_dispatcher = anyio.Event()
        self._idle = anyio.Event()
        self.stats = OutboxStatistics()

    async def open(self) -> None:
        await self._store.ensure_schema(_SCHEMA)

    # -- accepting --------------------------------------------------------------------------------

    async def accept(self, message: Message) -> None:
        """Record a push message (durable when this returns); it is sent in the background."""
        body = _body(message)
        now = self._clock()
        await self._store.transact(
            lambda con: con.execute(
                "INSERT OR IGNORE INTO push_messages VALUES (?, ?, NULL, ?)",
                (message.message_id, body, now),
            )
        )
        self.stats.accepted += 1
        self._wake_expander.set()

    def accept_nowait(self, message: Message) -> None:
        """From the timing wheel's release (which cannot wait): recorded by the outbox task."""
        if len(self._unrecorded) >= self._max_unrecorded:
            self.stats.dropped_unrecorded += 1
            log.error(
                "push outbox full: a scheduled push was not recorded",
                extra={"message_id": message.message_id},
            )
            return
        self._unrecorded.append(message)
        self._wake_expander.set()

    # -- running ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self, drain_timeout: float = 10.0) -> AsyncIterator[Outbox]:
        """Expand and send in the background; on exit, batches in flight are finished and
        recorded (at most `drain_timeout` seconds) so that a restart sends none twice."""
        stopping = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._expand_forever)
            dispatcher = _Dispatcher(self, stopping)
            tasks.start_soon(dispatcher.run)
            try:
                yield self
            finally:
                stopping.set()
                self._wake_dispatcher.set()
                with anyio.move_on_after(drain_timeout, shield=True):
                    await dispatcher.drained.wait()
                dispatcher.abort()
                tasks.cancel_scope.cancel()

    async def _expand_forever(self) -> None:
        while True:
            await self._record_unrecorded()
            while await self._expand_one():
                pass
            await self._wake_expander.wait()
            self._wake_expander = anyio.Event()

    async def _record_unrecorded(self) -> None:
        while self._unrecorded:
            taken = [self._unrecorded.popleft() for _ in range(min(500, len(self._unrecorded)))]
            now = self._clock()
            rows = [(m.message_id, _body(m), now) for m in taken]

            def insert(
                con: sqlite3.Connection, rows: list[tuple[str, bytes, float]] = rows
            ) -> None:
                con.executemany("INSERT OR IGNORE INTO push_messages VALUES (?, ?, NULL, ?)", rows)

            await self._store.transact(insert)
            self.stats.accepted += len(rows)

    async def _expand_one(self) -> bool:
        """Expand one page of the oldest recorded message; False when there is none."""
        found = await self._store.query(
            lambda con: con.execute(
                "SELECT body, cursor FROM push_messages ORDER BY created, message_id LIMIT 1"
            ).fetchone()
        )
        if found is None:
            return False
        accepted = _decode_accepted(found[0])
        push = accepted.push
        devices = await self._devices.audience(
            accepted.channel,
            os_mask=push.broadcast,
            device_ids=push.singlecast,
            segment=push.segment_query,
            after=found[1],
            limit=self._page,
        )
        now = self._clock()
        payloads: dict[str, bytes] = {}
        rows = []
        for device in devices:
            payload = payloads.get(device.os)
            if payload is None:
                payload = payloads[device.os] = _encode(
                    build_payload(device.os, accepted.message, accepted.headers)
                )
            rows.append(
                (
                    accepted.message_id,
                    device.device_id,
                    device.os,
                    device.device_token,
                    payload,
                    now,
                )
            )
        done = len(devices) < self._page
        cursor = devices[-1].device_id if devices else None
        message_id = accepted.message_id

        def record(con: sqlite3.Connection) -> None:
            con.executemany(
                "INSERT INTO push_outbox (message_id, device_id, os, token, payload,"
                " attempts, due, created) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
                rows,
            )
            if done:
                con.execute("DELETE FROM push_messages WHERE message_id = ?", (message_id,))
            else:
                con.execute(
                    "UPDATE push_messages SET cursor = ? WHERE message_id = ?",
                    (cursor, message_id),
                )
            if done and not rows:
                return
            for os in payloads:
                con.execute(
                    "INSERT OR IGNORE INTO push_reports VALUES (?, ?, 0, 0, ?)",
                    (message_id, os, now),
                )

        await self._store.transact(record)
        self.stats.queued += len(rows)
        if rows:
            self._wake_dispatcher.set()
        return True

    # -- reports ----------------------------------------------------------------------------------

    async def report(self, message_id: str) -> dict[str, dict[str, int]] | None:
        """``{"IOS": {"sent": n, "failed": n}, ...}`` for a message that went to devices."""
        rows = await self._store.query(
            lambda con: con.execute(
                "SELECT os, sent, failed FROM push_reports WHERE message_id = ?", (message_id,)
            ).fetchall()
        )
        if not rows:
            return None
        return {os: {"sent": sent, "failed": failed} for os, sent, failed in sorted(rows)}

    async def pending(self) -> int:
        """Sends recorded and not yet finished, plus messages not yet expanded."""

        def count(con: sqlite3.Connection) -> int:
            sends = con.execute("SELECT count(*) FROM push_outbox").fetchone()[0]
            messages = con.execute("SELECT count(*) FROM push_messages").fetchone()[0]
            return int(sends) + int(messages)

        return await self._store.query(count) + len(self._unrecorded)

    def _retry_delay(self, attempts: int, retry_after: float | None) -> float:
        low, high = self._backoff
        delay = min(high, low * 2.0 ** (attempts - 1)) * (0.5 + self._rng() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, high))
        return delay


class _Dispatcher:
    """Takes due rows in key order and keeps up to `in_flight` provider calls going."""

    def __init__(self, outbox: Outbox, stopping: anyio.Event) -> None:
        self.outbox = outbox
        self.stopping = stopping
        self.drained = anyio.Event()
        self.cursor = 0  # rows at or below are in flight or done in this pass
        self.flying = 0
        self.landed = anyio.Event()
        self.flights: set[anyio.CancelScope] = set()

    async def run(self) -> None:
        outbox = self.outbox
        try:
            async with anyio.create_task_group() as tasks:
                while not self.stopping.is_set():
                    if self.flying >= outbox._in_flight:
                        await self._wait_landing()
                        continue
                    rows = await outbox._store.query(
                        partial(
                            _due_rows, after=self.cursor, now=outbox._clock(), limit=outbox._batch
                        )
                    )
                    if rows:
                        self.cursor = rows[-1].key
                        self.flying += 1
                        tasks.start_soon(self._fly, rows)
                        continue
                    if self.flying:
                        await self._wait_landing()
                        continue
                    self.cursor = 0
                    await self._sleep_until_due()
        finally:
            self.drained.set()

    async def _wait_landing(self) -> None:
        await self.landed.wait()
        self.landed = anyio.Event()

    async def _sleep_until_due(self) -> None:
        outbox = self.outbox
        again: float | None = await outbox._store.query(
            lambda con: con.execute("SELECT min(due) FROM push_outbox").fetchone()[0]
        )
        async with anyio.create_task_group() as race:

            async def woken() -> None:
                await outbox._wake_dispatcher.wait()
                race.cancel_scope.cancel()

            async def due() -> None:
                await outbox._sleep_until(math.inf if again is None else again)
                race.cancel_scope.cancel()

            race.start_soon(woken)
            race.start_soon(due)
        outbox._wake_dispatcher = anyio.Event()

    async def _fly(self, rows: list[_Row]) -> None:
        # Shielded, so that a batch sent is recorded even when stopping; `abort` ends it
        # when the drain timeout passes (it is then sent again after a restart).
        with anyio.CancelScope(shield=True) as scope:
            self.flights.add(scope)
            try:
                results = await self._send(rows)
                await self._record(rows, results)
            finally:
                self.flights.discard(scope)
                self.flying -= 1
                self.landed.set()

    def abort(self) -> None:
        for scope in list(self.flights):
            scope.cancel()

    async def _send(self, rows: list[_Row]) -> list[SendResult]:
        outbox = self.outbox
        results: list[SendResult | None] = [None] * len(rows)
        by_os: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            by_os.setdefault(row.os, []).append(index)

        async def send(os: str, indexes: list[int]) -> None:
            provider = outbox._providers.get(os)
            if provider is None:
                failed = SendResult(Outcome.FAILED, error=f"{NO_PROVIDER} {os}")
                for index in indexes:
                    results[index] = failed
                return
            notifications = [
                Notification(
                    key=rows[i].key,
                    message_id=rows[i].message_id,
                    device_id=rows[i].device_id,
                    os=os,
                    token=rows[i].token,
                    payload=_decode_payload(rows[i].payload),
                )
                for i in indexes
            ]
            try:
                answers = await provider.send(notifications)
            except Exception as exc:  # a provider bug must not lose the batch: retry it
                log.exception("push provider failed", extra={"os": os})
                answers = [SendResult(Outcome.RETRY, error=repr(exc))] * len(indexes)
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = answer

        async with anyio.create_task_group() as tasks:
            for os, indexes in by_os.items():
                tasks.start_soon(send, os, indexes)
        return [r if r is not None else SendResult(Outcome.RETRY) for r in results]

    async def _record(self, rows: Sequence[_Row], results: Sequence[SendResult]) -> None:
        outbox = self.outbox
        stats = outbox.stats
        now = outbox._clock()
        done: list[tuple[int]] = []
        retry: list[tuple[float, int]] = []
        counts: dict[tuple[str, str], list[int]] = {}
        invalid: list[tuple[str, float]] = []
        for row, result in zip(rows, results, strict=True):
            outcome = result.outcome
            if outcome is Outcome.RETRY and row.attempts + 1 < outbox._max_attempts:
                retry.append(
                    (now + outbox._retry_delay(row.attempts + 1, result.retry_after), row.key)
                )
                stats.retried += 1
                continue
            done.append((row.key,))
            tally = counts.setdefault((row.message_id, row.os), [0, 0])
            if outcome is Outcome.SENT:
                tally[0] += 1
                stats.sent += 1
            else:
                tally[1] += 1
                stats.failed += 1
                if outcome is Outcome.INVALID_TOKEN:
                    invalid.append((row.token, row.created))
                    stats.invalid_tokens += 1
                elif result.error:
                    log.warning(
                        "push failed",
                        extra={
                            "message_id": row.message_id,
                            "device_id": row.device_id,
                            "error": result.error,
                        },
                    )

        def record(con: sqlite3.Connection) -> None:
            con.executemany("DELETE FROM push_outbox WHERE key = ?", done)
            con.executemany(
                "UPDATE push_outbox SET attempts = attempts + 1, due = ? WHERE key = ?", retry
            )
            con.executemany(
                "UPDATE push_reports SET sent = sent + ?, failed = failed + ?"
                " WHERE message_id = ? AND os = ?",
                [(s, f, m, os) for (m, os), (s, f) in counts.items()],
            )
            con.execute(
                "DELETE FROM push_reports WHERE created < ?",
                (now - outbox._report_retention,),
            )

        await outbox._store.transact(record)
        by_time: dict[float, list[str]] = {}
        for token, created in invalid:
            by_time.setdefault(created, []).append(token)
        for created, tokens in by_time.items():
            # Only registrations not renewed since the send was queued.
            await outbox._devices.remove_tokens(tokens, before=created)
        if retry:
            outbox._wake_dispatcher.set()  # the next due time may be earlier than it slept for


def _due_rows(con: sqlite3.Connection, *, after: int, now: float, limit: int) -> list[_Row]:
    return [
        _Row(*r)
        for r in con.execute(
            "SELECT key, message_id, device_id, os, token, payload, attempts, created"
            " FROM push_outbox WHERE key > ? AND due <= ? ORDER BY key LIMIT ?",
            (after, now, limit),
        )
    ]


def _body(message: Message) -> bytes:
    push = message.push
    if push is None:
        raise ValueError("a message without push options does not go to the outbox")
    return _encode(
        _Accepted(
            message.message_id,
            message.channel,
            check_push_message(message.message),
            message.headers,
            push,
        )
    )
