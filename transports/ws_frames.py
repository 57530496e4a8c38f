"""The `tidings.v1` websocket frames (docs/PROTOCOL.md): operations in, events out.

No I/O here: decoding a client frame into an operation, and encoding events,
once, into the bytes the server writes. Delivered messages are encoded once
per message (`encode_message`) and the same bytes are joined into the frames
of every connection that receives them.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

import msgspec
from websockets.typing import Subprotocol

from broker import BrokerError, Message, PublishResult
from transports.publishing import FIELD_CODES, PublishBody

PROTOCOL = Subprotocol("tidings.v1")

RequestId: TypeAlias = Annotated[str, msgspec.Meta(max_length=64)] | int | None


# -- operations (client → server) ---------------------------------------------------------------


class Op(msgspec.Struct, tag_field="op", rename="camel", kw_only=True):
    id: RequestId = None


class AuthOp(Op, tag="auth"):
    app_id: str
    api_key: str
    user_token: str | None = None


class SubscribeOp(Op, tag="subscribe"):
    channel: str
    selector: str | None = None


class UnsubscribeOp(Op, tag="unsubscribe"):
    subscription: str


class PublishOp(PublishBody, tag_field="op", tag="publish", kw_only=True):
    id: RequestId = None
    channel: str
    delay: float | None = None  # seconds (the REST API has only publishAt)


class StatusOp(Op, tag="status"):
    message_id: str


class CancelOp(Op, tag="cancel"):
    message_id: str


class PingOp(Op, tag="ping"):
    pass


AnyOp: TypeAlias = AuthOp | SubscribeOp | UnsubscribeOp | PublishOp | StatusOp | CancelOp | PingOp

_decode_op = msgspec.json.Decoder(AnyOp).decode
_decode_any = msgspec.json.Decoder().decode


class FrameError(BrokerError):
    """A client frame the server cannot act on; `request_id` is its id, if one was readable."""

    def __init__(self, code: int, message: str, request_id: RequestId = None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


def decode_op(frame: str | bytes) -> AnyOp:
    """The operation a client frame holds; FrameError (8002, or a publish field's code)."""
    if isinstance(frame, bytes):
        raise FrameError(8002, "frames must be text frames holding JSON")
    try:
        op: AnyOp = _decode_op(frame)
    except msgspec.ValidationError as exc:
        problem = str(exc)
        code = next((c for f, c in FIELD_CODES.items() if f"`$.{f}`" in problem), 8002)
        raise FrameError(code, f"invalid operation: {problem}", _request_id(frame)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise FrameError(8002, f"the frame is not valid JSON: {exc}") from None
    return op


def _request_id(frame: str) -> RequestId:
    """The id of a frame that failed validation, so the error can name its request."""
    try:
        value = _decode_any(frame)
    except (msgspec.DecodeError, RecursionError):
        return None
    found = value.get("id") if isinstance(value, dict) else None
    if (isinstance(found, str) and len(found) <= 64) or (
        isinstance(found, int) and not isinstance(found, bool)
    ):
        return found
    return None


# -- events (server → client) -------------------------------------------------------------------


class Event(msgspec.Struct, tag_field="event", rename="camel", omit_defaults=True):
    pass


class Authenticated(Event, tag="authenticated"):
    id: RequestId
    connection: str
    protocol: str
    limits: dict[str, int]


class Subscribed(Event, tag="subscribed"):
    id: RequestId
    subscription: str
    channel: str
    selector: str


class Unsubscribed(Event, tag="unsubscribed"):
    subscription: str
    id: RequestId = None
    code: int | None = None
    message: str | None = None


class Published(Event, tag="published"):
    id: RequestId
    message_id: str
    status: str
    error_message: str | None = None


class Status(Event, tag="status"):
    id: RequestId
    message_id: str
    status: str
    error_message: str | None = None


class Pong(Event, tag="pong"):
    id: RequestId


class Error(Event, tag="error"):
    id: RequestId
    code: int
    message: str


class WireMessage(msgspec.Struct, rename="camel", frozen=True):
    """A delivered message on the wire (what transports.client hands out as ReceivedMessage)."""

    message_id: str
    channel: str
    timestamp: int
    publisher_id: str | None
    headers: dict[str, Any]
    message: Any


encode = msgspec.json.Encoder().encode


def error_event(error: BrokerError, request_id: RequestId) -> bytes:
    return encode(Error(request_id, error.code, error.message))


def status_event(result: PublishResult, request_id: RequestId) -> bytes:
    return encode(Status(request_id, result.message_id, str(result.status), result.error_message))


def encode_message(message: Message) -> bytes:
    return encode(
        WireMessage(
            message.message_id,
            message.channel,
            message.timestamp,
            message.publisher_id,
            message.headers,
            message.message,
        )
    )


def messages_prefix(subscription: str) -> bytes:
    """The start of this subscription's `messages` event; the encoded messages follow,
    joined by commas, then MESSAGES_END."""
    return b'{"event":"messages","subscription":' + encode(subscription) + b',"messages":['


MESSAGES_END = b"]}"


def text_frame_header(size: int) -> bytes:
    """The header of an unmasked (server) text frame of `size` bytes, final, uncompressed."""
    if size < 126:
        return bytes((0x81, size))
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")
