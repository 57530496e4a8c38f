"""Engine.IO 4 sessions over ASGI: long-polling, the websocket upgrade, the heartbeat.

The layer above (a `Handler`, one per session: transports.backendless_rt) sees
text messages in and hands packets out when asked (`due`), the way the native
websocket writer takes what its subscriptions hold: whatever transport a
session is on, one place (`Session.next_packets`) waits until something is due
and takes all of it. Over long-polling the packets of one GET are joined with
the record separator; over a websocket each packet is its own frame (the
protocol allows no other), sent back to back.

Only what socket.io v4 clients use: text packets (binary ones close the
session), protocol 4 (`EIO=4`), no JSONP, no compression (per-message deflate
would compress the same bytes once per socket). Errors answer as the reference
server's do: HTTP 400 / 403 with `{"code", "message"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias
from urllib.parse import parse_qsl

import msgspec

from transports.uvicorn_ws import WRITE
from transports.ws_frames import text_frame_header

log = logging.getLogger("tidings.engineio")

# Packet types (the first character of a packet): received as text, sent as UTF-8 bytes.
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0123456"
SEPARATOR = "\x1e"  # between the packets of one long-polling payload
_CLOSE, _PING, _NOOP = CLOSE.encode(), PING.encode(), NOOP.encode()
# The reference server's error codes for refused HTTP requests.
UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, BAD_VERSION = range(6)
SLOW_CONSUMER = 4008  # websocket close code, as for the native protocol
MESSAGE_TOO_BIG = 1009

Message: TypeAlias = dict[str, Any]
Scope: TypeAlias = dict[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]


class EngineSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[realtime]``: the socket.io endpoint's heartbeat and limits."""

    ping_interval: float = 25.0  # seconds between the server's pings
    ping_timeout: float = 20.0  # seconds a client has to answer one
    max_payload: int = 1_000_000  # bytes of one POST body or websocket message
    connect_timeout: float = 10.0  # seconds from the handshake to the namespace connect
    resume_window: float = 30.0  # seconds a dropped client's subscriptions wait for it
    max_parked: int = 10_000  # dropped clients' subscription sets kept at once


class SessionClosed(Exception):
    """Raised by a handler (or the session) to end the session with a code and reason."""

    def __init__(self, reason: str, code: int = 1000) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Handler(Protocol):
    """The layer above one session."""

    async def received(self, data: str) -> None:
        """A message packet's payload, in order; may raise SessionClosed."""

    def due(self, framed: bool) -> list[bytes]:
        """Every packet due to the client now (complete packets, UTF-8: b"4..."), or with
        `framed` the same as websocket text frames (any number per item); may raise
        SessionClosed."""

    def arm(self, notify: Callable[[], None]) -> bool:
        """Have `notify` called once something is due; True if something already is."""

    def closed(self, reason: str) -> None:
        """The session ended (once)."""


HandlerFactory: TypeAlias = Callable[["Session", str, Mapping[str, str]], Handler]


