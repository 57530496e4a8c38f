"""Websocket fan-out through real servers: S subscribers x M messages, the same client for all.

Every server runs in its own process, listening on 127.0.0.1 on an ephemeral
port, and is stopped at the end (SIGTERM; SIGINT for nats-server, which exits
1 on SIGTERM). All S subscriber connections and
the one publisher connection live in this process, on one uvloop event loop
(the servers get the other core). The client is the same for every contender:
``_ws_client.WsClient``, a minimal ``asyncio.Protocol`` websocket client (HTTP/1.1
upgrade by hand, server frames parsed from the byte stream, masked client
frames, no compression). Per contender only what a frame *means* differs:

- ``tidings``: ``python -m transports.cli serve --port 0 --ws-port 0 --data-dir
  <tmp> --app-id BENCH --api-key bench-key``, protocol ``tidings.v1``
  (docs/PROTOCOL.md). A subscriber sends ``auth``, then ``subscribe`` to
  ``bench``, and is ready on ``subscribed``. Each server frame is decoded with
  one ``msgspec.json`` call (typed: only ``event``, ``messages[].message.t`` and
  error fields are kept; an event or an array of events); a ``messages`` event
  counts ``len(messages)``. The publisher sends ``publish`` operations, one per
  frame, pipelined, and counts the ``published`` answers.
- ``naive`` (the reference): a ``websockets`` (asyncio implementation) server on
  uvloop that, for every message its publisher connection (path ``/pub``)
  sends, calls ``websockets.broadcast(subscribers, message)`` once. A
  subscriber (path ``/sub``) is ready when the server's ``ready`` frame comes
  (sent once it is in the broadcast set); then every frame is one message, its
  payload decoded with one ``msgspec.json`` call. The publisher sends one frame
  per message; the protocol has no answer.
- ``nats``: nats-server's websocket listener (``websocket { no_tls: true }``),
  when ``nats-server`` is on PATH (skipped with a note otherwise). A subscriber
  answers the ``INFO`` with ``CONNECT {"verbose":false,...}``, ``SUB bench 1``
  and ``PING``, and is ready on ``PONG``. Frames are parsed as a byte stream
  (a ``MSG`` may be split across frames, several come in one); every
  ``MSG bench 1 <len>`` payload is decoded with one ``msgspec.json`` call; server
  ``PING``s are answered. The publisher sends ``PUB bench <len>`` operations,
  a burst per frame followed by a ``PING``, whose ``PONG`` acknowledges the burst.

So every contender's client does one ``msgspec`` decode per *frame* for tidings
(which batches messages into frames) and one per *message* for naive and nats,
the same typed ``{"t": int}`` extraction either way, plus one clock read per frame.

The payload is ``{"t": <perf_counter_ns at send>, "pad": "xx…"}``, ``--size``
bytes (100). The publisher sends bursts of ``--burst`` (16) messages per
``transport.write`` (one clock read per burst: the messages of a burst share
their ``t``) and yields to the loop after each burst. Pacing (``--pace``),
with ``--window`` W (256):

- ``deliveries`` (default, the same rule for every contender, whatever its
  protocol): a burst waits until sent x S - delivered <= W x S, i.e. the
  publisher is at most W messages ahead of the subscribers, counted together.
  Every server's queues stay bounded alike (tidings' ``maxPending`` is 1000).
- ``acks``: at most W messages without their protocol answer (tidings
  ``published``, nats burst ``PONG``); naive has none, so only TCP flow
  control bounds it. Here the answers travel through the same busy loops as
  the deliveries, and the result depends much on W (tidings with W = 64 makes
  small frames and costs ~3x the server CPU per delivery).

Metric: ``deliveries_per_s`` = S x M / (wall time from the first publish sent to
the last delivery received by the last subscriber), best of ``--repeat``
rounds (interleaved by ``best_of``; fresh connections every round, each server
process reused; one unmeasured warm-up round per contender first).
``publish_per_s``: M / (last burst written - first), in the best round.
``p50_ms`` / ``p99_ms``: per delivery, receive clock - ``t``, in the best
round. ``server_cpu_ns`` / ``client_cpu_ns``: CPU time per delivery over the
clocked part, least of the rounds (the server's: all threads, from
/proc/<pid>/task/*/schedstat; the client's: getrusage): which side is the
bottleneck. ``messages_per_frame``: deliveries / websocket messages that
carried any (naive: 1; shows how much a server batches). A round waits at most
``--timeout`` (60 s) for the deliveries;
``drops`` = deliveries that never came (most of any round), and connections
the server closed are reported, so a failing server shows rather than hangs.

``idle`` (its own contender, ``--only idle``): a fresh tidings server, warmed
by 20 connections that subscribe, receive one message and leave; then
``--idle-connections`` (10 000; 1 000 with ``--quick``) connections opened in
batches of ``--connect-batch`` (500), each authenticated and subscribed to
``bench`` (``connect_per_s``: how fast; a batch larger than the server's listen
backlog overflows it and waits for SYN retransmits). VmRSS of the server
process (/proc/<pid>/status) before and ~1 s after; ``bytes_per_connection`` =
(after - before) / connections, target <= 51 200. Then one message is published
and every idle connection must receive it (``received``; ``broadcast_ms``: from
publish to the last one). Measured once, whatever ``--repeat`` says.

Ratios are of ``deliveries_per_s``: tidings / naive (target >= 10) and
tidings / nats. Client and servers share the cores (2 here): only same-run
ratios mean much, and a client that is the bottleneck (see ``client_cpu_ns``)
understates the faster servers. RLIMIT_NOFILE is raised to its hard limit
first (the servers inherit it). ``--quick``: 50 subscribers x 100 messages, 1 000
idle connections, one round: a smoke test, its figures too small to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import msgspec
from _common import (
    best_of,
    compute_ratios,
    environment,
    format_value,
    parse_args,
    print_table,
    run,
    selected,
    write_results,
)
from _ws_client import OP_BINARY, WebsocketError, WsClient, connect

NAME = "ws_fanout"
CONTENDERS = ("tidings", "naive", "nats", "idle")
FANOUT = ("tidings", "naive", "nats")
METRIC = "deliveries_per_s"
RATIO_PAIRS = (("tidings", "naive"), ("tidings", "nats"))
TARGETS = {"tidings / naive": 10.0}
IDLE_TARGET = 51_200  # bytes per idle connection, at most
APP_ID = "BENCH"
API_KEY = "bench-key"
CHANNEL = "bench"
SUBPROTOCOL = "tidings.v1"
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
READY_TIMEOUT = 30.0
CONNECT_BATCH = 500  # connections opened at once (--connect-batch)
WARMUP = (100, 100)  # subscribers, messages of the unmeasured warm-up round
IDLE_WARMUP = 20
CPU_COLUMNS = ("server_cpu_ns", "client_cpu_ns")

NEVER = 1 << 62
PACES = ("deliveries", "acks")

clock = time.perf_counter_ns

# The reference: websockets' own server on uvloop, one broadcast() per message.
NAIVE_SERVER = r"""
import asyncio
import signal

