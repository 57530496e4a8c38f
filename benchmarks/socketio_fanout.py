"""Socket.io fan-out: S socket.io subscribers x M messages through tidings' Backendless
endpoint, against tidings' native websocket path and python-socketio's own server.

The measurement is ws_fanout.py's, and so is most of the code: this script imports
it (``Tally``, the ``tidings`` contender's subscriber and publisher, ``publish``,
the server start / stop helpers, the CPU readings, ``Bench``), with
``_common`` and ``_ws_client``, rather than copying them. Every server runs in its
own process, listening on 127.0.0.1 on an ephemeral port, and is stopped at the
end (SIGTERM). All S subscriber connections and the one publisher connection live
in this process, on one uvloop event loop, and use the same minimal websocket
client (``_ws_client.WsClient``). Contenders:

- ``socketio``: tidings' socket.io v4 endpoint (transports/engineio.py and
  transports/backendless_rt.py), served by ``python -m transports.cli serve --port 0
  --ws-port 0 --data-dir <tmp> --app-id BENCH --api-key bench-key`` on the HTTP
  port. A subscriber opens ``/BENCH/?EIO=4&transport=websocket&apiKey=bench-key``,
  answers the engine.io open (``0{...}``) with the namespace connect ``40/BENCH,``,
  then sends ``42/BENCH,["SUB_ON",{"id":"s1","name":"PUB_SUB_MESSAGES",
  "options":{"channel":"bench"}}]`` and is ready on ``SUB_READY``. Every message
  then comes as its own frame (engine.io allows no other over a websocket),
  ``42/BENCH,["SUB_RES",{"id":"s1","data":{...,"message":<published>,...}}]``,
  decoded with one typed ``msgspec.json`` call (only ``data.message.t`` kept).
  Server pings (``2``) are answered (``3``).
- ``native``: the same tidings process, protocol ``tidings.v1`` on its
  ``--ws-port``, exactly ws_fanout's ``tidings`` contender (its
  ``TidingsSubscriber``: auth, subscribe, one decode per frame of batched messages).
- ``python-socketio`` (the reference): python-socketio's ``AsyncServer`` as an ASGI
  app under uvicorn on uvloop (``ws="websockets-sansio"``, per-message deflate off,
  uvicorn's websocket pings off: engine.io has its own), at the same engine.io path
  and namespace. A ``SUB_ON`` enters the client's room for the channel and answers
  ``SUB_READY``; for each ``PUB`` event the publisher sends, the app emits
  ``SUB_RES`` once to that room (python-socketio encodes the packet once and queues
  it for every member), with the fields of tidings' message (``messageId``,
  ``timestamp``, ``message``, ``headers``, ...), so the frames are alike. The
  subscribers are the ``socketio`` contender's, unchanged. Its engine.io ping timeout
  is ``--timeout`` instead of 20 s: with up to W x S emits queued (a task each) its
  loop falls tens of seconds behind, and the default heartbeat then closed live
  connections (the publisher, in one round), which ends a round without measuring
  its throughput.

Publishing: both tidings contenders publish exactly as ws_fanout's ``tidings``
contender does, with its ``TidingsPublisher`` on the native websocket port
(``publish`` operations, pipelined, ``published`` answers counted), so only the
subscriber path differs between them. The python-socketio publisher is a
socket.io client on the same path sending one ``42/BENCH,["PUB",<payload>]``
frame per message (no acknowledgement).

The payload is ``{"t": <perf_counter_ns at send>, "pad": "xx…"}``, ``--size``
bytes (100), sent in bursts of ``--burst`` (16) per ``transport.write``. Pacing is
ws_fanout's ``deliveries`` rule, the same for every contender: a burst waits until
sent x S - delivered <= W x S (``--window`` W, 256), i.e. the publisher is at most
W messages ahead of the subscribers, counted together (tidings' ``maxPending`` is
1000, so no subscription overflows).

Metrics, as ws_fanout's: ``deliveries_per_s`` = S x M / (wall time from the first
publish sent to the last delivery received), best of ``--repeat`` rounds
(interleaved by ``best_of``; fresh connections every round, server processes
reused; one unmeasured warm-up round per contender first). ``publish_per_s``,
``p50_ms`` / ``p99_ms`` (per delivery, receive clock - ``t``, best round),
``server_cpu_ns`` / ``client_cpu_ns`` (CPU time per delivery, least of the rounds;
the server's from /proc/<pid>/task/*/schedstat: the tidings process for both of its
contenders), ``messages_per_frame`` (1 for both socket.io contenders, by protocol),
``drops`` and ``lost_connections``. One more, since a socket.io frame carries one
message whatever the server does: ``messages_per_write`` = deliveries / the
server's write system calls over the clocked part (/proc/<pid>/io ``syscw``, all
threads; in the best round): how many deliveries a server puts in one
``transport.write``, its batching. A round waits at most ``--timeout`` (180 s:
python-socketio takes ~30-70 s for 1000 x 1000 here); after a round's connections
are closed the server is given up to 30 s to go idle (under 10 ms of CPU in 100 ms),
so that a server still working off a round does not take the next contender's cores.

Ratios are of ``deliveries_per_s``, same run: socketio / native (what the socket.io
framing costs tidings) and socketio / python-socketio. Client and servers share the
cores (2 here): only same-run ratios mean much, and a client that is the
bottleneck (see ``client_cpu_ns``) understates the faster servers: a socket.io
subscriber parses and decodes one frame per message, so the client's CPU per
delivery is several times the native one's, and ``server_cpu_ns`` is the fairer
measure of tidings' two paths. RLIMIT_NOFILE is
raised to its hard limit first (the servers inherit it). ``--quick``: 50
subscribers x 100 messages, one round: a smoke test, its figures too small to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import msgspec
from _common import (
    best_of,
    compute_ratios,
    environment,
    parse_args,
    print_table,
    run,
    selected,
    write_results,
)
from _ws_client import WebsocketError, WsClient
from ws_fanout import (
    API_KEY,
    APP_ID,
    CHANNEL,
    CPU_COLUMNS,
    PAYLOAD,
    WARMUP,
    Bench,
    Delivery,
    Publisher,
    Round,
    Sent,
    Server,
    Subscriber,
    Tally,
    TidingsPublisher,
    TidingsSubscriber,
    _version,
    clock,
    close_all,
    cpu_since,
    open_many,
    open_one,
    own_cpu,
    percentile,
    process_cpu,
    publish,
    raise_open_files,
    start_server,
    stop_server,
    tidings_command,
)

NAME = "socketio_fanout"
CONTENDERS = ("socketio", "native", "python-socketio")
METRIC = "deliveries_per_s"
RATIO_PAIRS = (("socketio", "native"), ("socketio", "python-socketio"))
NAMESPACE = "/" + APP_ID
SUB_ID = "s1"
TIMEOUT = 180.0  # s for a round's deliveries: python-socketio needs ~30-70 s for 1000 x 1000
SETTLE_TIMEOUT = 30.0  # s a server may take to go idle after a round's connections closed

# The reference: python-socketio's AsyncServer under uvicorn (uvloop, websockets-sansio,
# no deflate), one room emit per published message.
PYTHON_SOCKETIO_SERVER = r"""
import asyncio
import socket
import sys
import time
import uuid

