"""Scheduled publishing on SQLite and firing: `publish(..., delay=d)` at volume.

What benchmarks/timers.py does not measure: there, the cost of one
``publish(delay=d)`` and of ``cancel`` against ``loop.call_at``, memory per
pending message, lateness, a burst and a SqliteStore restart. Here, N messages
with payload ``"x"``, no headers, and delays drawn uniformly from 60 s to an
hour, in two parts, each against its reference in the same run.
``us_per_msg`` is every contender's headline: microseconds per message of what
that contender does (the commit or the delivery).

1. SqliteStore (temporary file, WAL, synchronous=NORMAL): publish(delay=d) by one
   sequential publisher (``sqlite_delay_1``, ``--sqlite-sequential`` messages) and
   by 100 concurrent publisher tasks (``sqlite_delay_100``, group commit,
   ``--sqlite-concurrent`` messages), against the physical reference: stdlib
   sqlite3 on the event-loop thread, same file settings, the store's table and
   rows as the store encodes them (built off the clock), one INSERT + COMMIT per
   message (``raw_sqlite_commit_each``) and one executemany + COMMIT per 100
   (``raw_sqlite_batch_100``), for the same message counts.
2. Firing: ``--messages`` N (default 100 000) all come due at once (a
   VirtualClock advanced by an hour) into one subscriber (``max_pending=N+1``);
   deliveries/s from the advance to the N-th message received, on MemoryStore
   (``fire_memory``, published beforehand with ``publish(delay=d)``) and
   SqliteStore (``fire_sqlite``, loaded at start from a file prepared once
   through the Store API, as those publishes leave it), against N immediate
   publishes into the same kind of subscriber (``immediate_memory``,
   ``immediate_sqlite``). A round of this part takes seconds at N = 100 000, so
   it runs ``min(--repeat, 2)`` rounds.

Every part runs its rounds interleaved with a rotating start and a full gc
before each trial (``_common.best_of``) and reports the best and median round.
Ratios are always tidings / reference of the named metric: for
``publishes_per_s`` and ``deliveries_per_s`` below 1 means it is slower.
Client and server share the machine: only same-run ratios mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from _common import (
    Samples,
    best_of,
    environment,
    format_value,
    parse_args,
    print_table,
    run,
    selected,
    settle_loop,
    write_results,
)
from _common import make_delays as common_delays

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from broker import Broker
from broker._ids import MessageIds
from broker.stores import Schedule, ScheduledMessage, SqliteStore, StatusPolicy
from broker.testing import VirtualClock

NAME = "scheduled_publish"
CHANNEL = "bench"
PAYLOAD = "x"
MIN_DELAY = 60.0  # seconds: nothing comes due while a trial runs
MAX_DELAY = 3600.0
PUBLISHERS = 100  # concurrent publisher tasks on SqliteStore
RAW_BATCH = 100  # messages per transaction of raw_sqlite_batch_100
FIRING_MAX_REPEAT = 2  # a round of part 2 takes ~13 s at N = 100 000

SQLITE = ("sqlite_delay_1", "sqlite_delay_100", "raw_sqlite_commit_each", "raw_sqlite_batch_100")
FIRING = ("fire_memory", "fire_sqlite", "immediate_memory", "immediate_sqlite")
CONTENDERS = SQLITE + FIRING

RATIO_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("sqlite_delay_1", "raw_sqlite_commit_each", "publishes_per_s"),
    ("sqlite_delay_100", "raw_sqlite_batch_100", "publishes_per_s"),
    ("sqlite_delay_100", "sqlite_delay_1", "publishes_per_s"),
    ("fire_memory", "immediate_memory", "deliveries_per_s"),
    ("fire_sqlite", "immediate_memory", "deliveries_per_s"),
    ("fire_sqlite", "immediate_sqlite", "deliveries_per_s"),
)

Trial = Callable[[], Awaitable[float]]  # seconds of the measured phase


# ---------------------------------------------------------------------- harness


def rate_figures(samples: Samples, count: int, metric: str) -> dict[str, float]:
    """``metric`` (per second) of the best and the median round, and best ``us_per_msg``."""
    return {
        metric: count / samples.best,
        f"median_{metric}": count / samples.median,
        "us_per_msg": samples.best / count * 1e6,
    }


def make_delays(count: int, seed: int) -> list[float]:
    return common_delays(count, seed, MIN_DELAY, MAX_DELAY)


# ------------------------------------------------------------- 1: SqliteStore


class TempFiles:
    """Fresh database paths in one temporary directory, removed with it."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="tidings-bench-")
        self.root = Path(self._dir.name)
        self._count = 0

    def new_path(self, stem: str) -> Path:
        self._count += 1
        return self.root / f"{stem}-{self._count}.db"

    def remove(self, path: Path) -> None:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def cleanup(self) -> None:
        self._dir.cleanup()