import uvloop
from websockets.asyncio.server import broadcast, serve

subscribers = set()


async def handler(ws):
    if ws.request.path == "/pub":
        async for message in ws:
            broadcast(subscribers, message)
        return
    subscribers.add(ws)
    try:
        await ws.send("ready")
        await ws.wait_closed()
    finally:
        subscribers.discard(ws)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", 0, compression=None, ping_interval=None, backlog=4096
    ) as server:
        host, port = next(iter(server.sockets)).getsockname()[:2]
        print(f"listening ws={host}:{port}", flush=True)
        await stop


uvloop.run(main())
"""

NATS_CONFIG = """
host: 127.0.0.1
port: -1
websocket {
  host: 127.0.0.1
  port: -1
  no_tls: true
}
"""


# ------------------------------------------------------------------ wire formats


class Payload(msgspec.Struct, gc=False):
    t: int


class Delivery(msgspec.Struct, gc=False):
    message: Payload


class Event(msgspec.Struct, gc=False):
    """A tidings.v1 server event, only the fields the benchmark reads."""

    event: str
    messages: list[Delivery] = []
    code: int | None = None
    message: str | None = None  # an error's text


decode_events = msgspec.json.Decoder(Event | list[Event]).decode
decode_payload = msgspec.json.Decoder(Payload).decode

AUTH = msgspec.json.encode({"op": "auth", "appId": APP_ID, "apiKey": API_KEY})
SUBSCRIBE = msgspec.json.encode({"op": "subscribe", "channel": CHANNEL})
PUBLISH = b'{"op":"publish","channel":"' + CHANNEL.encode() + b'","message":%s}'
NATS_CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'
NATS_SUB = b"SUB " + CHANNEL.encode() + b" 1\r\n"
NATS_PUB = b"PUB " + CHANNEL.encode() + b" %d\r\n%s\r\n"
PAYLOAD = b'{"t":%d,"pad":"%s"}'


def pad_for(size: int) -> bytes:
    """The pad that makes ``PAYLOAD`` ``size`` bytes long with a clock reading of today's width."""
    return b"x" * max(0, size - len(PAYLOAD % (clock(), b"")))


# ------------------------------------------------------------------ subscribers


