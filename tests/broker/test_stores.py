"""The Store contract, run against every store, and what only SqliteStore promises."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from anyio import to_thread
from anyio.lowlevel import checkpoint

from broker import Broker, BrokerError, MessageStatus
from broker.stores import (
    Cancel,
    MemoryStore,
    RecordStatus,
    Release,
    Schedule,
    ScheduledMessage,
    SqliteStore,
    StatusPolicy,
    StatusRecord,
    Store,
    StoreError,
)
from broker.stores import _sqlite as sqlite_store
from broker.stores._records import Write
from broker.testing import VirtualClock

POLICY = StatusPolicy(retention=100, max_count=1000)


def scheduled(message_id: str, **fields: object) -> ScheduledMessage:
    values: dict[str, object] = {
        "channel": "c",
        "payload": b'{"n":1}',
        "headers": {"k": "v", "n": 2.5},
        "publisher_id": "p",
        "first_due": 1000,
        **fields,
    }
    return ScheduledMessage(message_id, **values)  # type: ignore[arg-type]


StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes "the same store after a restart": one MemoryStore, or a new SqliteStore on one file."""
    if request.param == "memory":
        memory = MemoryStore()
        return lambda: memory
    return lambda: SqliteStore(tmp_path / "data" / "tidings.db")


@pytest.fixture
async def store(reopen: StoreFactory) -> AsyncIterator[Store]:
    opened = reopen()
    assert await opened.open(POLICY) == []
    yield opened
    await opened.close()


async def test_scheduled_messages_survive_a_reopen_with_their_progress(
    reopen: StoreFactory,
) -> None:
    store = reopen()
    await store.open(POLICY)
    one = scheduled("m1")
    repeat = scheduled("m2", period=10, expires=5000)
    gone = scheduled("m3")
    await store.write([Schedule(one), Schedule(repeat), Schedule(gone)], 1.0)
    await store.write([Release("m2", 3, done=False), Cancel("m3")], 2.0)
    await store.close()
    store = reopen()
    loaded = {m.message_id: m for m in await store.open(POLICY)}
    assert set(loaded) == {"m1", "m2"}
    assert loaded["m1"] == one
    assert loaded["m2"].next_index == 3
    assert (loaded["m2"].period, loaded["m2"].expires) == (10, 5000)
    assert await store.get_status("m3", 3.0) == StatusRecord(MessageStatus.CANCELLED, None, 2.0)
    await store.write([Release("m2", 4, done=True), Release("m1", 1, done=True)], 4.0)
    await store.close()
    store = reopen()
    assert await store.open(POLICY) == []
    for message_id in ("m1", "m2"):
        record = await store.get_status(message_id, 5.0)
        assert record is not None
        assert record.status is MessageStatus.PUBLISHED
    await store.close()


async def test_statuses_written_behind_are_readable_at_once_and_durable_after_flush(
    reopen: StoreFactory,
) -> None:
    store = reopen()
    await store.open(POLICY)
    for number in range(5):
        store.write_behind(RecordStatus(f"i{number}", MessageStatus.PUBLISHED), 1.0)
    store.write_behind(RecordStatus("f", MessageStatus.FAILED, "no route"), 1.0)
    assert await store.get_status("f", 1.0) == StatusRecord(MessageStatus.FAILED, "no route", 1.0)
    await store.flush()
    await store.flush()  # nothing queued: a no-op
    await store.close()
    store = reopen()
    await store.open(POLICY)
    assert await store.get_status("i4", 2.0) == StatusRecord(MessageStatus.PUBLISHED, None, 1.0)
    assert await store.get_status("f", 2.0) == StatusRecord(MessageStatus.FAILED, "no route", 1.0)
    assert await store.get_status("nope", 2.0) is None
    await store.close()


async def test_statuses_are_forgotten_past_retention_and_count(store: Store) -> None:
    await store.write([RecordStatus("old", MessageStatus.PUBLISHED)], 1.0)
    await store.write([RecordStatus("new", MessageStatus.PUBLISHED)], 50.0)
    assert await store.get_status("old", 100.0) is not None
    assert await store.get_status("old", 101.0) is None
    assert await store.get_status("new", 101.0) is not None
    await store.write([RecordStatus(f"n{i}", MessageStatus.PUBLISHED) for i in range(1000)], 102)
    assert await store.get_status("new", 102.0) is None  # over max_count: the oldest go
    assert await store.get_status("n999", 102.0) is not None


async def test_a_broker_on_sqlite_keeps_statuses_and_schedules_across_restarts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tidings.db"
    clock = VirtualClock()
    async with Broker(store=SqliteStore(path), clock=clock) as broker:
        immediate = await broker.publish("c", "now")
        later = await broker.publish("c", {"n": 1}, headers={"k": True}, delay=60)
        # Concurrent publishers share commits and still each get a durable answer.
        async with anyio.create_task_group() as tasks:
            for number in range(200):
                tasks.start_soon(lambda n=number: broker.publish("c", n, delay=30))
        assert broker.statistics().scheduled == 201
    async with (
        Broker(store=SqliteStore(path), clock=clock) as broker,
        broker.subscribe("c") as sub,
    ):
        assert (await broker.get_status(immediate.message_id)).status == "published"
        assert (await broker.get_status(later.message_id)).status == "scheduled"
        clock.set(clock() + 30)
        got = [await anext(sub) for _ in range(200)]
        assert sorted(m.message for m in got) == list(range(200))
        clock.set(clock() + 30)
        message = await anext(sub)
        assert (message.message, message.headers) == ({"n": 1}, {"k": True})
        assert message.message_id == later.message_id
        # Recorded in the transaction that released it: already published.
        assert (await broker.get_status(later.message_id)).status == "published"
    async with Broker(store=SqliteStore(path), clock=clock) as broker:
        assert (await broker.get_status(later.message_id)).status == "published"
        assert broker.statistics().scheduled == 0