class Session:
    """One client, on long-polling until it upgrades to a websocket."""

    def __init__(self, server: EngineServer, sid: str) -> None:
        self.server = server
        self.sid = sid
        self.transport = "polling"
        self.handler: Handler | None = None
        self.control: list[bytes] = []  # engine.io's own packets: ping, noop, close
        self.ready = asyncio.Event()
        self.polling = False  # a GET is waiting
        self.upgrading = False
        self.closed: SessionClosed | None = None
        self.pong = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self, handler: Handler) -> None:
        self.handler = handler
        self._heartbeat = asyncio.create_task(self._beat())

    def wake(self) -> None:
        self.ready.set()

    async def next_packets(self, *, polling: bool = False, framed: bool = False) -> list[bytes]:
        """Wait until something is due, then take all of it ([] once closed), as packets
        or (`framed`) websocket frames. A GET that comes, or is waiting, while the session
        upgrades gets a noop: the client's polling must end before the websocket takes
        over."""
        ready = self.ready
        handler = self.handler
        assert handler is not None
        while True:
            if polling and (self.upgrading or self.transport != "polling"):
                return [_NOOP]
            packets, self.control = self.control, []
            if framed:
                packets = [text_frame_header(len(p)) + p for p in packets]
            if self.closed is not None:
                return packets
            try:
                packets += handler.due(framed)
            except SessionClosed as closing:
                self.close(closing)
                continue
            if packets:
                return packets
            ready.clear()
            if self.control or handler.arm(ready.set):
                continue
            await ready.wait()

    def close(self, closing: SessionClosed) -> None:
        """End the session: the handler learns why, the client gets a close packet where
        it can still read one, and whoever waits on the session wakes."""
        if self.closed is not None:
            return
        self.closed = closing
        self.server.sessions.pop(self.sid, None)
        self.server.stats.sessions = len(self.server.sessions)
        if self._heartbeat is not None and self._heartbeat is not asyncio.current_task():
            self._heartbeat.cancel()
        self.control.append(_CLOSE)  # for a client still reading
        self.ready.set()
        if self.handler is not None:
            self.handler.closed(closing.reason)

    async def received(self, payload: str) -> None:
        """One packet from the client, whatever its transport."""
        kind = payload[:1]
        if kind == MESSAGE:
            assert self.handler is not None
            self.server.stats.packets_in += 1
            try:
                await self.handler.received(payload[1:])
            except SessionClosed as closing:
                self.close(closing)
        elif kind == PONG:
            self.pong.set()
        elif kind == CLOSE:
            self.close(SessionClosed("client close", 1001))
        elif kind != NOOP:  # a ping (only servers ping in v4), an upgrade out of turn, junk
            self.close(SessionClosed(f"protocol error: unexpected packet {payload[:16]!r}", 1002))

    async def _beat(self) -> None:
        settings = self.server.settings
        while True:
            await asyncio.sleep(settings.ping_interval)
            self.pong.clear()
            self.control.append(_PING)
            self.ready.set()
            try:
                async with asyncio.timeout(settings.ping_timeout):
                    await self.pong.wait()
            except TimeoutError:
                self.close(SessionClosed("ping timeout", 1001))
                return


class EngineStatistics(msgspec.Struct):
    sessions: int = 0  # open engine.io sessions
    opened: int = 0  # handshakes since start
    upgrades: int = 0  # sessions moved from polling to a websocket
    polls: int = 0  # long-polling GETs answered
    packets_in: int = 0  # message packets received
    writes: int = 0  # websocket writes (or frames, without uvicorn_ws) and polling answers
    slow_consumers: int = 0  # sessions closed because the client did not read


