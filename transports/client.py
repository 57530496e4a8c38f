"""An asyncio Python client for the Tidings websocket protocol (`tidings.v1`)::

    async with connect("ws://127.0.0.1:8081/", app_id="app", api_key="key") as client:
        async with client.subscribe("news", selector="city = 'Tokyo'") as sub:
            await client.publish("news", {"text": "hi"}, headers={"city": "Tokyo"})
            async for message in sub:
                print(message.message)

When the connection drops (server restart, network, slow-consumer close), the
client reconnects with exponential backoff and jitter, authenticates and
subscribes again; iteration of a subscription simply continues. Messages
published while it was away are not replayed (delivery is at most once).
Requests in flight when the connection dropped raise ConnectionLostError; new
ones wait for the reconnection. Refusals the server will not change its mind
about (wrong credentials 4001, revoked user 4003, a protocol error) end the
client: every subscription and request raises ClientClosedError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from broker import BrokerError, PublishResult
from broker._messages import MessageStatus
from transports.ws_frames import PROTOCOL, WireMessage

log = logging.getLogger("tidings.client")

# Close codes after which reconnecting cannot help (docs/PROTOCOL.md).
FINAL_CLOSE_CODES = frozenset({1000, 1009, 4000, 4001, 4003})


class ClientClosedError(BrokerError):
    """The client is closed, or the server ended it for good (`close_code`, reason)."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(close_code or 0, message)
        self.close_code = close_code


class ConnectionLostError(BrokerError):
    """The connection dropped while this request was in flight: its outcome is unknown."""

    def __init__(self) -> None:
        super().__init__(0, "the connection dropped before the answer arrived")


ReceivedMessage = WireMessage  # one message of a subscription, as the server sent it


class _Messages(msgspec.Struct):
    subscription: str
    messages: list[ReceivedMessage]


_decode_frame = msgspec.json.Decoder().decode
_decode_messages = msgspec.json.Decoder(_Messages).decode
_messages_to = msgspec.convert
_encode = msgspec.json.Encoder().encode


class Subscription:
    """`async with client.subscribe(...) as sub:` then `async for message in sub:`."""

    def __init__(
        self, client: Client, channel: str, selector: str | None, max_pending: int
    ) -> None:
        self._client = client
        self.channel = channel
        self.selector = selector
        self.max_pending = max_pending
        self.dropped = 0  # messages lost because this queue was full (the reader was too slow)
        self.server_id: str | None = None
        self._queue: deque[ReceivedMessage] = deque()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._ended = False

    async def __aenter__(self) -> Subscription:
        await self._client._add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client._remove(self)

    def _deliver(self, messages: list[ReceivedMessage]) -> None:
        room = self.max_pending - len(self._queue)
        if len(messages) > room:
            self.dropped += len(messages) - room
            messages = messages[:room] if room > 0 else []
        self._queue.extend(messages)
        self._ready.set()

    def _end(self, error: BaseException | None) -> None:
        self._ended = True
        if self._error is None:
            self._error = error
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ReceivedMessage:
        queue = self._queue
        while not queue:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return queue.popleft()