async def test_a_second_process_cannot_open_a_store_in_use(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    first = SqliteStore(path)
    await first.open(POLICY)
    with pytest.raises(StoreError) as info:
        await SqliteStore(path).open(POLICY)
    assert info.value.code == 5090
    assert "in use" in info.value.message
    with pytest.raises(StoreError):
        await first.open(POLICY)  # already open
    await first.close()
    await first.close()  # closing twice is harmless
    second = SqliteStore(path)
    await second.open(POLICY)  # free again
    await second.close()


async def test_a_store_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as info:
        await SqliteStore(path).open(POLICY)
    assert "schema version 99" in info.value.message
    store = SqliteStore(path)  # the lock was released on the failure
    with pytest.raises(StoreError):
        await store.open(POLICY)


async def test_a_failed_transaction_applies_none_of_its_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tidings.db")
    await store.open(POLICY)
    await store.write([Schedule(scheduled("m1"))], 1.0)
    with pytest.raises(StoreError) as info:  # m1 twice: the whole batch rolls back
        await store.write([Schedule(scheduled("m2")), Schedule(scheduled("m1"))], 2.0)
    assert "UNIQUE" in info.value.message
    await store.close()
    store = SqliteStore(tmp_path / "tidings.db")
    assert [m.message_id for m in await store.open(POLICY)] == ["m1"]
    await store.close()


async def test_statuses_just_committed_are_read_without_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "RECENT_STATUSES", 3)
    store = SqliteStore(tmp_path / "tidings.db")
    await store.open(POLICY)
    reads: list[str] = []
    read = store._read_status
    monkeypatch.setattr(
        store, "_read_status", lambda message_id: reads.append(message_id) or read(message_id)
    )
    for number in range(5):
        store.write_behind(RecordStatus(f"m{number}", MessageStatus.PUBLISHED), 1.0)
    await store.flush()
    for number in range(5):
        assert await store.get_status(f"m{number}", 2.0) == StatusRecord(
            MessageStatus.PUBLISHED, None, 1.0
        )
    assert reads == ["m0", "m1"]  # only the last three are kept in memory
    await store.close()


async def test_a_status_queued_while_an_older_one_commits_is_not_lost(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tidings.db")
    await store.open(POLICY)
    store.write_behind(RecordStatus("m", MessageStatus.PUBLISHED), 1.0)
    committing = threading.Event()
    go_on = threading.Event()
    execute = store._execute

    def slow_execute(queued: list[tuple[Write, float]]) -> None:
        committing.set()
        go_on.wait(5)
        execute(queued)

    store._execute = slow_execute  # type: ignore[method-assign]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.flush)
        await to_thread.run_sync(committing.wait, 5)
        store.write_behind(RecordStatus("m", MessageStatus.FAILED, "later"), 2.0)
        go_on.set()
    newer = StatusRecord(MessageStatus.FAILED, "later", 2.0)
    assert await store.get_status("m", 3.0) == newer  # not the older one just committed

    def failing_execute(queued: list[tuple[Write, float]]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    store._execute = failing_execute  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        await store.flush()  # the newer one is lost: the older one, committed, reads again
    assert await store.get_status("m", 3.0) == StatusRecord(MessageStatus.PUBLISHED, None, 1.0)
    await store.close()


async def test_statuses_of_a_failed_commit_are_not_kept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tidings.db")
    await store.open(POLICY)
    await store.write([Schedule(scheduled("m1"))], 1.0)
    with pytest.raises(StoreError):
        await store.write([Cancel("m1"), Schedule(scheduled("m1")), Schedule(scheduled("m1"))], 2.0)
    assert await store.get_status("m1", 3.0) is None
    await store.close()


async def test_a_closed_store_refuses_writes_and_reads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tidings.db", synchronous="FULL")
    await store.open(POLICY)
    await store.close()
    with pytest.raises(StoreError):
        store.write_behind(RecordStatus("m", MessageStatus.PUBLISHED), 1.0)
    with pytest.raises(StoreError):
        await store.get_status("m", 1.0)


async def test_a_write_queued_while_the_store_closes_fails_instead_of_vanishing(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "tidings.db")
    await store.open(POLICY)
    errors: list[BrokerError] = []

    async def late_write() -> None:
        try:
            await store.write([RecordStatus("late", MessageStatus.PUBLISHED)], 1.0)
        except BrokerError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.close)
        await checkpoint()  # close() has flushed and now waits for the connection
        tasks.start_soon(late_write)
    assert [e.code for e in errors] == [5090]


def test_synchronous_must_be_normal_or_full(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_other_tables_share_the_file_through_transact_and_query(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    store = SqliteStore(path)
    with pytest.raises(StoreError):
        await store.ensure_schema("CREATE TABLE t (k TEXT)")  # not open yet
    await store.open(POLICY)
    await store.ensure_schema("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
    assert await store.transact(lambda con: con.execute("INSERT INTO t VALUES ('a')").rowcount) == 1

    def fails(con: sqlite3.Connection) -> None:
        con.execute("INSERT INTO t VALUES ('b')")
        raise KeyError("no")

    with pytest.raises(KeyError):
        await store.transact(fails)  # rolled back: 'b' is not kept
    rows = await store.query(lambda con: con.execute("SELECT k FROM t").fetchall())
    assert rows == [("a",)]
    await store.close()
    with pytest.raises(StoreError):
        await store.query(lambda con: None)
