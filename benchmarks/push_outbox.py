"""Push notifications through the durable outbox to a fake FCM, against the fake's own ceiling.

One publish with ``publishPolicy`` PUSH on a channel with D registered ANDROID
devices (``--devices``, default 100 000; 2 000 with ``--quick``) goes through
Tidings's real path: the outbox records the message, expands it to one row per
device in SQLite, and sends the rows, a batch per provider call, with
`FcmProvider` (HTTP/2, OAuth2 service-account token) to the fake FCM of
tests/transports/push_fakes.py. The fake runs in a process of its own
(benchmarks/_push_fake_server.py: uvloop, hypercorn, TLS, the same checks of
every request as in the tests; what it accepted is counted, not kept), so
that the fake and the side measured against it each get one of the two cores.
It is started once, reused by every trial (its counts zeroed before each) and
stopped at the end.

Contenders (each sends D pushes, one per device token; tokens are 159
characters, like FCM's; the payload is ``{"notification": {"body": "hello"}}``):

- ``ceiling``: the fake's own ceiling. The lightest client that saturates it:
  a minimal HTTP/2 client (an ``asyncio.Protocol`` on the ``h2`` state machine,
  one TLS connection, prebuilt headers and bodies, header validation off)
  keeping ``--ceiling-streams`` requests in flight (32: hypercorn slows down
  with more streams in flight, ~3 700 requests/s at 20-50, ~3 200 at 100,
  ~1 500 at 500 here). Each request is the FCM v1 send the provider makes,
  with a bearer token from the fake's OAuth2 endpoint (fetched off the clock).
  ``server_busy`` ~1.0 (a whole core) shows the fake, not the client, is the limit.
- ``provider``: `FcmProvider.send` of all D notifications in one call (off the
  clock: the provider is built, its token fetched and its connection opened by
  one warm-up send): the provider alone, no store. What the HTTP client costs.
- ``outbox``: Tidings's path. A fresh SqliteStore per trial, D devices on
  channel ``bench`` written straight into ``device_registrations`` /
  ``registration_channels`` (the rows `Devices.register` writes; not timed), an
  `Outbox(store, devices, {"ANDROID": FcmProvider(...)}, batch=--batch,
  in_flight=--in-flight)` running inside a `Broker(store=...)` with
  ``broker.send_push_to(outbox)``, the provider warmed up as above. Timed from
  ``await broker.publish("bench", "hello", push=PushOptions(PublishPolicy.PUSH))`` to
  ``await outbox.pending() == 0`` (polled every 50 ms). Then
  ``outbox.report(message_id)`` must be ``{"ANDROID": {"sent": D, "failed": 0}}``.
  ``expansion_s``: when ``outbox.stats.queued`` reached D (polled every 5 ms),
  i.e. every device's row was recorded; sends overlap with it. ``accept_ms``:
  how long the publish itself took (the outbox's accept transaction).

After every trial the fake must have accepted exactly D sends, to D distinct
tokens, all answered 200.

Metrics: ``pushes_per_s`` = D / wall time (best of ``--repeat``, rounds
interleaved), ``seconds``; ``server_busy`` / ``client_busy``: CPU seconds of
the fake's process / of this process (all threads: SQLite workers included)
per wall second, and ``server_cpu_us`` / ``client_cpu_us``: the same per push,
of the best round. Ratios are of ``pushes_per_s``: outbox / ceiling (target
>= 0.5), provider / ceiling, outbox / provider. Client and fake share the 2
cores: the ratios are same-run figures, the absolute ones depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sqlite3
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h2.config
import h2.connection
import h2.events
import jwt
import msgspec

from broker import Broker
from broker.devices import Devices
from broker.notifications import Notification, Outcome, build_payload
from broker.outbox import Outbox
from broker.push_options import OS_BITS, PublishPolicy, PushOptions
from broker.stores import SqliteStore
from transports.push_providers import FcmSettings
from transports.push_providers._common import make_client
from transports.push_providers.fcm import FcmProvider

NAME = "push_outbox"
CONTENDERS = ("ceiling", "provider", "outbox")
METRIC = "pushes_per_s"
RATIO_PAIRS = (("outbox", "ceiling"), ("provider", "ceiling"), ("outbox", "provider"))
TARGETS = {"outbox / ceiling": 0.5}
CHANNEL = "bench"
MESSAGE = "hello"
OS = "ANDROID"
PAYLOAD = build_payload(OS, MESSAGE, {})
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ROOT = Path(__file__).resolve().parents[1]
FAKE_SERVER = Path(__file__).resolve().parent / "_push_fake_server.py"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_PENDING = 0.05  # seconds between outbox.pending() checks
POLL_QUEUED = 0.005  # seconds between outbox.stats.queued checks (no I/O)
CEILING_WARMUP = 500  # requests on the ceiling's connection before its clock starts
SATURATED = 0.9  # the fake's CPU per wall second above which the ceiling is its own
REGISTER_CHUNK = 20_000  # device rows per transaction when preparing a store


def device_id(index: int) -> str:
    return f"device-{index:06d}"


def device_token(index: int) -> str:
    """An FCM-sized registration token (FCM's are ~150-165 characters)."""
    return f"{index:06d}:APA91b{'x' * 146}"


# ----------------------------------------------------------------------- the fake


class FakeFcm:
    """The fake FCM subprocess, and a control client for its counts (off the clock)."""

    def __init__(self, process: asyncio.subprocess.Process, info: dict[str, Any], log: Path):
        self.process = process
        self.info = info
        self.log = log
        self.origin: str = info["origin"]
        self.port: int = info["port"]
        self.project_id: str = info["project_id"]
        self.settings = FcmSettings(
            service_account_file=info["service_account_file"],
            base_url=self.origin,
            ca_file=info["ca_file"],
            timeout=30,
        )
        self.account = json.loads(Path(info["service_account_file"]).read_text())
        self.control = make_client(ca_file=info["ca_file"], timeout=30, concurrency=1)

    @property
    def send_path(self) -> str:
        return f"/v1/projects/{self.project_id}/messages:send"

    async def stats(self) -> dict[str, Any]:
        answer = await self.control.get(f"{self.origin}/_bench/stats")
        answer.raise_for_status()
        return cast(dict[str, Any], answer.json())

    async def reset(self) -> None:
        (await self.control.post(f"{self.origin}/_bench/reset")).raise_for_status()

    async def access_token(self) -> str:
        """The OAuth2 service-account flow, as FcmProvider does it (for the ceiling client)."""
        account = self.account
        now = int(time.time())
        claims = {
            "iss": account["client_email"],
            "scope": FCM_SCOPE,
            "aud": account["token_uri"],
            "iat": now,
            "exp": now + 3600,
        }
        assertion = jwt.encode(
            claims,
            account["private_key"],
            algorithm="RS256",
            headers={"kid": account["private_key_id"]},
        )
        answer = await self.control.post(
            account["token_uri"], data={"grant_type": JWT_BEARER, "assertion": assertion}
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])


def tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


async def start_fake(directory: Path) -> FakeFcm:
    """Start benchmarks/_push_fake_server.py; wait for its ``fake-fcm {...}`` line."""
    log = directory / "fake-fcm.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(FAKE_SERVER),
            str(directory),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
        )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while line := (await process.stdout.readline()).decode():
                if line.startswith("fake-fcm "):
                    return FakeFcm(process, json.loads(line.split(" ", 1)[1]), log)
    except TimeoutError:
        pass
    await stop_process(process)
    raise SystemExit(f"the fake FCM did not start (exit {process.returncode}):\n{tail(log)}")


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, wait; SIGKILL after STOP_TIMEOUT."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def stop_fake(fake: FakeFcm) -> None:
    with contextlib.suppress(Exception):
        await fake.control.aclose()
    await stop_process(fake.process)


# ------------------------------------------------------------- the ceiling client


class H2Sender(asyncio.Protocol):
    """A minimal HTTP/2 client on one TLS connection: requests with prebuilt headers/bodies.

    `send` keeps `streams` requests in flight until every body is sent and answered,
    writing once per batch of received events; answers are counted by status.
    """

    def __init__(self) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config)
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.statuses: Counter[int] = Counter()
        self._status: dict[int, int] = {}
        self._blocked: list[tuple[int, bytes]] = []  # bodies waiting for flow-control window
        self._headers: list[tuple[bytes, bytes]] = []
        self._bodies: Sequence[bytes] = ()
        self._next = 0
        self._done = 0
        self._finished: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"the fake closed the connection: {exc}")
        for future in (self.ready, self._finished):
            if future is not None and not future.done():
                future.set_exception(error)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                for name, value in event.headers:
                    if name == b":status":
                        self._status[event.stream_id] = int(value)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.statuses[self._status.pop(event.stream_id, 0)] += 1
                self._done += 1
                if self._next < len(self._bodies):
                    self._start()
                elif self._done == len(self._bodies) and self._finished is not None:
                    self._finished.set_result(None)
            elif isinstance(event, h2.events.WindowUpdated):
                blocked, self._blocked = self._blocked, []
                for stream_id, body in blocked:
                    self._send_body(stream_id, body)
            elif isinstance(event, h2.events.RemoteSettingsChanged) and not self.ready.done():
                self.ready.set_result(None)
            elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                self.connection_lost(RuntimeError(repr(event)))
        self._flush()

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def _start(self) -> None:
        body = self._bodies[self._next]
        self._next += 1
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [*self._headers, (b"content-length", b"%d" % len(body))])
        self._send_body(stream_id, body)

    def _send_body(self, stream_id: int, body: bytes) -> None:
        if self.conn.local_flow_control_window(stream_id) < len(body):
            self._blocked.append((stream_id, body))
        else:
            self.conn.send_data(stream_id, body, end_stream=True)

    async def send(
        self, headers: list[tuple[bytes, bytes]], bodies: Sequence[bytes], streams: int
    ) -> None:
        self._headers, self._bodies, self._next, self._done = headers, bodies, 0, 0
        self._finished = asyncio.get_running_loop().create_future()
        if not bodies:
            return
        for _ in range(min(streams, len(bodies))):
            self._start()
        self._flush()
        await self._finished

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# ---------------------------------------------------------------------- trials


