"""Scheduled messages as timers: memory, call cost, lateness, a burst, a restart.

The targets of the scheduling issue, each measured against asyncio's own timers
(``loop.call_at``) in the same run and on the same loop (uvloop when installed).
The reference is what a user would hand-roll (``call_at``): an id from the
broker's own id generator, ``loop.call_at(when, fire, id, channel, message)``
and ``handles[id] = handle`` for cancel, behind the same ``async def publish`` /
``async def cancel`` shape as the broker's API; ``fire`` pops the handle and
puts the id on an ``asyncio.Queue`` read by one consumer task, as a
subscription's consumer reads the broker. Payload ``"x"``, no headers, one
channel, one subscriber (``max_pending`` above the message count).

``us_per_msg`` is every contender's headline, microseconds per message of what
the part measures; each part's own figures follow it.

1. Memory per pending message (``bytes_per_msg``), MemoryStore, ``--messages``
   (default 100 000) pending, delays 60 s to an hour: tracemalloc's count of what
   is still allocated after the publishes and a full gc, divided by the count,
   the benchmark's own list of ids excluded. Tidings (``delay_publish``): the
   wheel's Timer and bucket entry, the ScheduledMessage, the store's and the
   scheduler's dict entries, the id, the encoded payload, status and other
   bookkeeping. ``call_at``: the TimerHandle, libuv's timer (uvloop) or the heap
   slot (asyncio), the args tuple, the id and the dict entry; the payload is the
   shared constant ``"x"``, Tidings keeps its JSON encoding.
2. Cost per call, same messages, best of ``--repeat``: ``us_per_msg`` is
   ``await broker.publish(ch, "x", delay=d)`` against ``call_at`` + dict insert;
   ``cancel_us`` is ``await broker.cancel(id)`` against ``handles.pop(id)`` +
   ``handle.cancel()``, for all of them.
3. Lateness (``lateness_tidings``, ``lateness_call_at``): ``--lateness-messages``
   (default 2 000) due at instants drawn uniformly across ``--lateness-window``
   seconds (default 2) of the real clock, published with ``publish_at`` (the
   reference: ``call_at`` at the same instants, converted to the loop's clock)
   before the first is due. Lateness = ``time.time()`` when the consumer receives
   the message - the instant asked for (so the broker's rounding up to a whole ms
   counts as lateness); ``p50_ms``, ``p99_ms``, ``max_ms``, and ``min_ms``
   (negative: received before the instant); ``early`` counts messages received
   before their instant (the broker's ms timestamps play no part). uvloop's
   clock and timers count whole milliseconds, so its call_at may run a callback
   up to ~1.5 ms before the instant; Tidings' driver re-reads the clock on
   waking and sleeps again. ``us_per_msg``: process CPU time from the first due
   instant to the last delivery, per message (the waiting included).
4. Burst (``burst_tidings``, ``burst_call_at``): ``--burst`` messages (default
   100 000) due at instants drawn uniformly across one second of the real clock,
   published (as in 3) ahead of it. ``delivered`` (within a timeout),
   ``drain_s`` from the first due instant to the last delivery, ``p99_ms`` and
   ``early`` as in 3, and event-loop lag: a ticker task loops on
   ``asyncio.sleep(0.001)`` and records by how much each sleep overshoots;
   ``max_lag_ms`` is the worst from the first due instant to the last delivery,
   ``idle_lag_ms`` the worst while waiting for it (the loop's own floor).
   ``us_per_msg``: process CPU time over the burst, per message.
5. Restart (``restart_sqlite``): a SqliteStore file holding ``--pending``
   scheduled messages (default 1 000 000, quick 100 000; due 1-2 hours ahead),
   prepared once through the Store API in transactions of 100 000, as publishes
   with ``delay`` leave it. ``seconds``: from ``Broker(store=SqliteStore(path),
   max_scheduled=pending + 1000)`` (the default bound is 1 000 000, which a full
   store would leave no room under) through ``async with`` until one
   ``publish(delay=...)`` is accepted; of it, ``open_s`` is the store's open
   (SELECT every row and decode it, on a worker thread), ``load_s`` the rest of
   entering (putting every message back on the wheel, starting the tasks),
   ``publish_ms`` the first publish; ``close_s`` (leaving, not counted) follows.
   The published message is cancelled again so every round starts from the same
   rows. Reference (``raw_select``): stdlib sqlite3 running the store's own
   ``SELECT record, next_index FROM scheduled`` over the same file and fetching
   every row: the physical floor. The file sits in the page cache (a warm
   restart). ``us_per_msg``: ``seconds`` per pending message.

Every part runs ``--repeat`` rounds, contenders interleaved with a rotating
start and a full gc before each trial. Parts 2 and 5 report the best (and
median) round; tracemalloc runs once per contender after the timed rounds.
Parts 3 and 4 report, whole, the round with the median ``p99_ms`` (3) or
``max_lag_ms`` (4), except ``early`` and ``undelivered``, the worst of any
round; every round is kept in ``params["rounds"]``.

Ratios are tidings / reference of the named metric: above 1 means Tidings
costs more (bytes, time) or is later. TARGETS are the issue's absolute limits,
printed as met / BELOW TARGET; the restart limit is for 1 000 000 pending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
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

NAME = "timers"
CHANNEL = "bench"
PAYLOAD = "x"
MIN_DELAY = 60.0  # parts 1-2: seconds; nothing comes due while measured
MAX_DELAY = 3600.0
RESTART_DELAYS = (3600.0, 7200.0)  # part 5: the prepared messages are due 1-2 hours ahead
PREPARE_BATCH = 100_000  # scheduled messages per transaction when preparing part 5's file
SCHEDULED_HEADROOM = 1_000  # max_scheduled = pending + this, so the restart can accept more
BURST_WINDOW = 1.0  # part 4: "due within the same second"
TICK = 0.001  # the lag ticker's sleep
LEAD_BASE = 0.5  # seconds between the end of publishing and the first due instant ...
LEAD_PER_MSG = 20e-6  # ... plus this per message to publish (a publish costs 5-10 us)
TIMEOUT_AFTER = 30.0  # seconds past the last due instant before undelivered messages are counted

CALLS = ("delay_publish", "call_at")
LATENESS = ("lateness_tidings", "lateness_call_at")
BURST = ("burst_tidings", "burst_call_at")
RESTART = ("restart_sqlite", "raw_select")
CONTENDERS = CALLS + LATENESS + BURST + RESTART

RATIO_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("delay_publish", "call_at", "bytes_per_msg"),
    ("delay_publish", "call_at", "us_per_msg"),
    ("delay_publish", "call_at", "cancel_us"),
    ("lateness_tidings", "lateness_call_at", "p99_ms"),
    ("lateness_tidings", "lateness_call_at", "max_ms"),
    ("burst_tidings", "burst_call_at", "max_lag_ms"),
    ("burst_tidings", "burst_call_at", "drain_s"),
    ("burst_tidings", "burst_call_at", "us_per_msg"),
    ("restart_sqlite", "raw_select", "seconds"),
)

# (contender, metric, comparison, limit); "all" stands for the part's message count.
TARGETS: tuple[tuple[str, str, str, float | str], ...] = (
    ("delay_publish", "bytes_per_msg", "<=", 400.0),
    ("delay_publish", "us_per_msg", "<=", 5.0),
    ("delay_publish", "cancel_us", "<=", 2.0),
    ("lateness_tidings", "p99_ms", "<=", 10.0),
    ("lateness_tidings", "early", "==", 0.0),
    ("burst_tidings", "delivered", "==", "all"),
    ("burst_tidings", "max_lag_ms", "<=", 20.0),
    ("restart_sqlite", "seconds", "<=", 5.0),
)

Figures = dict[str, float]
Trial = Callable[[], Awaitable[Figures]]


# ---------------------------------------------------------------------- harness


async def rounds_of(trials: Mapping[str, Trial], repeat: int) -> dict[str, list[Figures]]:
    """Every trial `repeat` times, interleaved round by round with a rotating start and a
    full gc before each (as `_common.best_of`); every round's figures are kept."""
    names = list(trials)
    samples: dict[str, list[Figures]] = {name: [] for name in names}
    for round_index in range(repeat):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            figures = await trials[name]()
            samples[name].append(figures)
            shown = "  ".join(f"{metric} {format_value(v)}" for metric, v in figures.items())
            print(f"  round {round_index + 1}/{repeat}  {name:<17} {shown}", file=sys.stderr)
    return samples


