"""REST requests through a real `tidings serve` process: throughput and latency per endpoint.

The server runs as a user runs it, in its own process
(``python -m transports.cli serve --port 0 --data-dir <tmp> --app-id A --api-key K``,
SQLite store in a temporary data dir), and is stopped with SIGTERM at the end
(a non-zero exit fails the run). One load client drives it: ``--concurrency C``
(default 32) keep-alive HTTP/1.1 connections, each with one request in flight
at a time (no pipelining), R requests per trial (default 2000, quick 500)
shared among them. The client is the same for every contender: a minimal
``asyncio.Protocol`` HTTP/1.1 client (prebuilt request bytes, response framed by
``content-length``, status checked on every response) on uvloop, cheaper per
request than httpx or asyncio streams, so that as little as possible of the
two shared cores goes to the client. Connections are opened and each sends one
request before the clock starts; they are closed after it stops.

Contenders (every trial: R requests, wall time from the first request to the
last response):

- ``publish``: ``POST /A/K/messaging/news`` with
  ``{"message": "hi", "headers": {"city": "Tokyo"}}``; no subscriber on the channel.
  A server's request like this one is answered by the publish fast path.
- ``publish_via_litestar``: the same request with an ``Origin`` header, which
  sends it past the publish fast path (transports/publish_fast_path.py) to the
  Litestar handler, as a browser's request goes: what the fast path saves.
- ``publish_with_pollers``: the same body, on a channel with ``--pollers``
  (default 100) polling subscriptions (``POST .../messaging/<ch>/subscribe``),
  none of which polls during the trial. Each trial uses a fresh channel
  (``news-1``, ``news-2``, ...) subscribed before the clock starts and deleted
  (``DELETE .../messaging/channels/<ch>``, which ends its subscriptions) after
  it stops, so every trial starts on empty queues; R is kept below half of a
  poller's queue bound (5 000 of 10 000), where the broker starts yielding to
  consumers. The broker's delivery counter (``GET /metrics``) is checked to
  have grown by pollers x requests.
- ``status``: ``GET /A/K/messaging/<id>`` of a message published just before
  the trial (off the clock) and committed to SQLite by then: what a client
  checking on its publish asks, answered from the store's in-memory window of
  the last 10 000 committed statuses.
- ``status_on_disk``: the same for a message published before 10 000 others,
  so that its status is read from SQLite (on a worker thread).
- ``health``: ``GET /health`` on the same server: the framework floor (routing,
  Tidings' middleware and a JSON answer, no broker work).
- ``bare_uvicorn``: ``GET /health`` on a raw ASGI app answering a fixed small
  JSON, on uvicorn + uvloop in its own process, with the HTTP parser uvicorn
  picks here and Tidings' server settings (no access log, no server header): the
  physical limit of this HTTP stack on this machine.

Metrics: ``requests_per_s`` = R / best wall time (best of ``--repeat``, rounds
interleaved by ``best_of``), ``median_requests_per_s``, and ``p50_ms`` /
``p99_ms``: the latency of single requests (write to complete response) pooled
over all measured rounds of that contender. ``server_cpu_us`` and
``client_cpu_us``: CPU time per request over the clocked part, least of the
rounds (the server's: all its threads, from /proc/<pid>/task/*/schedstat; the
client's: getrusage): what a request costs each side, which shared cores blur
less than throughput does. Before the measured rounds every contender runs one
short warm-up trial.

Client and servers share the machine's cores (2 here): absolute figures depend on
how the scheduler splits them, so only the same-run ratios mean anything. Ratios
are of ``requests_per_s``: publish / health (target >= 0.7: a publish costs
little more than a constant answer on the same stack), publish / bare_uvicorn,
publish / publish_via_litestar, health / bare_uvicorn, publish_with_pollers /
publish, status / health, status_on_disk / status (below 1 = slower).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

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

NAME = "rest_publish"
CONTENDERS = (
    "publish",
    "publish_via_litestar",
    "publish_with_pollers",
    "status",
    "status_on_disk",
    "health",
    "bare_uvicorn",
)
TIDINGS_CONTENDERS = (
    "publish",
    "publish_via_litestar",
    "publish_with_pollers",
    "status",
    "status_on_disk",
    "health",
)
RECENT_STATUSES = 10_000  # SqliteStore keeps the last this many committed statuses in memory
METRIC = "requests_per_s"
RATIO_PAIRS = (
    ("publish", "health"),
    ("publish", "bare_uvicorn"),
    ("publish", "publish_via_litestar"),
    ("health", "bare_uvicorn"),
    ("publish_with_pollers", "publish"),
    ("status", "health"),
    ("status_on_disk", "status"),
)
TARGETS = {"publish / health": 0.7}
APP_ID = "A"
API_KEY = "K"
CHANNEL = "news"
PUBLISH_BODY = json.dumps({"message": "hi", "headers": {"city": "Tokyo"}}).encode()
POLLER_QUEUE_HALF = 5_000  # PollingSubscriptions max_pending 10 000: past half, publish yields
WARMUP_REQUESTS = 200
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_COLUMNS = ("server_cpu_us", "client_cpu_us")

# The bare reference: a raw ASGI app on uvicorn + uvloop, settings as transports/server.py.
BARE_SERVER = r"""
import socket
import uvicorn

BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(START)
        await send(END)


sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
host, port = sock.getsockname()[:2]
print(f"listening http={host}:{port} ws=disabled", flush=True)
config = uvicorn.Config(
    app,
    loop="uvloop",
    lifespan="off",
    access_log=False,
    log_config=None,
    server_header=False,
    timeout_graceful_shutdown=10,
)
uvicorn.Server(config).run(sockets=[sock])
"""


# ------------------------------------------------------------------------ client


class HttpError(Exception):
    pass


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time.

    Responses must carry ``content-length`` (both servers send it); the status
    line's code and the body are handed back as they are.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self._buffer = buffer
            return
        head = buffer[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail(HttpError(f"response without content-length: {head!r}"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            self._buffer = buffer
            return
        if len(buffer) > total:
            self._fail(HttpError("more bytes than one response (no request was pipelined)"))
            return
        self._buffer = b""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((int(buffer[9:12]), buffer[end + 4 : total]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection closed by the server: {exc}"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        assert self._waiter is None, "one request in flight per connection"
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def http_request(
    method: str, path: str, host: str, body: bytes | None = None, origin: str | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Server:
    """A server subprocess reached at ``host:port``."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, address: str) -> None:
        self.name = name
        self.process = process
        self.address = address
        host, _, port = address.rpartition(":")
        self.host = host
        self.port = int(port)

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(Connection, self.host, self.port)
        return protocol

    async def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        """One request on its own connection (setup and checks, off the clock); JSON or text."""
        connection = await self.connect()
        try:
            status, answer = await connection.request(
                http_request(method, path, self.address, body)
            )
        finally:
            connection.close()
        if status != 200:
            raise HttpError(f"{method} {path}: HTTP {status} {answer[:200]!r}")
        try:
            return json.loads(answer)
        except ValueError:
            return answer.decode()


def tail(log_path: Path) -> str:
    """The end of a server's stderr, for a failure message."""
    return log_path.read_text(errors="replace")[-2000:]


async def start_server(name: str, command: Sequence[str], log_path: Path) -> Server:
    """Start `command`, wait for its ``listening http=HOST:PORT`` line on stdout."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
        )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while line := (await process.stdout.readline()).decode():
                if match := re.match(r"listening http=(\S+)", line):
                    return Server(name, process, match.group(1))
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
    raise SystemExit(f"{name} did not start (exit {process.returncode}):\n{tail(log_path)}")


async def stop_server(server: Server, log_path: Path) -> None:
    """SIGTERM, then wait; a server that does not stop cleanly fails the run.

    uvicorn's own signal handling (the bare server) re-raises SIGTERM once it has
    shut down, so that one ends "killed by SIGTERM"; Tidings handles it and exits 0.
    """
    process = server.process
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise SystemExit(
                f"{server.name} did not stop within {STOP_TIMEOUT:g} s of SIGTERM"
            ) from None
    if process.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"{server.name} exited {process.returncode}:\n{tail(log_path)}")


# ------------------------------------------------------------------------ trials


def process_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by each live thread of process ``pid`` (Linux), by thread id.

    From each thread's schedstat (nanoseconds); where the kernel has none, the
    process's stat (user + system, in clock ticks, threads that ended included)
    under the key "process".
    """
    try:
        threads = {
            p.parent.name: p.read_text() for p in Path(f"/proc/{pid}/task").glob("*/schedstat")
        }
        if threads:
            return {tid: int(text.split()[0]) / 1e9 for tid, text in threads.items()}
    except (OSError, ValueError, IndexError):
        pass
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return {"process": (int(fields[11]) + int(fields[12])) / CLOCK_TICKS}


