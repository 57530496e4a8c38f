"""Checks on what callers hand the broker; each failure is a BrokerError with a code."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from broker._errors import InvalidArgumentError, InvalidChannelError, MessageTooLargeError
from broker._messages import Headers

MAX_CHANNEL_NAME = 255
# Path segments of the REST API that can never be channels (BACKENDLESS.md, Routing).
RESERVED_CHANNELS = frozenset({"registrations", "channels", "push", "pushtemplates"})
_MESSAGE_ID_PREFIX = "message:"
_FORBIDDEN = re.compile(r"[/\s\x00-\x1f\x7f-\x9f]")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def check_channel(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidChannelError("channel name must be a non-empty string")
    if len(name) > MAX_CHANNEL_NAME:
        raise InvalidChannelError(f"channel name is longer than {MAX_CHANNEL_NAME} characters")
    found = _FORBIDDEN.search(name)
    if found is not None:
        raise InvalidChannelError(
            f"channel name may not contain {found.group()!r} (at {found.start()}): "
            "no '/', whitespace or control characters"
        )
    if name.lower() in RESERVED_CHANNELS or name.startswith(_MESSAGE_ID_PREFIX):
        raise InvalidChannelError(f"channel name {name!r} is reserved")
    return name


def check_headers(headers: Mapping[str, Any] | None) -> Headers:
    """A private copy with plain str/int/float/bool/None values (enum members unwrapped)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgumentError("headers must be a mapping of str to str/int/float/bool/None")
    checked: Headers = {}
    for raw_key, value in headers.items():
        key = raw_key
        if type(key) is not str:
            if not isinstance(key, str):
                raise InvalidArgumentError(f"header names must be strings, got {key!r}")
            key = str.__str__(key)
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            checked[key] = value
        elif kind is float:
            if not math.isfinite(value):
                raise InvalidArgumentError(f"header {key!r} is not a finite number")
            checked[key] = value
        else:
            checked[key] = _plain(key, value)
    return checked


def _plain(key: str, value: object) -> str | int | float | bool:
    """Subclasses (StrEnum, IntEnum, ...) become their base type; anything else is refused."""
    if isinstance(value, int):  # bool cannot be subclassed, so this is an int subclass
        return int(value)
    if isinstance(value, float):
        number = float(value)
        if math.isfinite(number):
            return number
        raise InvalidArgumentError(f"header {key!r} is not a finite number")
    if isinstance(value, str):
        return str.__str__(value)
    raise InvalidArgumentError(
        f"header {key!r} must be str, int, float, bool or None, not {type(value).__name__}"
    )


def check_publisher_id(publisher_id: object) -> str | None:
    if publisher_id is None or type(publisher_id) is str:
        return publisher_id
    raise InvalidArgumentError("publisher_id must be a string or None")


def encode_payload(message: object, headers: Headers, limit: int) -> bytes:
    """The message JSON-encoded (once, with msgspec).

    Raises 5052 when payload plus headers encode to more than `limit` bytes.
    """
    try:
        encoded = _encoder.encode(message)
        size = len(encoded) + (len(_encoder.encode(headers)) if headers else 0)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"message is not JSON-encodable: {exc}") from None
    if size > limit:
        raise MessageTooLargeError(f"message and headers take {size} bytes, over {limit}")
    return encoded


def decode_payload(encoded: bytes) -> Any:
    """The message in its JSON form: what any subscriber, local or remote, receives."""
    return _decoder.decode(encoded)