class Tally:
    """What the subscribers of one round received, and when the last one was done."""

    def __init__(self, subscribers: int, expected: int) -> None:
        self.subscribers = subscribers
        self.expected = expected  # messages each subscriber must get
        self.delivered = 0  # by all subscribers together
        self.frames = 0  # websocket messages that carried deliveries
        self.wake_at = NEVER  # deliveries the publisher waits for (pacing)
        self._waiter: asyncio.Future[None] | None = None
        self.waiting = subscribers  # subscribers not yet done (complete or gone)
        self.lost = 0  # connections that closed before they were complete
        self.errors: list[str] = []
        self.latencies: list[int] = []  # ns, receive clock - payload t, one per delivery
        self.last_ns = 0  # clock of the latest delivery
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0 and not self.finished.done():
            self.finished.set_result(None)
            self.wake()

    def wait_delivered(self, count: int) -> asyncio.Future[None] | None:
        """A future done once ``count`` deliveries have come (None: they have, or never will)."""
        if self.delivered >= count or self.finished.done():
            return None
        self.wake_at = count
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def wake(self) -> None:
        self.wake_at = NEVER
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Subscriber(WsClient):
    """A subscribed connection; the protocol subclasses count what frames carry."""

    PATH = "/"
    SUBPROTOCOL: str | None = None

    def __init__(self, host: str, port: int, tally: Tally) -> None:
        super().__init__(host, port, self.PATH, self.SUBPROTOCOL)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.subscribed = False
        self.tally = tally
        self.expected = tally.expected
        self.count = 0
        self.complete = False
        self.record = tally.latencies.append
        self.record_all = tally.latencies.extend

    def _ready(self) -> None:
        self.subscribed = True
        if not self.ready.done():
            self.ready.set_result(None)

    def _error(self, why: str) -> None:
        self.tally.errors.append(why)
        if not self.ready.done():
            self.ready.set_exception(WebsocketError(why))
            self.ready.exception()

    def _got(self, count: int, now: int) -> None:
        """``count`` messages delivered at ``now``."""
        self.count += count
        tally = self.tally
        tally.last_ns = now
        tally.delivered += count
        tally.frames += 1
        if tally.delivered >= tally.wake_at:
            tally.wake()
        if self.count >= self.expected and not self.complete:
            self.complete = True
            tally.done()

    def lost(self) -> None:
        if not self.ready.done():
            why = f"closed before subscribed: {self.close_code} {self.close_reason}".strip()
            self.ready.set_exception(WebsocketError(why))
            self.ready.exception()  # whoever awaits it raises; unawaited, it is no log noise
        if not self.complete:
            self.complete = True
            self.tally.lost += 1
            self.tally.done()


class TidingsSubscriber(Subscriber):
    """tidings.v1: one msgspec decode per frame (an event or an array of events)."""

    SUBPROTOCOL = SUBPROTOCOL

    def handshake_done(self) -> None:
        self.send(AUTH)

    def message_received(self, payload: bytes) -> None:
        now = clock()
        decoded = decode_events(payload)
        delivered = 0
        for event in decoded if type(decoded) is list else (decoded,):
            if event.event == "messages":
                messages = event.messages
                self.record_all([now - d.message.t for d in messages])
                delivered += len(messages)
            elif event.event == "authenticated":
                self.send(SUBSCRIBE)
            elif event.event == "subscribed":
                self._ready()
            elif event.event in ("error", "unsubscribed"):
                self._error(f"tidings {event.event}: {event.code} {event.message}")
        if delivered:
            self._got(delivered, now)


class NaiveSubscriber(Subscriber):
    """websockets.broadcast: one frame per message, its payload decoded by msgspec."""

    PATH = "/sub"

    def message_received(self, payload: bytes) -> None:
        now = clock()
        if self.subscribed:
            self.record(now - decode_payload(payload).t)
            self._got(1, now)
        elif payload == b"ready":
            self._ready()
        else:
            self._error(f"naive: unexpected first frame {payload[:80]!r}")


class NatsSubscriber(Subscriber):
    """NATS over websocket: frames are a byte stream of protocol lines; each MSG payload
    decoded by msgspec."""

    def __init__(self, host: str, port: int, tally: Tally) -> None:
        super().__init__(host, port, tally)
        self._stream = b""

    def message_received(self, payload: bytes) -> None:
        now = clock()
        buffer = self._stream + payload if self._stream else payload
        size = len(buffer)
        pos = 0
        count = 0
        record = self.record
        while pos < size:
            eol = buffer.find(b"\r\n", pos)
            if eol < 0:
                break
            if buffer.startswith(b"MSG ", pos):
                start = eol + 2
                stop = start + int(buffer[buffer.rfind(b" ", pos, eol) + 1 : eol])
                if stop + 2 > size:
                    break
                record(now - decode_payload(buffer[start:stop]).t)
                count += 1
                pos = stop + 2
            else:
                self._control(buffer[pos:eol])
                pos = eol + 2
        self._stream = buffer[pos:] if pos < size else b""
        if count:
            self._got(count, now)

    def _control(self, line: bytes) -> None:
        if line == b"PING":
            self.send(b"PONG\r\n", OP_BINARY)
        elif line == b"PONG":
            self._ready()
        elif line.startswith(b"INFO "):
            if not self.subscribed:
                self.send(NATS_CONNECT + NATS_SUB + b"PING\r\n", OP_BINARY)
        elif line.startswith(b"-ERR"):
            self._error(f"nats: {line.decode(errors='replace')}")


# ------------------------------------------------------------------- publishers