def cpu_since(before: dict[str, float], after: dict[str, float]) -> float:
    """CPU seconds between two `process_cpu` readings. Worker threads come and go: one
    started since counts whole, one ended since loses only what it used after `before`."""
    return sum(used - before.get(tid, 0.0) for tid, used in after.items())


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(
    server: Server,
    request: bytes,
    count: int,
    concurrency: int,
    latencies: list[float],
    cpu: list[tuple[float, float]],
) -> float:
    """``count`` requests over ``concurrency`` connections; returns the wall time.

    Appends each request's latency (seconds) to ``latencies``, and the CPU
    seconds the server and this client used meanwhile to ``cpu``.
    """
    connections = [await server.connect() for _ in range(concurrency)]
    try:
        for status, body in await asyncio.gather(*(c.request(request) for c in connections)):
            if status != 200:
                raise HttpError(f"{server.name}: HTTP {status} {body[:200]!r}")
        remaining = count
        clock = time.perf_counter

        async def worker(connection: Connection) -> None:
            nonlocal remaining
            record = latencies.append
            send = connection.request
            while remaining > 0:
                remaining -= 1
                sent = clock()
                status, body = await send(request)
                record(clock() - sent)
                if status != 200:
                    raise HttpError(f"{server.name}: HTTP {status} {body[:200]!r}")

        pid = server.process.pid
        server_cpu, client_cpu = process_cpu(pid), own_cpu()
        start = clock()
        async with asyncio.TaskGroup() as group:
            for connection in connections:
                group.create_task(worker(connection))
        elapsed = clock() - start
        cpu.append((cpu_since(server_cpu, process_cpu(pid)), own_cpu() - client_cpu))
        return elapsed
    finally:
        for connection in connections:
            connection.close()


def metric_value(text: str, name: str) -> float:
    match = re.search(rf'^{name}\{{app="{APP_ID}"\}} (\S+)$', text, re.MULTILINE)
    if match is None:
        raise AssertionError(f"{name} not in /metrics")
    return float(match.group(1))


