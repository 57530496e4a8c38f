"""`tidings bench`: load-test a running Tidings server over its websocket protocol.

    tidings bench ws://127.0.0.1:8081/ --app-id APP --api-key KEY --subscribers 1000

The run, in order:

1. `--publishers` connections authenticate (here, in this process), which also
   checks the URL and the credentials before anything else starts;
2. `--workers` processes ("spawn") each open their share of the `--subscribers`
   connections (at most `--connect-concurrency` being opened at once), which
   authenticate and subscribe to `--channel` (with `--selector`); a worker
   reports "ready" when all of its are subscribed, and the run fails unless
   every subscriber is;
3. the publishers publish `{"t": <time.time_ns() at send>, "pad": "xx…"}`
   (`--size` bytes), `--rate` messages/s in all on a schedule (or as fast as the
   answers come, with at most `--window` unanswered per publisher), for
   `--duration` seconds or `--messages` messages, after `--warmup` seconds of
   messages that are counted apart;
4. up to `--drain` seconds for the deliveries still in flight (less when all
   expected ones arrived, or none came for DRAIN_IDLE seconds);
5. the workers send their final counters and close their connections.

Figures: deliveries/s is measured from the first publish to the last delivery;
latency is the receive time minus `t`, per delivery; drops are the expected
deliveries (published messages whose headers the selector matches, times the
subscribers) minus those received; disconnects are subscriber connections the
server closed during the run, by close code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import msgspec
from rich.console import Console
from rich.live import Live
from rich.table import Table
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from broker import SelectorError
from broker.selectors import compile_selector
from transports import bench_worker
from transports.bench_worker import (
    BenchError,
    Report,
    Target,
    WorkerConfig,
    encode,
    open_connection,
    percentile,
    raise_open_files_limit,
    run_loop,
)

DEFAULT_DURATION = 10.0
DISPLAY_INTERVAL = 0.25  # seconds between refreshes of the live display
ANSWER_TIMEOUT = 10.0  # seconds a publisher waits for an answer before giving up
DRAIN_IDLE = 2.0  # seconds without a new delivery that end the drain early
MAX_BACKLOG = 1.0  # seconds of sends a paced publisher may catch up in a burst
STOP_TIMEOUT = 10.0  # seconds the workers have to report and close at the end
POLL = 0.05  # seconds between checks while waiting on the workers

EPILOG = (
    "Latency is the receive time minus the send time each message carries "
    "(time.time_ns()); between machines it assumes their clocks are synchronized "
    "(NTP, PTP). Exit status: 0 when the run completed, 1 when it failed (cannot "
    "connect, subscribers refused, a worker or publisher lost), 2 for bad arguments."
)


# -- arguments ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's options."""
    parser.description = (
        "Load-test a running Tidings server: N websocket subscribers spread over worker "
        "processes, P publishers at a target rate or flat out; reports deliveries/s, "
        "publish-to-receive latency (p50/p99/p999), drops and disconnects."
    )
    parser.epilog = EPILOG
    parser.add_argument("url", type=_ws_url, help="websocket URL, e.g. ws://127.0.0.1:8081/")
    parser.add_argument("--app-id", required=True, metavar="ID", help="application id")
    parser.add_argument(
        "--api-key", required=True, metavar="KEY", help="API key of the application"
    )
    parser.add_argument(
        "--user-token", metavar="TOKEN", help="authenticate every connection as this user"
    )
    parser.add_argument(
        "--subscribers",
        type=_integer(0),
        metavar="N",
        default=100,
        help="subscriber connections (100)",
    )
    parser.add_argument(
        "--publishers", type=_integer(1), metavar="P", default=1, help="publisher connections (1)"
    )
    parser.add_argument(
        "--rate",
        type=_number(0),
        metavar="PER_S",
        default=0.0,
        help="messages/s over all publishers; 0 (default) publishes flat out",
    )
    until = parser.add_mutually_exclusive_group()
    until.add_argument(
        "--duration",
        type=_number(0, strict=True),
        metavar="SECONDS",
        help=f"seconds of publishing (default {DEFAULT_DURATION:g})",
    )
    until.add_argument(
        "--messages",
        type=_integer(1),
        metavar="M",
        help="publish this many messages in all, then stop",
    )
    parser.add_argument(
        "--size",
        type=_integer(0),
        metavar="BYTES",
        default=100,
        help="bytes of each message's JSON payload (100; at least its send time)",
    )
    parser.add_argument("--channel", default="bench", metavar="NAME", help="channel to use (bench)")
    parser.add_argument(
        "--selector",
        type=_selector,
        metavar="SQL",
        help="subscribers' selector (SQL-92 over headers)",
    )
    parser.add_argument(
        "--headers",
        type=_headers,
        action="append",
        metavar="JSON",
        help="headers of the published messages, a JSON object; repeat the option to "
        "cycle through several (a publisher's n-th message gets the n-th, modulo)",
    )
    parser.add_argument(
        "--workers",
        type=_integer(1),
        metavar="N",
        default=os.cpu_count() or 1,
        help="subscriber processes (default: the number of CPUs)",
    )
    parser.add_argument(
        "--window",
        type=_integer(1),
        metavar="N",
        default=100,
        help="unanswered publishes per publisher (100)",
    )
    parser.add_argument(
        "--warmup",
        type=_number(0),
        metavar="SECONDS",
        default=0.0,
        help="seconds of publishing before measuring; those messages are not counted (0)",
    )
    parser.add_argument(
        "--drain",
        type=_number(0),
        metavar="SECONDS",
        default=5.0,
        help="at most this many seconds to wait for deliveries after the last publish (5)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_number(0, strict=True),
        metavar="SECONDS",
        default=10.0,
        help="seconds to connect, authenticate and subscribe one connection (10)",
    )
    parser.add_argument(
        "--connect-concurrency",
        type=_integer(1),
        metavar="N",
        default=100,
        help="subscriber connections being opened at once, over all workers (100)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object at the end, no display"
    )