def best_and_median(samples: Sequence[Figures], metric: str) -> tuple[float, float]:
    values = [figures[metric] for figures in samples]
    return min(values), statistics.median(values)


def median_round(samples: Sequence[Figures], key: str, worst: Sequence[str]) -> Figures:
    """The round with the median `key`, whole; the `worst` metrics are the largest of any round."""
    ordered = sorted(samples, key=lambda figures: figures[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    for metric in worst:
        chosen[metric] = max(figures[metric] for figures in samples)
    return chosen


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank of an ascending sequence."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def make_delays(
    count: int, seed: int, low: float = MIN_DELAY, high: float = MAX_DELAY
) -> list[float]:
    return common_delays(count, seed, low, high)


# ------------------------------------------------------------------- reference


class CallAtScheduler:
    """The hand-rolled reference: one loop.call_at handle per message, a dict for cancel."""

    def __init__(self, deliver: Callable[[str], object]) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self._new_id = MessageIds()
        self.handles: dict[str, asyncio.TimerHandle] = {}

    async def publish(self, channel: str, message: Any, delay: float) -> str:
        loop = self._loop
        message_id = self._new_id()
        self.handles[message_id] = loop.call_at(
            loop.time() + delay, self._fire, message_id, channel, message
        )
        return message_id

    async def publish_at(self, channel: str, message: Any, epoch: float) -> str:
        """Due at `epoch` (time.time() seconds), converted to the loop's monotonic clock."""
        loop = self._loop
        message_id = self._new_id()  # may run the gc: before both clocks are read
        self.handles[message_id] = loop.call_at(
            loop.time() + (epoch - time.time()), self._fire, message_id, channel, message
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
        self._deliver(message_id)


def _never_delivered(message_id: str) -> None:
    raise AssertionError(f"message {message_id} came due during the benchmark")


# ------------------------------------------------------- 1-2: memory and calls


async def trial_delay_publish(delays: list[float]) -> Figures:
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
    count = len(delays)
    return {"us_per_msg": published / count * 1e6, "cancel_us": cancelled / count * 1e6}


async def trial_call_at(delays: list[float]) -> Figures:
    naive = CallAtScheduler(_never_delivered)
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
    count = len(delays)
    return {"us_per_msg": published / count * 1e6, "cancel_us": cancelled / count * 1e6}


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


async def memory_delay_publish(delays: list[float]) -> Figures:
    async with Broker() as broker:
        await broker.publish(CHANNEL, PAYLOAD)  # the channel exists before the count starts
        meter = HeldBytes()
        meter.start()
        try:
            ids = [(await broker.publish(CHANNEL, PAYLOAD, delay=d)).message_id for d in delays]
            held = meter.held() - sys.getsizeof(ids)  # the benchmark's own list of ids
            for message_id in ids:
                await broker.cancel(message_id)
        finally:
            meter.stop()
    return {"bytes_per_msg": held / len(delays)}


async def memory_call_at(delays: list[float]) -> Figures:
    meter = HeldBytes()
    meter.start()
    try:
        naive = CallAtScheduler(_never_delivered)
        ids = [await naive.publish(CHANNEL, PAYLOAD, d) for d in delays]
        held = meter.held() - sys.getsizeof(ids)
        for message_id in ids:
            await naive.cancel(message_id)
        await settle_loop()
    finally:
        meter.stop()
    return {"bytes_per_msg": held / len(delays)}


async def part_calls(names: list[str], delays: list[float], repeat: int) -> dict[str, Figures]:
    trials: dict[str, Trial] = {
        "delay_publish": lambda: trial_delay_publish(delays),
        "call_at": lambda: trial_call_at(delays),
    }
    meters: dict[str, Trial] = {
        "delay_publish": lambda: memory_delay_publish(delays),
        "call_at": lambda: memory_call_at(delays),
    }
    samples = await rounds_of({name: trials[name] for name in names}, repeat)
    results: dict[str, Figures] = {}
    for name in names:
        row = results[name] = {}
        for metric in ("us_per_msg", "cancel_us"):
            row[metric], row[f"median_{metric}"] = best_and_median(samples[name], metric)
    for name in names:  # traced runs are slow: once each, after the timed rounds
        gc.collect()
        results[name].update(await meters[name]())
        print(f"  memory  {name:<17} {results[name]['bytes_per_msg']:8.1f} B/msg", file=sys.stderr)
    return results


# ---------------------------------------------------------- 3-4: real clock


class Arrivals:
    """What the consumer received: message ids and time.time() on receipt."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.ids: list[str] = []
        self.times: list[float] = []
        self.cpu_done = 0.0  # process_time() at the last expected message
        self.done = asyncio.Event()

    def record(self, message_id: str) -> None:
        self.ids.append(message_id)
        self.times.append(time.time())
        if len(self.ids) == self.expected:
            self.cpu_done = time.process_time()
            self.done.set()


class Ticker:
    """Event-loop lag: how much each asyncio.sleep(TICK) overshoots, split at `boundary`
    (epoch seconds): before it the loop idles, from it on the measured work runs."""

    def __init__(self, boundary: float) -> None:
        self.boundary = boundary
        self.idle_lag = 0.0
        self.busy_lag = 0.0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        perf_counter = time.perf_counter
        while not self.stop.is_set():
            before = perf_counter()
            await asyncio.sleep(TICK)
            lag = perf_counter() - before - TICK
            if time.time() < self.boundary:
                self.idle_lag = max(self.idle_lag, lag)
            else:
                self.busy_lag = max(self.busy_lag, lag)


def due_instants(offsets: Sequence[float]) -> tuple[float, list[datetime]]:
    """Aware datetimes `lead` after now plus each offset; the lead covers publishing them."""
    lead = LEAD_BASE + LEAD_PER_MSG * len(offsets)
    base = time.time() + lead
    return base, [datetime.fromtimestamp(base + offset, UTC) for offset in offsets]


async def tidings_consumer(broker: Broker, arrivals: Arrivals) -> asyncio.Task[None]:
    """A task reading one subscription into `arrivals`, parked on its first wait."""
    ready = asyncio.Event()

    async def consume() -> None:
        async with broker.subscribe(CHANNEL, max_pending=arrivals.expected + 1) as sub:
            ready.set()
            async for message in sub:
                arrivals.record(message.message_id)
                if arrivals.done.is_set():
                    return

    task = asyncio.create_task(consume())
    subscribed = asyncio.ensure_future(ready.wait())
    await asyncio.wait([subscribed, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        subscribed.cancel()
        task.result()  # failed before subscribing: raise here rather than hang
    await settle_loop()
    return task


def queue_consumer(queue: asyncio.Queue[str], arrivals: Arrivals) -> asyncio.Task[None]:
    async def consume() -> None:
        while not arrivals.done.is_set():
            arrivals.record(await queue.get())

    return asyncio.create_task(consume())


async def timed_delivery(
    publish_all: Callable[[list[datetime]], Awaitable[list[str]]],
    offsets: list[float],
    arrivals: Arrivals,
    consumer: asyncio.Task[None],
    *,
    tick: bool,
) -> Figures:
    """Publish for the due instants, wait for every delivery (or the timeout), figure it."""
    base, instants = due_instants(offsets)
    ids = await publish_all(instants)
    cpu_published = time.process_time()
    if time.time() >= base:
        raise AssertionError("publishing outlasted the lead: the first message was due before")
    due_by_id = dict(zip(ids, (instant.timestamp() for instant in instants), strict=True))
    first_due = min(due_by_id.values())
    last_due = max(due_by_id.values())
    cpu_at_first_due: list[float] = []
    loop = asyncio.get_running_loop()
    loop.call_at(
        loop.time() + first_due - time.time(),
        lambda: cpu_at_first_due.append(time.process_time()),
    )
    ticker = Ticker(first_due)
    ticking = asyncio.create_task(ticker.run()) if tick else None
    with contextlib.suppress(TimeoutError):  # undelivered messages are counted below
        await asyncio.wait_for(arrivals.done.wait(), last_due - time.time() + TIMEOUT_AFTER)
    cpu_end = arrivals.cpu_done if arrivals.done.is_set() else time.process_time()
    cpu_start = cpu_at_first_due[0] if cpu_at_first_due else cpu_published
    ticker.stop.set()
    consumer.cancel()  # done already, unless the timeout struck
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    if ticking is not None:
        await ticking
    lateness = sorted(at - due_by_id[i] for i, at in zip(arrivals.ids, arrivals.times, strict=True))
    delivered = len(lateness)
    figures = {
        "us_per_msg": (cpu_end - cpu_start) / max(1, delivered) * 1e6,
        "delivered": delivered,
        "undelivered": len(offsets) - delivered,
        "early": sum(1 for late in lateness if late < 0),
        "min_ms": lateness[0] * 1e3 if lateness else math.nan,
        "p50_ms": percentile(lateness, 0.5) * 1e3 if lateness else math.nan,
        "p99_ms": percentile(lateness, 0.99) * 1e3 if lateness else math.nan,
        "max_ms": lateness[-1] * 1e3 if lateness else math.nan,
        "drain_s": max(arrivals.times, default=math.nan) - first_due,
    }
    if tick:
        figures["max_lag_ms"] = ticker.busy_lag * 1e3
        figures["idle_lag_ms"] = ticker.idle_lag * 1e3
    return figures


async def trial_tidings(offsets: list[float], *, tick: bool) -> Figures:
    async with Broker() as broker:
        arrivals = Arrivals(len(offsets))
        consumer = await tidings_consumer(broker, arrivals)

        async def publish_all(instants: list[datetime]) -> list[str]:
            publish = broker.publish
            return [(await publish(CHANNEL, PAYLOAD, publish_at=at)).message_id for at in instants]

        return await timed_delivery(publish_all, offsets, arrivals, consumer, tick=tick)


async def trial_reference(offsets: list[float], *, tick: bool) -> Figures:
    queue: asyncio.Queue[str] = asyncio.Queue()
    arrivals = Arrivals(len(offsets))
    consumer = queue_consumer(queue, arrivals)
    naive = CallAtScheduler(queue.put_nowait)

    async def publish_all(instants: list[datetime]) -> list[str]:
        publish_at = naive.publish_at
        return [await publish_at(CHANNEL, PAYLOAD, at.timestamp()) for at in instants]

    try:
        return await timed_delivery(publish_all, offsets, arrivals, consumer, tick=tick)
    finally:
        for handle in naive.handles.values():
            handle.cancel()


async def part_real_time(
    names: list[str],
    pair: tuple[str, str],
    offsets: list[float],
    repeat: int,
    key: str,
    rounds: dict[str, list[Figures]],
) -> dict[str, Figures]:
    tick = key == "max_lag_ms"
    tidings, reference = pair
    trials: dict[str, Trial] = {
        tidings: lambda: trial_tidings(offsets, tick=tick),
        reference: lambda: trial_reference(offsets, tick=tick),
    }
    samples = await rounds_of({name: trials[name] for name in names}, repeat)
    rounds.update(samples)
    return {
        name: median_round(samples[name], key, worst=("early", "undelivered")) for name in names
    }


# --------------------------------------------------------------- 5: restart


class TimedSqliteStore(SqliteStore):
    """SqliteStore whose open (SELECT and decode every pending message) is timed."""

    opened_in = 0.0

    async def open(self, policy: StatusPolicy) -> list[ScheduledMessage]:
        start = time.perf_counter()
        pending = await super().open(policy)
        self.opened_in = time.perf_counter() - start
        return pending


async def prepare_sqlite_file(path: Path, count: int) -> None:
    """`count` scheduled messages, as publish(delay=d) leaves them, through the Store API."""
    now = time.time()
    now_ms = now * 1000
    new_id = MessageIds()
    payload = msgspec.json.encode(PAYLOAD)
    delays = make_delays(count, 23, *RESTART_DELAYS)
    store = SqliteStore(path)
    await store.open(StatusPolicy())
    try:
        for at in range(0, count, PREPARE_BATCH):
            writes = [
                Schedule(
                    ScheduledMessage(
                        new_id(), CHANNEL, payload, None, None, math.ceil(now_ms + d * 1000)
                    )
                )
                for d in delays[at : at + PREPARE_BATCH]
            ]
            await store.write(writes, now)
    finally:
        await store.close()


async def trial_restart(path: Path, pending: int) -> Figures:
    store = TimedSqliteStore(path)
    start = time.perf_counter()
    async with Broker(store=store, max_scheduled=pending + SCHEDULED_HEADROOM) as broker:
        entered = time.perf_counter()
        result = await broker.publish(CHANNEL, PAYLOAD, delay=RESTART_DELAYS[0])
        accepted = time.perf_counter()
        scheduled = broker.statistics().scheduled
        if scheduled != pending + 1:
            raise AssertionError(f"{scheduled} scheduled after the restart, expected {pending + 1}")
        await broker.cancel(result.message_id)  # every round starts from the same rows
        leaving = time.perf_counter()
    closed = time.perf_counter()
    seconds = accepted - start
    return {
        "us_per_msg": seconds / pending * 1e6,
        "seconds": seconds,
        "open_s": store.opened_in,
        "load_s": entered - start - store.opened_in,
        "publish_ms": (accepted - entered) * 1e3,
        "close_s": closed - leaving,
    }


async def trial_raw_select(path: Path, pending: int) -> Figures:
    con = sqlite3.connect(path)
    try:
        start = time.perf_counter()
        rows = con.execute("SELECT record, next_index FROM scheduled").fetchall()
        seconds = time.perf_counter() - start
    finally:
        con.close()
    if len(rows) != pending:
        raise AssertionError(f"{len(rows)} rows, expected {pending}")
    del rows
    return {"us_per_msg": seconds / pending * 1e6, "seconds": seconds}


async def part_restart(names: list[str], pending: int, repeat: int) -> dict[str, Figures]:
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as directory:
        path = Path(directory) / "pending.db"
        print(f"  preparing a store file with {pending} scheduled messages", file=sys.stderr)
        start = time.perf_counter()
        await prepare_sqlite_file(path, pending)
        print(
            f"  prepared in {time.perf_counter() - start:.1f} s,"
            f" {path.stat().st_size / 1e6:.0f} MB",
            file=sys.stderr,
        )
        trials: dict[str, Trial] = {
            "restart_sqlite": lambda: trial_restart(path, pending),
            "raw_select": lambda: trial_raw_select(path, pending),
        }
        samples = await rounds_of({name: trials[name] for name in names}, repeat)
    results: dict[str, Figures] = {}
    for name in names:
        best = min(samples[name], key=lambda figures: figures["seconds"])
        row = results[name] = dict(best)
        row["median_seconds"] = best_and_median(samples[name], "seconds")[1]
    return results


# ------------------------------------------------------------------------ main


def ratios_of(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    return {
        f"{top} / {bottom} ({metric})": results[top][metric] / results[bottom][metric]
        for top, bottom, metric in RATIO_PAIRS
        if metric in results.get(top, {}) and metric in results.get(bottom, {})
    }


def check_targets(
    results: Mapping[str, Mapping[str, float]], counts: Mapping[str, int]
) -> list[dict[str, Any]]:
    verdicts = []
    for contender, metric, comparison, limit in TARGETS:
        if metric not in results.get(contender, {}):
            continue
        value = results[contender][metric]
        bound = float(counts[contender]) if limit == "all" else float(limit)
        met = value <= bound if comparison == "<=" else value == bound
        verdicts.append(
            {
                "contender": contender,
                "metric": metric,
                "comparison": comparison,
                "limit": bound,
                "value": value,
                "met": met,
            }
        )
    return verdicts


def print_targets(verdicts: Sequence[Mapping[str, Any]]) -> None:
    if not verdicts:
        return
    labels = [f"{v['contender']} {v['metric']}" for v in verdicts]
    width = max(len(label) for label in labels)
    print(f"{'target'.ljust(width)}  {'value':>9}  limit")
    for label, verdict in zip(labels, verdicts, strict=True):
        limit = f"{verdict['comparison']} {format_value(verdict['limit'])}"
        state = "met" if verdict["met"] else "BELOW TARGET"
        print(f"{label.ljust(width)}  {format_value(verdict['value']):>9}  {limit:<10}  {state}")
    print()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--messages", type=int, default=None, help="parts 1-2 (default 100000, quick 5000)"
    )
    parser.add_argument(
        "--lateness-messages", type=int, default=None, help="part 3 (default 2000, quick 500)"
    )
    parser.add_argument(
        "--lateness-window",
        type=float,
        default=None,
        help="part 3, seconds the due instants spread over (default 2, quick 0.5)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=None,
        help="part 4, due within one second (default 100000, quick 10000)",
    )
    parser.add_argument(
        "--pending",
        type=int,
        default=None,
        help="part 5, pending messages in SQLite (default 1000000, quick 100000)",
    )


async def main(args: argparse.Namespace) -> None:
    quick = args.quick
    count = args.messages or (5_000 if quick else 100_000)
    late_count = args.lateness_messages or (500 if quick else 2_000)
    late_window = args.lateness_window or (0.5 if quick else 2.0)
    burst = args.burst or (10_000 if quick else 100_000)
    pending = args.pending or (100_000 if quick else 1_000_000)
    names = selected(args, CONTENDERS)
    started = time.perf_counter()
    results: dict[str, Figures] = {}
    rounds: dict[str, list[Figures]] = {}
    if part := [n for n in names if n in CALLS]:
        results.update(await part_calls(part, make_delays(count, 7), args.repeat))
    if part := [n for n in names if n in LATENESS]:
        offsets = make_delays(late_count, 11, 0.0, late_window)
        results.update(await part_real_time(part, LATENESS, offsets, args.repeat, "p99_ms", rounds))
    if part := [n for n in names if n in BURST]:
        offsets = make_delays(burst, 13, 0.0, BURST_WINDOW)
        results.update(
            await part_real_time(part, BURST, offsets, args.repeat, "max_lag_ms", rounds)
        )
    if part := [n for n in names if n in RESTART]:
        results.update(await part_restart(part, pending, args.repeat))
    ratios = ratios_of(results)
    counts = {name: burst for name in BURST}
    verdicts = check_targets(results, counts)
    params = {
        "messages": count,
        "lateness_messages": late_count,
        "lateness_window_s": late_window,
        "burst": burst,
        "burst_window_s": BURST_WINDOW,
        "pending": pending,
        "payload": repr(PAYLOAD),
        "delays_s": [MIN_DELAY, MAX_DELAY],
        "repeat": args.repeat,
        "quick": args.quick,
        "metric": "us_per_msg: parts 1-2 wall time per publish call; 3-4 process CPU time per"
        " delivered message; 5 restart seconds per pending message",
        "ratios": "tidings / reference of the metric named in brackets",
        "targets": verdicts,
        "rounds": rounds,
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    sections = (
        (
            f"1-2 MemoryStore: {count} pending, delays {MIN_DELAY:g}-{MAX_DELAY:g} s,"
            f" best of {args.repeat}",
            CALLS,
            ["us_per_msg", "median_us_per_msg", "cancel_us", "median_cancel_us", "bytes_per_msg"],
        ),
        (
            f"3 lateness: {late_count} due across {late_window:g} s, median p99 of"
            f" {args.repeat} round(s)",
            LATENESS,
            ["min_ms", "p50_ms", "p99_ms", "max_ms", "early", "delivered", "us_per_msg"],
        ),
        (
            f"4 burst: {burst} due within {BURST_WINDOW:g} s, median max_lag of"
            f" {args.repeat} round(s)",
            BURST,
            [
                "delivered",
                "drain_s",
                "max_lag_ms",
                "idle_lag_ms",
                "p99_ms",
                "max_ms",
                "early",
                "us_per_msg",
            ],
        ),
        (
            f"5 restart: {pending} pending in SQLite, best of {args.repeat}",
            RESTART,
            [
                "seconds",
                "median_seconds",
                "open_s",
                "load_s",
                "publish_ms",
                "close_s",
                "us_per_msg",
            ],
        ),
    )
    for title, members, metrics in sections:
        rows = {name: results[name] for name in members if name in results}
        if rows:
            print_table(
                f"{NAME} {title}, loop {params['loop']}",
                rows,
                {name: value for name, value in ratios.items() if name.split(" / ")[0] in members},
                metrics=metrics,
            )
    print_targets(verdicts)
    print(
        "ratios are tidings / reference: > 1 costs more or is later;"
        f" total {format_value(params['seconds'])} s"
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=3)
    run(lambda: main(arguments))
