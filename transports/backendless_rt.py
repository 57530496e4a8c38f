"""Backendless real-time over socket.io: what the official SDKs speak to subscribe.

The SDK (`Backendless.Messaging.subscribe(channel)`, then
`channel.addMessageListener([selector,] callback)`) opens a socket.io v4
connection to namespace `/<appId>` at engine.io path `/<appId>/`, with its
credentials in the query, and sends events (BACKENDLESS.md, Subscribing →
Real-time):

- `SUB_ON {id, name: "PUB_SUB_CONNECT", options: {channel}}` → `SUB_READY {id}`;
- `SUB_ON {id, name: "PUB_SUB_MESSAGES", options: {channel, selector?}}` →
  `SUB_READY {id}`, then one `SUB_RES {id, data: <message>}` per message;
  a refusal is `SUB_RES {id, error: {code, message}}`;
- `SUB_OFF {id}`;
- `MET_REQ {id, name: "SET_USER_TOKEN", options: {userToken}}` → `MET_RES {id, result}`
  or `MET_RES {id, error}`.

A message listener is an ordinary broker subscription, bounded and closed as a
slow consumer like a native websocket one. Each message is encoded once in the
Backendless shape and shared by every socket; a delivery adds only its
subscription's prefix. Subscription ids are the client's, kept per connection.
The SDK reconnects with a new socket and the same ids and `clientId`: the
subscriptions of a dropped connection wait `resume_window` seconds for that
client, so the messages published in between are delivered after the reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import uvicorn

from broker import Broker, BrokerError, Message, SlowConsumerError, Subscription
from broker.accounts import Accounts
from broker.permissions import Permission, Permissions
from transports import uvicorn_ws
from transports.app_keys import ANONYMOUS, find_app, find_user
from transports.config import WebsocketSettings
from transports.encode_once import EncodeOnce
from transports.engineio import (
    MESSAGE,
    EngineServer,
    EngineSettings,
    Receive,
    Scope,
    Send,
    Session,
    SessionClosed,
)
from transports.live_connections import PerKeyCount, users_watched
from transports.websocket import BrokerEndpoint, Endpoint, bind
from transports.wire import wire_message
from transports.ws_frames import text_frame_header

log = logging.getLogger("tidings.realtime")

# Socket.IO 5 packet types (after engine.io's MESSAGE).
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = "0123456"
_DIGITS = frozenset("0123456789")
# Why a session ended, from engine.io: these leave the client's subscriptions for it.
_DROPPED = frozenset({"transport close", "ping timeout", "client close"})
_NO_TOKEN = frozenset({"", "null", "undefined"})  # how the SDK says "logged out"
_encode = msgspec.json.Encoder().encode
BATCH_ENTRIES = 16_384  # framed batches kept for the listeners that have yet to write them


class RealtimeStatistics(msgspec.Struct):
    connections: int = 0  # connected to their app's namespace now
    accepted: int = 0  # namespace connects accepted since start
    refused: int = 0  # namespace connects refused (2002, 3064, 999, bad namespace)
    subscriptions: int = 0  # message listeners now
    resumed: int = 0  # listeners handed back to a reconnecting client
    slow_consumers: int = 0  # connections closed because a listener overflowed (5051)
    ignored: int = 0  # packets or events not understood, dropped
    deliveries: int = 0  # SUB_RES messages sent


class _Request(msgspec.Struct):
    """The argument of SUB_ON and MET_REQ."""

    id: str
    name: str
    options: dict[str, Any] = {}


class _MessagesOptions(msgspec.Struct):
    channel: str
    selector: str | None = None


class _Listener:
    """One client subscription id: a channel connect (no broker subscription) or a
    message listener."""

    __slots__ = ("channel", "group", "prefix", "selector", "sub")

    def __init__(
        self,
        sub_id: str,
        namespace: str,
        channel: str,
        selector: str | None,
        sub: Subscription | None,
    ) -> None:
        self.channel = channel
        self.selector = selector
        self.sub: Subscription | None = sub
        self.group = (channel, sub.selector if sub is not None else None)  # the broker's
        # The whole engine.io packet but the message and the closing "}]".
        self.prefix = (
            f'{MESSAGE}{EVENT}{namespace},["SUB_RES",{{"id":{_json(sub_id)},"data":'.encode()
        )


def parse_packet(data: str) -> tuple[str, str, Any]:
    """A socket.io packet: (type, namespace, decoded payload or None). Raises ValueError."""
    kind, rest = data[:1], data[1:]
    if kind not in (CONNECT, DISCONNECT, EVENT, ACK):
        raise ValueError(f"packet type {kind!r} is not served")
    namespace = "/"
    if rest.startswith("/"):
        comma = rest.find(",")
        namespace, rest = (rest, "") if comma < 0 else (rest[:comma], rest[comma + 1 :])
    digits = 0
    while digits < len(rest) and rest[digits] in _DIGITS:  # an ack id: answered by no one
        digits += 1
    rest = rest[digits:]
    try:
        payload = msgspec.json.decode(rest) if rest else None
    except msgspec.DecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc}") from None
    return kind, namespace, payload


def _json(value: Any) -> str:
    return _encode(value).decode()


def _framed(packet: bytes) -> bytes:
    return text_frame_header(len(packet)) + packet


def _event(namespace: str, name: str, data: dict[str, Any]) -> bytes:
    return f"{MESSAGE}{EVENT}{namespace},".encode() + _encode([name, data])


def _error(exc: BrokerError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message}


def _token(value: object) -> str | None:
    if not isinstance(value, str) or value in _NO_TOKEN:
        return None
    return value


class RealtimeServer:
    """The socket.io endpoint of some apps; `route(app)` puts it in front of the REST app,
    `async with server.running():` serves users changing and shutdown."""

    def __init__(
        self,
        apps: Mapping[str, Endpoint],
        settings: EngineSettings | None = None,
        limits: WebsocketSettings | None = None,
        *,
        origins: Sequence[str] = ("*",),
        limit: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.apps = apps
        self.settings = settings or EngineSettings()
        self.limits = limits or WebsocketSettings()
        self.limit = limit
        self.engine = EngineServer(
            self._connection,
            self.settings,
            origins=tuple(origins),
            slow_consumer_timeout=self.limits.slow_consumer_timeout,
        )
        self.stats = RealtimeStatistics()
        self.port = 0  # set by realtime_server
        self.wire = EncodeOnce(lambda m: _encode(wire_message(m)))
        self._batches: dict[tuple[Any, int, int, int], tuple[Message, Message, list[bytes]]] = {}
        self.connections: set[Connection] = set()
        self._per_key = PerKeyCount()
        # Dropped clients' listeners by (app id, API key, clientId), oldest first.
        self._parked: OrderedDict[tuple[str, str, str], dict[str, _Listener]] = OrderedDict()
        self._expiry: dict[tuple[str, str, str], asyncio.TimerHandle] = {}

    def framed(
        self, group: tuple[str, str | None], messages: list[Message], prefix: bytes
    ) -> bytes:
        """The SUB_RES frames of `messages` for one listener: `prefix.join(pieces)`, where
        the pieces (frame headers and encoded messages) are built once per batch.
        Listeners of one (channel, selector) take the same slices of one log, so a
        batch is known by its two ends; the headers depend only on the prefix's length,
        which the SDK's ids share."""
        first, last = messages[0], messages[-1]
        size = len(prefix)
        key = (group, id(first), id(last), size)
        entry = self._batches.get(key)
        if entry is None:
            wire = self.wire
            pieces: list[bytes] = []
            tail = b""
            for message in messages:
                body = wire(message) + b"}]"
                pieces.append(tail + text_frame_header(size + len(body)))
                tail = body
            pieces.append(tail)
            if len(self._batches) >= BATCH_ENTRIES:
                self._batches.clear()
            # The entry holds both ends, so neither id() can be reused while it is cached.
            entry = self._batches[key] = (first, last, pieces)
        return prefix.join(entry[2])

    def _connection(self, session: Session, app_id: str, query: Mapping[str, str]) -> Connection:
        return Connection(self, session, app_id, query)

    def route(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> _Router:
        """An ASGI app sending exactly `/<appId>/` (an app of this server) here, the rest
        (every REST path shares the prefix) to `app`."""
        return _Router(self, app)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RealtimeServer]:
        async with users_watched(
            self.apps.values(), self.connections, self.limits.revalidate_every
        ):
            try:
                yield self
            finally:
                self.close()

    def close(self) -> None:
        """End every session (clients get a close packet) and drop the parked listeners."""
        self.engine.close_all()
        for key in list(self._parked):
            self._expire(key)

    # -- connections per API key, as for native websockets ---------------------------------------

    def admit(self, api_key: str) -> None:
        if not self._per_key.take(api_key, self.limits.max_connections_per_key):
            raise BrokerError(999, "too many connections for this API key")

    def release(self, api_key: str) -> None:
        self._per_key.give_back(api_key)

    # -- listeners waiting for their client to come back -----------------------------------------

    def park(self, key: tuple[str, str, str], listeners: dict[str, _Listener]) -> None:
        self._expire(key)
        while len(self._parked) >= self.settings.max_parked:
            self._expire(next(iter(self._parked)))
        self._parked[key] = listeners
        loop = asyncio.get_running_loop()
        self._expiry[key] = loop.call_later(self.settings.resume_window, self._expire, key)

    def unpark(self, key: tuple[str, str, str]) -> dict[str, _Listener]:
        listeners = self._parked.pop(key, {})
        timer = self._expiry.pop(key, None)
        if timer is not None:
            timer.cancel()
        return listeners

    def _expire(self, key: tuple[str, str, str]) -> None:
        for listener in self.unpark(key).values():
            self.drop(listener)

    def drop(self, listener: _Listener) -> None:
        if listener.sub is not None:
            listener.sub.close()
            listener.sub = None
            self.stats.subscriptions -= 1