class Bench:
    """The servers, the requests and the latencies of every contender."""

    def __init__(self, count: int, concurrency: int, pollers: int) -> None:
        self.count = count
        self.concurrency = concurrency
        self.pollers = pollers
        self.tidings: Server | None = None
        self.bare: Server | None = None
        self.message_id = ""
        self.recent_id = ""
        self.polled_channels = 0
        self.latencies: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        self.cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}

    def _tidings(self) -> Server:
        assert self.tidings is not None
        return self.tidings

    def _api(self, path: str) -> str:
        return f"/{APP_ID}/{API_KEY}/{path}"

    async def prepare(self) -> None:
        """Publish the message whose status is asked, and check every answer's shape."""
        tidings = self.tidings
        if tidings is not None:
            answer = await tidings.call("POST", self._api(f"messaging/{CHANNEL}"), PUBLISH_BODY)
            if answer.get("status") != "published" or not answer.get("messageId"):
                raise AssertionError(f"publish answered {answer!r}")
            self.message_id = answer["messageId"]
            publish = http_request(
                "POST", self._api(f"messaging/{CHANNEL}"), tidings.address, PUBLISH_BODY
            )
            await load(tidings, publish, RECENT_STATUSES, self.concurrency, [], [])
            await asyncio.sleep(0.3)  # the status write-behind commits meanwhile
            await self._check_status(self.message_id)
            self.recent_id = await self._publish_fresh()
            health = await tidings.call("GET", "/health")
            if health != {"status": "ok"}:
                raise AssertionError(f"tidings /health answered {health!r}")
        if self.bare is not None:
            bare = await self.bare.call("GET", "/health")
            if bare != {"status": "ok"}:
                raise AssertionError(f"bare uvicorn answered {bare!r}")

    async def _check_status(self, message_id: str) -> None:
        status = await self._tidings().call("GET", self._api(f"messaging/{message_id}"))
        if status.get("status") != "published" or status.get("messageId") != message_id:
            raise AssertionError(f"status answered {status!r}")

    async def _publish_fresh(self) -> str:
        """A message published now, its status committed by the time this returns."""
        answer = await self._tidings().call("POST", self._api(f"messaging/{CHANNEL}"), PUBLISH_BODY)
        await asyncio.sleep(0.2)  # the write-behind commits every 50 ms
        message_id: str = answer["messageId"]
        await self._check_status(message_id)
        return message_id

    def trial(self, name: str, count: int, keep: bool = True) -> Callable[[], Awaitable[float]]:
        latencies = self.latencies[name] if keep else []
        cpu = self.cpu[name] if keep else []

        async def measure() -> float:
            if name == "publish_with_pollers":
                return await self._with_pollers(count, latencies, cpu)
            if name == "status":
                self.recent_id = await self._publish_fresh()
            if name == "bare_uvicorn":
                assert self.bare is not None
                server, request = self.bare, http_request("GET", "/health", self.bare.address)
            else:
                server = self._tidings()
                request = {
                    "publish": http_request(
                        "POST", self._api(f"messaging/{CHANNEL}"), server.address, PUBLISH_BODY
                    ),
                    "publish_via_litestar": http_request(
                        "POST",
                        self._api(f"messaging/{CHANNEL}"),
                        server.address,
                        PUBLISH_BODY,
                        origin="https://bench.example",
                    ),
                    "status": http_request(
                        "GET", self._api(f"messaging/{self.recent_id}"), server.address
                    ),
                    "status_on_disk": http_request(
                        "GET", self._api(f"messaging/{self.message_id}"), server.address
                    ),
                    "health": http_request("GET", "/health", server.address),
                }[name]
            return await load(server, request, count, self.concurrency, latencies, cpu)

        return measure

    async def _with_pollers(
        self, count: int, latencies: list[float], cpu: list[tuple[float, float]]
    ) -> float:
        server = self._tidings()
        self.polled_channels += 1
        channel = f"{CHANNEL}-{self.polled_channels}"
        for _ in range(self.pollers):
            answer = await server.call("POST", self._api(f"messaging/{channel}/subscribe"), b"{}")
            if not answer.get("subscriptionId"):
                raise AssertionError(f"subscribe answered {answer!r}")
        before = metric_value(await server.call("GET", "/metrics"), "tidings_deliveries_total")
        request = http_request(
            "POST", self._api(f"messaging/{channel}"), server.address, PUBLISH_BODY
        )
        elapsed = await load(server, request, count, self.concurrency, latencies, cpu)
        after = metric_value(await server.call("GET", "/metrics"), "tidings_deliveries_total")
        published = count + self.concurrency  # with each connection's first, unclocked request
        if after - before != self.pollers * published:
            raise AssertionError(
                f"{after - before:g} deliveries for {published} publishes x {self.pollers} pollers"
            )
        answer = await server.call("DELETE", self._api(f"messaging/channels/{channel}"))
        if answer != {"result": True}:
            raise AssertionError(f"delete channel answered {answer!r}")
        return elapsed


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of all at or below it."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


# ------------------------------------------------------------------------ main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--requests", type=int, default=None, help="per trial (default 2000, quick 500)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="keep-alive connections, 1 request each (32)"
    )
    parser.add_argument(
        "--pollers", type=int, default=100, help="polling subscribers, publish_with_pollers (100)"
    )


def http_parser() -> str:
    """What uvicorn's http="auto" runs on here: httptools if installed, else h11."""
    if importlib.util.find_spec("httptools") is not None:
        return f"httptools {importlib.metadata.version('httptools')}"
    return f"h11 {importlib.metadata.version('h11')} (httptools not installed)"


