"""A lean websocket client on raw asyncio, the same for every contender of ``ws_fanout.py``.

One ``asyncio.Protocol`` per connection (RFC 6455, client side):

- the opening handshake done by hand: ``GET`` with ``Upgrade: websocket``, a random
  ``Sec-WebSocket-Key`` and, when asked, ``Sec-WebSocket-Protocol``; the answer
  must be ``101`` with the matching ``Sec-WebSocket-Accept`` (and the subprotocol
  asked for, when one was);
- server frames parsed from the byte stream: unmasked, FIN / continuation
  (fragmented messages are joined), text and binary alike, 7 / 16 / 64-bit
  lengths; ``ping`` is answered with ``pong``, ``close`` is echoed and the
  connection closed, ``pong`` is ignored;
- client frames masked with a fresh 4-byte key from ``os.urandom`` each, as
  RFC 6455 requires; several frames may go out in one ``transport.write``.

No extension (permessage-deflate) is offered. What a message *means* is left to a
subclass: ``message_received(payload)`` gets every complete text or binary message
as ``bytes``. A frame split over several reads is gathered as a list of chunks and
joined once, so a large frame costs one copy, not one per read.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported as
``_ws_client`` (the script's directory is first on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Callable
from typing import TypeVar, cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

HANDSHAKE_LIMIT = 16_384  # bytes of HTTP answer before the blank line

P = TypeVar("P", bound="WsClient")


class WebsocketError(Exception):
    """The server broke the protocol, refused the handshake or closed the connection."""


def mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``key`` (one big-int XOR, no per-byte loop)."""
    size = len(payload)
    if not size:
        return payload
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        size, "little"
    )


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One masked, final client frame."""
    size = len(payload)
    first = 0x80 | opcode
    if size < 126:
        head = bytes((first, 0x80 | size))
    elif size < 65_536:
        head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + mask(payload, key)


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


class WsClient(asyncio.Protocol):
    """One websocket connection. Subclasses implement ``message_received``.

    ``opened`` resolves when the handshake has succeeded (or fails with why not);
    ``closed`` resolves when the TCP connection is gone. ``close_code`` is the code
    of the server's close frame, if it sent one.
    """

    def __init__(self, host: str, port: int, path: str = "/", subprotocol: str | None = None):
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._subprotocol = subprotocol
        self._key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._handshaking = True
        self._buffer = b""  # handshake bytes, or the unparsed start of the next frame
        self._chunks: list[bytes] = []  # reads of a frame not yet complete
        self._have = 0  # bytes in _buffer + _chunks
        self._need = 0  # bytes the incomplete frame needs (0: header not read yet)
        self._fragments: list[bytes] | None = None
        self._drain: asyncio.Future[None] | None = None

    # ----------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._handshaking:
            data = self._handshake(data)
            if not data:
                return
        if self._need:  # in the middle of a frame known to need _need bytes
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks = []
            self._need = 0
        elif self._buffer:
            data = self._buffer + data
        self._frames(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(
                WebsocketError(f"connection closed during the handshake: {exc}")
            )
            self.opened.exception()  # whoever awaits it raises; unawaited, it is no log noise
        if not self.closed.done():
            self.closed.set_result(None)
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self.lost()

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # --------------------------------------------------------------- to override

    def message_received(self, payload: bytes) -> None:
        raise NotImplementedError

    def handshake_done(self) -> None:
        """Called once the server has accepted the upgrade."""

    def lost(self) -> None:
        """Called once the connection is gone."""

    # ------------------------------------------------------------------- sending

    def send(self, payload: bytes, opcode: int = OP_TEXT) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(payload, opcode))

    def send_many(self, payloads: list[bytes], opcode: int = OP_TEXT) -> None:
        """One frame per payload, all in one ``transport.write``."""
        assert self.transport is not None
        self.transport.write(b"".join([client_frame(p, opcode) for p in payloads]))

    async def drained(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self._drain is not None:
            await self._drain

    def close(self) -> None:
        """Send a close frame (1000) and close the TCP connection once it is written."""
        if self.transport is not None and not self.transport.is_closing():
            if not self._handshaking:
                self.transport.write(client_frame((1000).to_bytes(2, "big"), OP_CLOSE))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------- parsing

    def _fail(self, why: str) -> None:
        error = WebsocketError(why)
        if not self.opened.done():
            self.opened.set_exception(error)
            self.opened.exception()
        self.close_reason = why
        if self.transport is not None:
            self.transport.abort()

    def _handshake(self, data: bytes) -> bytes:
        buffer = self._buffer + data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > HANDSHAKE_LIMIT:
                self._fail("handshake answer too long")
            self._buffer = buffer
            return b""
        self._buffer = b""
        self._handshaking = False
        status, *header_lines = buffer[:end].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status.split(" ", 2)[1:2] != ["101"]:
            self._fail(f"handshake refused: {status!r}")
            return b""
        if headers.get("sec-websocket-accept", "").encode() != accept_key(self._key):
            self._fail("handshake answer has a wrong Sec-WebSocket-Accept")
            return b""
        if self._subprotocol is not None and headers.get("sec-websocket-protocol") != (
            self._subprotocol
        ):
            self._fail(f"server did not select the subprotocol {self._subprotocol!r}")
            return b""
        if headers.get("sec-websocket-extensions"):
            self._fail(f"server chose an extension nobody offered: {headers!r}")
            return b""
        self.opened.set_result(None)
        self.handshake_done()
        return buffer[end + 4 :]

    def _frames(self, buffer: bytes) -> None:
        size = len(buffer)
        pos = 0
        while size - pos >= 2:
            first = buffer[pos]
            length = buffer[pos + 1]
            if length & 0x80:
                self._fail("the server masked a frame")
                return
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:  # incomplete: gather reads until the whole frame is there
                rest = buffer[pos:]
                self._chunks = [rest]
                self._have = len(rest)
                self._need = end - pos
                self._buffer = b""
                return
            payload = buffer[start:end]
            pos = end
            opcode = first & 0x0F
            if opcode in (OP_TEXT, OP_BINARY):
                if self._fragments is not None:
                    self._fail("a new message inside a fragmented one")
                    return
                if first & 0x80:
                    self.message_received(payload)
                else:
                    self._fragments = [payload]
            elif opcode == OP_CONTINUATION:
                if self._fragments is None:
                    self._fail("continuation frame without a message to continue")
                    return
                self._fragments.append(payload)
                if first & 0x80:
                    message = b"".join(self._fragments)
                    self._fragments = None
                    self.message_received(message)
            elif opcode == OP_PING:
                self.send(payload, OP_PONG)
            elif opcode == OP_PONG:
                pass
            elif opcode == OP_CLOSE:
                if len(payload) >= 2:
                    self.close_code = int.from_bytes(payload[:2], "big")
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                else:
                    self.close_code = 1005
                self.close()
                return
            else:
                self._fail(f"unknown opcode {opcode}")
                return
            if self.transport is not None and self.transport.is_closing():
                return
        self._buffer = buffer[pos:] if pos < size else b""


async def connect(factory: Callable[[], P], host: str, port: int, seconds: float = 15.0) -> P:
    """Open a TCP connection with ``factory``'s protocol and wait for the handshake."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(factory, host, port)
    try:
        async with asyncio.timeout(seconds):
            await protocol.opened
    except BaseException:
        protocol.abort()
        raise
    return protocol