async def trial_sqlite_delay(files: TempFiles, delays: list[float], publishers: int) -> float:
    path = files.new_path("store")
    try:
        async with Broker(store=SqliteStore(path)) as broker:
            shares = [delays[i::publishers] for i in range(publishers)]

            async def publisher(share: list[float]) -> None:
                for delay in share:
                    await broker.publish(CHANNEL, PAYLOAD, delay=delay)

            start = time.perf_counter()
            if publishers == 1:
                await publisher(delays)
            else:
                async with asyncio.TaskGroup() as group:
                    for share in shares:
                        group.create_task(publisher(share))
            elapsed = time.perf_counter() - start
            if broker.statistics().scheduled != len(delays):
                raise AssertionError("not every message is scheduled")
    finally:
        files.remove(path)
    return elapsed


def raw_rows(count: int) -> list[tuple[str, bytes, int]]:
    """Rows as SqliteStore writes them for our messages: id, msgpack record, next_index."""
    new_id = MessageIds()
    encode = msgspec.msgpack.Encoder().encode
    payload = msgspec.json.encode(PAYLOAD)
    first_due = int(time.time() * 1000)
    rows = []
    for _ in range(count):
        message_id = new_id()
        record = ScheduledMessage(message_id, CHANNEL, payload, {}, None, first_due)
        rows.append((message_id, encode(record), 0))
    return rows


def raw_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)  # stdlib default: an implicit BEGIN before the INSERT
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute(
        "CREATE TABLE scheduled (message_id TEXT PRIMARY KEY, record BLOB NOT NULL,"
        " next_index INTEGER NOT NULL) WITHOUT ROWID"
    )
    con.commit()
    return con


async def trial_raw_sqlite(files: TempFiles, count: int, batch: int) -> float:
    rows = raw_rows(count)
    path = files.new_path("raw")
    con = raw_connect(path)
    insert = "INSERT INTO scheduled VALUES (?, ?, ?)"
    try:
        start = time.perf_counter()
        if batch == 1:
            for row in rows:
                con.execute(insert, row)
                con.commit()
        else:
            for at in range(0, count, batch):
                con.executemany(insert, rows[at : at + batch])
                con.commit()
        elapsed = time.perf_counter() - start
        (stored,) = con.execute("SELECT count(*) FROM scheduled").fetchone()
        if stored != count:
            raise AssertionError(f"{stored} rows stored, expected {count}")
    finally:
        con.close()
        files.remove(path)
    return elapsed


