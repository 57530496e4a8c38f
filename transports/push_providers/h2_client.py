"""A lean asyncio HTTP/2 client: one TLS connection to one origin, many concurrent streams.

FCM and APNs take every send of a provider on one HTTP/2 connection; httpx's
per-request machinery (pools, models, per-request timeout contexts, one socket
write per frame) cost more than the sends. This client drives `h2` directly:

- every frame queued during one event-loop iteration goes out in one transport
  write (a flush is scheduled with ``call_soon`` when data is first queued);
- a future per stream, resolved on StreamEnded (or failed on StreamReset);
- the peer's MAX_CONCURRENT_STREAMS is respected (requests beyond it wait in a
  queue) and so are flow-control windows (DATA only within the window, the
  rest after WINDOW_UPDATE);
- GOAWAY fails the streams above its last_stream_id and a lost connection all
  of them, with `ConnectionLost`; requests still queued (never sent) move to a
  new connection. The next request connects again, lazily and one connect at a
  time;
- a request's timeout is one ``loop.call_later`` timer that fails its future
  (`ReadTimeout`) and resets its stream.

Every failure is an `H2Error`: the request got no answer, try again later.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import Mapping
from typing import Final, NamedTuple, cast
from urllib.parse import urlsplit

import certifi
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

__all__ = [
    "ConnectError",
    "ConnectionLost",
    "H2Client",
    "H2Error",
    "ReadTimeout",
    "Response",
    "StreamReset",
]


class H2Error(Exception):
    """A request got no answer: connection refused or lost, timeout, stream reset."""


class ConnectError(H2Error):
    """Connecting failed: refused, TLS, no HTTP/2, or no SETTINGS within the timeout."""


class ConnectionLost(H2Error):
    """The connection closed (or the peer sent GOAWAY) before the answer came."""


class ReadTimeout(H2Error):
    """No answer within the timeout; the stream is reset."""


class StreamReset(H2Error):
    """The peer reset the stream."""


class _Unsent(Exception):
    """The request never left: its connection went away first. Try a new one."""


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


_CANCEL: Final = h2.errors.ErrorCodes.CANCEL
_MAX_CONCURRENT: Final = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
_INITIAL_WINDOW: Final = h2.settings.SettingCodes.INITIAL_WINDOW_SIZE
_TRIES: Final = 3  # connections a request may be moved to before it is sent


def make_ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """System CAs and certifi's, plus `ca_file`; ALPN offers only h2."""
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    if ca_file:
        context.load_verify_locations(ca_file)
    context.set_alpn_protocols(["h2"])
    return context