class Bench:
    def __init__(self, args: argparse.Namespace, fake: FakeFcm, workdir: Path) -> None:
        self.args = args
        self.fake = fake
        self.workdir = workdir
        self.count: int = args.devices
        self.tokens = [device_token(i) for i in range(self.count)]
        # The extra figures of every round, by contender (the best round's are reported).
        self.rounds: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
        self.fcm_settings = msgspec.structs.replace(fake.settings, concurrency=args.concurrency)

    def trial(self, name: str) -> Callable[[], Awaitable[float]]:
        return {
            "ceiling": self.ceiling,
            "provider": self.provider,
            "outbox": self.outbox,
        }[name]

    async def _measured(
        self, name: str, work: Callable[[], Awaitable[dict[str, float]]]
    ) -> dict[str, float]:
        """Reset the fake, run `work` (which times itself), check what the fake accepted."""
        await self.fake.reset()
        before = await self.fake.stats()
        cpu = time.process_time()
        extra = await work()
        client_cpu = time.process_time() - cpu
        after = await self.fake.stats()
        if after["received"] != self.count or after["distinct_tokens"] != self.count:
            raise AssertionError(
                f"{name}: the fake accepted {after['received']} sends to"
                f" {after['distinct_tokens']} tokens, not {self.count}: {after}"
            )
        if after["statuses"] != {"200": self.count}:
            raise AssertionError(f"{name}: the fake answered {after['statuses']}")
        seconds = extra["seconds"]
        server_cpu = after["cpu_s"] - before["cpu_s"]
        figures = {
            "seconds": seconds,
            "server_busy": server_cpu / seconds,
            "client_busy": client_cpu / seconds,
            "server_cpu_us": server_cpu / self.count * 1e6,
            "client_cpu_us": client_cpu / self.count * 1e6,
            **{k: v for k, v in extra.items() if k != "seconds"},
        }
        self.rounds[name].append(figures)
        return figures

    async def ceiling(self) -> float:
        fake = self.fake
        token = await fake.access_token()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", f"127.0.0.1:{fake.port}".encode()),
            (b":path", fake.send_path.encode()),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json; charset=UTF-8"),
        ]
        encode = msgspec.json.encode
        bodies = [encode({"message": {**PAYLOAD, "token": t}}) for t in self.tokens]
        warmup = [encode({"message": {**PAYLOAD, "token": f"warm-{i}"}}) for i in range(500)]
        ssl_context = _ssl_context(fake.info["ca_file"])
        loop = asyncio.get_running_loop()
        _, sender = await loop.create_connection(
            H2Sender, "127.0.0.1", fake.port, ssl=ssl_context, server_hostname="127.0.0.1"
        )
        try:
            await sender.ready
            await sender.send(headers, warmup, self.args.ceiling_streams)
            if sender.statuses != {200: len(warmup)}:
                raise AssertionError(f"ceiling warm-up answered {dict(sender.statuses)}")
            sender.statuses.clear()

            async def work() -> dict[str, float]:
                started = time.perf_counter()
                await sender.send(headers, bodies, self.args.ceiling_streams)
                return {"seconds": time.perf_counter() - started}

            figures = await self._measured("ceiling", work)
        finally:
            sender.close()
        if sender.statuses != {200: self.count}:
            raise AssertionError(f"ceiling: answered {dict(sender.statuses)}")
        return figures["seconds"]

    async def _warm_provider(self, provider: FcmProvider) -> None:
        """Fetch the access token and open the connection before the clock starts."""
        warm = Notification(
            key=0, message_id="warm", device_id="warm", os=OS, token="warm", payload=PAYLOAD
        )
        answers = await provider.send([warm])
        if [a.outcome for a in answers] != [Outcome.SENT]:
            raise AssertionError(f"provider warm-up: {answers}")

    async def provider(self) -> float:
        provider = FcmProvider(self.fcm_settings)
        notifications = [
            Notification(
                key=i,
                message_id="bench",
                device_id=device_id(i),
                os=OS,
                token=token,
                payload=PAYLOAD,
            )
            for i, token in enumerate(self.tokens)
        ]
        try:
            await self._warm_provider(provider)

            async def work() -> dict[str, float]:
                started = time.perf_counter()
                answers = await provider.send(notifications)
                seconds = time.perf_counter() - started
                outcomes = Counter(a.outcome for a in answers)
                if outcomes != {Outcome.SENT: self.count}:
                    raise AssertionError(f"provider: {outcomes}")
                return {"seconds": seconds}

            figures = await self._measured("provider", work)
        finally:
            await provider.aclose()
        return figures["seconds"]

    async def outbox(self) -> float:
        args = self.args
        with tempfile.TemporaryDirectory(prefix="outbox-", dir=self.workdir) as tmp:
            store = SqliteStore(Path(tmp) / "bench.sqlite3")
            async with Broker(store=store) as broker:
                devices = Devices(store)
                await devices.open()
                await register(store, self.tokens)
                registered = await devices.get(device_id(self.count - 1))
                if registered.channels != (CHANNEL,):
                    raise AssertionError(f"registration: {registered}")
                provider = FcmProvider(self.fcm_settings)
                try:
                    outbox = Outbox(
                        store,
                        devices,
                        {OS: provider},
                        batch=args.batch,
                        in_flight=args.in_flight,
                        page=args.page,
                    )
                    await outbox.open()
                    broker.send_push_to(outbox)
                    async with outbox.running():
                        await self._warm_provider(provider)
                        published: list[str] = []
                        figures = await self._measured(
                            "outbox", lambda: self._push_one(broker, outbox, published)
                        )
                        report = await outbox.report(published[0])
                        if report != {OS: {"sent": self.count, "failed": 0}}:
                            raise AssertionError(f"outbox report {report}")
                finally:
                    await provider.aclose()
        return figures["seconds"]

    async def _push_one(
        self, broker: Broker, outbox: Outbox, published: list[str]
    ) -> dict[str, float]:
        """Publish one push to CHANNEL; wait until the outbox has nothing pending."""
        queued_at: list[float] = []

        async def watch_expansion(started: float) -> None:
            while outbox.stats.queued < self.count:  # noqa: ASYNC110 -- a counter, no event
                await asyncio.sleep(POLL_QUEUED)
            queued_at.append(time.perf_counter() - started)

        started = time.perf_counter()
        result = await broker.publish(CHANNEL, MESSAGE, push=PushOptions(PublishPolicy.PUSH))
        accepted = time.perf_counter() - started
        watcher = asyncio.create_task(watch_expansion(started))
        try:
            while await outbox.pending():  # noqa: ASYNC110 -- polls the store, as a user would
                await asyncio.sleep(POLL_PENDING)
            seconds = time.perf_counter() - started
            await asyncio.wait_for(watcher, 1.0)
        finally:
            watcher.cancel()
        published.append(result.message_id)
        if outbox.stats.sent != self.count or outbox.stats.failed or outbox.stats.retried:
            raise AssertionError(f"outbox stats {outbox.stats}")
        return {"seconds": seconds, "expansion_s": queued_at[0], "accept_ms": accepted * 1e3}


