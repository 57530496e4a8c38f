"""Backendless wire shapes shared by the REST API (and later the real-time transports)."""

from __future__ import annotations

from typing import Any

import msgspec

from broker import BrokerError, Message, PublishResult

# HTTP statuses per BACKENDLESS.md, Errors; 400 for any code not listed.
HTTP_STATUS = {
    2002: 401,
    3003: 401,
    3064: 401,
    5000: 404,
    5001: 404,
    5002: 404,
    5007: 403,
    5008: 403,
    5010: 404,
    5052: 413,
    5090: 503,
    999: 429,
}


class ErrorBody(msgspec.Struct):
    code: int
    message: str


class PublishAnswer(msgspec.Struct, rename="camel"):
    status: str
    message_id: str
    error_message: str | None = None


class WireMessage(msgspec.Struct, rename="camel"):
    """A delivered message as Backendless clients read it (zeros and nulls when not set)."""

    message_id: str
    timestamp: int
    message: Any
    publisher_id: str | None
    headers: dict[str, str | int | float | bool | None]
    subtopic: None = None
    publish_at: int = 0
    repeat_every: int = 0
    repeat_expires_at: int = 0
    publish_policy: str | None = None
    push_singlecast: list[str] | None = None
    push_broadcast: int | None = None
    template_values: dict[str, Any] | None = None
    query: str | None = None


class StatusAnswer(msgspec.Struct, rename="camel"):
    """`GET messaging/<messageId>`: a publish answer, plus the push delivery report."""

    status: str
    message_id: str
    error_message: str | None = None
    push_delivery: dict[str, dict[str, int]] | msgspec.UnsetType = msgspec.UNSET


def http_status(error: BrokerError) -> int:
    return HTTP_STATUS.get(error.code, 400)


def error_body(error: BrokerError) -> ErrorBody:
    return ErrorBody(error.code, error.message)


def publish_answer(result: PublishResult) -> PublishAnswer:
    return PublishAnswer(str(result.status), result.message_id, result.error_message)


def wire_message(message: Message) -> WireMessage:
    return WireMessage(
        message_id=message.message_id,
        timestamp=message.timestamp,
        message=message.message,
        publisher_id=message.publisher_id,
        headers=message.headers,
    )