class Client:
    """A connection to a Tidings websocket endpoint; see `connect`."""

    def __init__(
        self,
        url: str,
        *,
        app_id: str,
        api_key: str,
        user_token: str | None = None,
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.1, 5.0),
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.app_id = app_id
        self.api_key = api_key
        self.user_token = user_token
        self.reconnect = reconnect
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.reconnects = 0
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._subscribing: dict[int, Subscription] = {}  # subscribe requests in flight
        self._subs: dict[str, Subscription] = {}  # by the server's subscription id
        self._wanted: list[Subscription] = []  # subscribed by the user, to restore on reconnect
        self._runner: asyncio.Task[None] | None = None
        self._closed: ClientClosedError | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self._open()  # the first connection's failure is the caller's to see
        self._runner = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._shut(ClientClosedError("the client was closed", 1000))
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    def _shut(self, error: ClientClosedError) -> None:
        if self._closed is not None:
            return
        self._closed = error
        self._connected.set()  # wake waiters so they see the error
        self._fail_pending(error)
        for sub in self._wanted:
            sub._end(None if error.close_code == 1000 else error)

    async def _open(self) -> None:
        ws = await ws_connect(
            self.url,
            subprotocols=[PROTOCOL],
            compression=None,
            open_timeout=self.open_timeout,
            max_size=None,  # the server bounds its frames; a batch may be large
        )
        try:
            await ws.send(
                _encode(
                    {
                        "op": "auth",
                        "appId": self.app_id,
                        "apiKey": self.api_key,
                        "userToken": self.user_token,
                    }
                ),
                text=True,
            )
            event = _decode_frame(await ws.recv(decode=False))
            if not isinstance(event, dict) or event.get("event") != "authenticated":
                raise ClientClosedError(f"unexpected answer to auth: {event!r}")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else "connection closed"
            raise ClientClosedError(f"authentication refused: {reason}", code) from None
        self._ws = ws
        self._subs.clear()
        for sub in self._wanted:
            # Answered through the reader, which maps the new id before any message for it.
            self._send_subscribe(ws, sub)
        self._connected.set()

    async def _run(self) -> None:
        """Read until the connection drops; then reconnect, or end the client."""
        attempt = 0
        while True:
            ws = self._ws
            if ws is not None:
                code = await self._read(ws)
                self._ws = None
                self._connected.clear()
                self._fail_pending(ConnectionLostError())
                if code in FINAL_CLOSE_CODES or not self.reconnect:
                    reason = ws.close_reason or "the server closed the connection"
                    self._shut(ClientClosedError(reason, code))
                    return
            low, high = self.backoff
            delay = min(high, low * 2**attempt) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self._open()
            except ClientClosedError as exc:
                if exc.close_code in FINAL_CLOSE_CODES:
                    self._shut(exc)
                    return
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                log.info("reconnect failed", extra={"error": str(exc), "attempt": attempt})
            else:
                attempt = 0
                self.reconnects += 1

    async def _read(self, ws: ClientConnection) -> int | None:
        try:
            async for frame in ws:
                data = frame if isinstance(frame, bytes) else frame.encode()
                if data[:1] == b"[":
                    for event in _decode_frame(data):
                        self._dispatch(event, None)
                else:
                    self._dispatch(None, data)
        except ConnectionClosed:
            pass
        return ws.close_code

    def _dispatch(self, event: dict[str, Any] | None, raw: bytes | None) -> None:
        if raw is not None:
            if raw.startswith(b'{"event":"messages"'):
                batch = _decode_messages(raw)
                sub = self._subs.get(batch.subscription)
                if sub is not None:
                    sub._deliver(batch.messages)
                return
            event = _decode_frame(raw)
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "messages":
            sub = self._subs.get(str(event.get("subscription")))
            if sub is not None:
                sub._deliver(_messages_to(event["messages"], list[ReceivedMessage]))
            return
        if kind == "unsubscribed" and event.get("code") is not None:
            ended = self._subs.pop(str(event.get("subscription")), None)
            if ended is not None:
                with contextlib.suppress(ValueError):
                    self._wanted.remove(ended)
                ended._end(BrokerError(int(event["code"]), str(event.get("message"))))
        request_id = event.get("id")
        if isinstance(request_id, int):
            sub = self._subscribing.pop(request_id, None)
            if sub is not None:
                self._subscribed(sub, event)
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                if kind == "error":
                    future.set_exception(_error_of(event))
                else:
                    future.set_result(event)

    def _fail_pending(self, error: BaseException) -> None:
        self._subscribing.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    # -- requests ---------------------------------------------------------------------------------

    async def _request(
        self, op: dict[str, Any], subscribing: Subscription | None = None
    ) -> dict[str, Any]:
        while True:
            if self._closed is not None:
                raise self._closed
            ws = self._ws
            if ws is not None:
                break
            await self._connected.wait()
        self._next_id += 1
        request_id = op["id"] = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if subscribing is not None:
            self._subscribing[request_id] = subscribing
        try:
            await ws.send(_encode(op), text=True)
        except ConnectionClosed:
            self._pending.pop(request_id, None)
            raise ConnectionLostError() from None
        return await future

    async def publish(
        self,
        channel: str,
        message: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        publisher_id: str | None = None,
        delay: float | timedelta | None = None,
        publish_at: datetime | None = None,
        repeat_every: float | timedelta | None = None,
        repeat_expires_at: datetime | None = None,
    ) -> PublishResult:
        """Publish as `Broker.publish` does; BrokerError with the server's code if refused."""
        op: dict[str, Any] = {"op": "publish", "channel": channel, "message": message}
        if headers is not None:
            op["headers"] = dict(headers)
        if publisher_id is not None:
            op["publisherId"] = publisher_id
        if delay is not None:
            op["delay"] = delay.total_seconds() if isinstance(delay, timedelta) else delay
        if publish_at is not None:
            op["publishAt"] = publish_at.timestamp() * 1000
        if repeat_every is not None:
            op["repeatEvery"] = (
                repeat_every.total_seconds()
                if isinstance(repeat_every, timedelta)
                else repeat_every
            )
        if repeat_expires_at is not None:
            op["repeatExpiresAt"] = repeat_expires_at.timestamp() * 1000
        answer = await self._request(op)
        return PublishResult(answer["messageId"], MessageStatus(answer["status"]))

    async def get_status(self, message_id: str) -> PublishResult:
        answer = await self._request({"op": "status", "messageId": message_id})
        return _result(answer)

    async def cancel(self, message_id: str) -> PublishResult:
        answer = await self._request({"op": "cancel", "messageId": message_id})
        return _result(answer)

    async def ping(self) -> None:
        await self._request({"op": "ping"})

    def subscribe(
        self, channel: str, *, selector: str | None = None, max_pending: int = 100_000
    ) -> Subscription:
        """A subscription, made when its `async with` is entered; BrokerError if refused
        (5050 bad selector, 5008 not permitted, …)."""
        return Subscription(self, channel, selector, max_pending)

    def _send_subscribe(self, ws: ClientConnection, sub: Subscription) -> None:
        """Send a subscribe for `sub` without waiting; the reader maps the answer."""
        self._next_id += 1
        op = _subscribe_op(sub)
        op["id"] = self._next_id
        self._subscribing[self._next_id] = sub
        task = asyncio.create_task(ws.send(_encode(op), text=True))
        task.add_done_callback(_ignore_closed)

    def _subscribed(self, sub: Subscription, event: dict[str, Any]) -> None:
        """A subscribe answer: map the server's id before the messages that follow it."""
        if event.get("event") == "subscribed":
            sub.server_id = str(event["subscription"])
            self._subs[sub.server_id] = sub
            if sub not in self._wanted:
                self._wanted.append(sub)
        else:
            with contextlib.suppress(ValueError):
                self._wanted.remove(sub)
            sub._end(_error_of(event))

    async def _add(self, sub: Subscription) -> None:
        await self._request(_subscribe_op(sub), subscribing=sub)

    async def _remove(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._wanted.remove(sub)
        sub._end(None)
        server_id = sub.server_id
        if server_id is None or self._subs.pop(server_id, None) is None:
            return
        if self._closed is None and self._ws is not None:
            with contextlib.suppress(BrokerError):
                await self._request({"op": "unsubscribe", "subscription": server_id})


def _subscribe_op(sub: Subscription) -> dict[str, Any]:
    op: dict[str, Any] = {"op": "subscribe", "channel": sub.channel}
    if sub.selector is not None:
        op["selector"] = sub.selector
    return op


def _ignore_closed(task: asyncio.Task[None]) -> None:
    # A send on a connection that dropped: the reader sees the close and reconnects.
    if not task.cancelled():
        task.exception()


def _error_of(event: dict[str, Any]) -> BrokerError:
    return BrokerError(int(event.get("code") or 0), str(event.get("message")))


def _result(answer: dict[str, Any]) -> PublishResult:
    return PublishResult(
        answer["messageId"], MessageStatus(answer["status"]), answer.get("errorMessage")
    )


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    app_id: str,
    api_key: str,
    user_token: str | None = None,
    reconnect: bool = True,
    backoff: tuple[float, float] = (0.1, 5.0),
) -> AsyncIterator[Client]:
    """Connect and authenticate; `async with connect(...) as client:`. The first
    connection's failure raises (OSError, ClientClosedError with the close code)."""
    async with Client(
        url,
        app_id=app_id,
        api_key=api_key,
        user_token=user_token,
        reconnect=reconnect,
        backoff=backoff,
    ) as client:
        yield client