def _ws_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not a ws:// or wss:// URL: {text!r}")
    return text


def _integer(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}: {text}")
        return value

    return parse


def _number(low: float, *, strict: bool = False) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            bound = "more than" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {low:g}: {text}")
        return value

    return parse


def _selector(text: str) -> str:
    try:
        compile_selector(text)
    except SelectorError as exc:
        raise argparse.ArgumentTypeError(f"invalid selector: {exc.message}") from None
    return text


def _headers(text: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(
        value_ is None or isinstance(value_, str | int | float | bool) for value_ in value.values()
    ):
        raise argparse.ArgumentTypeError(
            "headers must be a JSON object of strings, numbers, booleans or null"
        )
    return value


@dataclass(frozen=True)
class Settings:
    target: Target
    subscribers: int
    publishers: int
    rate: float
    duration: float | None
    messages: int | None
    size: int
    channel: str
    selector: str | None
    headers: tuple[dict[str, Any] | None, ...]
    workers: int
    window: int
    warmup: float
    drain: float
    connect_concurrency: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        duration = args.duration
        if duration is None and args.messages is None:
            duration = DEFAULT_DURATION
        return cls(
            target=Target(
                args.url, args.app_id, args.api_key, args.user_token, args.connect_timeout
            ),
            subscribers=args.subscribers,
            publishers=args.publishers,
            rate=args.rate,
            duration=duration,
            messages=args.messages,
            size=args.size,
            channel=args.channel,
            selector=args.selector,
            headers=tuple(args.headers) if args.headers else (None,),
            workers=min(args.workers, args.subscribers),
            window=args.window,
            warmup=args.warmup,
            drain=args.drain,
            connect_concurrency=args.connect_concurrency,
        )

    def matching(self) -> list[bool]:
        """Whether the subscribers' selector matches each header set."""
        selector = compile_selector(self.selector)
        return [selector.matches(headers or {}) for headers in self.headers]


# -- results --------------------------------------------------------------------------------------


@dataclass
class Result:
    url: str
    subscribers: int
    publishers: int
    workers: int
    rate: float
    size: int
    duration_s: float
    published: int
    publish_errors: int
    publish_per_s: float
    deliveries: int
    deliveries_per_s: float
    frames: int  # frames the subscribers received: deliveries / frames is the server's batching
    expected_deliveries: int
    drops: int
    disconnects: dict[int, int]
    latency_ms: dict[str, float | None]
    error: str | None = None  # why the run counts as failed, if it does

    def to_json(self) -> bytes:
        data = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("disconnects", "error")
        }
        data["disconnects"] = {str(code): n for code, n in sorted(self.disconnects.items())}
        data["error"] = self.error
        return encode(data)


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


# -- publishers -----------------------------------------------------------------------------------

_PAYLOAD_OVERHEAD = len(encode({"t": time.time_ns(), "pad": ""}))