class Publisher(WsClient):
    """One publishing connection; ``window`` bounds the messages not yet acknowledged
    (0: the protocol has no acknowledgement)."""

    PATH = "/"
    SUBPROTOCOL: str | None = None

    def __init__(self, host: str, port: int, window: int) -> None:
        super().__init__(host, port, self.PATH, self.SUBPROTOCOL)
        self.window = window
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.unacked = 0
        self.error: str | None = None
        self._room: asyncio.Future[None] | None = None

    def publish(self, payloads: list[bytes]) -> None:
        raise NotImplementedError

    def _acked(self, count: int) -> None:
        self.unacked -= count
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def _fail(self, why: str) -> None:
        self.error = why
        if not self.ready.done():
            self.ready.set_exception(WebsocketError(why))
            self.ready.exception()
        self._acked(0)

    def lost(self) -> None:
        if self.error is None:
            self._fail(f"publisher closed: {self.close_code} {self.close_reason}".strip())

    async def room(self, count: int) -> None:
        """Wait until ``count`` more messages fit in the window (and the socket takes them)."""
        while self.window and self.unacked + count > self.window and self.error is None:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        await self.drained()
        if self.error is not None:
            raise WebsocketError(self.error)

    async def settled(self) -> None:
        """Wait until every message sent has been acknowledged (naive: nothing to wait for)."""
        while self.unacked > 0 and self.error is None:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        if self.error is not None:
            raise WebsocketError(self.error)


class TidingsPublisher(Publisher):
    SUBPROTOCOL = SUBPROTOCOL

    def handshake_done(self) -> None:
        self.send(AUTH)

    def publish(self, payloads: list[bytes]) -> None:
        self.send_many([PUBLISH % p for p in payloads])
        self.unacked += len(payloads)

    def message_received(self, payload: bytes) -> None:
        decoded = decode_events(payload)
        acked = 0
        for event in decoded if type(decoded) is list else (decoded,):
            if event.event == "published":
                acked += 1
            elif event.event == "authenticated":
                self.ready.set_result(None)
            elif event.event == "error":
                self._fail(f"tidings publish error: {event.code} {event.message}")
        if acked:
            self._acked(acked)


class NaivePublisher(Publisher):
    PATH = "/pub"

    def handshake_done(self) -> None:
        self.ready.set_result(None)

    def publish(self, payloads: list[bytes]) -> None:
        self.send_many(payloads)

    def message_received(self, payload: bytes) -> None:
        self._fail(f"naive server sent the publisher {payload[:80]!r}")


class NatsPublisher(Publisher):
    def __init__(self, host: str, port: int, window: int) -> None:
        super().__init__(host, port, window)
        self._stream = b""
        self._bursts: collections.deque[int] = collections.deque()

    def publish(self, payloads: list[bytes]) -> None:
        self.send(b"".join([NATS_PUB % (len(p), p) for p in payloads]) + b"PING\r\n", OP_BINARY)
        self._bursts.append(len(payloads))
        self.unacked += len(payloads)

    def message_received(self, payload: bytes) -> None:
        lines = (self._stream + payload).split(b"\r\n")
        self._stream = lines.pop()
        for line in lines:
            if line == b"PONG":
                if self.ready.done():
                    self._acked(self._bursts.popleft())
                else:
                    self.ready.set_result(None)
            elif line == b"PING":
                self.send(b"PONG\r\n", OP_BINARY)
            elif line.startswith(b"INFO ") and not self.ready.done():
                self.send(NATS_CONNECT + b"PING\r\n", OP_BINARY)
            elif line.startswith(b"-ERR"):
                self._fail(f"nats: {line.decode(errors='replace')}")


SUBSCRIBERS: dict[str, type[Subscriber]] = {
    "tidings": TidingsSubscriber,
    "naive": NaiveSubscriber,
    "nats": NatsSubscriber,
}
PUBLISHERS: dict[str, type[Publisher]] = {
    "tidings": TidingsPublisher,
    "naive": NaivePublisher,
    "nats": NatsPublisher,
}

C = TypeVar("C", Subscriber, Publisher)


async def open_one(factory: Callable[[], C], host: str, port: int) -> C:
    client = await connect(factory, host, port)
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await client.ready
    except BaseException:
        client.abort()
        raise
    return client


async def open_many(
    factory: Callable[[], C], host: str, port: int, count: int, batch: int = CONNECT_BATCH
) -> list[C]:
    """``count`` ready connections, opened ``batch`` at a time (the listen backlog)."""
    clients: list[C] = []
    try:
        for first in range(0, count, batch):
            size = min(batch, count - first)
            opened = await asyncio.gather(
                *(open_one(factory, host, port) for _ in range(size)), return_exceptions=True
            )
            clients += [c for c in opened if not isinstance(c, BaseException)]
            errors = [c for c in opened if isinstance(c, BaseException)]
            if errors:
                raise errors[0]
    except BaseException:
        for client in clients:
            client.abort()
        raise
    return clients