def _ssl_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(ca_file)
    context.set_alpn_protocols(["h2"])
    return context


async def register(store: SqliteStore, tokens: Sequence[str]) -> None:
    """The rows `Devices.register` writes for each token's device (ANDROID, on CHANNEL)."""
    now = time.time()
    channels = msgspec.json.encode((CHANNEL,))
    for start in range(0, len(tokens), REGISTER_CHUNK):
        rows = [
            (
                device_id(i),
                str(uuid.uuid4()).upper(),
                tokens[i],
                OS,
                OS_BITS[OS],
                None,
                channels,
                None,
                now,
                now,
            )
            for i in range(start, min(start + REGISTER_CHUNK, len(tokens)))
        ]
        memberships = [(CHANNEL, row[0]) for row in rows]

        def insert(
            con: sqlite3.Connection, rows: list[Any] = rows, memberships: list[Any] = memberships
        ) -> None:
            con.executemany(
                "INSERT INTO device_registrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            con.executemany("INSERT INTO registration_channels VALUES (?, ?)", memberships)

        await store.transact(insert)


# ------------------------------------------------------------------------ main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices", type=int, default=None, help="registered devices (100 000, quick 2 000)"
    )
    parser.add_argument("--batch", type=int, default=500, help="Outbox batch (500)")
    parser.add_argument("--in-flight", type=int, default=4, help="Outbox in_flight (4)")
    parser.add_argument("--page", type=int, default=5000, help="Outbox expansion page (5000)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="FcmSettings.concurrency (100)"
    )
    parser.add_argument(
        "--ceiling-streams",
        type=int,
        default=32,
        help="requests in flight on the ceiling client's connection (32)",
    )


