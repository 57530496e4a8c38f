"""A publish request once the caller is known: shared by REST, its fast path and websockets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from broker import (
    Broker,
    InvalidArgumentError,
    InvalidPublishTimeError,
    InvalidRepeatExpiryError,
)
from broker.permissions import Permission, Permissions
from broker.push_options import parse_push_options
from transports.wire import PublishAnswer, publish_answer

# Which code a publish field's type error gets (BACKENDLESS.md); others are 8002.
FIELD_CODES = {"publishAt": 5030, "repeatEvery": 5031, "repeatExpiresAt": 5003}


class PublishBody(msgspec.Struct, rename="camel"):
    """`POST messaging/<channel>`; unknown keys are ignored."""

    message: Any = msgspec.UNSET
    publisher_id: str | None = None
    headers: dict[str, str | int | float | bool | None] | None = None
    publish_at: int | float | None = None  # epoch ms
    repeat_every: int | float | None = None  # seconds
    repeat_expires_at: int | float | None = None  # epoch ms
    publish_policy: str | None = None
    push_policy: str | None = None  # older name: "ONLY" | "ALSO"
    push_broadcast: int | str | None = None
    push_singlecast: list[str] | None = None
    segment_query: str | None = None


class Publisher(Protocol):
    """What a publish needs of an app: its broker and its channel permissions."""

    @property
    def broker(self) -> Broker: ...

    @property
    def permissions(self) -> Permissions: ...


def epoch(
    value: int | float | None,
    error: type[InvalidPublishTimeError | InvalidRepeatExpiryError],
    name: str,
) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise error(f"{name} {value!r} is not a valid epoch time in milliseconds") from None


async def publish_message(
    app: Publisher,
    roles: tuple[str, ...],
    channel: str,
    data: PublishBody,
    *,
    delay: float | None = None,
) -> PublishAnswer:
    """Check the caller may publish to `channel`, then publish as the body says."""
    if data.message is msgspec.UNSET:
        raise InvalidArgumentError("the body needs a 'message'")
    app.permissions.require(channel, roles, Permission.PUBLISH)
    push = parse_push_options(
        {
            "publishPolicy": data.publish_policy,
            "pushPolicy": data.push_policy,
            "pushBroadcast": data.push_broadcast,
            "pushSinglecast": data.push_singlecast,
            "segmentQuery": data.segment_query,
        }
    )
    publish_at = epoch(data.publish_at, InvalidPublishTimeError, "publishAt")
    expires = epoch(data.repeat_expires_at, InvalidRepeatExpiryError, "repeatExpiresAt")
    result = await app.broker.publish(
        channel,
        data.message,
        headers=data.headers,
        publisher_id=data.publisher_id,
        delay=delay,
        publish_at=publish_at,
        repeat_every=data.repeat_every,
        repeat_expires_at=expires,
        push=push,
    )
    return publish_answer(result)