async def close_all(clients: Sequence[WsClient]) -> None:
    for client in clients:
        client.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*(c.closed for c in clients))


# ---------------------------------------------------------------------- servers


@dataclass
class Server:
    """A server subprocess reached at ``host:port`` (its websocket listener)."""

    name: str
    process: asyncio.subprocess.Process
    host: str
    port: int
    log_path: Path
    drain: asyncio.Task[None] | None = None
    stop_signal: signal.Signals = signal.SIGTERM  # nats-server exits 0 on SIGINT, 1 on SIGTERM

    def subscriber(self, tally: Tally) -> Callable[[], Subscriber]:
        kind = SUBSCRIBERS[self.name]
        return lambda: kind(self.host, self.port, tally)

    def publisher(self, window: int) -> Callable[[], Publisher]:
        kind = PUBLISHERS[self.name]
        return lambda: kind(self.host, self.port, window)


def tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


async def _copy(stream: asyncio.StreamReader, log_path: Path) -> None:
    """Keep reading a server's stdout into its log, so the pipe never fills."""
    with log_path.open("ab") as log:
        while chunk := await stream.read(65_536):
            log.write(chunk)


async def start_server(
    name: str, command: Sequence[str], log_path: Path, ready: re.Pattern[str], merge: bool = False
) -> Server | str:
    """Start ``command``; wait for a stdout line matching ``ready`` (group 1: ``HOST:PORT``).

    Returns the server, or a sentence saying why it has no websocket listener (the
    line matched with ``disabled``). ``merge``: the server logs its ready line on stderr.
    """
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merge else log,
            cwd=ROOT,
        )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while line := (await process.stdout.readline()).decode(errors="replace"):
                seen.append(line)
                match = ready.search(line)
                if match is None:
                    continue
                address = match.group(1)
                if address == "disabled":
                    await _stop(process)
                    return f"{name}: the server has no websocket listener ({line.strip()})"
                host, _, port = address.rpartition(":")
                with log_path.open("ab") as log:
                    log.write("".join(seen).encode())
                drain = asyncio.create_task(_copy(process.stdout, log_path))
                return Server(name, process, host, int(port), log_path, drain)
    except TimeoutError:
        pass
    await _stop(process)
    raise SystemExit(
        f"{name} did not start (exit {process.returncode}):\n{''.join(seen)[-2000:]}"
        f"{tail(log_path)}"
    )


async def _stop(process: asyncio.subprocess.Process, stop_signal: int = signal.SIGTERM) -> bool:
    """Signal, wait (kill after ``STOP_TIMEOUT``); True if it had to be killed."""
    if process.returncode is not None:
        return False
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(stop_signal)
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return True
    return False


async def stop_server(server: Server) -> str | None:
    """SIGTERM (SIGINT for nats), wait (kill after ``STOP_TIMEOUT``); what went wrong, if any."""
    process = server.process
    killed = await _stop(process, server.stop_signal)
    if server.drain is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.drain, 5)
    if killed:
        return f"{server.name} did not stop within {STOP_TIMEOUT:g} s of SIGTERM"
    if process.returncode not in (0, -signal.SIGTERM):
        return f"{server.name} exited {process.returncode}:\n{tail(server.log_path)}"
    return None


def tidings_command(data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "transports.cli",
        "serve",
        "--port",
        "0",
        "--ws-port",
        "0",
        "--data-dir",
        str(data_dir),
        "--app-id",
        APP_ID,
        "--api-key",
        API_KEY,
    ]


async def start_tidings(tmp: Path, label: str) -> Server | str:
    return await start_server(
        "tidings",
        tidings_command(tmp / f"data-{label}"),
        tmp / f"tidings-{label}.log",
        re.compile(r"listening http=\S+ ws=(\S+)"),
    )


async def start_naive(tmp: Path) -> Server | str:
    return await start_server(
        "naive",
        [sys.executable, "-c", NAIVE_SERVER],
        tmp / "naive.log",
        re.compile(r"listening ws=(\S+)"),
    )


async def start_nats(tmp: Path) -> Server | str:
    binary = shutil.which("nats-server")
    if binary is None:
        return "nats: nats-server is not on PATH"
    config = tmp / "nats.conf"
    config.write_text(NATS_CONFIG)
    server = await start_server(
        "nats",
        [binary, "-c", str(config)],
        tmp / "nats.log",
        re.compile(r"Listening for websocket clients on ws://(\S+)"),
        merge=True,
    )
    if isinstance(server, Server):
        server.stop_signal = signal.SIGINT
    return server


# ------------------------------------------------------------------ measurement


def process_cpu(pid: int) -> dict[str, int]:
    """CPU ns used so far by each live thread of process ``pid`` (Linux schedstat)."""
    used: dict[str, int] = {}
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            used[path.parent.name] = int(path.read_text().split()[0])
    return used


def cpu_since(before: dict[str, int], after: dict[str, int]) -> int:
    """CPU ns between two readings; a thread started since counts whole."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items())


def own_cpu() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def rss(pid: int) -> int:
    """Resident set size of process ``pid``, bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest rank: the smallest value with at least ``fraction`` of all at or below it."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