import socketio
import uvicorn
import uvloop

APP, CHANNEL, PING_TIMEOUT = sys.argv[1], sys.argv[2], float(sys.argv[3])
NAMESPACE = "/" + APP
# Its default heartbeat but for the ping timeout: with W x S emits queued (a task each) the
# loop falls behind by tens of seconds, and a 20 s timeout closes live connections.
sio = socketio.AsyncServer(async_mode="asgi", ping_timeout=PING_TIMEOUT)


@sio.on("connect", namespace=NAMESPACE)
async def connect(sid, environ, auth):
    return True


@sio.on("SUB_ON", namespace=NAMESPACE)
async def sub_on(sid, request):
    await sio.enter_room(sid, request["options"]["channel"], namespace=NAMESPACE)
    await sio.emit("SUB_READY", {"id": request["id"]}, to=sid, namespace=NAMESPACE)


@sio.on("PUB", namespace=NAMESPACE)
async def pub(sid, message):
    # The fields of tidings' delivered message, so that the frames are alike; every
    # subscriber asked with the same id, so one packet serves the whole room.
    data = {
        "messageId": f"message:{uuid.uuid4()}",
        "timestamp": int(time.time() * 1000),
        "message": message,
        "publisherId": None,
        "headers": {},
        "subtopic": None,
        "publishAt": 0,
        "repeatEvery": 0,
        "repeatExpiresAt": 0,
        "publishPolicy": None,
        "pushSinglecast": None,
        "pushBroadcast": None,
        "templateValues": None,
        "query": None,
    }
    await sio.emit("SUB_RES", {"id": "s1", "data": data}, room=CHANNEL, namespace=NAMESPACE)