class _Router:
    def __init__(
        self, server: RealtimeServer, app: Callable[[Scope, Receive, Send], Awaitable[None]]
    ) -> None:
        self._apps = server.apps
        self._engine = server.engine
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if len(path) > 2 and path[-1] == "/" and path[1:-1] in self._apps:
                await self._engine(scope, receive, send)
                return
        await self._app(scope, receive, send)


class Connection:
    """One socket.io client of one app: the handler of its engine.io session."""

    def __init__(
        self, server: RealtimeServer, session: Session, app_id: str, query: Mapping[str, str]
    ) -> None:
        self.server = server
        self.session = session
        self.app_id = app_id
        self.app = server.apps[app_id]  # the router sends only the paths of known apps
        self.namespace = "/" + app_id
        self.query = query
        self.client_id = query.get("clientId") or ""
        self.connected = False
        self.api_key = ""
        self.user_id: str | None = None
        self.user_token: str | None = None
        self.roles: tuple[str, ...] = ANONYMOUS
        self.listeners: dict[str, _Listener] = {}
        self.resumable: dict[str, _Listener] = {}
        self.replies: list[bytes] = []
        self._revalidating: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._connect_timer: asyncio.TimerHandle | None = loop.call_later(
            server.settings.connect_timeout, self._no_connect
        )

    def _no_connect(self) -> None:
        self.session.close(SessionClosed("no namespace connect in time", 1008))

    # -- engine.io's side ------------------------------------------------------------------------

    async def received(self, data: str) -> None:
        try:
            kind, namespace, payload = parse_packet(data)
        except ValueError as exc:  # what socket.io's own server does: end the connection
            raise SessionClosed(f"parse error: {exc}", 1002) from None
        if kind == CONNECT:
            await self._connect(namespace, payload)
        elif namespace != self.namespace or not self.connected:
            self.server.stats.ignored += 1  # a namespace this client is not connected to
        elif kind == DISCONNECT:
            self._disconnect()
            for listener in self._all_listeners():
                self.server.drop(listener)
        elif kind == EVENT:
            await self._event(payload)
        else:
            self.server.stats.ignored += 1  # an ack: the server asks for none

    def due(self, framed: bool) -> list[bytes]:
        packets = self.replies
        self.replies = []
        if framed:
            packets = [_framed(p) for p in packets]
        server = self.server
        limit = server.limits.max_batch
        wire = server.wire
        ended: list[str] = []
        for sub_id, listener in self.listeners.items():
            sub = listener.sub
            if sub is None:
                continue
            if sub.closed and isinstance(sub.error, SlowConsumerError):
                self.server.stats.slow_consumers += 1
                reason = f"5051 slow consumer on {listener.channel!r}"
                raise SessionClosed(reason, 4008)
            messages = sub.take(limit)
            if messages:
                server.stats.deliveries += len(messages)
                prefix = listener.prefix
                if framed:
                    packets.append(server.framed(listener.group, messages, prefix))
                else:
                    packets += [prefix + wire(m) + b"}]" for m in messages]
            elif sub.closed:  # the channel was deleted
                ended.append(sub_id)
                error = sub.error or BrokerError(5010, "the subscription ended")
                refusal = self._refusal("SUB_RES", sub_id, error)
                packets.append(_framed(refusal) if framed else refusal)
        for sub_id in ended:
            server.drop(self.listeners.pop(sub_id))
        return packets

    def arm(self, notify: Callable[[], None]) -> bool:
        if self.replies:
            return True
        return any(
            listener.sub.notify_when_ready(notify)
            for listener in self.listeners.values()
            if listener.sub is not None
        )

    def closed(self, reason: str) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
        if self._revalidating is not None:
            self._revalidating.cancel()
        was_connected = self.connected
        self._disconnect()
        listening = {k: v for k, v in self.listeners.items() if v.sub is not None}
        if was_connected and self.client_id and listening and reason in _DROPPED:
            self.server.park((self.app_id, self.api_key, self.client_id), listening)
            self.listeners.clear()
        for listener in self._all_listeners():
            self.server.drop(listener)

    def _disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self.server.connections.discard(self)
            self.server.stats.connections -= 1
            self.server.release(self.api_key)

    def _all_listeners(self) -> list[_Listener]:
        found = [*self.listeners.values(), *self.resumable.values()]
        self.listeners.clear()
        self.resumable.clear()
        return found

    # -- the namespace ---------------------------------------------------------------------------

    async def _connect(self, namespace: str, auth: Any) -> None:
        stats = self.server.stats
        if namespace != self.namespace:
            stats.refused += 1
            self._reply(
                f'{MESSAGE}{CONNECT_ERROR}{namespace},{{"message":"Invalid namespace"}}'.encode()
            )
            return
        if self.connected:
            self.server.stats.ignored += 1
            return
        # The SDK sends credentials in the query; a socket.io `auth` object may too.
        given = auth if isinstance(auth, dict) else {}
        api_key = given.get("apiKey") or self.query.get("apiKey") or ""
        token = _token(given.get("userToken", self.query.get("userToken")))
        try:
            find_app(self.server.apps, self.app_id, str(api_key))
            self.user_id, self.roles = await find_user(self.app, token)
            self.server.admit(str(api_key))
        except BrokerError as exc:
            stats.refused += 1
            data = {"message": f"{exc.code} {exc.message}", "data": _error(exc)}
            self._reply(f"{MESSAGE}{CONNECT_ERROR}{namespace},{_json(data)}".encode())
            return
        if self.session.closed is not None:  # it went away while its token was checked
            self.server.release(str(api_key))
            return
        self.api_key, self.user_token, self.connected = str(api_key), token, True
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        self.server.connections.add(self)
        stats.connections += 1
        stats.accepted += 1
        if self.client_id:
            self.resumable = self.server.unpark((self.app_id, self.api_key, self.client_id))
            if self.resumable:  # those not asked for again within the window are dropped
                asyncio.get_running_loop().call_later(
                    self.server.settings.resume_window, self._drop_unclaimed
                )
        self._reply(f"{MESSAGE}{CONNECT}{namespace},{_json({'sid': self.session.sid})}".encode())

    def _drop_unclaimed(self) -> None:
        for listener in self.resumable.values():
            self.server.drop(listener)
        self.resumable.clear()

    async def _event(self, payload: Any) -> None:
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
            self.server.stats.ignored += 1
            return
        name, data = payload[0], payload[1] if len(payload) > 1 else None
        if name == "SUB_ON":
            request = self._request(data, "SUB_RES")
            if request is not None:
                await self._answer("SUB_RES", request, self._sub_on)
        elif name == "SUB_OFF":
            sub_id = data.get("id") if isinstance(data, dict) else None
            listener = self.listeners.pop(sub_id, None) if isinstance(sub_id, str) else None
            if listener is None:
                self.server.stats.ignored += 1
            else:
                self.server.drop(listener)
        elif name == "MET_REQ":
            request = self._request(data, "MET_RES")
            if request is not None:
                await self._answer("MET_RES", request, self._method)
        else:
            self.server.stats.ignored += 1

    def _request(self, data: Any, answer: str) -> _Request | None:
        try:
            return msgspec.convert(data, _Request)
        except msgspec.ValidationError as exc:
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                error = BrokerError(8002, f"invalid {answer[:3]} request: {exc}")
                self._reply(self._refusal(answer, data["id"], error))
            else:  # no id: nobody to answer
                self.server.stats.ignored += 1
            return None

    async def _answer(
        self, answer: str, request: _Request, act: Callable[[_Request], Awaitable[None]]
    ) -> None:
        try:
            if self.server.limit is not None:  # each request counts as a REST request does
                self.server.limit(self.api_key, self.user_id)
            if self._revalidating is not None and not self._revalidating.done():
                await asyncio.shield(self._revalidating)  # act with the user's new roles
            await act(request)
        except BrokerError as exc:
            self._reply(self._refusal(answer, request.id, exc))

    async def _sub_on(self, request: _Request) -> None:
        if request.name not in ("PUB_SUB_CONNECT", "PUB_SUB_MESSAGES"):
            raise BrokerError(8002, f"subscription type {request.name!r} is not served")
        try:
            options = msgspec.convert(request.options, _MessagesOptions)
        except msgspec.ValidationError as exc:
            raise BrokerError(8002, f"invalid {request.name} options: {exc}") from None
        app = self.app
        # Validates the channel (5044) and the selector (5050); registered only if entered.
        selector = options.selector if request.name == "PUB_SUB_MESSAGES" else None
        sub = app.broker.subscribe(
            options.channel, selector=selector, max_pending=self.server.limits.max_pending
        )
        old = self.listeners.pop(request.id, None)
        if old is not None:
            self.server.drop(old)
        if request.name == "PUB_SUB_MESSAGES":
            app.permissions.require(options.channel, self.roles, Permission.SUBSCRIBE)
            listener = self._resume(request.id, options)
            if listener is None:
                if self._listening() >= self.server.limits.max_subscriptions:
                    limit = self.server.limits.max_subscriptions
                    raise BrokerError(999, f"at most {limit} subscriptions per connection")
                await sub.__aenter__()
                listener = _Listener(request.id, self.namespace, options.channel, selector, sub)
                self.server.stats.subscriptions += 1
            self.listeners[request.id] = listener
        else:
            # A channel connect: nothing to deliver.
            self.listeners[request.id] = _Listener(
                request.id, self.namespace, options.channel, None, None
            )
        self._reply(_event(self.namespace, "SUB_READY", {"id": request.id}))

    def _resume(self, sub_id: str, options: _MessagesOptions) -> _Listener | None:
        """The listener this id had before the client's reconnect, if it asks for the same."""
        listener = self.resumable.pop(sub_id, None)
        if listener is None:
            return None
        if (
            listener.sub is not None
            and not listener.sub.closed
            and (listener.channel, listener.selector) == (options.channel, options.selector)
        ):
            self.server.stats.resumed += 1
            return listener
        self.server.drop(listener)
        return None

    def _listening(self) -> int:
        return sum(1 for listener in self.listeners.values() if listener.sub is not None)

    async def _method(self, request: _Request) -> None:
        if request.name != "SET_USER_TOKEN":
            raise BrokerError(8002, f"method {request.name!r} is not served")
        token = _token(request.options.get("userToken"))
        self.user_id, self.roles = await find_user(self.app, token)
        self.user_token = token
        self._recheck()
        self._reply(_event(self.namespace, "MET_RES", {"id": request.id, "result": None}))

    def _reply(self, packet: bytes) -> None:
        if len(self.replies) >= self.server.limits.max_pending:  # the client reads no answers
            self.server.stats.slow_consumers += 1
            self.session.close(SessionClosed("5051 slow consumer: answers not read", 4008))
            return
        self.replies.append(packet)
        self.session.wake()

    def _refusal(self, answer: str, request_id: str, exc: BrokerError) -> bytes:
        return _event(self.namespace, answer, {"id": request_id, "error": _error(exc)})

    # -- users -----------------------------------------------------------------------------------

    def revalidate_soon(self) -> None:
        if self._revalidating is None or self._revalidating.done():
            self._revalidating = asyncio.create_task(self._revalidate())

    async def _revalidate(self) -> None:
        """The user's roles again (a token no longer valid: anonymous from now on), then
        the listeners those roles may not hold end with 5008."""
        try:
            self.user_id, self.roles = await find_user(self.app, self.user_token)
        except BrokerError:
            self.user_id, self.roles, self.user_token = None, ANONYMOUS, None
        self._recheck()

    def _recheck(self) -> None:
        permissions = self.app.permissions
        for sub_id, listener in list(self.listeners.items()):
            if listener.sub is None:
                continue
            if not permissions.allowed(listener.channel, self.roles, Permission.SUBSCRIBE):
                del self.listeners[sub_id]
                self.server.drop(listener)
                message = f"the user may not subscribe to channel {listener.channel!r}"
                self._reply(self._refusal("SUB_RES", sub_id, BrokerError(5008, message)))


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = b'{"code":404,"message":"not found"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def realtime_server(
    broker: Broker,
    *,
    app_id: str,
    api_key: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    permissions: Permissions | None = None,
    accounts: Accounts | None = None,
    settings: EngineSettings | None = None,
    limits: WebsocketSettings | None = None,
) -> AsyncIterator[RealtimeServer]:
    """Serve `broker` to the Backendless SDKs over socket.io, for one app (embedding,
    without `tidings serve`; no REST API: give the SDK's `rtURL` yourself)::

    async with Broker() as broker:
        async with realtime_server(broker, app_id="app", api_key="key", port=0) as rt:
            print(rt.port)  # rtURL: http://127.0.0.1:<port>
    """
    endpoint = BrokerEndpoint(
        app_id, (api_key,), broker, permissions or Permissions(), accounts=accounts
    )
    server = RealtimeServer({app_id: endpoint}, settings, limits)
    sock = bind(host, port)
    http = uvicorn.Server(
        uvicorn.Config(
            server.route(_not_found),
            log_config=None,
            lifespan="off",
            access_log=False,
            ws=uvicorn_ws.PROTOCOL,
            ws_per_message_deflate=False,
            ws_max_size=server.settings.max_payload,
            ws_ping_interval=None,
            timeout_graceful_shutdown=5,
        )
    )
    async with server.running():
        serving = asyncio.create_task(http.serve([sock]))
        while not http.started:
            if serving.done():
                await serving  # raises why it could not start
            await asyncio.sleep(0.01)
        server.port = sock.getsockname()[1]
        try:
            yield server
        finally:
            server.close()
            http.should_exit = True
            await serving


__all__ = [
    "Connection",
    "RealtimeServer",
    "RealtimeStatistics",
    "parse_packet",
    "realtime_server",
]