@dataclass
class Round:
    seconds: float
    delivered: int
    expected: int
    lost: int
    deliveries_per_s: float
    publish_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_ns: float
    client_cpu_ns: float
    messages_per_frame: float
    errors: list[str] = field(default_factory=list)


@dataclass
class Sent:
    """What the publisher has sent so far: messages, clock of the first and last burst."""

    count: int = 0
    first: int = 0
    last: int = 0

    @property
    def per_s(self) -> float:
        return self.count / ((self.last - self.first) / 1e9) if self.last > self.first else 0.0


async def publish(
    publisher: Publisher,
    tally: Tally,
    count: int,
    pad: bytes,
    burst: int,
    window: int = 0,
    sent: Sent | None = None,
) -> Sent:
    """Send ``count`` messages in bursts, recording progress in ``sent``.

    ``window`` > 0: a burst waits until the messages sent before it, less ``window``, have
    reached every subscriber (counted together: sent x S - delivered <= window x S).
    The publisher's own window (``acks`` pacing) is applied by ``publisher.room``.
    """
    sent = Sent() if sent is None else sent
    subscribers = tally.subscribers
    while sent.count < count:
        size = min(burst, count - sent.count)
        if window:
            waiter = tally.wait_delivered((sent.count + size - window) * subscribers)
            if waiter is not None:
                await waiter
        await publisher.room(size)
        now = clock()
        sent.first = sent.first or now
        sent.last = now
        publisher.publish([PAYLOAD % (now, pad)] * size)
        sent.count += size
        await asyncio.sleep(0)
    return sent


class Bench:
    def __init__(self, args: argparse.Namespace, subscribers: int, messages: int) -> None:
        self.subscribers = subscribers
        self.messages = messages
        self.window: int = args.window
        self.pace: str = args.pace
        self.connect_batch: int = args.connect_batch
        self.burst: int = args.burst
        self.timeout: float = args.timeout
        self.pad = pad_for(args.size)
        self.rounds: dict[str, list[Round]] = collections.defaultdict(list)

    def trial(
        self, server: Server, subscribers: int, messages: int, keep: bool = True
    ) -> Callable[[], Awaitable[float]]:
        async def measure() -> float:
            result = await self.fanout(server, subscribers, messages)
            if keep:
                self.rounds[server.name].append(result)
                print(
                    f"    {format_value(result.deliveries_per_s)} deliveries/s, publish"
                    f" {format_value(result.publish_per_s)}/s, CPU ns per delivery: server"
                    f" {result.server_cpu_ns:.0f}, client {result.client_cpu_ns:.0f};"
                    f" {result.messages_per_frame:.1f} messages per frame",
                    file=sys.stderr,
                )
            if result.errors or result.delivered != result.expected:
                print(
                    f"  {server.name}: {result.delivered}/{result.expected} delivered,"
                    f" {result.lost} connections lost; {result.errors[:3]}",
                    file=sys.stderr,
                )
            return result.seconds

        return measure

    async def fanout(self, server: Server, subscribers: int, messages: int) -> Round:
        tally = Tally(subscribers, messages)
        subs = await open_many(
            server.subscriber(tally), server.host, server.port, subscribers, self.connect_batch
        )
        clients: list[WsClient] = list(subs)
        try:
            acks_window = self.window if self.pace == "acks" else 0
            pub = await open_one(server.publisher(acks_window), server.host, server.port)
            clients.append(pub)
            gc.collect()
            await asyncio.sleep(0.2)  # the server settles what the last round's closes left
            pid = server.process.pid
            server_cpu, client_cpu = process_cpu(pid), own_cpu()
            delivered_window = self.window if self.pace == "deliveries" else 0
            sent = Sent()
            publishing = asyncio.create_task(
                publish(pub, tally, messages, self.pad, self.burst, delivered_window, sent)
            )
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(tally.finished)
            except TimeoutError:
                tally.errors.append(f"timed out after {self.timeout:g} s")
                publishing.cancel()
            # What counts is what had come by now (finished, or timed out).
            server_used = cpu_since(server_cpu, process_cpu(pid))
            client_used = own_cpu() - client_cpu
            delivered = sum(s.count for s in subs)
            last_ns = tally.last_ns
            latencies = tally.latencies[:delivered]
            lost, frames = tally.lost, tally.frames  # before our own closes count as lost
            try:
                async with asyncio.timeout(5):
                    await publishing
                    await pub.settled()  # every publish was answered (tidings, nats)
            except asyncio.CancelledError:
                if not publishing.cancelled():
                    raise
            except (TimeoutError, WebsocketError) as exc:
                publishing.cancel()
                tally.errors.append(f"publisher: {exc!r}")
        finally:
            await close_all(clients)
        expected = subscribers * messages
        first = sent.first
        seconds = (last_ns - first) / 1e9 if first and last_ns > first else 0.0
        latencies.sort()
        return Round(
            seconds=seconds or float("inf"),
            delivered=delivered,
            expected=expected,
            lost=lost,
            deliveries_per_s=delivered / seconds if seconds else 0.0,
            publish_per_s=sent.per_s,
            p50_ms=percentile(latencies, 0.5) / 1e6 if latencies else 0.0,
            p99_ms=percentile(latencies, 0.99) / 1e6 if latencies else 0.0,
            server_cpu_ns=server_used / max(delivered, 1),
            client_cpu_ns=client_used / max(delivered, 1),
            messages_per_frame=delivered / max(frames, 1),
            errors=tally.errors,
        )

    def results(self, name: str) -> dict[str, float]:
        rounds = self.rounds[name]
        best = max(rounds, key=lambda r: r.deliveries_per_s)
        return {
            METRIC: best.deliveries_per_s,
            "median_deliveries_per_s": statistics.median(r.deliveries_per_s for r in rounds),
            "publish_per_s": best.publish_per_s,
            "p50_ms": best.p50_ms,
            "p99_ms": best.p99_ms,
            "server_cpu_ns": min(r.server_cpu_ns for r in rounds),
            "client_cpu_ns": min(r.client_cpu_ns for r in rounds),
            "messages_per_frame": best.messages_per_frame,
            "drops": max(r.expected - r.delivered for r in rounds),
            "lost_connections": max(r.lost for r in rounds),
        }