def publish_frames(settings: Settings) -> list[tuple[bytes, bytes, bytes]]:
    """Per header set: the frame up to the send time, its end, and its end for warm-up."""
    pad = b"x" * max(0, settings.size - _PAYLOAD_OVERHEAD)
    frames = []
    for headers in settings.headers:
        op: dict[str, Any] = {"op": "publish", "channel": settings.channel}
        if headers is not None:
            op["headers"] = headers
        head = encode(op)[:-1] + b',"message":{"t":'
        frames.append((head, b',"pad":"' + pad + b'"}}', b',"w":true,"pad":"' + pad + b'"}}'))
    return frames


class _Plan:
    """When the publishers measure from and stop; shared by all of them."""

    def __init__(self, settings: Settings, start: float) -> None:
        self.measure_at = start + settings.warmup
        self.end = None if settings.duration is None else self.measure_at + settings.duration
        self.interrupted = False


class Publisher:
    """One publisher connection: pipelined publishes, answers counted in order."""

    WARM = -1  # the in-flight tag of a warm-up message

    def __init__(
        self, ws: ClientConnection, frames: list[tuple[bytes, bytes, bytes]], window: int
    ) -> None:
        self.ws = ws
        self.frames = frames
        self.window = window
        self.inflight: deque[int] = deque()  # header-set index (or WARM) per unanswered publish
        self.sent = 0  # measured publishes sent
        self.published = [0] * len(frames)  # measured `published` answers, per header set
        self.warm_published = 0
        self.errors = 0
        self.first_error: str | None = None
        self.last_answer_ns = 0
        self.lost: str | None = None  # why the connection ended early
        self.closing = False
        self.room = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        decode = bench_worker.decode_events
        inflight = self.inflight
        try:
            while True:
                data = await self.ws.recv(decode=False)
                now = time.time_ns()
                events = decode(data)
                for event in events if isinstance(events, list) else (events,):
                    kind = event.event
                    if not inflight or kind not in ("published", "error"):
                        continue
                    tag = inflight.popleft()
                    if kind == "error":
                        self.errors += 1
                        if self.first_error is None:
                            self.first_error = f"error {event.code}: {event.message}"
                    elif tag >= 0:
                        self.published[tag] += 1
                    else:
                        self.warm_published += 1
                self.last_answer_ns = now
                if len(inflight) < self.window:
                    self.room.set()
                if not inflight:
                    self.idle.set()
        except ConnectionClosed as exc:
            if not self.closing:
                self.lost = f"publisher connection {bench_worker.closed_reason(exc)}"
        except msgspec.DecodeError as exc:
            self.lost = f"publisher got a frame it cannot read: {exc}"
        finally:
            self.room.set()
            self.idle.set()

    async def run(self, plan: _Plan, quota: int | None, rate: float) -> None:
        """Publish until the plan's end or `quota` measured messages; wait for the answers."""
        loop = asyncio.get_running_loop()
        clock = time.time_ns
        ws, frames, inflight, window = self.ws, self.frames, self.inflight, self.window
        interval = 1 / rate if rate else 0.0
        next_at = loop.time()
        count = 0
        while self.lost is None and not plan.interrupted:
            now = loop.time()
            if plan.end is not None and now >= plan.end:
                break
            warm = now < plan.measure_at
            if not warm and quota is not None and self.sent >= quota:
                break
            if interval:
                if now < next_at:
                    wake = next_at if plan.end is None else min(next_at, plan.end)
                    await asyncio.sleep(wake - now)
                    continue
                next_at = max(next_at, now - MAX_BACKLOG) + interval
            if len(inflight) >= window:
                self.room.clear()
                try:
                    async with asyncio.timeout(ANSWER_TIMEOUT):
                        await self.room.wait()
                except TimeoutError:
                    self.lost = f"no answer to a publish within {ANSWER_TIMEOUT:g} s"
                continue
            index = count % len(frames)
            count += 1
            head, tail, warm_tail = frames[index]
            if warm:
                inflight.append(self.WARM)
                frame = head + b"%d" % clock() + warm_tail
            else:
                inflight.append(index)
                self.sent += 1
                frame = head + b"%d" % clock() + tail
            self.idle.clear()
            try:
                await ws.send(frame, text=True)
            except ConnectionClosed:
                break  # the reader says why
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANSWER_TIMEOUT):
                await self.idle.wait()
        if inflight and self.lost is None:
            self.lost = f"{len(inflight)} publishes unanswered after {ANSWER_TIMEOUT:g} s"

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bench_worker.CLOSE_TIMEOUT):
                await self.ws.close()
        self.ws.transport.abort()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