class EngineServer:
    """The ASGI app of the engine.io path(s); `new_handler(session, app_id, query)` makes
    each session's handler (app_id: the path's first segment)."""

    def __init__(
        self,
        new_handler: HandlerFactory,
        settings: EngineSettings | None = None,
        *,
        origins: tuple[str, ...] = ("*",),
        slow_consumer_timeout: float = 5.0,
    ) -> None:
        self.new_handler = new_handler
        self.settings = settings or EngineSettings()
        self.origins = None if "*" in origins else frozenset(origins)
        self.slow_consumer_timeout = slow_consumer_timeout
        self.sessions: dict[str, Session] = {}
        self.stats = EngineStatistics()
        self._open = msgspec.json.encode(
            {
                "upgrades": ["websocket"],
                "pingInterval": int(self.settings.ping_interval * 1000),
                "pingTimeout": int(self.settings.ping_timeout * 1000),
                "maxPayload": self.settings.max_payload,
            }
        )

    def close_all(self, reason: str = "server shutting down") -> None:
        for session in list(self.sessions.values()):
            session.close(SessionClosed(reason))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        origin = headers.get("origin")
        allowed = origin is None or self.origins is None or origin in self.origins
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        app_id = scope["path"].strip("/")
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, query=query, app_id=app_id, allowed=allowed)
            return
        cors = _cors(origin) if origin is not None and allowed else []
        if not allowed:
            await _refuse(send, 403, FORBIDDEN, "Forbidden: origin not allowed", cors)
        elif scope["method"] == "OPTIONS":
            await _respond(send, 204, b"", cors + _preflight(headers))
        elif query.get("EIO") != "4":
            await _refuse(send, 400, BAD_VERSION, "Unsupported protocol version", cors)
        elif query.get("transport") != "polling":
            await _refuse(send, 400, UNKNOWN_TRANSPORT, "Transport unknown", cors)
        elif "sid" not in query:
            if scope["method"] != "GET":
                await _refuse(send, 400, BAD_HANDSHAKE_METHOD, "Bad handshake method", cors)
                return
            opened = self._open_session(app_id, query, "polling")
            await _respond(send, 200, self._handshake(opened), cors, text=True)
        else:
            session = self.sessions.get(query["sid"])
            if session is None:
                await _refuse(send, 400, UNKNOWN_SID, "Session ID unknown", cors)
            elif scope["method"] == "GET":
                await self._poll(session, send, cors)
            elif scope["method"] == "POST":
                await self._post(session, receive, send, headers, cors)
            else:
                await _refuse(send, 400, BAD_REQUEST, "Bad request", cors)

    def _open_session(self, app_id: str, query: Mapping[str, str], transport: str) -> Session:
        sid = secrets.token_urlsafe(15)
        session = Session(self, sid)
        session.transport = transport
        session.start(self.new_handler(session, app_id, query))
        self.sessions[sid] = session
        self.stats.opened += 1
        self.stats.sessions = len(self.sessions)
        return session

    def _handshake(self, session: Session) -> bytes:
        return f'{OPEN}{{"sid":"{session.sid}",'.encode() + self._open[1:]

    async def _poll(self, session: Session, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        if session.polling:  # two GETs at once: the reference server ends the session
            session.close(SessionClosed("protocol error: overlapping polls", 1002))
            await _refuse(send, 400, BAD_REQUEST, "Bad request", cors)
            return
        session.polling = True
        try:
            packets = await session.next_packets(polling=True)
        finally:
            session.polling = False
        self.stats.polls += 1
        self.stats.writes += 1
        await _respond(send, 200, b"\x1e".join(packets or [_NOOP]), cors, text=True)

    async def _post(
        self,
        session: Session,
        receive: Receive,
        send: Send,
        headers: Mapping[str, str],
        cors: list[tuple[bytes, bytes]],
    ) -> None:
        limit = self.settings.max_payload
        if int(headers.get("content-length") or 0) > limit:
            session.close(SessionClosed("payload too large", 1009))
            await _refuse(send, 413, BAD_REQUEST, "Payload too large", cors)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > limit:
                session.close(SessionClosed("payload too large", 1009))
                await _refuse(send, 413, BAD_REQUEST, "Payload too large", cors)
                return
            if not message.get("more_body"):
                break
        try:
            text = body.decode()
        except UnicodeDecodeError:
            session.close(SessionClosed("protocol error: the payload is not UTF-8", 1002))
            await _refuse(send, 400, BAD_REQUEST, "Bad request", cors)
            return
        for packet in text.split(SEPARATOR):
            await session.received(packet)
        await _respond(send, 200, b"ok", cors, text=True)

    # -- websocket --------------------------------------------------------------------------------

    async def _websocket(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        query: Mapping[str, str],
        app_id: str,
        allowed: bool,
    ) -> None:
        await receive()  # websocket.connect
        sid = query.get("sid")
        session = self.sessions.get(sid) if sid else None
        if (
            not allowed
            or query.get("EIO") != "4"
            or query.get("transport") != "websocket"
            or (sid and (session is None or session.transport != "polling" or session.upgrading))
        ):
            await send({"type": "websocket.close", "code": 1008})  # the server answers 403
            return
        await send({"type": "websocket.accept"})
        if session is None:
            session = self._open_session(app_id, query, "websocket")
            await send({"type": "websocket.send", "text": self._handshake(session).decode()})
        elif not await self._upgrade(session, receive, send):
            return
        reader = asyncio.create_task(self._read(session, receive))
        try:
            frames = scope.get("extensions", {}).get(WRITE)  # transports.uvicorn_ws
            if frames is not None:
                await self._write_frames(session, send, frames["writable"])
            else:
                await self._write(session, send)  # until the session ends
            await self._close(session, send)
        finally:
            reader.cancel()

    async def _upgrade(self, session: Session, receive: Receive, send: Send) -> bool:
        """Probe, then switch: the client's ping "probe", our pong, its upgrade packet."""
        session.upgrading = True
        session.wake()  # a waiting GET answers noop
        try:
            async with asyncio.timeout(self.settings.ping_timeout):
                probe = await receive()
                if probe.get("text") != PING + "probe":
                    return False
                await send({"type": "websocket.send", "text": PONG + "probe"})
                upgrade = await receive()
                if upgrade.get("text") != UPGRADE:
                    return False
        except TimeoutError:
            return False
        finally:
            session.upgrading = False
            if session.transport == "polling":
                session.wake()
        if session.closed is not None:
            return False
        session.transport = "websocket"
        self.stats.upgrades += 1
        return True

    async def _read(self, session: Session, receive: Receive) -> None:
        limit = self.settings.max_payload
        while session.closed is None:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                session.close(SessionClosed("transport close", 1001))
            elif (text := message.get("text")) is None:
                session.close(SessionClosed("protocol error: binary packets are not served", 1003))
            elif len(text) > limit:
                session.close(SessionClosed("payload too large", MESSAGE_TOO_BIG))
            else:
                await session.received(text)

    async def _write_frames(self, session: Session, send: Send, writable: asyncio.Event) -> None:
        """Send what is due until the session ends, all of it in one write, framed by the
        handler (uvicorn's `tidings.websocket.write` extension). A client that leaves the
        buffer full for `slow_consumer_timeout` is closed with 4008."""
        stats = self.stats
        try:
            while True:
                frames = await session.next_packets(framed=True)
                if not frames:
                    return
                if not writable.is_set():
                    async with asyncio.timeout(self.slow_consumer_timeout):
                        await writable.wait()
                stats.writes += 1
                await send({"type": WRITE, "bytes": b"".join(frames)})
                if session.closed is not None and not session.control:
                    return
        except TimeoutError:
            self._slow(session)
        except OSError:  # the client is gone (uvicorn's ClientDisconnected)
            session.close(SessionClosed("transport close", 1001))

    async def _write(self, session: Session, send: Send) -> None:
        """Without the extension: frame by frame, each send waiting while the buffer is
        full."""
        stats = self.stats
        try:
            while True:
                packets = await session.next_packets()
                if not packets:
                    return
                stats.writes += len(packets)
                async with asyncio.timeout(self.slow_consumer_timeout):
                    for packet in packets:
                        await send({"type": "websocket.send", "text": packet.decode()})
                if session.closed is not None and not session.control:
                    return
        except TimeoutError:
            self._slow(session)
        except OSError:
            session.close(SessionClosed("transport close", 1001))

    def _slow(self, session: Session) -> None:
        self.stats.slow_consumers += 1
        reason = "5051 slow consumer: the client did not read"
        session.close(SessionClosed(reason, SLOW_CONSUMER))

    async def _close(self, session: Session, send: Send) -> None:
        """Close the websocket after the session ended, with its code where it has one."""
        closing = session.closed
        if closing is not None and closing.reason == "transport close":
            return
        code = closing.code if closing is not None and closing.code >= 4000 else 1000
        reason = closing.reason[:120] if closing is not None else ""
        # A stuck client never frees the buffer: returning closes the transport anyway.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await send({"type": "websocket.close", "code": code, "reason": reason})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _cors(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


def _preflight(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    answer = [(b"access-control-allow-methods", b"GET, POST, OPTIONS")]
    requested = headers.get("access-control-request-headers")
    if requested:
        answer.append((b"access-control-allow-headers", requested.encode("latin-1")))
    return answer


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    text: bool = False,
    json: bool = False,
) -> None:
    kind = b"application/json" if json else b"text/plain; charset=UTF-8"
    extra = [(b"content-type", kind)] if text or json else []
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *extra,
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(
    send: Send, status: int, code: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = msgspec.json.encode({"code": code, "message": message})
    await _respond(send, status, body, headers, json=True)


__all__ = [
    "EngineServer",
    "EngineSettings",
    "EngineStatistics",
    "Handler",
    "Session",
    "SessionClosed",
]