async def idle(
    server: Server, connections: int, seconds: float, batch: int = CONNECT_BATCH
) -> dict[str, float]:
    """RSS per idle subscribed connection, then one message to all of them."""
    pid = server.process.pid
    warm = Tally(IDLE_WARMUP, 1)
    subs = await open_many(server.subscriber(warm), server.host, server.port, IDLE_WARMUP)
    pub = await open_one(server.publisher(256), server.host, server.port)
    await publish(pub, warm, 1, pad_for(100), 1)
    async with asyncio.timeout(seconds):
        await warm.finished
    await close_all([*subs, pub])
    await asyncio.sleep(1.0)
    before = rss(pid)
    tally = Tally(connections, 1)
    started = time.perf_counter()
    clients: list[WsClient] = []
    subs = await open_many(server.subscriber(tally), server.host, server.port, connections, batch)
    connect_seconds = time.perf_counter() - started
    clients += subs
    try:
        gc.collect()
        await asyncio.sleep(1.0)
        after = rss(pid)
        pub = await open_one(server.publisher(256), server.host, server.port)
        clients.append(pub)
        first = (await publish(pub, tally, 1, pad_for(100), 1)).first
        try:
            async with asyncio.timeout(seconds):
                await asyncio.shield(tally.finished)
        except TimeoutError:
            print(f"  idle: timed out after {seconds:g} s", file=sys.stderr)
        received = sum(1 for s in subs if s.count >= 1)
        broadcast_ms = (tally.last_ns - first) / 1e6 if tally.last_ns > first else 0.0
    finally:
        await close_all(clients)
    if tally.errors:
        print(f"  idle: {tally.errors[:3]}", file=sys.stderr)
    return {
        "connections": connections,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "bytes_per_connection": (after - before) / connections,
        "received": received,
        "connect_per_s": connections / connect_seconds,
        "broadcast_ms": broadcast_ms,
    }


# ------------------------------------------------------------------------ main


