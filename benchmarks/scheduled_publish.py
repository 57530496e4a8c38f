"""Scheduled publishing where a user pays for it: `broker.publish(..., delay=d)` and friends.

N messages (default 100 000) with payload ``"x"``, no headers, and delays drawn
uniformly from 60 s to an hour (none comes due while it is measured), in five
parts, each against its reference in the same run. ``us_per_msg`` is every
contender's headline: microseconds per message of what that contender does.

1. Cost per call on MemoryStore, N calls in a loop, best of ``--repeat``:
   - ``delay_publish``: ``await broker.publish(ch, "x", delay=d)``.
   - ``immediate_publish``: ``await broker.publish(ch, "x")`` with no subscriber,
     the floor: what publish costs without a timer.
   - ``call_later``: what a user would hand-roll: an id from the broker's own id
     generator, ``loop.call_later(d, fire, id, ch, message)`` and
     ``handles[id] = handle`` for cancel, behind the same ``async def publish``
     / ``async def cancel`` shape as the broker's API.
2. Memory per pending message (``bytes_per_msg``): tracemalloc's count of what
   is still allocated after N publishes (and a full gc), divided by N: the wheel,
   the record, the store's copy, the id, the encoded payload, status and other
   bookkeeping; for ``call_later`` the TimerHandle, its args, the heap slot, the
   id and the dict entry. ``immediate_publish`` keeps only the status it records.
   ``bytes_per_msg_after_cancel``: what is still held once all N are cancelled
   (Tidings keeps a "cancelled" status, bounded by max_statuses / status_retention).
3. Cancel (``cancel_us``): ``await broker.cancel(id)`` for all N, against
   ``handles.pop(id).cancel()``.
4. SqliteStore (temporary file, WAL, synchronous=NORMAL): publish(delay=d) by one
   sequential publisher (``sqlite_delay_1``, ``--sqlite-sequential`` messages) and
   by 100 concurrent publisher tasks (``sqlite_delay_100``, group commit,
   ``--sqlite-concurrent`` messages), against the physical reference: stdlib
   sqlite3 on the event-loop thread, same file settings, the store's table and
   rows as the store encodes them (built off the clock), one INSERT + COMMIT per
   message (``raw_sqlite_commit_each``) and one executemany + COMMIT per 100
   (``raw_sqlite_batch_100``), for the same message counts.
5. Firing: N messages all come due at once (a VirtualClock advanced by an hour)
   into one subscriber (``max_pending=N+1``); deliveries/s from the advance to the
   N-th message received, on MemoryStore (``fire_memory``, published beforehand
   with ``publish(delay=d)``) and SqliteStore (``fire_sqlite``, loaded at start
   from a file prepared once through the Store API, as those publishes leave it),
   against N immediate publishes into the same kind of subscriber
   (``immediate_memory``, ``immediate_sqlite``). A round of this part takes
   seconds at N = 100 000, so it runs ``min(--repeat, 2)`` rounds.

Ratios are always tidings / reference of the named metric: for ``us_per_msg``,
``cancel_us`` and ``bytes_per_msg`` above 1 means Tidings costs more; for
``publishes_per_s`` and ``deliveries_per_s`` below 1 means it is slower.
Client and server share the machine: only same-run ratios mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import (
    environment,
    format_value,
    parse_args,
    print_table,
    run,
    selected,
    write_results,
)

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
FIRING_MAX_REPEAT = 2  # a round of part 5 takes ~13 s at N = 100 000

MEMORY = ("delay_publish", "immediate_publish", "call_later")
SQLITE = ("sqlite_delay_1", "sqlite_delay_100", "raw_sqlite_commit_each", "raw_sqlite_batch_100")
FIRING = ("fire_memory", "fire_sqlite", "immediate_memory", "immediate_sqlite")
CONTENDERS = MEMORY + SQLITE + FIRING

RATIO_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("delay_publish", "immediate_publish", "us_per_msg"),
    ("delay_publish", "call_later", "us_per_msg"),
    ("delay_publish", "call_later", "cancel_us"),
    ("delay_publish", "call_later", "bytes_per_msg"),
    ("sqlite_delay_1", "raw_sqlite_commit_each", "publishes_per_s"),
    ("sqlite_delay_100", "raw_sqlite_batch_100", "publishes_per_s"),
    ("sqlite_delay_100", "sqlite_delay_1", "publishes_per_s"),
    ("fire_memory", "immediate_memory", "deliveries_per_s"),
    ("fire_sqlite", "immediate_memory", "deliveries_per_s"),
    ("fire_sqlite", "immediate_sqlite", "deliveries_per_s"),
)

TIME_COLUMNS = ("us_per_msg", "median_us_per_msg")
Phases = dict[str, float]  # seconds per measured phase of one trial
Trial = Callable[[], Awaitable[Phases]]


# ---------------------------------------------------------------------- harness


async def best_of_phases(
    trials: Mapping[str, Trial], repeat: int
) -> dict[str, dict[str, list[float]]]:
    """`_common.best_of` for trials that time several phases (publish, cancel):
    interleaved rounds, rotating start, a full gc before each trial; every sample kept."""
    names = list(trials)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for round_index in range(repeat):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            phases = await trials[name]()
            for phase, seconds in phases.items():
                samples[name].setdefault(phase, []).append(seconds)
            shown = "  ".join(f"{phase} {seconds:8.4f} s" for phase, seconds in phases.items())
            print(
                f"  round {round_index + 1}/{repeat}  {name:<22} {shown}",
                file=sys.stderr,
                flush=True,
            )
    return samples


def per_message(samples: Sequence[float], count: int) -> tuple[float, float]:
    """(best, median) microseconds per message."""
    return min(samples) / count * 1e6, statistics.median(samples) / count * 1e6


def rate_figures(samples: Sequence[float], count: int, metric: str) -> dict[str, float]:
    best, median = per_message(samples, count)
    return {metric: 1e6 / best, f"median_{metric}": 1e6 / median, "us_per_msg": best}


def make_delays(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(MIN_DELAY, MAX_DELAY) for _ in range(count)]


async def settle_loop() -> None:
    """Let the loop run what a trial left behind (e.g. purging cancelled timer handles)."""
    for _ in range(3):
        await asyncio.sleep(0)


# ------------------------------------------------- 1-3: MemoryStore, per call


class NaiveScheduler:
    """The hand-rolled reference: one asyncio TimerHandle per message, a dict for cancel."""

    def __init__(self, deliver: Callable[[str, Any], object]) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self._new_id = MessageIds()
        self.handles: dict[str, asyncio.TimerHandle] = {}

    async def publish(self, channel: str, message: Any, delay: float) -> str:
        message_id = self._new_id()
        self.handles[message_id] = self._loop.call_later(
            delay, self._fire, message_id, channel, message
        )
        return message_id

    async def cancel(self, message_id: str) -> bool:
        handle = self.handles.pop(message_id, None)
        if handle is None:
            return False
        handle.cancel()
        return True

    def _fire(self, message_id: str, channel: str, message: Any) -> None:
        del self.handles[message_id]
        self._deliver(channel, message)


def _never_delivered(channel: str, message: Any) -> None:
    raise AssertionError(f"a message on {channel} came due during the benchmark")


async def trial_delay_publish(delays: list[float]) -> Phases:
    async with Broker() as broker:
        publish = broker.publish
        ids: list[str] = []
        start = time.perf_counter()
        for delay in delays:
            ids.append((await publish(CHANNEL, PAYLOAD, delay=delay)).message_id)
        published = time.perf_counter() - start
        if broker.statistics().scheduled != len(delays):
            raise AssertionError("not every message is scheduled")
        cancel = broker.cancel
        start = time.perf_counter()
        for message_id in ids:
            await cancel(message_id)
        cancelled = time.perf_counter() - start
        if broker.statistics().scheduled != 0:
            raise AssertionError("messages still scheduled after cancelling all")
    return {"publish": published, "cancel": cancelled}


async def trial_immediate_publish(delays: list[float]) -> Phases:
    async with Broker() as broker:
        publish = broker.publish
        start = time.perf_counter()
        for _ in delays:
            await publish(CHANNEL, PAYLOAD)
        published = time.perf_counter() - start
    return {"publish": published}


async def trial_call_later(delays: list[float]) -> Phases:
    naive = NaiveScheduler(_never_delivered)
    publish = naive.publish
    ids: list[str] = []
    start = time.perf_counter()
    for delay in delays:
        ids.append(await publish(CHANNEL, PAYLOAD, delay))
    published = time.perf_counter() - start
    cancel = naive.cancel
    start = time.perf_counter()
    for message_id in ids:
        await cancel(message_id)
    cancelled = time.perf_counter() - start
    if naive.handles:
        raise AssertionError("handles left after cancelling all")
    await settle_loop()
    return {"publish": published, "cancel": cancelled}


class HeldBytes:
    """tracemalloc: bytes allocated since `start()` and still alive (after a full gc)."""

    def __init__(self) -> None:
        self._base = 0

    def start(self) -> None:
        gc.collect()
        tracemalloc.start()
        self._base = tracemalloc.get_traced_memory()[0]

    def held(self) -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - self._base

    @staticmethod
    def stop() -> None:
        tracemalloc.stop()


async def memory_delay_publish(delays: list[float]) -> dict[str, float]:
    count = len(delays)
    async with Broker() as broker:
        await broker.publish(CHANNEL, PAYLOAD)  # the channel exists before the count starts
        meter = HeldBytes()
        meter.start()
        try:
            ids = [(await broker.publish(CHANNEL, PAYLOAD, delay=d)).message_id for d in delays]
            pending = meter.held() - sys.getsizeof(ids)  # the benchmark's own list of ids
            for message_id in ids:
                await broker.cancel(message_id)
            del ids
            after_cancel = meter.held()
        finally:
            meter.stop()
    return {"bytes_per_msg": pending / count, "bytes_per_msg_after_cancel": after_cancel / count}


async def memory_immediate_publish(delays: list[float]) -> dict[str, float]:
    async with Broker() as broker:
        await broker.publish(CHANNEL, PAYLOAD)
        meter = HeldBytes()
        meter.start()
        try:
            for _ in delays:
                await broker.publish(CHANNEL, PAYLOAD)
            held = meter.held()
        finally:
            meter.stop()
    return {"bytes_per_msg": held / len(delays)}


async def memory_call_later(delays: list[float]) -> dict[str, float]:
    count = len(delays)
    meter = HeldBytes()
    meter.start()
    try:
        naive = NaiveScheduler(_never_delivered)
        ids = [await naive.publish(CHANNEL, PAYLOAD, d) for d in delays]
        pending = meter.held() - sys.getsizeof(ids)
        for message_id in ids:
            await naive.cancel(message_id)
        del ids
        await settle_loop()  # asyncio purges cancelled handles from its heap on its next turn
        after_cancel = meter.held()
    finally:
        meter.stop()
    return {"bytes_per_msg": pending / count, "bytes_per_msg_after_cancel": after_cancel / count}


MEMORY_TRIALS: dict[str, Callable[[list[float]], Awaitable[Phases]]] = {
    "delay_publish": trial_delay_publish,
    "immediate_publish": trial_immediate_publish,
    "call_later": trial_call_later,
}
MEMORY_METERS: dict[str, Callable[[list[float]], Awaitable[dict[str, float]]]] = {
    "delay_publish": memory_delay_publish,
    "immediate_publish": memory_immediate_publish,
    "call_later": memory_call_later,
}


async def part_memory(
    names: list[str], delays: list[float], repeat: int
) -> dict[str, dict[str, float]]:
    count = len(delays)

    def bind(name: str) -> Trial:
        trial = MEMORY_TRIALS[name]
        return lambda: trial(delays)

    samples = await best_of_phases({name: bind(name) for name in names}, repeat)
    results: dict[str, dict[str, float]] = {}
    for name in names:
        best, median = per_message(samples[name]["publish"], count)
        row = results[name] = {"us_per_msg": best, "median_us_per_msg": median}
        if "cancel" in samples[name]:
            row["cancel_us"], row["median_cancel_us"] = per_message(samples[name]["cancel"], count)
    for name in names:  # traced runs are slow: once each, after the timed rounds
        gc.collect()
        results[name].update(await MEMORY_METERS[name](delays))
        print(f"  memory  {name:<22} {results[name]['bytes_per_msg']:8.1f} B/msg", file=sys.stderr)
    return results


# ------------------------------------------------------------- 4: SqliteStore


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


async def trial_sqlite_delay(files: TempFiles, delays: list[float], publishers: int) -> Phases:
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
    return {"publish": elapsed}


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


async def trial_raw_sqlite(files: TempFiles, count: int, batch: int) -> Phases:
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
    return {"publish": elapsed}


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
    samples = await best_of_phases({name: trials[name] for name in names}, repeat)
    return {
        name: rate_figures(samples[name]["publish"], counts[name], "publishes_per_s")
        for name in names
    }


# ------------------------------------------------------------------ 5: firing


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


async def fire(broker: Broker, clock: VirtualClock, count: int) -> Phases:
    task = await receive(broker, count)
    if broker.statistics().scheduled != count:
        raise AssertionError(f"{broker.statistics().scheduled} scheduled, expected {count}")
    gc.collect()
    start = time.perf_counter()
    await clock.advance(MAX_DELAY)
    finished = await task
    if broker.statistics().scheduled != 0:
        raise AssertionError("messages still scheduled after every due time passed")
    return {"deliver": finished - start}


async def trial_fire_memory(delays: list[float]) -> Phases:
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


async def trial_fire_sqlite(files: TempFiles, prepared: Path, count: int) -> Phases:
    path = files.new_path("fire")
    shutil.copyfile(prepared, path)
    try:
        clock = VirtualClock()
        async with Broker(clock=clock, store=SqliteStore(path)) as broker:
            return await fire(broker, clock, count)
    finally:
        files.remove(path)


async def trial_immediate(count: int, files: TempFiles | None) -> Phases:
    if files is None:
        async with Broker() as broker:
            return await publish_immediately(broker, count)
    path = files.new_path("immediate")
    try:
        async with Broker(store=SqliteStore(path)) as broker:
            return await publish_immediately(broker, count)
    finally:
        files.remove(path)


async def publish_immediately(broker: Broker, count: int) -> Phases:
    task = await receive(broker, count)
    publish = broker.publish
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        await publish(CHANNEL, PAYLOAD)
    finished = await task
    return {"deliver": finished - start}


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
    samples = await best_of_phases({name: trials[name] for name in names}, repeat)
    return {
        name: rate_figures(samples[name]["deliver"], count, "deliveries_per_s") for name in names
    }


# ------------------------------------------------------------------------ main


def ratios_of(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    return {
        f"{top} / {bottom} ({metric})": results[top][metric] / results[bottom][metric]
        for top, bottom, metric in RATIO_PAIRS
        if metric in results.get(top, {}) and metric in results.get(bottom, {})
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages", type=int, default=None, help="parts 1-3 and 5 (default 100000, quick 5000)"
    )
    parser.add_argument(
        "--sqlite-sequential",
        type=int,
        default=None,
        help="part 4, one publisher and one commit per message (default 3000, quick 300)",
    )
    parser.add_argument(
        "--sqlite-concurrent",
        type=int,
        default=None,
        help=f"part 4, {PUBLISHERS} concurrent publishers (default 20000, quick 2000)",
    )


async def main(args: argparse.Namespace) -> None:
    count = args.messages or (5_000 if args.quick else 100_000)
    sequential = args.sqlite_sequential or (300 if args.quick else 3_000)
    concurrent = args.sqlite_concurrent or (2_000 if args.quick else 20_000)
    publishers = PUBLISHERS
    firing_repeat = min(args.repeat, FIRING_MAX_REPEAT)
    names = selected(args, CONTENDERS)
    delays = make_delays(count, 7)
    files = TempFiles()
    started = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    try:
        if part := [n for n in names if n in MEMORY]:
            results.update(await part_memory(part, delays, args.repeat))
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
        "metric": "us_per_msg = best wall time / messages (the call, the cancel, the commit or the"
        " delivery); bytes_per_msg = tracemalloc bytes held per pending message",
        "ratios": "tidings / reference of the metric named in brackets",
        "sqlite": "temporary file, WAL, synchronous=NORMAL; raw references run on the loop thread",
        "tmpdir": tempfile.gettempdir(),
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    sections = (
        (
            f"1-3 MemoryStore: {count} messages, delays {MIN_DELAY:g}-{MAX_DELAY:g} s",
            MEMORY,
            [*TIME_COLUMNS, "cancel_us", "bytes_per_msg", "bytes_per_msg_after_cancel"],
            args.repeat,
        ),
        (
            f"4 SqliteStore: {sequential} by 1 publisher, {concurrent} by {publishers} publishers",
            SQLITE,
            ["publishes_per_s", "median_publishes_per_s", "us_per_msg"],
            args.repeat,
        ),
        (
            f"5 firing: {count} due at once into one subscriber",
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
        "ratios are tidings / reference: > 1 costs more for us and bytes, < 1 is slower"
        f" for per_s; total {format_value(params['seconds'])} s"
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=3)
    run(lambda: main(arguments))
