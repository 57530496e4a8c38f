"""The lean HTTP/2 client of the FCM and APNs providers, against a tiny hypercorn app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import h2.config
import h2.connection
import h2.events
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from transports.push_providers.h2_client import (
    ConnectError,
    ConnectionLost,
    H2Client,
    ReadTimeout,
    Response,
)

from .push_fakes import read_request
from .push_fakes import test_ca as make_ca

_log = logging.getLogger("tests.h2_client")


class Echo:
    """Answers ``/echo`` with the body, ``/slow`` after 30 s, ``/wait`` after 50 ms."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections: set[Any] = set()
        self.versions: set[str] = set()
        self.stopping = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_request(scope, receive, send)
        if body is None:
            return
        self.connections.add(scope["client"])
        self.versions.add(scope["http_version"])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if scope["path"] == "/slow":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 30)
            elif scope["path"] == "/wait":
                await asyncio.sleep(0.05)
            elif scope["path"] == "/echo":
                await asyncio.sleep(0.001)
        finally:
            self.in_flight -= 1
        headers = dict(scope["headers"])
        answer = body if scope["path"] == "/echo" else scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"x-method", scope["method"].encode()),
                    (b"x-token", headers.get(b"x-token", b"")),
                    (b"retry-after", b"7"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


class Server:
    def __init__(self, tmp_path: Path, port: int = 0) -> None:
        self.app = Echo()
        ca = make_ca()
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(tmp_path / "server.pem")
        )
        self.ca_file = str(tmp_path / "ca.pem")
        self.pem = str(tmp_path / "server.pem")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        self.port: int = sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._fd = sock.detach()

    @contextlib.asynccontextmanager
    async def serving(
        self, *, max_streams: int = 100, max_requests: int = 10**9
    ) -> AsyncIterator[None]:
        config = Config()
        config.bind = [f"fd://{self._fd}"]
        config.certfile = config.keyfile = self.pem
        config.alpn_protocols = ["h2"]
        config.errorlog = _log
        config.graceful_timeout = 0.2
        config.h2_max_concurrent_streams = max_streams
        config.keep_alive_max_requests = max_requests
        stop = asyncio.Event()
        task = asyncio.create_task(serve(self.app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        try:
            yield
        finally:
            self.app.stopping.set()
            stop.set()
            await task


@contextlib.asynccontextmanager
async def client(server: Server, seconds: float = 5.0) -> AsyncIterator[H2Client]:
    h2 = H2Client(server.url, ca_file=server.ca_file, timeout=seconds)
    try:
        yield h2
    finally:
        await h2.aclose()


async def test_concurrent_requests_share_one_connection(tmp_path: Path) -> None:
    server = Server(tmp_path)
    async with server.serving(), client(server) as h2:
        bodies = [b"x" * n for n in range(1, 51)]
        answers = await asyncio.gather(
            *(h2.request("POST", "/echo", {"X-Token": f"t{len(b)}"}, b) for b in bodies)
        )
        assert [a.body for a in answers] == bodies
        assert {a.status for a in answers} == {201}
        assert answers[4].headers["x-token"] == "t5"
        assert answers[0].headers["x-method"] == "POST"
        assert answers[0].headers["retry-after"] == "7"
        get = await h2.request("GET", "/path?q=1", {})
        assert (get.status, get.body, get.headers["x-method"]) == (201, b"/path", "GET")
    assert server.app.versions == {"2"}
    assert len(server.app.connections) == 1
    assert server.app.max_in_flight > 1


async def test_bodies_beyond_the_flow_control_window(tmp_path: Path) -> None:
    server = Server(tmp_path)
    async with server.serving(), client(server) as h2:
        big = bytes(range(256)) * 1200  # 300 KiB: several windows of 64 KiB
        answers = await asyncio.gather(*(h2.request("POST", "/echo", {}, big) for _ in range(4)))
        assert all(a.body == big for a in answers)


async def test_streams_beyond_the_servers_limit_wait(tmp_path: Path) -> None:
    server = Server(tmp_path)
    async with server.serving(max_streams=3), client(server) as h2:
        answers = await asyncio.gather(*(h2.request("POST", "/wait", {}, b"x") for _ in range(20)))
        assert [a.status for a in answers] == [201] * 20
    assert server.app.max_in_flight == 3
    assert len(server.app.connections) == 1


class Abrupt(asyncio.Protocol):
    """A bare HTTP/2 server that answers `answer` requests, then GOAWAY (or just drops)."""

    answer = 3
    goaway = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.h2.initiate_connection()
        self.count = 0
        self.transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.StreamEnded):
                self.count += 1
                sid = event.stream_id
                self.h2.send_headers(sid, [(":status", "200")])
                self.h2.send_data(sid, str(sid).encode(), end_stream=True)
                if self.count == self.answer:  # the others in this read go unanswered
                    if self.goaway:
                        self.h2.close_connection(last_stream_id=sid)
                    self.transport.write(self.h2.data_to_send())
                    self.transport.close()
                    return
        self.transport.write(self.h2.data_to_send())


@pytest.mark.parametrize("goaway", [True, False], ids=["goaway", "dropped"])
async def test_goaway_or_loss_fails_the_rest_then_reconnects(tmp_path: Path, goaway: bool) -> None:
    server = Server(tmp_path)  # for its certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.pem)
    context.set_alpn_protocols(["h2"])
    protocol = type("Server", (Abrupt,), {"goaway": goaway})
    listener = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    client = H2Client(f"https://127.0.0.1:{port}", ca_file=server.ca_file)
    try:
        assert (await client.request("GET", "/", {})).body == b"1"  # connected
        results = await asyncio.gather(
            *(client.request("POST", "/", {}, b"x") for _ in range(8)), return_exceptions=True
        )
        answered = [r.body for r in results if isinstance(r, Response)]
        failed = [r for r in results if not isinstance(r, Response)]
        assert answered == [b"3", b"5"]  # one write: the server reads them together
        assert len(failed) == 6
        assert all(isinstance(e, ConnectionLost) for e in failed), failed
        if goaway:
            assert all("GOAWAY" in str(e) for e in failed), failed
        again = await client.request("POST", "/", {}, b"y")
        assert again.body == b"1"  # stream 1: a new connection
    finally:
        await client.aclose()
        listener.close()


async def test_a_request_times_out_and_the_connection_goes_on(tmp_path: Path) -> None:
    server = Server(tmp_path)
    async with server.serving(), client(server, seconds=0.2) as h2:
        await h2.request("GET", "/warm-up", {})
        started = time.monotonic()
        slow = asyncio.create_task(h2.request("POST", "/slow", {}, b"x"))
        quick = await h2.request("POST", "/echo", {}, b"quick")
        assert quick.body == b"quick"
        with pytest.raises(ReadTimeout):
            await slow
        assert time.monotonic() - started < 1
        assert (await h2.request("POST", "/echo", {}, b"later")).body == b"later"
    assert len(server.app.connections) == 1


async def test_connect_failures_and_closed_client(tmp_path: Path) -> None:
    server = Server(tmp_path)  # listening, but nobody accepts: the TLS handshake times out
    async with client(server, seconds=0.2) as h2:
        with pytest.raises(ConnectError):
            await h2.request("GET", "/", {})
    async with server.serving():
        h2 = H2Client(server.url, timeout=2)  # the test CA is not trusted
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await h2.request("GET", "/", {})
        async with client(server) as h2:
            await h2.request("GET", "/", {})
        with pytest.raises(ConnectError, match="closed"):
            await h2.request("GET", "/", {})
    with pytest.raises(ValueError, match="https"):
        H2Client("http://127.0.0.1:80")
