"""The subscriber side of `tidings bench`, and what it shares with the publisher side.

A worker process (multiprocessing, "spawn") holds its share of the subscriber
connections on its own event loop (uvloop when importable): each one a plain
`websockets` client connection that authenticates, subscribes, then only reads.
Per frame the work is one clock read and one typed msgspec decode (an event or
an array of events; only `messages[].message.t` / `.w` are kept); per message a
subtraction and a histogram increment. The worker sends its counters to the
parent through a pipe every REPORT_INTERVAL seconds (`Report`) and stops when
the parent sets the stop event.

Latency is kept in a log-bucket histogram (`bucket_of`): microseconds with 7
significant bits (under 1.6 % error), a few hundred keys whatever the run's
length, merged across workers by adding counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as StopEvent
from typing import Any, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from transports.ws_frames import PROTOCOL

REPORT_INTERVAL = 0.25  # seconds between a worker's reports to the parent
STOP_POLL = 0.05  # seconds between checks of the stop event
CLOSE_TIMEOUT = 2.0  # seconds for one close handshake at the end
NO_CLOSE_FRAME = 1006  # a connection that dropped without a close frame

T = TypeVar("T")


class BenchError(Exception):
    """The run cannot go on; the message says why, for the user."""


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect."""

    url: str
    app_id: str
    api_key: str
    user_token: str | None = None
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class WorkerConfig:
    target: Target
    index: int
    subscribers: int
    channel: str
    selector: str | None
    concurrency: int  # connections opened at once


@dataclass
class Report:
    """A worker's counters: totals since the start, except `latency` (since the last report)."""

    index: int
    connected: int = 0  # connections open now
    deliveries: int = 0  # measured messages received
    frames: int = 0  # frames received after subscribing
    warmup: int = 0  # warm-up messages received (not measured)
    latency: dict[int, int] = field(default_factory=dict)  # bucket -> count, since last report
    max_us: int = 0
    last_ns: int = 0  # time.time_ns() of the last frame with a measured message
    disconnects: dict[int, int] = field(default_factory=dict)  # close code -> connections
    unsubscribed: int = 0  # subscriptions the server ended (unsubscribed with a code)


# -- latency histogram ----------------------------------------------------------------------------

SIGNIFICANT_BITS = 7
_EXACT = 1 << SIGNIFICANT_BITS  # values under this have their own bucket


def bucket_of(us: int) -> int:
    """The bucket of a latency in microseconds; buckets grow with the value (1/64 of it)."""
    if us < _EXACT:
        return max(us, 0)
    shift = us.bit_length() - SIGNIFICANT_BITS
    return (shift << SIGNIFICANT_BITS) | (us >> shift)