class _Stream:
    __slots__ = ("body", "chunks", "future", "headers", "offset", "response", "stream_id")

    def __init__(
        self, headers: list[tuple[bytes, bytes]], body: bytes, future: asyncio.Future[Response]
    ) -> None:
        self.headers = headers
        self.body = body
        self.future = future
        self.stream_id = 0  # 0: not started
        self.offset = 0  # bytes of `body` sent
        self.response: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: streams, their queue, and the coalesced writes."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,  # the client builds them lower-case and valid
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.ready: asyncio.Future[None] = self._loop.create_future()  # the peer's SETTINGS
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.usable = True  # False after GOAWAY, loss, or stream ids exhausted
        self._streams: dict[int, _Stream] = {}  # started, unanswered
        self._blocked: dict[int, _Stream] = {}  # started, body not all sent (flow control)
        self._waiting: collections.deque[_Stream] = collections.deque()  # beyond the limit
        self._max_streams = 100  # until the peer's SETTINGS say otherwise
        self._flush_scheduled = False

    # -- requests --

    def submit(self, stream: _Stream) -> None:
        if len(self._streams) < self._max_streams and not self._waiting:
            self._start(stream)
        else:
            self._waiting.append(stream)

    def abandon(self, stream: _Stream) -> None:
        """The caller gave up on `stream` (timeout, cancellation): reset it."""
        sid = stream.stream_id
        if not sid or self._streams.pop(sid, None) is None:
            return  # still waiting (skipped when its turn comes) or already over
        self._blocked.pop(sid, None)
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.reset_stream(sid, _CANCEL)
            self._schedule_flush()
        self._stream_done()

    def expire(self, stream: _Stream, timeout: float) -> None:
        """The timer of `stream`: no answer within `timeout` seconds."""
        if not stream.future.done():
            stream.future.set_exception(ReadTimeout(f"no answer within {timeout:g} s"))
            self.abandon(stream)

    def close(self) -> None:
        self.usable = False
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.close_connection()
            self._flush()
            self.transport.close()

    def _start(self, stream: _Stream) -> None:
        try:
            sid = self.h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.usable = False
            stream.fail(_Unsent())
            self._close_when_idle()
            return
        body = stream.body
        try:
            self.h2.send_headers(sid, stream.headers, end_stream=not body)
        except h2.exceptions.TooManyStreamsError:
            self._waiting.appendleft(stream)
            return
        stream.stream_id = sid
        self._streams[sid] = stream
        if body:
            self._pump(stream)
        self._schedule_flush()

    def _pump(self, stream: _Stream) -> None:
        """Send what the flow-control windows allow of `stream`'s body."""
        body, sid = stream.body, stream.stream_id
        while stream.offset < len(body):
            size = min(
                self.h2.local_flow_control_window(sid),
                self.h2.max_outbound_frame_size,
                len(body) - stream.offset,
            )
            if size <= 0:
                self._blocked[sid] = stream
                return
            end = stream.offset + size
            chunk = body if size == len(body) else body[stream.offset : end]
            self.h2.send_data(sid, chunk, end_stream=end == len(body))
            stream.offset = end
        self._blocked.pop(sid, None)

    def _pump_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            self._pump(stream)

    def _stream_done(self) -> None:
        """A stream closed: start waiting requests, or close a retiring connection."""
        while self._waiting and len(self._streams) < self._max_streams:
            stream = self._waiting.popleft()
            if not stream.future.done():  # timed out or cancelled while waiting
                self._start(stream)
        self._close_when_idle()

    def _close_when_idle(self) -> None:
        if not self.usable and not self._streams and self.transport is not None:
            self.close()

    # -- writes: everything queued in one loop iteration, in one write --

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.selected_alpn_protocol() != "h2":
            self.usable = False
            if not self.ready.done():
                self.ready.set_exception(ConnectError("the server did not negotiate HTTP/2"))
            self.transport.close()
            return
        self.h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._lose(ConnectionLost(f"HTTP/2 protocol error: {exc}"))
            self.close()
            return
        streams = self._streams
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                stream = streams.get(event.stream_id)
                if stream is not None and event.data:
                    stream.chunks.append(event.data)
            elif isinstance(event, h2.events.ResponseReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.response = event.headers
            elif isinstance(event, h2.events.StreamEnded):
                stream = streams.pop(event.stream_id, None)
                if stream is not None:
                    self._answer(stream)
            elif isinstance(event, h2.events.StreamReset):
                stream = streams.pop(event.stream_id, None)
                if stream is not None:
                    self._blocked.pop(stream.stream_id, None)
                    stream.fail(StreamReset(f"stream reset by the server: {event.error_code!r}"))
                    self._stream_done()
            elif isinstance(event, h2.events.WindowUpdated):
                if self._blocked:
                    self._pump_blocked()
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                changed = event.changed_settings
                if _MAX_CONCURRENT in changed:
                    self._max_streams = self.h2.remote_settings.max_concurrent_streams
                if _INITIAL_WINDOW in changed and self._blocked:
                    self._pump_blocked()
                if not self.ready.done():
                    self.ready.set_result(None)
                self._stream_done()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._goaway(event.last_stream_id, event.error_code)
        self._schedule_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        text = f"connection lost: {type(exc).__name__}: {exc}" if exc else "connection closed"
        self._lose(ConnectionLost(text))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- answers and endings --

    def _answer(self, stream: _Stream) -> None:
        self._blocked.pop(stream.stream_id, None)
        if stream.offset < len(stream.body):  # answered before the body was all sent
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        if not stream.future.done():
            status = 0
            headers: dict[str, str] = {}
            for name, value in stream.response:
                if name == b":status":
                    status = int(value)
                    continue
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
            stream.future.set_result(Response(status, headers, b"".join(stream.chunks)))
        self._stream_done()

    def _goaway(self, last_stream_id: int | None, error_code: object) -> None:
        self.usable = False
        last = last_stream_id or 0
        error = ConnectionLost(f"GOAWAY ({error_code!r}, last stream {last})")
        for sid in [sid for sid in self._streams if sid > last]:
            self._blocked.pop(sid, None)
            self._streams.pop(sid).fail(error)
        self._unsend()
        self._close_when_idle()

    def _lose(self, error: H2Error) -> None:
        self.usable = False
        if not self.ready.done():
            self.ready.set_exception(error)
        streams = list(self._streams.values())
        self._streams.clear()
        self._blocked.clear()
        for stream in streams:
            stream.fail(error)
        self._unsend()

    def _unsend(self) -> None:
        waiting = list(self._waiting)
        self._waiting.clear()
        for stream in waiting:
            stream.fail(_Unsent())


class H2Client:
    """Requests to one ``https://host[:port]`` origin over one HTTP/2 connection."""

    def __init__(self, base_url: str, *, ca_file: str = "", timeout: float = 10.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "https" or not url.hostname:
            raise ValueError(f"{base_url}: an https:// URL is needed for HTTP/2")
        self._host = url.hostname
        self._port = url.port or 443
        authority = self._host if url.port is None else f"{self._host}:{url.port}"
        if ":" in self._host:  # IPv6 literal
            authority = f"[{self._host}]" + ("" if url.port is None else f":{url.port}")
        self._authority = authority.encode()
        self._ssl = make_ssl_context(ca_file)
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        """One request; raises `H2Error` when it gets no answer."""
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", self._authority),
            (b":path", path.encode()),
        ]
        fields += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        if body:
            fields.append((b"content-length", str(len(body)).encode()))
        loop = asyncio.get_running_loop()
        for _ in range(_TRIES):
            connection = self._connection
            if connection is None or not connection.usable:
                connection = await self._connect()
            future: asyncio.Future[Response] = loop.create_future()
            stream = _Stream(fields, body, future)
            timer = loop.call_later(self._timeout, connection.expire, stream, self._timeout)
            connection.submit(stream)
            try:
                return await future
            except _Unsent:
                continue
            finally:
                timer.cancel()
                if future.cancelled():
                    connection.abandon(stream)
        raise ConnectionLost("the connection closed before the request could be sent")

    async def _connect(self) -> _Connection:
        async with self._lock:  # one connect at a time; the others use its connection
            connection = self._connection
            if connection is not None and connection.usable:
                return connection
            if self._closed:
                raise ConnectError("the client is closed")
            loop = asyncio.get_running_loop()
            connection = None
            try:
                async with asyncio.timeout(self._timeout):
                    _, connection = await loop.create_connection(
                        _Connection,
                        self._host,
                        self._port,
                        ssl=self._ssl,
                        server_hostname=self._host,
                    )
                    await connection.ready
            except (OSError, TimeoutError, H2Error) as exc:
                if connection is not None:
                    connection.close()
                if isinstance(exc, ConnectError):
                    raise
                text = str(exc)
                raise ConnectError(
                    f"{type(exc).__name__}: {text}" if text else type(exc).__name__
                ) from None
            self._connection = connection
            return connection

    async def aclose(self) -> None:
        """Close the connection; requests after this fail with `ConnectError`."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(connection.closed)