def raise_open_files() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (servers started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subscribers", type=int, default=None, help="per round (default 1000, quick 50)"
    )
    parser.add_argument(
        "--messages", type=int, default=None, help="per round (default 1000, quick 100)"
    )
    parser.add_argument("--size", type=int, default=100, help="payload bytes (100)")
    parser.add_argument(
        "--window",
        type=int,
        default=256,
        help="messages the publisher may be ahead, see --pace (256)",
    )
    parser.add_argument(
        "--pace",
        choices=PACES,
        default="deliveries",
        help="deliveries: sent x S - delivered <= window x S, the same for every contender;"
        " acks: unanswered publishes (tidings published, nats PONG) <= window, naive unbounded"
        " (deliveries)",
    )
    parser.add_argument("--burst", type=int, default=16, help="messages per publisher write (16)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for deliveries (60)"
    )
    parser.add_argument(
        "--connect-batch",
        type=int,
        default=CONNECT_BATCH,
        help=f"connections opened at once ({CONNECT_BATCH})",
    )
    parser.add_argument(
        "--idle-connections",
        type=int,
        default=None,
        help="idle contender's connections (default 10000, quick 1000)",
    )


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    open_files = raise_open_files()
    subscribers = args.subscribers or (50 if args.quick else 1_000)
    messages = args.messages or (100 if args.quick else 1_000)
    idle_connections = args.idle_connections or (1_000 if args.quick else 10_000)
    names = selected(args, CONTENDERS)
    if "idle" in names and idle_connections + 100 > open_files:
        raise SystemExit(f"--idle-connections {idle_connections} needs more than {open_files} fds")
    bench = Bench(args, subscribers, messages)
    skipped: dict[str, str] = {}
    problems: list[str] = []
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tidings-ws-bench-") as tmp_name:
        tmp = Path(tmp_name)
        starters: dict[str, Callable[[], Awaitable[Server | str]]] = {
            "tidings": lambda: start_tidings(tmp, "fanout"),
            "naive": lambda: start_naive(tmp),
            "nats": lambda: start_nats(tmp),
        }
        servers: dict[str, Server] = {}
        try:
            for name in [n for n in FANOUT if n in names]:
                started_server = await starters[name]()
                if isinstance(started_server, str):
                    skipped[name] = started_server
                    print(f"skipping {started_server}", file=sys.stderr)
                else:
                    servers[name] = started_server
            for server in servers.values():  # warm-up: not measured
                await bench.trial(
                    server, min(subscribers, WARMUP[0]), min(messages, WARMUP[1]), keep=False
                )()
            if servers:
                await best_of(
                    {name: bench.trial(s, subscribers, messages) for name, s in servers.items()},
                    args.repeat,
                )
        finally:
            for server in servers.values():
                problem = await stop_server(server)
                if problem:
                    problems.append(problem)
        if "idle" in names:
            idle_server = await start_tidings(tmp, "idle")
            if isinstance(idle_server, str):
                skipped["idle"] = idle_server
                print(f"skipping {idle_server}", file=sys.stderr)
            else:
                try:
                    results["idle"] = await idle(
                        idle_server, idle_connections, args.timeout, args.connect_batch
                    )
                finally:
                    problem = await stop_server(idle_server)
                    if problem:
                        problems.append(problem)
    if problems:
        raise SystemExit("\n".join(problems))
    for name in servers:
        results[name] = bench.results(name)
    fanout_results = {name: row for name, row in results.items() if name != "idle"}
    ratios = compute_ratios(fanout_results, METRIC, RATIO_PAIRS)
    params = {
        "subscribers": subscribers,
        "messages": messages,
        "payload_bytes": len(PAYLOAD % (clock(), bench.pad)),
        "window": args.window,
        "pace": args.pace,
        "burst": args.burst,
        "timeout_s": args.timeout,
        "idle_connections": idle_connections,
        "connect_batch": args.connect_batch,
        "repeat": args.repeat,
        "quick": args.quick,
        "warmup": f"{min(subscribers, WARMUP[0])} subscribers x {min(messages, WARMUP[1])}",
        "servers": {
            "tidings": " ".join(["python", *tidings_command(Path("<tmp>"))[1:]]),
            "naive": "websockets.asyncio.server.serve on uvloop, broadcast() per message",
            "nats": "nats-server -c <websocket no_tls on 127.0.0.1>",
        },
        "websockets": _version("websockets"),
        "msgspec": msgspec.__version__,
        "nats_server": _nats_version(),
        "client": "_ws_client.WsClient: raw asyncio.Protocol websocket client, same for all;"
        " all subscribers and the publisher on one uvloop loop in the benchmark process",
        "metric": f"{METRIC} = subscribers x messages / wall time (first publish sent to last"
        " delivery), best round; p50_ms / p99_ms per delivery (receive - send clock) in the best"
        " round; server_cpu_ns / client_cpu_ns = least CPU time per delivery of a round",
        "ratios": f"of {METRIC}, same run (client and servers share the cores)",
        "targets": {**TARGETS, "idle bytes_per_connection <=": IDLE_TARGET},
        "skipped": skipped,
        "rlimit_nofile": open_files,
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    notes = [f"ratios are of {METRIC}: below 1 is slower"]
    notes += [f"skipped {why}" for why in skipped.values()]
    if fanout_results:
        print_table(
            f"{NAME}: {subscribers} subscribers x {messages} messages of {params['payload_bytes']}"
            f" B, loop {params['loop']}, best of {args.repeat}",
            fanout_results,
            ratios,
            targets=TARGETS,
            metrics=[
                METRIC,
                "median_deliveries_per_s",
                "publish_per_s",
                "p50_ms",
                "p99_ms",
                *CPU_COLUMNS,
                "messages_per_frame",
                "drops",
                "lost_connections",
            ],
            notes=notes,
        )
    if "idle" in results:
        per_connection = results["idle"]["bytes_per_connection"]
        verdict = "met" if per_connection <= IDLE_TARGET else "ABOVE TARGET"
        print_table(
            f"{NAME} idle: {idle_connections} subscribed tidings connections, server RSS",
            {"idle": results["idle"]},
            {},
            notes=[
                f"bytes_per_connection {format_value(per_connection)}, target <= {IDLE_TARGET}:"
                f" {verdict}",
                f"received {format_value(results['idle']['received'])} of {idle_connections}",
            ],
        )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _nats_version() -> str:
    binary = shutil.which("nats-server")
    if binary is None:
        return "not installed"
    import subprocess  # noqa: PLC0415

    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=3)
    run(lambda: main(arguments))