def bucket_value(key: int) -> float:
    """The middle of a bucket, in microseconds."""
    if key < _EXACT:
        return float(key)
    shift = key >> SIGNIFICANT_BITS
    mantissa = key & (_EXACT - 1)
    low = mantissa << shift
    return low + ((1 << shift) - 1) / 2


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a histogram, in microseconds; None when empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, -(-int(q * total * 1_000_000) // 1_000_000))  # ceil without float drift
    seen = 0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= rank:
            return bucket_value(key)
    return bucket_value(max(histogram))  # pragma: no cover - rank <= total


def merge(into: dict[int, int], histogram: Mapping[int, int]) -> None:
    for key, count in histogram.items():
        into[key] = into.get(key, 0) + count


# -- frames ---------------------------------------------------------------------------------------


class Payload(msgspec.Struct):
    t: int = 0  # time.time_ns() when the publisher sent it
    w: bool = False  # a warm-up message: counted apart, no latency


class Delivery(msgspec.Struct):
    message: Payload


class Event(msgspec.Struct):
    event: str = ""
    messages: list[Delivery] | None = None
    code: int | None = None
    message: str | None = None


decode_events = msgspec.json.Decoder(Event | list[Event]).decode
_decode_any = msgspec.json.Decoder().decode
encode = msgspec.json.Encoder().encode


def events_of(data: bytes) -> list[Any]:
    """The events of a server frame, untyped (an object, or an array of them)."""
    decoded = _decode_any(data)
    items = decoded if isinstance(decoded, list) else [decoded]
    return [item for item in items if isinstance(item, dict)]


# -- connections ----------------------------------------------------------------------------------


async def open_connection(target: Target) -> ClientConnection:
    """Connect and authenticate within `connect_timeout`; BenchError saying what failed."""
    url = target.url
    try:
        async with asyncio.timeout(target.connect_timeout):
            ws = await connect(
                url,
                subprotocols=[PROTOCOL],
                compression=None,
                max_size=None,  # the server bounds its frames; a batch may be large
                open_timeout=None,  # the timeout above covers the handshake and auth
                ping_interval=None,  # the server pings; pongs are answered anyway
                close_timeout=CLOSE_TIMEOUT,
            )
            try:
                auth = {"op": "auth", "id": 1, "appId": target.app_id, "apiKey": target.api_key}
                if target.user_token is not None:
                    auth["userToken"] = target.user_token
                answer = await request(ws, auth)
            except BaseException:
                ws.transport.abort()
                raise
    except TimeoutError:
        raise BenchError(
            f"no answer from {url} within {target.connect_timeout:g} s (--connect-timeout)"
        ) from None
    except ConnectionClosed as exc:
        raise BenchError(f"{url} refused the connection: {closed_reason(exc)}") from None
    except OSError as exc:
        raise BenchError(f"cannot connect to {url}: {exc.strerror or exc}") from None
    except WebSocketException as exc:
        raise BenchError(f"websocket handshake with {url} failed: {exc}") from None
    if answer.get("event") != "authenticated":
        ws.transport.abort()
        raise BenchError(f"{url} did not authenticate: {_describe(answer)}")
    return ws


async def request(ws: ClientConnection, op: dict[str, Any]) -> dict[str, Any]:
    """Send an operation with an id and read frames until the event answering it."""
    await ws.send(encode(op), text=True)
    while True:
        for event in events_of(await ws.recv(decode=False)):
            if event.get("id") == op["id"]:
                return dict(event)


async def subscribe(ws: ClientConnection, channel: str, selector: str | None) -> None:
    op: dict[str, Any] = {"op": "subscribe", "id": 2, "channel": channel}
    if selector is not None:
        op["selector"] = selector
    answer = await request(ws, op)
    if answer.get("event") != "subscribed":
        raise BenchError(f"subscribe to {channel!r} refused: {_describe(answer)}")


def closed_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "closed without a close frame"
    return f"closed {exc.rcvd.code} {exc.rcvd.reason}".rstrip()


def _describe(event: Mapping[str, Any]) -> str:
    if event.get("event") == "error":
        return f"error {event.get('code')}: {event.get('message')}"
    return repr(dict(event))


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit now."""
    try:
        import resource  # noqa: PLC0415 - Unix only
    except ImportError:  # pragma: no cover - Windows
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    return soft


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# -- the worker process ---------------------------------------------------------------------------


def run(config: WorkerConfig, pipe: Connection, stop: StopEvent) -> None:
    """A worker process's entry point: connect, report "ready", count until stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the run ends
    raise_open_files_limit()
    try:
        run_loop(_Worker(config, pipe, stop).main())
    except Exception as exc:  # reported, so the parent can say what happened
        with contextlib.suppress(OSError):
            pipe.send(("error", config.index, f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


class _Worker:
    def __init__(self, config: WorkerConfig, pipe: Connection, stop: StopEvent) -> None:
        self.config = config
        self.pipe = pipe
        self.stop = stop
        self.stopping = False
        self.sockets: set[ClientConnection] = set()
        self.failed = 0
        self.first_error: str | None = None
        # Counters, written by the readers (one thread: no locks).
        self.deliveries = 0
        self.frames = 0
        self.warmup = 0
        self.latency: dict[int, int] = {}
        self.max_us = 0
        self.last_ns = 0
        self.disconnects: Counter[int] = Counter()
        self.unsubscribed = 0

    async def main(self) -> None:
        config = self.config
        gate = asyncio.Semaphore(config.concurrency)
        readers: list[asyncio.Task[None]] = []
        connecting = [
            asyncio.create_task(self._connect(gate, readers)) for _ in range(config.subscribers)
        ]
        while not all(task.done() for task in connecting):
            self.pipe.send(("progress", config.index, len(self.sockets), self.failed))
            await asyncio.wait(connecting, timeout=REPORT_INTERVAL)
            if self.stop.is_set() or not _parent_alive():
                break
        for task in connecting:
            task.cancel()
        await asyncio.gather(*connecting, return_exceptions=True)
        self.pipe.send(("ready", config.index, len(self.sockets), self.failed, self.first_error))
        ticks = 0
        while not self.stop.is_set():
            await asyncio.sleep(STOP_POLL)
            ticks += 1
            if ticks * STOP_POLL >= REPORT_INTERVAL:
                ticks = 0
                self.pipe.send(("stats", self.report()))
                if not _parent_alive():
                    break
        self.stopping = True
        self.pipe.send(("stats", self.report()))
        await self._close_all(readers)
        self.pipe.send(("done", config.index))

    def report(self) -> Report:
        latency, self.latency = self.latency, {}
        return Report(
            index=self.config.index,
            connected=len(self.sockets),
            deliveries=self.deliveries,
            frames=self.frames,
            warmup=self.warmup,
            latency=latency,
            max_us=self.max_us,
            last_ns=self.last_ns,
            disconnects=dict(self.disconnects),
            unsubscribed=self.unsubscribed,
        )

    async def _connect(self, gate: asyncio.Semaphore, readers: list[asyncio.Task[None]]) -> None:
        config = self.config
        async with gate:
            try:
                ws = await open_connection(config.target)
            except BenchError as exc:
                self._failed(str(exc))
                return
            try:
                async with asyncio.timeout(config.target.connect_timeout):
                    await subscribe(ws, config.channel, config.selector)
            except (BenchError, TimeoutError, ConnectionClosed) as exc:
                ws.transport.abort()
                self._failed(str(exc) or "no answer to subscribe within --connect-timeout")
                return
        self.sockets.add(ws)
        readers.append(asyncio.create_task(self._read(ws)))

    def _failed(self, error: str) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = error

    async def _read(self, ws: ClientConnection) -> None:
        recv = ws.recv
        decode = decode_events
        clock = time.time_ns
        try:
            while True:
                data = await recv(decode=False)
                now = clock()
                self.frames += 1
                try:
                    events = decode(data)
                except msgspec.DecodeError:
                    self._untyped(data, now)
                    continue
                if type(events) is list:
                    for event in events:
                        self._event(event, now)
                else:
                    self._event(events, now)
        except ConnectionClosed as exc:
            if not self.stopping:
                self.disconnects[exc.rcvd.code if exc.rcvd is not None else NO_CLOSE_FRAME] += 1
        finally:
            self.sockets.discard(ws)

    def _event(self, event: Event, now: int) -> None:
        messages = event.messages
        if messages is None:
            if event.event == "unsubscribed" and event.code is not None:
                self.unsubscribed += 1
            return
        latency = self.latency
        counted = 0
        longest = 0
        for delivery in messages:
            payload = delivery.message
            if payload.w:
                self.warmup += 1
                continue
            us = (now - payload.t) // 1000
            if us < _EXACT:
                key = us if us > 0 else 0
            else:
                shift = us.bit_length() - SIGNIFICANT_BITS
                key = (shift << SIGNIFICANT_BITS) | (us >> shift)
            longest = max(longest, us)
            latency[key] = latency.get(key, 0) + 1
            counted += 1
        if counted:
            self.deliveries += counted
            self.last_ns = now
            self.max_us = max(self.max_us, longest)

    def _untyped(self, data: bytes, now: int) -> None:
        """A frame the typed decoder refused: messages not from a bench publisher are skipped."""
        with contextlib.suppress(msgspec.DecodeError):
            for event in events_of(data):
                if event.get("event") != "messages":
                    continue
                payloads = [item.get("message") for item in event.get("messages") or () if item]
                typed = [
                    Delivery(Payload(p["t"], bool(p.get("w"))))
                    for p in payloads
                    if isinstance(p, dict) and type(p.get("t")) is int
                ]
                self._event(Event("messages", typed), now)

    async def _close_all(self, readers: list[asyncio.Task[None]]) -> None:
        sockets = list(self.sockets)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def close(ws: ClientConnection) -> None:
            async with gate:
                await ws.close()

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT * 2):
                await asyncio.gather(*(close(ws) for ws in sockets), return_exceptions=True)
        for ws in sockets:
            ws.transport.abort()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


def _parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()