# -- workers --------------------------------------------------------------------------------------


class Workers:
    """The subscriber processes, and what they reported."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.stop_event = self.context.Event()
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.pipes: list[Connection] = []
        self.reports: dict[int, Report] = {}
        self.latency: dict[int, int] = {}
        self.opened: dict[int, int] = {}  # connections subscribed so far, while connecting
        self.failed: dict[int, int] = {}
        self.first_error: str | None = None
        self.ready: set[int] = set()
        self.done: set[int] = set()
        self.gone: set[int] = set()
        self.errors: list[str] = []
        self.stopping = False
        self.changed = asyncio.Event()  # set by every message (and end) of a worker

    def start(self) -> None:
        settings = self.settings
        count = settings.workers
        loop = asyncio.get_running_loop()
        concurrency = max(1, -(-settings.connect_concurrency // max(count, 1)))
        for index in range(count):
            share = settings.subscribers // count + (index < settings.subscribers % count)
            config = WorkerConfig(
                settings.target, index, share, settings.channel, settings.selector, concurrency
            )
            receiver, sender = self.context.Pipe(duplex=False)
            process = self.context.Process(
                target=bench_worker.run,
                args=(config, sender, self.stop_event),
                name=f"tidings-bench-{index}",
                daemon=True,
            )
            process.start()
            sender.close()
            self.processes.append(process)
            self.pipes.append(receiver)
            loop.add_reader(receiver.fileno(), self._readable, index, receiver)

    def _readable(self, index: int, pipe: Connection) -> None:
        self.changed.set()
        try:
            while pipe.poll():
                self._handle(pipe.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(pipe.fileno())
            self.gone.add(index)
            if index not in self.done and not self.errors:
                self.errors.append(f"worker process {index} exited unexpectedly")

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind, *rest = item
        if kind == "stats":
            report: Report = rest[0]
            self.reports[report.index] = report
            bench_worker.merge(self.latency, report.latency)
        elif kind == "progress":
            index, self.opened[index], self.failed[index] = rest
        elif kind == "ready":
            index, self.opened[index], self.failed[index], error = rest
            self.ready.add(index)
            if self.first_error is None:
                self.first_error = error
        elif kind == "done":
            self.done.add(rest[0])
        elif kind == "error":
            self.errors.append(f"worker process {rest[0]}: {rest[1]}")

    @property
    def connected(self) -> int:
        if len(self.reports) < len(self.processes):
            return sum(self.opened.values())
        return sum(report.connected for report in self.reports.values())

    @property
    def deliveries(self) -> int:
        return sum(report.deliveries for report in self.reports.values())

    @property
    def frames(self) -> int:
        return sum(report.frames for report in self.reports.values())

    @property
    def disconnects(self) -> dict[int, int]:
        total: Counter[int] = Counter()
        for report in self.reports.values():
            total.update(report.disconnects)
        return dict(total)

    @property
    def last_ns(self) -> int:
        return max((report.last_ns for report in self.reports.values()), default=0)

    @property
    def max_us(self) -> int:
        return max((report.max_us for report in self.reports.values()), default=0)

    async def wait_ready(self, run: _Run) -> None:
        while len(self.ready) < len(self.processes):
            if self.errors:
                raise BenchError(self.errors[0])
            if run.interrupts:
                raise BenchError("interrupted while the subscribers were connecting")
            self.changed.clear()
            await self.changed.wait()
        failed = sum(self.failed.values())
        if failed:
            raise BenchError(
                f"{failed} of {self.settings.subscribers} subscribers could not connect "
                f"and subscribe; the first: {self.first_error}"
            )

    async def stop(self) -> None:
        """Ask for the final reports and wait for them (then for the processes to end)."""
        self.stopping = True
        self.stop_event.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                while len(self.done | self.gone) < len(self.processes):
                    self.changed.clear()
                    await self.changed.wait()

    def shutdown(self) -> None:
        self.stop_event.set()
        loop = asyncio.get_running_loop()
        for index, pipe in enumerate(self.pipes):
            if index not in self.gone:
                loop.remove_reader(pipe.fileno())
            pipe.close()
        deadline = time.monotonic() + 2
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1)


# -- the run --------------------------------------------------------------------------------------


class _Run:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = Workers(settings)
        self.publishers: list[Publisher] = []
        self.matching = settings.matching()
        self.phase = "connecting"
        self.started = time.monotonic()
        self.start_ns = 0  # when measured publishing starts (time.time_ns())
        self.publish_end_ns = 0
        self.interrupts = 0
        self.plan: _Plan | None = None

    def interrupt(self) -> None:
        self.interrupts += 1
        self.workers.changed.set()
        if self.plan is not None:
            self.plan.interrupted = True

    @property
    def published(self) -> int:
        return sum(sum(p.published) for p in self.publishers)

    @property
    def publish_errors(self) -> int:
        return sum(p.errors for p in self.publishers)

    @property
    def expected(self) -> int:
        """Deliveries the published messages owe the subscribers."""
        matched = sum(
            count
            for publisher in self.publishers
            for count, match in zip(publisher.published, self.matching, strict=True)
            if match
        )
        return matched * self.settings.subscribers

    async def execute(self) -> Result:
        settings = self.settings
        frames = publish_frames(settings)
        connections = await asyncio.gather(
            *(open_connection(settings.target) for _ in range(settings.publishers)),
            return_exceptions=True,
        )
        opened = [ws for ws in connections if isinstance(ws, ClientConnection)]
        self.publishers = [Publisher(ws, frames, settings.window) for ws in opened]
        try:
            for outcome in connections:
                if isinstance(outcome, BaseException):
                    raise outcome
            return await self._measure()
        finally:
            await asyncio.gather(*(p.close() for p in self.publishers))

    async def _measure(self) -> Result:
        settings = self.settings
        loop = asyncio.get_running_loop()
        self.workers.start()
        try:
            await self.workers.wait_ready(self)
            self.phase = "warm-up" if settings.warmup else "publishing"
            start = loop.time()
            self.plan = plan = _Plan(settings, start)
            plan.interrupted = self.interrupts > 0
            self.start_ns = time.time_ns() + int(settings.warmup * 1e9)
            count = len(self.publishers)
            runs = []
            for index, publisher in enumerate(self.publishers):
                quota = None
                if settings.messages is not None:
                    quota = settings.messages // count + (index < settings.messages % count)
                runs.append(publisher.run(plan, quota, settings.rate / count))
            await asyncio.gather(*runs)
            self.publish_end_ns = max(
                [p.last_answer_ns for p in self.publishers] + [self.start_ns + 1]
            )
            self.phase = "draining"
            await self._drain()
            self.phase = "stopping"
            await self.workers.stop()
        finally:
            self.workers.shutdown()
        return self._result()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        interrupts = self.interrupts
        deadline = loop.time() + self.settings.drain
        seen, moved = self.workers.deliveries, loop.time()
        while loop.time() < deadline and self.interrupts <= interrupts:
            deliveries = self.workers.deliveries
            if deliveries >= self.expected or self.workers.errors:
                return
            if deliveries != seen:
                seen, moved = deliveries, loop.time()
            elif loop.time() - moved > DRAIN_IDLE:
                return
            await asyncio.sleep(POLL)

    def _result(self) -> Result:
        settings = self.settings
        workers = self.workers
        publishing = max(1e-9, (self.publish_end_ns - self.start_ns) / 1e9)
        delivering = max(publishing, (workers.last_ns - self.start_ns) / 1e9)
        published = self.published
        deliveries = workers.deliveries
        expected = self.expected
        max_us = workers.max_us if deliveries else None
        quantiles = {
            name: percentile(workers.latency, q)
            for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))
        }
        latency = {
            name: None if value is None or max_us is None else _ms(min(value, max_us))
            for name, value in quantiles.items()
        }
        latency["max"] = _ms(max_us)
        return Result(
            url=settings.target.url,
            subscribers=settings.subscribers,
            publishers=settings.publishers,
            workers=settings.workers,
            rate=settings.rate,
            size=settings.size,
            duration_s=round(publishing, 3),
            published=published,
            publish_errors=self.publish_errors,
            publish_per_s=round(published / publishing, 1),
            deliveries=deliveries,
            deliveries_per_s=round(deliveries / delivering, 1),
            frames=workers.frames,
            expected_deliveries=expected,
            drops=max(0, expected - deliveries),
            disconnects=workers.disconnects,
            latency_ms=latency,
            error=self._failure(),
        )

    def _failure(self) -> str | None:
        if self.workers.errors:
            return self.workers.errors[0]
        for publisher in self.publishers:
            if publisher.lost is not None:
                return publisher.lost
        if self.publish_errors and not self.published:
            first = next(p.first_error for p in self.publishers if p.first_error is not None)
            return f"every publish was refused: {first}"
        return None


# -- display --------------------------------------------------------------------------------------


class Display:
    """The live table on stderr, refreshed every DISPLAY_INTERVAL seconds."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.console = Console(stderr=True)
        self.live = Live(console=self.console, auto_refresh=False, transient=True)
        self.last: tuple[float, int, int] | None = None

    async def refresh(self) -> None:
        with self.live:
            while True:
                self.live.update(self.table(), refresh=True)
                await asyncio.sleep(DISPLAY_INTERVAL)

    def table(self) -> Table:
        run = self.run
        workers = run.workers
        settings = run.settings
        now = time.monotonic()
        published, deliveries = run.published, workers.deliveries
        publish_rate = delivery_rate = 0.0
        if self.last is not None and now > self.last[0]:
            elapsed = now - self.last[0]
            publish_rate = (published - self.last[1]) / elapsed
            delivery_rate = (deliveries - self.last[2]) / elapsed
        self.last = (now, published, deliveries)
        p50, p99 = (percentile(workers.latency, q) for q in (0.5, 0.99))
        table = Table(title=f"tidings bench {settings.target.url}", show_header=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        table.add_row("phase", run.phase)
        table.add_row("elapsed", f"{now - run.started:.1f} s")
        table.add_row("subscribers", f"{workers.connected:,} / {settings.subscribers:,}")
        table.add_row("published", f"{published:,}  ({publish_rate:,.0f}/s)")
        if run.publish_errors:
            table.add_row("publish errors", f"{run.publish_errors:,}")
        table.add_row("deliveries", f"{deliveries:,}  ({delivery_rate:,.0f}/s)")
        table.add_row("latency p50 / p99", f"{_fmt_ms(p50)} / {_fmt_ms(p99)} ms")
        table.add_row("not yet delivered", f"{max(0, run.expected - deliveries):,}")
        table.add_row("disconnects", _fmt_disconnects(workers.disconnects))
        return table


def _fmt_ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:,.2f}"


