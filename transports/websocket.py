"""Subscribers over websockets (`tidings.v1`, docs/PROTOCOL.md), on the `websockets` library.

The fan-out is the broker's: a client's subscription is an ordinary broker
subscription, bounded by `max_pending` with the "close" overflow policy.
What this module adds is the write path (PERFORMANCE.md): each message is
encoded once and the same bytes are shared by every connection; one writer
task per connection wakes when any of its subscriptions has messages, takes
all of them plus the pending answers, and writes them as one frame with one
socket write. A connection that falls behind (a subscription over its bound,
or a write buffer that stays full) is closed with 4008 alone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol, cast

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol

from broker import Broker, BrokerError, Message, SlowConsumerError, Subscription
from broker.accounts import Accounts
from broker.permissions import Permission, Permissions
from transports.app_keys import ANONYMOUS, find_app, find_user
from transports.config import WebsocketSettings
from transports.encode_once import EncodeOnce
from transports.live_connections import PerKeyCount, users_watched
from transports.publishing import publish_message
from transports.ws_frames import (
    MESSAGES_END,
    PROTOCOL,
    AnyOp,
    Authenticated,
    AuthOp,
    CancelOp,
    FrameError,
    PingOp,
    Pong,
    Published,
    PublishOp,
    RequestId,
    StatusOp,
    Subscribed,
    SubscribeOp,
    Unsubscribed,
    UnsubscribeOp,
    decode_op,
    encode,
    encode_message,
    error_event,
    messages_prefix,
    status_event,
    text_frame_header,
)

log = logging.getLogger("tidings.websocket")

# Close codes (docs/PROTOCOL.md).
GOING_AWAY = 1001
PROTOCOL_ERROR = 4000
AUTH_FAILED = 4001
AUTH_REVOKED = 4003
SLOW_CONSUMER = 4008
TOO_MANY_CONNECTIONS = 4029
LISTEN_BACKLOG = 4096
# websockets logs every connection opened and closed at INFO: too much for thousands.
_connections_log = logging.getLogger("tidings.websocket.connections")
_connections_log.setLevel(logging.WARNING)
# Encoded messages kept for the connections that have yet to write them.
WIRE_CACHE_ENTRIES = 16_384
WIRE_CACHE_BYTES = 64 * 1024 * 1024


class Endpoint(Protocol):
    """What the server needs of an app (transports.runtime.AppRuntime is one)."""

    @property
    def app_id(self) -> str: ...
    @property
    def api_keys(self) -> tuple[str, ...]: ...
    @property
    def broker(self) -> Broker: ...
    @property
    def permissions(self) -> Permissions: ...
    @property
    def accounts(self) -> Accounts | None: ...


@dataclass
class BrokerEndpoint:
    """One app around a Broker, for embedding the server without `tidings serve`."""

    app_id: str
    api_keys: tuple[str, ...]
    broker: Broker
    permissions: Permissions = field(default_factory=Permissions)
    accounts: Accounts | None = None


class WebsocketStatistics(msgspec.Struct):
    connections: int = 0  # open and authenticated
    accepted: int = 0  # authenticated since start
    slow_consumers: int = 0  # closed with 4008
    refused: int = 0  # closed before or at authentication (4000, 4001, 4029)
    frames_in: int = 0
    frames_out: int = 0


class _Closing(Exception):
    """Raised inside a connection to close it with a code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason.encode()[:123].decode(errors="ignore")  # a close reason's limit


class _Sub:
    __slots__ = ("channel", "group", "prefix", "sub")

    def __init__(self, sub_id: str, sub: Subscription) -> None:
        self.sub = sub
        self.channel = sub.channel
        self.group = (sub.channel, sub.selector)  # the broker's fan-out group
        self.prefix = messages_prefix(sub_id)