async def part_sqlite(
    names: list[str],
    files: TempFiles,
    sequential: int,
    concurrent: int,
    publishers: int,
    repeat: int,
) -> dict[str, dict[str, float]]:
    seq_delays = make_delays(sequential, 11)
    conc_delays = make_delays(concurrent, 13)
    counts = {
        "sqlite_delay_1": sequential,
        "sqlite_delay_100": concurrent,
        "raw_sqlite_commit_each": sequential,
        "raw_sqlite_batch_100": concurrent,
    }
    trials: dict[str, Trial] = {
        "sqlite_delay_1": lambda: trial_sqlite_delay(files, seq_delays, 1),
        "sqlite_delay_100": lambda: trial_sqlite_delay(files, conc_delays, publishers),
        "raw_sqlite_commit_each": lambda: trial_raw_sqlite(files, sequential, 1),
        "raw_sqlite_batch_100": lambda: trial_raw_sqlite(files, concurrent, RAW_BATCH),
    }
    samples = await best_of({name: trials[name] for name in names}, repeat)
    return {name: rate_figures(samples[name], counts[name], "publishes_per_s") for name in names}


# ------------------------------------------------------------------ 2: firing


async def receive(broker: Broker, count: int) -> asyncio.Task[float]:
    """A consumer task that returns the perf_counter time of its `count`-th message."""
    ready = asyncio.Event()

    async def consume() -> float:
        received = 0
        async with broker.subscribe(CHANNEL, max_pending=count + 1) as sub:
            ready.set()
            async for _ in sub:
                received += 1
                if received == count:
                    return time.perf_counter()
        raise AssertionError(f"subscription ended after {received} of {count} messages")

    task = asyncio.create_task(consume())
    subscribed = asyncio.ensure_future(ready.wait())
    await asyncio.wait([subscribed, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        subscribed.cancel()
        task.result()  # failed before subscribing: raise here rather than hang
    await settle_loop()  # parked on its first wait
    return task


async def fire(broker: Broker, clock: VirtualClock, count: int) -> float:
    task = await receive(broker, count)
    if broker.statistics().scheduled != count:
        raise AssertionError(f"{broker.statistics().scheduled} scheduled, expected {count}")
    gc.collect()
    start = time.perf_counter()
    await clock.advance(MAX_DELAY)
    finished = await task
    if broker.statistics().scheduled != 0:
        raise AssertionError("messages still scheduled after every due time passed")
    return finished - start


async def trial_fire_memory(delays: list[float]) -> float:
    clock = VirtualClock()
    async with Broker(clock=clock) as broker:
        for delay in delays:
            await broker.publish(CHANNEL, PAYLOAD, delay=delay)
        return await fire(broker, clock, len(delays))


async def prepare_sqlite_file(files: TempFiles, delays: list[float]) -> Path:
    """A store file holding len(delays) scheduled messages as `publish(delay=d)` at
    VirtualClock()'s start leaves them, written through the Store API in one transaction."""
    path = files.new_path("prepared")
    now_ms = VirtualClock()() * 1000
    new_id = MessageIds()
    payload = msgspec.json.encode(PAYLOAD)
    writes = [
        Schedule(
            ScheduledMessage(new_id(), CHANNEL, payload, {}, None, math.ceil(now_ms + d * 1000))
        )
        for d in delays
    ]
    store = SqliteStore(path)
    await store.open(StatusPolicy())
    try:
        await store.write(writes, now_ms / 1000)
    finally:
        await store.close()
    return path


async def trial_fire_sqlite(files: TempFiles, prepared: Path, count: int) -> float:
    path = files.new_path("fire")
    shutil.copyfile(prepared, path)
    try:
        clock = VirtualClock()
        async with Broker(clock=clock, store=SqliteStore(path)) as broker:
            return await fire(broker, clock, count)
    finally:
        files.remove(path)


async def trial_immediate(count: int, files: TempFiles | None) -> float:
    if files is None:
        async with Broker() as broker:
            return await publish_immediately(broker, count)
    path = files.new_path("immediate")
    try:
        async with Broker(store=SqliteStore(path)) as broker:
            return await publish_immediately(broker, count)
    finally:
        files.remove(path)


async def publish_immediately(broker: Broker, count: int) -> float:
    task = await receive(broker, count)
    publish = broker.publish
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        await publish(CHANNEL, PAYLOAD)
    finished = await task
    return finished - start


async def part_firing(
    names: list[str], files: TempFiles, count: int, repeat: int
) -> dict[str, dict[str, float]]:
    delays = make_delays(count, 17)
    trials: dict[str, Trial] = {
        "fire_memory": lambda: trial_fire_memory(delays),
        "immediate_memory": lambda: trial_immediate(count, None),
        "immediate_sqlite": lambda: trial_immediate(count, files),
    }
    if "fire_sqlite" in names:
        print(f"  preparing a store file with {count} scheduled messages", file=sys.stderr)
        prepared = await prepare_sqlite_file(files, delays)
        trials["fire_sqlite"] = lambda: trial_fire_sqlite(files, prepared, count)
    samples = await best_of({name: trials[name] for name in names}, repeat)
    return {name: rate_figures(samples[name], count, "deliveries_per_s") for name in names}


# ------------------------------------------------------------------------ main


def ratios_of(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    return {
        f"{top} / {bottom} ({metric})": results[top][metric] / results[bottom][metric]
        for top, bottom, metric in RATIO_PAIRS
        if metric in results.get(top, {}) and metric in results.get(bottom, {})
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages", type=int, default=None, help="part 2 (default 100000, quick 5000)"
    )
    parser.add_argument(
        "--sqlite-sequential",
        type=int,
        default=None,
        help="part 1, one publisher and one commit per message (default 3000, quick 300)",
    )
    parser.add_argument(
        "--sqlite-concurrent",
        type=int,
        default=None,
        help=f"part 1, {PUBLISHERS} concurrent publishers (default 20000, quick 2000)",
    )


async def main(args: argparse.Namespace) -> None:
    count = args.messages or (5_000 if args.quick else 100_000)
    sequential = args.sqlite_sequential or (300 if args.quick else 3_000)
    concurrent = args.sqlite_concurrent or (2_000 if args.quick else 20_000)
    publishers = PUBLISHERS
    firing_repeat = min(args.repeat, FIRING_MAX_REPEAT)
    names = selected(args, CONTENDERS)
    files = TempFiles()
    started = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    try:
        if part := [n for n in names if n in SQLITE]:
            results.update(
                await part_sqlite(part, files, sequential, concurrent, publishers, args.repeat)
            )
        if part := [n for n in names if n in FIRING]:
            results.update(await part_firing(part, files, count, firing_repeat))
    finally:
        files.cleanup()
    ratios = ratios_of(results)
    params = {
        "messages": count,
        "sqlite_sequential": sequential,
        "sqlite_concurrent": concurrent,
        "publishers": publishers,
        "payload": repr(PAYLOAD),
        "delays_s": [MIN_DELAY, MAX_DELAY],
        "repeat": args.repeat,
        "firing_repeat": firing_repeat,
        "quick": args.quick,
        "metric": "us_per_msg = best wall time / messages (the commit or the delivery)",
        "ratios": "tidings / reference of the metric named in brackets",
        "sqlite": "temporary file, WAL, synchronous=NORMAL; raw references run on the loop thread",
        "tmpdir": tempfile.gettempdir(),
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    sections = (
        (
            f"1 SqliteStore: {sequential} by 1 publisher, {concurrent} by {publishers} publishers",
            SQLITE,
            ["publishes_per_s", "median_publishes_per_s", "us_per_msg"],
            args.repeat,
        ),
        (
            f"2 firing: {count} due at once into one subscriber",
            FIRING,
            ["deliveries_per_s", "median_deliveries_per_s", "us_per_msg"],
            firing_repeat,
        ),
    )
    for title, members, metrics, rounds in sections:
        rows = {name: results[name] for name in members if name in results}
        if rows:
            print_table(
                f"{NAME} {title}, loop {params['loop']}, best of {rounds}",
                rows,
                {name: value for name, value in ratios.items() if name.split(" / ")[0] in members},
                metrics=metrics,
            )
    print(
        "ratios are tidings / reference of publishes or deliveries per second: < 1 is slower;"
        f" total {format_value(params['seconds'])} s"
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=3)
    run(lambda: main(arguments))