async def main(args: argparse.Namespace) -> None:
    if args.devices is None:
        args.devices = 2_000 if args.quick else 100_000
    names = selected(args, CONTENDERS)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tidings-push-bench-") as tmp:
        workdir = Path(tmp)
        fake = await start_fake(workdir)
        try:
            bench = Bench(args, fake, workdir)
            samples = await best_of({name: bench.trial(name) for name in names}, args.repeat)
        finally:
            await stop_fake(fake)
    count = args.devices
    results: dict[str, dict[str, float]] = {}
    for name, s in samples.items():
        best = min(bench.rounds[name], key=lambda figures: figures["seconds"])
        results[name] = {METRIC: count / s.best, "median_pushes_per_s": count / s.median, **best}
    ratios = compute_ratios(results, METRIC, RATIO_PAIRS)
    params = {
        "devices": count,
        "batch": args.batch,
        "in_flight": args.in_flight,
        "page": args.page,
        "provider_concurrency": args.concurrency,
        "ceiling_streams": args.ceiling_streams,
        "payload": PAYLOAD,
        "token_chars": len(device_token(0)),
        "repeat": args.repeat,
        "quick": args.quick,
        "fake": "tests/transports/push_fakes.FakeFcm on hypercorn + uvloop, own process",
        "ceiling_client": "h2 state machine on one asyncio TLS connection, prebuilt requests",
        "metric": f"{METRIC} = devices / best wall time; outbox: publish to pending() == 0",
        "ratios": f"of {METRIC}, same run (client and fake share the cores)",
        "targets": TARGETS,
        "seconds": round(time.perf_counter() - started, 1),
        **environment(),
    }
    notes = [
        "server_busy / client_busy: CPU seconds per wall second (1.0 = one core);"
        f" total {format_value(params['seconds'])} s"
    ]
    if "ceiling" in results and results["ceiling"]["server_busy"] < SATURATED:
        notes.append(
            f"note: the fake was busy {results['ceiling']['server_busy']:.2f} of a core during"
            " the ceiling: its client did not saturate it (or the machine was busy)"
        )
    print_table(
        f"{NAME}: {count} devices, batch {args.batch}, in_flight {args.in_flight},"
        f" provider concurrency {args.concurrency}, ceiling streams {args.ceiling_streams},"
        f" loop {params['loop']}, best of {args.repeat}",
        results,
        ratios,
        targets=TARGETS,
        metrics=[
            METRIC,
            "seconds",
            "expansion_s",
            "server_busy",
            "client_busy",
            "server_cpu_us",
            "client_cpu_us",
        ],
        notes=notes,
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=1)
    run(lambda: main(arguments))