async def main(args: argparse.Namespace) -> None:
    count = args.requests or (500 if args.quick else 2_000)
    concurrency = args.concurrency
    names = selected(args, CONTENDERS)
    if "publish_with_pollers" in names and count + concurrency > POLLER_QUEUE_HALF:
        raise SystemExit(
            f"--requests + --concurrency must stay within {POLLER_QUEUE_HALF} (half a poller's"
            " queue) so publish_with_pollers measures the ordinary path"
        )
    started = time.perf_counter()
    bench = Bench(count, concurrency, args.pollers)
    tidings_command = [
        sys.executable,
        "-m",
        "transports.cli",
        "serve",
        "--port",
        "0",
        "--data-dir",
        "<tmp>",
        "--app-id",
        APP_ID,
        "--api-key",
        API_KEY,
    ]
    with tempfile.TemporaryDirectory(prefix="tidings-rest-bench-") as tmp:
        tmp_dir = Path(tmp)
        logs = {"tidings": tmp_dir / "tidings.log", "bare_uvicorn": tmp_dir / "bare.log"}
        starting: dict[str, Awaitable[Server]] = {}
        if any(name in TIDINGS_CONTENDERS for name in names):
            command = [str(tmp_dir / "data") if a == "<tmp>" else a for a in tidings_command]
            starting["tidings"] = start_server("tidings", command, logs["tidings"])
        if "bare_uvicorn" in names:
            command = [sys.executable, "-c", BARE_SERVER]
            starting["bare_uvicorn"] = start_server("bare_uvicorn", command, logs["bare_uvicorn"])
        servers = dict(zip(starting, await asyncio.gather(*starting.values()), strict=True))
        bench.tidings = servers.get("tidings")
        bench.bare = servers.get("bare_uvicorn")
        try:
            await bench.prepare()
            for name in names:  # warm-up: not measured, latencies not kept
                await bench.trial(name, WARMUP_REQUESTS, keep=False)()
            samples = await best_of({name: bench.trial(name, count) for name in names}, args.repeat)
        finally:
            for name, server in servers.items():
                await stop_server(server, logs[name])
    results: dict[str, dict[str, float]] = {}
    for name, s in samples.items():
        latencies = sorted(bench.latencies[name])
        if len(latencies) != count * args.repeat:
            raise AssertionError(f"{name}: {len(latencies)} latencies for {count} x {args.repeat}")
        results[name] = {
            METRIC: count / s.best,
            "median_requests_per_s": count / s.median,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "server_cpu_us": min(server for server, _ in bench.cpu[name]) / count * 1e6,
            "client_cpu_us": min(client for _, client in bench.cpu[name]) / count * 1e6,
        }
    ratios = compute_ratios(results, METRIC, RATIO_PAIRS)
    params = {
        "requests": count,
        "concurrency": concurrency,
        "pollers": args.pollers,
        "warmup_requests": WARMUP_REQUESTS,
        "publish_body": PUBLISH_BODY.decode(),
        "repeat": args.repeat,
        "quick": args.quick,
        "server": " ".join(["python", *tidings_command[1:]]),
        "http_parser": http_parser(),
        "client": "one asyncio.Protocol HTTP/1.1 client, keep-alive, no pipelining, same for all",
        "metric": f"{METRIC} = requests / best wall time (first request to last response);"
        " p50_ms / p99_ms over every request of the measured rounds; server_cpu_us /"
        " client_cpu_us = least CPU time of a round (server: all threads, schedstat) / requests",
        "ratios": f"of {METRIC}, same run (client and servers share the cores)",
        "targets": TARGETS,
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    print_table(
        f"{NAME}: {count} requests x {concurrency} connections per trial, {args.pollers} pollers,"
        f" loop {params['loop']}, HTTP parser {params['http_parser']}, best of {args.repeat}",
        results,
        ratios,
        targets=TARGETS,
        metrics=[METRIC, "median_requests_per_s", "p50_ms", "p99_ms", *CPU_COLUMNS],
        notes=[
            f"ratios are of {METRIC}: below 1 is slower; total {format_value(params['seconds'])} s"
        ],
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=12)
    run(lambda: main(arguments))