class WebsocketServer:
    """The `tidings.v1` endpoint for some apps; `async with server.listen(sock)` runs it."""

    def __init__(
        self,
        apps: Mapping[str, Endpoint],
        settings: WebsocketSettings | None = None,
        *,
        origins: Sequence[str] = ("*",),
        limit: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.apps = apps
        # Rate limits per (API key, user id): raises BrokerError 999 when over.
        self.limit = limit
        # Browsers send Origin; other clients none. "*" admits every page, as for CORS.
        self._origins: list[Origin | None] | None = (
            None if "*" in origins else [*(Origin(o) for o in origins), None]
        )
        self.settings = settings or WebsocketSettings()
        self.stats = WebsocketStatistics()
        self._per_key = PerKeyCount()
        self._connections: set[_Connection] = set()
        self.wire = EncodeOnce(encode_message, entries=WIRE_CACHE_ENTRIES, size=WIRE_CACHE_BYTES)
        self._batches: dict[tuple[tuple[str, str], int, int], tuple[Message, Message, bytes]] = {}
        self._server: Server | None = None
        self._closing = False

    # -- shared by the connections ----------------------------------------------------------------

    def joined(self, group: tuple[str, str], messages: list[Message]) -> bytes:
        """The encoded messages joined by commas. Subscriptions with one (channel, selector)
        read one log and take the same slices of it, so a batch is joined once, not once
        per connection: a contiguous slice of that log is known by its two ends."""
        first, last = messages[0], messages[-1]
        key = (group, id(first), id(last))
        entry = self._batches.get(key)
        if entry is not None:
            return entry[2]
        wire = self.wire
        data = b",".join([wire(m) for m in messages])
        if len(self._batches) >= WIRE_CACHE_ENTRIES:
            self._batches.clear()
        # The entry holds both ends, so neither id() can be reused while it is cached.
        self._batches[key] = (first, last, data)
        return data

    def admit(self, api_key: str) -> None:
        if not self._per_key.take(api_key, self.settings.max_connections_per_key):
            raise _Closing(TOO_MANY_CONNECTIONS, "999 too many connections for this API key")

    def release(self, api_key: str) -> None:
        self._per_key.give_back(api_key)

    # -- running ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def listen(self, sock: socket.socket) -> AsyncIterator[WebsocketServer]:
        """Serve on a bound, listening socket until the context exits; then close every
        connection with 1001 ("server shutting down") after what it was writing."""
        settings = self.settings
        async with users_watched(self.apps.values(), self._connections, settings.revalidate_every):
            server = await serve(
                self._handle,
                sock=sock,
                select_subprotocol=_select_subprotocol,
                origins=self._origins,
                compression=None,  # compressing per connection would undo encode-once
                max_size=settings.max_frame_size,
                write_limit=settings.write_buffer,
                ping_interval=settings.ping_interval,
                ping_timeout=settings.ping_timeout,
                close_timeout=5,
                server_header=None,
                backlog=LISTEN_BACKLOG,  # else asyncio listens again with its default, 100
                logger=_connections_log,
            )
            self._server = server
            try:
                yield self
            finally:
                await self._shutdown(server)

    async def _shutdown(self, server: Server) -> None:
        self._closing = True
        server.close(close_connections=False)
        await asyncio.gather(
            *(c.close(GOING_AWAY, "server shutting down") for c in list(self._connections)),
            return_exceptions=True,
        )
        await server.wait_closed()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not listening")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    async def _handle(self, ws: ServerConnection) -> None:
        if self._closing:
            await ws.close(GOING_AWAY, "server shutting down")
            return
        connection = _Connection(self, ws)
        await connection.run()


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    if not offered:
        return None  # served as version 1
    if PROTOCOL in offered:
        return PROTOCOL
    raise NegotiationError(f"this server speaks {PROTOCOL}; offered: {', '.join(offered)}")


class _Connection:
    """One client: a reader (this task) acting on operations, and a writer task."""

    def __init__(self, server: WebsocketServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.settings = server.settings
        self.app: Endpoint | None = None
        self.api_key = ""
        self.roles: tuple[str, ...] = ANONYMOUS
        self.user_id: str | None = None
        self.user_token: str | None = None
        self.subs: dict[str, _Sub] = {}
        self.next_sub = 1
        self.replies: list[bytes] = []
        self.ready = asyncio.Event()
        self.closing: _Closing | None = None
        self._revalidating: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        server = self.server
        writer: asyncio.Task[None] | None = None
        admitted = False
        try:
            await self._authenticate_first()
            server.admit(self.api_key)
            admitted = True
            server._connections.add(self)
            server.stats.connections += 1
            server.stats.accepted += 1
            writer = asyncio.create_task(self._write_loop())
            await self._read_loop()
        except _Closing as closing:
            if not admitted:
                server.stats.refused += 1
            await self.ws.close(closing.code, closing.reason)
        except ConnectionClosed:
            pass
        finally:
            for sub in self.subs.values():
                sub.sub.close()
            self.subs.clear()
            if writer is not None:
                writer.cancel()
            if self._revalidating is not None:
                self._revalidating.cancel()
            if admitted:
                server._connections.discard(self)
                server.stats.connections -= 1
                server.release(self.api_key)

    async def close(self, code: int, reason: str) -> None:
        """Close from outside (shutdown, revoked user): after what is being written."""
        self.closing = _Closing(code, reason)
        self.ready.set()
        await self.ws.close(code, self.closing.reason)

    async def _authenticate_first(self) -> None:
        try:
            async with asyncio.timeout(self.settings.auth_timeout):
                frame = await self.ws.recv()
        except TimeoutError:
            raise _Closing(PROTOCOL_ERROR, "protocol error: no auth operation in time") from None
        self.server.stats.frames_in += 1
        try:
            op = decode_op(frame)
        except FrameError as exc:
            raise _Closing(PROTOCOL_ERROR, f"protocol error: {exc.message}") from None
        if not isinstance(op, AuthOp):
            raise _Closing(PROTOCOL_ERROR, "protocol error: the first operation must be auth")
        try:
            await self._auth(op)
        except BrokerError as exc:
            raise _Closing(AUTH_FAILED, f"{exc.code} {exc.message}") from None

    async def _auth(self, op: AuthOp) -> None:
        app = find_app(self.server.apps, op.app_id, op.api_key)
        if self.app is not None and (app is not self.app or op.api_key != self.api_key):
            raise BrokerError(8002, "auth again must name the connection's app id and API key")
        self.user_id, roles = await find_user(app, op.user_token)
        self.app, self.api_key, self.roles, self.user_token = app, op.api_key, roles, op.user_token
        settings = self.settings
        limits = {
            "maxFrameSize": settings.max_frame_size,
            "maxSubscriptions": settings.max_subscriptions,
            "maxPending": settings.max_pending,
        }
        self._reply(encode(Authenticated(op.id, str(self.ws.id), PROTOCOL, limits)))
        self._recheck_subscriptions()

    # -- reading ----------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        stats = self.server.stats
        limit = self.server.limit
        while True:
            frame = await self.ws.recv()
            stats.frames_in += 1
            request_id: RequestId = None
            try:
                op = decode_op(frame)
                request_id = op.id
                if limit is not None:  # each operation counts as a REST request does
                    limit(self.api_key, self.user_id)
                await self._act(op)
            except FrameError as exc:
                self._reply(error_event(exc, exc.request_id))
            except BrokerError as exc:
                self._reply(error_event(exc, request_id))
            if self.closing is not None:
                raise self.closing

    async def _act(self, op: AnyOp) -> None:
        app = cast(Endpoint, self.app)  # authenticated before the read loop starts
        if self._revalidating is not None and not self._revalidating.done():
            await asyncio.shield(self._revalidating)  # act with the user's new roles
        if isinstance(op, PublishOp):
            answer = await publish_message(app, self.roles, op.channel, op, delay=op.delay)
            self._reply(encode(Published(op.id, answer.message_id, answer.status)))
        elif isinstance(op, SubscribeOp):
            await self._subscribe(app, op)
        elif isinstance(op, UnsubscribeOp):
            found = self.subs.pop(op.subscription, None)
            if found is not None:
                found.sub.close()
            self._reply(encode(Unsubscribed(op.subscription, op.id)))
        elif isinstance(op, StatusOp):
            self._reply(status_event(await app.broker.get_status(op.message_id), op.id))
        elif isinstance(op, CancelOp):
            self._reply(status_event(await app.broker.cancel(op.message_id), op.id))
        elif isinstance(op, PingOp):
            self._reply(encode(Pong(op.id)))
        else:
            await self._auth(op)

    async def _subscribe(self, app: Endpoint, op: SubscribeOp) -> None:
        sub = app.broker.subscribe(
            op.channel, selector=op.selector, max_pending=self.settings.max_pending
        )
        app.permissions.require(op.channel, self.roles, Permission.SUBSCRIBE)
        if len(self.subs) >= self.settings.max_subscriptions:
            raise BrokerError(999, f"at most {self.settings.max_subscriptions} subscriptions")
        await sub.__aenter__()
        sub_id = str(self.next_sub)
        self.next_sub += 1
        self.subs[sub_id] = _Sub(sub_id, sub)
        self._reply(encode(Subscribed(op.id, sub_id, op.channel, sub.selector)))

    def _reply(self, event: bytes) -> None:
        self.replies.append(event)
        self.ready.set()

    # -- users ------------------------------------------------------------------------------------

    def revalidate_soon(self) -> None:
        if self._revalidating is None or self._revalidating.done():
            self._revalidating = asyncio.create_task(self._revalidate())

    async def _revalidate(self) -> None:
        app = self.app
        if app is None or self.user_token is None:
            return
        try:
            self.user_id, self.roles = await find_user(app, self.user_token)
        except BrokerError:
            await self.close(AUTH_REVOKED, "3064 auth revoked: the user-token is no longer valid")
            return
        self._recheck_subscriptions()

    def _recheck_subscriptions(self) -> None:
        """End the subscriptions the connection's (new) roles may not hold."""
        app = self.app
        if app is None:
            return
        for sub_id, found in list(self.subs.items()):
            if not app.permissions.allowed(found.channel, self.roles, Permission.SUBSCRIBE):
                del self.subs[sub_id]
                found.sub.close()
                message = f"the user may not subscribe to channel {found.channel!r}"
                self._reply(encode(Unsubscribed(sub_id, None, 5008, message)))

    # -- writing ----------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        ready = self.ready
        notify = ready.set
        try:
            while True:
                frame = self._collect()
                if frame is not None:
                    await self._send(frame)
                    continue
                if self.closing is not None:
                    return
                ready.clear()
                if self.replies or any(s.sub.notify_when_ready(notify) for s in self.subs.values()):
                    continue
                await ready.wait()
        except _Closing as closing:
            self.closing = closing
            await self.ws.close(closing.code, closing.reason)
        except ConnectionClosed:
            pass

    def _collect(self) -> bytes | None:
        """Everything due to this client as one frame (an event, or an array of events)."""
        parts = self.replies
        self.replies = []
        limit = self.settings.max_batch
        joined = self.server.joined
        for sub_id, found in list(self.subs.items()):
            sub = found.sub
            if sub.closed:
                error = sub.error
                if isinstance(error, SlowConsumerError):
                    self.server.stats.slow_consumers += 1
                    raise _Closing(SLOW_CONSUMER, f"5051 slow consumer on {found.channel!r}")
            messages = sub.take(limit)
            if messages:
                parts.append(found.prefix + joined(found.group, messages) + MESSAGES_END)
            elif sub.closed:
                del self.subs[sub_id]
                error = sub.error
                if error is not None:  # the channel was deleted
                    parts.append(encode(Unsubscribed(sub_id, None, error.code, error.message)))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return b"[" + b",".join(parts) + b"]"

    async def _send(self, frame: bytes) -> None:
        """Write one text frame; a client that leaves the write buffer full too long is slow.

        The frame goes straight to the transport (a server frame is unmasked: a
        header, then the bytes), not through `websockets`' send, whose per-frame
        machinery cost more than the write itself; `websockets` still owns the
        handshake, reading, pings and the closing handshake.
        """
        ws = self.ws
        self.server.stats.frames_out += 1
        if ws.protocol.state is not State.OPEN:
            await ws.send(frame, text=True)  # raises the right ConnectionClosed
            return
        size = len(frame)
        if size < 65_536:
            ws.transport.write(text_frame_header(size) + frame)
        else:
            ws.transport.writelines((text_frame_header(size), frame))
        if ws.paused:  # over the write limit: wait for the client to read
            try:
                async with asyncio.timeout(self.settings.slow_consumer_timeout):
                    await ws.drain()
            except TimeoutError:
                self.server.stats.slow_consumers += 1
                reason = "5051 slow consumer: the write buffer stayed full"
                raise _Closing(SLOW_CONSUMER, reason) from None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def websocket_server(
    broker: Broker,
    *,
    app_id: str,
    api_key: str,
    host: str = "127.0.0.1",
    port: int = 8081,
    permissions: Permissions | None = None,
    settings: WebsocketSettings | None = None,
) -> AsyncIterator[WebsocketServer]:
    """Serve `broker` over websockets for one app (embedding, without `tidings serve`)::

    async with Broker() as broker:
        async with websocket_server(broker, app_id="app", api_key="key", port=0) as ws:
            print(ws.port)
    """
    endpoint = BrokerEndpoint(app_id, (api_key,), broker, permissions or Permissions())
    server = WebsocketServer({app_id: endpoint}, settings)
    async with server.listen(bind(host, port)):
        yield server


__all__ = [
    "BrokerEndpoint",
    "Endpoint",
    "WebsocketServer",
    "WebsocketStatistics",
    "bind",
    "websocket_server",
]