async def main():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    server = uvicorn.Server(
        uvicorn.Config(
            socketio.ASGIApp(sio, socketio_path=APP),
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_graceful_shutdown=5,
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            ws_ping_interval=None,
        )
    )
    serving = asyncio.create_task(server.serve([sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()[:2]
    print(f"listening ws={host}:{port}", flush=True)
    await serving


uvloop.run(main())
"""


# ------------------------------------------------------------------ wire formats


class SioError(msgspec.Struct, gc=False):
    code: int | None = None
    message: str | None = None


class SioReply(msgspec.Struct, gc=False):
    """The argument of SUB_READY / SUB_RES, only the fields the benchmark reads."""

    id: str = ""
    data: Delivery | None = None  # data.message.t
    error: SioError | None = None


decode_sio_event = msgspec.json.Decoder(tuple[str, SioReply]).decode

SIO_PATH = f"/{APP_ID}/?EIO=4&transport=websocket&apiKey={API_KEY}"
SIO_CONNECT = f"40{NAMESPACE},".encode()  # engine.io message + socket.io connect
SIO_CONNECTED = SIO_CONNECT  # the server's answer starts the same: 40/BENCH,{"sid":...}
SIO_CONNECT_ERROR = f"44{NAMESPACE},".encode()
SIO_EVENT = f"42{NAMESPACE},".encode()
SIO_EVENT_SIZE = len(SIO_EVENT)
SIO_SUB_ON = SIO_EVENT + msgspec.json.encode(
    [
        "SUB_ON",
        {"id": SUB_ID, "name": "PUB_SUB_MESSAGES", "options": {"channel": CHANNEL}},
    ]
)
SIO_PUB = SIO_EVENT + b'["PUB",%s]'
EIO_PING, EIO_PONG = b"2", b"3"


# ------------------------------------------------------------------ subscribers


class SocketioSubscriber(Subscriber):
    """socket.io v4 over a websocket: one frame per message, one msgspec decode per frame."""

    PATH = SIO_PATH

    def message_received(self, payload: bytes) -> None:
        now = clock()
        if payload.startswith(SIO_EVENT):
            name, reply = decode_sio_event(memoryview(payload)[SIO_EVENT_SIZE:])
            data = reply.data
            if data is not None:
                self.record(now - data.message.t)
                self._got(1, now)
            elif name == "SUB_READY":
                self._ready()
            else:
                error = reply.error
                why = f"{error.code} {error.message}" if error is not None else "no data"
                self._error(f"socket.io {name}: {why}")
        elif payload == EIO_PING:
            self.send(EIO_PONG)
        elif payload.startswith(SIO_CONNECTED):
            self.send(SIO_SUB_ON)
        elif payload[:1] == b"0":  # engine.io open: {"sid":...,"pingInterval":...}
            self.send(SIO_CONNECT)
        elif payload.startswith(SIO_CONNECT_ERROR):
            self._error(f"socket.io connect refused: {payload[:200]!r}")
        else:
            self._error(f"socket.io: unexpected packet {payload[:80]!r}")


class SocketioPublisher(Publisher):
    """A socket.io client emitting ``PUB`` events, one frame each; no acknowledgement."""

    PATH = SIO_PATH

    def publish(self, payloads: list[bytes]) -> None:
        self.send_many([SIO_PUB % p for p in payloads])

    def message_received(self, payload: bytes) -> None:
        if payload == EIO_PING:
            self.send(EIO_PONG)
        elif payload.startswith(SIO_CONNECTED):
            if not self.ready.done():
                self.ready.set_result(None)
        elif payload[:1] == b"0":
            self.send(SIO_CONNECT)
        else:
            self._fail(f"python-socketio sent the publisher {payload[:80]!r}")


# ---------------------------------------------------------------------- servers


@dataclass
class Target:
    """A contender: subscribers on ``sub_port``, the publisher on ``pub_port``, CPU read
    from ``server``'s process."""

    name: str
    server: Server
    host: str
    sub_port: int
    pub_port: int
    subscriber: type[Subscriber]
    publisher: type[Publisher]


class ReadyLine:
    """tidings' ready line, as ``start_server`` reads it (``search``; group 1: the ws
    address), also keeping the HTTP port of that line (``http_port``)."""

    PATTERN = re.compile(r"listening http=\S+ ws=(\S+)")
    HTTP = re.compile(r"listening http=\S+:(\d+) ws=")

    def __init__(self) -> None:
        self.http_port = 0

    def search(self, line: str) -> re.Match[str] | None:
        http = self.HTTP.search(line)
        if http is not None:
            self.http_port = int(http.group(1))
        return self.PATTERN.search(line)


async def start_tidings(tmp: Path) -> tuple[Server, int]:
    """One tidings process for both its contenders: (server on the ws port, HTTP port)."""
    ready = ReadyLine()
    server = await start_server(
        "tidings",
        tidings_command(tmp / "data"),
        tmp / "tidings.log",
        ready,  # type: ignore[arg-type]  # what start_server uses of a pattern: search()
    )
    if isinstance(server, str):
        raise SystemExit(server)
    return server, ready.http_port


async def start_python_socketio(tmp: Path, ping_timeout: float) -> Server:
    server = await start_server(
        "python-socketio",
        [sys.executable, "-c", PYTHON_SOCKETIO_SERVER, APP_ID, CHANNEL, str(ping_timeout)],
        tmp / "python-socketio.log",
        re.compile(r"listening ws=(\S+)"),
    )
    if isinstance(server, str):
        raise SystemExit(server)
    return server


# ------------------------------------------------------------------ measurement


async def settle(pid: int, seconds: float = SETTLE_TIMEOUT) -> None:
    """Wait until server ``pid`` is idle (under 10 ms of CPU in 100 ms), at most ``seconds``:
    a server still working through what the closed connections left (python-socketio's
    queued emits after a round timed out) would take the next contender's cores."""
    deadline = time.perf_counter() + seconds
    before = process_cpu(pid)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        after = process_cpu(pid)
        if cpu_since(before, after) < 10_000_000:
            return
        before = after


def server_writes(pid: int) -> int:
    """Write system calls made so far by process ``pid`` (all threads: /proc/<pid>/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError(f"no syscw for {pid}")


@dataclass
class SioRound(Round):
    messages_per_write: float = 0.0  # deliveries / the server's write system calls


class FanoutBench(Bench):
    """ws_fanout's ``Bench`` (``trial``, ``results``) with a round that may publish on
    another port than the subscribers listen on."""

    async def fanout(  # type: ignore[override]  # a Target where ws_fanout's takes a Server
        self, target: Target, subscribers: int, messages: int
    ) -> Round:
        host = target.host
        tally = Tally(subscribers, messages)
        subs = await open_many(
            lambda: target.subscriber(host, target.sub_port, tally),
            host,
            target.sub_port,
            subscribers,
            self.connect_batch,
        )
        clients: list[WsClient] = list(subs)
        try:
            pub = await open_one(
                lambda: target.publisher(host, target.pub_port, 0), host, target.pub_port
            )
            clients.append(pub)
            gc.collect()
            await asyncio.sleep(0.2)  # the server settles what the last round's closes left
            pid = target.server.process.pid
            server_cpu, client_cpu = process_cpu(pid), own_cpu()
            writes = server_writes(pid)
            sent = Sent()
            publishing = asyncio.create_task(
                publish(pub, tally, messages, self.pad, self.burst, self.window, sent)
            )
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(tally.finished)
            except TimeoutError:
                tally.errors.append(f"timed out after {self.timeout:g} s")
                publishing.cancel()
            server_used = cpu_since(server_cpu, process_cpu(pid))
            writes = server_writes(pid) - writes
            client_used = own_cpu() - client_cpu
            delivered = sum(s.count for s in subs)
            last_ns = tally.last_ns
            latencies = tally.latencies[:delivered]
            lost, frames = tally.lost, tally.frames
            try:
                async with asyncio.timeout(5):
                    await publishing
                    await pub.settled()  # every publish was answered (tidings)
            except asyncio.CancelledError:
                if not publishing.cancelled():
                    raise
            except (TimeoutError, WebsocketError) as exc:
                publishing.cancel()
                tally.errors.append(f"publisher: {exc!r}")
        finally:
            await close_all(clients)
            await settle(target.server.process.pid)
        expected = subscribers * messages
        first = sent.first
        seconds = (last_ns - first) / 1e9 if first and last_ns > first else 0.0
        latencies.sort()
        return SioRound(
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
            messages_per_write=delivered / max(writes, 1),
        )

    def results(self, name: str) -> dict[str, float]:
        row = super().results(name)
        best = max(self.rounds[name], key=lambda r: r.deliveries_per_s)
        assert isinstance(best, SioRound)
        return {**row, "messages_per_write": best.messages_per_write}


# ------------------------------------------------------------------------ main


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
        help="messages the publisher may be ahead of the subscribers, counted together (256)",
    )
    parser.add_argument("--burst", type=int, default=16, help="messages per publisher write (16)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        help=f"seconds to wait for a round's deliveries ({TIMEOUT:g})",
    )
    parser.add_argument(
        "--connect-batch", type=int, default=500, help="connections opened at once (500)"
    )


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    open_files = raise_open_files()
    subscribers = args.subscribers or (50 if args.quick else 1_000)
    messages = args.messages or (100 if args.quick else 1_000)
    names = selected(args, CONTENDERS)
    if subscribers + 100 > open_files:
        raise SystemExit(f"--subscribers {subscribers} needs more than {open_files} fds")
    args.pace = "deliveries"  # ws_fanout's Bench reads it; the only rule here
    bench = FanoutBench(args, subscribers, messages)
    results: dict[str, dict[str, float]] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tidings-sio-bench-") as tmp_name:
        tmp = Path(tmp_name)
        servers: list[Server] = []
        targets: dict[str, Target] = {}
        try:
            if {"socketio", "native"} & set(names):
                tidings, http_port = await start_tidings(tmp)
                servers.append(tidings)
                host, ws_port = tidings.host, tidings.port
                if "socketio" in names:
                    targets["socketio"] = Target(
                        "socketio",
                        tidings,
                        host,
                        http_port,
                        ws_port,
                        SocketioSubscriber,
                        TidingsPublisher,
                    )
                if "native" in names:
                    targets["native"] = Target(
                        "native",
                        tidings,
                        host,
                        ws_port,
                        ws_port,
                        TidingsSubscriber,
                        TidingsPublisher,
                    )
            if "python-socketio" in names:
                reference = await start_python_socketio(tmp, args.timeout)
                servers.append(reference)
                targets["python-socketio"] = Target(
                    "python-socketio",
                    reference,
                    reference.host,
                    reference.port,
                    reference.port,
                    SocketioSubscriber,
                    SocketioPublisher,
                )
            # Bench.trial reads only .name and hands the target to fanout: a Target does.
            trial = cast(Callable[..., Callable[[], Awaitable[float]]], bench.trial)
            for target in targets.values():  # warm-up: not measured
                await trial(
                    target, min(subscribers, WARMUP[0]), min(messages, WARMUP[1]), keep=False
                )()
            await best_of(
                {name: trial(target, subscribers, messages) for name, target in targets.items()},
                args.repeat,
            )
        finally:
            for server in servers:
                problem = await stop_server(server)
                if problem:
                    problems.append(problem)
    if problems:
        raise SystemExit("\n".join(problems))
    for name in targets:
        results[name] = bench.results(name)
    ratios = compute_ratios(results, METRIC, RATIO_PAIRS)
    payload_bytes = len(PAYLOAD % (clock(), bench.pad))
    params = {
        "subscribers": subscribers,
        "messages": messages,
        "payload_bytes": payload_bytes,
        "window": args.window,
        "pace": "deliveries",
        "burst": args.burst,
        "timeout_s": args.timeout,
        "connect_batch": args.connect_batch,
        "repeat": args.repeat,
        "quick": args.quick,
        "warmup": f"{min(subscribers, WARMUP[0])} subscribers x {min(messages, WARMUP[1])}",
        "servers": {
            "tidings": " ".join(["python", *tidings_command(Path("<tmp>"))[1:]]),
            "socketio": f"tidings' HTTP port, engine.io path /{APP_ID}/, namespace {NAMESPACE};"
            " published through the native websocket port (publish op)",
            "native": "tidings' --ws-port, protocol tidings.v1 (ws_fanout's tidings contender)",
            "python-socketio": "socketio.AsyncServer + ASGIApp under uvicorn (uvloop,"
            " ws=websockets-sansio, no deflate), one emit(SUB_RES, room) per PUB event;"
            f" ping_timeout={args.timeout:g} s",
        },
        "python_socketio": _version("python-socketio"),
        "python_engineio": _version("python-engineio"),
        "uvicorn": _version("uvicorn"),
        "websockets": _version("websockets"),
        "msgspec": msgspec.__version__,
        "client": "_ws_client.WsClient: raw asyncio.Protocol websocket client, same for all;"
        " all subscribers and the publisher on one uvloop loop in the benchmark process",
        "metric": f"{METRIC} = subscribers x messages / wall time (first publish sent to last"
        " delivery), best round; p50_ms / p99_ms per delivery (receive - send clock) in the best"
        " round; server_cpu_ns / client_cpu_ns = least CPU time per delivery of a round;"
        " messages_per_write = deliveries / server write syscalls (/proc/<pid>/io syscw),"
        " best round",
        "ratios": f"of {METRIC}, same run (client and servers share the cores)",
        "rlimit_nofile": open_files,
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    print_table(
        f"{NAME}: {subscribers} subscribers x {messages} messages of {payload_bytes} B,"
        f" loop {params['loop']}, best of {args.repeat}",
        results,
        ratios,
        metrics=[
            METRIC,
            "median_deliveries_per_s",
            "publish_per_s",
            "p50_ms",
            "p99_ms",
            *CPU_COLUMNS,
            "messages_per_frame",
            "messages_per_write",
            "drops",
            "lost_connections",
        ],
        notes=[f"ratios are of {METRIC}: below 1 is slower"],
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=3)
    run(lambda: main(arguments))