def _fmt_disconnects(disconnects: dict[int, int]) -> str:
    if not disconnects:
        return "0"
    return ", ".join(f"{n:,} × {code}" for code, n in sorted(disconnects.items()))


def print_summary(result: Result, console: Console) -> None:
    latency = result.latency_ms
    table = Table(title=f"tidings bench {result.url}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rate = f"{result.rate:,.0f}/s" if result.rate else "flat out"
    table.add_row(
        "setup",
        f"{_plural(result.subscribers, 'subscriber')} on {_plural(result.workers, 'worker')}, "
        f"{_plural(result.publishers, 'publisher')}, {rate}, {result.size} B",
    )
    table.add_row("publishing", f"{result.duration_s:.2f} s")
    table.add_row("published", f"{result.published:,}  ({result.publish_per_s:,.0f}/s)")
    table.add_row("publish errors", f"{result.publish_errors:,}")
    table.add_row("deliveries", f"{result.deliveries:,}")
    table.add_row("deliveries/s", f"{result.deliveries_per_s:,.0f}")
    if result.frames:
        per_frame = result.deliveries / result.frames
        table.add_row("frames", f"{result.frames:,}  ({per_frame:,.1f} messages each)")
    table.add_row("latency ms", " / ".join(f"{k} {_num(v)}" for k, v in latency.items()))
    table.add_row("drops", f"{result.drops:,} of {result.expected_deliveries:,}")
    table.add_row("disconnects", _fmt_disconnects(result.disconnects))
    console.print(table)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


# -- entry point ----------------------------------------------------------------------------------


async def _main(run: _Run, display: Display | None) -> Result:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, run.interrupt)
    showing = None if display is None else asyncio.create_task(display.refresh())
    try:
        return await run.execute()
    finally:
        if showing is not None:
            showing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await showing
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)


def main(args: argparse.Namespace) -> int:
    """Run `tidings bench`; the exit status (0 done, 1 failed)."""
    settings = Settings.from_args(args)
    raise_open_files_limit()
    run = _Run(settings)
    display = None if args.json else Display(run)
    try:
        result = run_loop(_main(run, display))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(result.to_json().decode() + "\n")
    else:
        print_summary(result, Console())
    if result.error is not None:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    return 0
