"""Checks on delay / publish_at / repeat_every / repeat_expires_at, turned into due times.

Codes per BACKENDLESS.md: 5030 invalid delivery time, 5031 invalid repeat
period, 5003 invalid repeat expiry. Times are whole epoch milliseconds, rounded
up (a message is never due before it was asked); the expiry is rounded the same
way so a due time that falls on it is delivered.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import msgspec

from broker._errors import InvalidPublishTimeError, InvalidRepeatError, InvalidRepeatExpiryError

MAX_SECONDS = 100 * 365 * 86_400.0  # delays and periods longer than a century are refused


class Timing(msgspec.Struct, frozen=True):
    first_due: int  # epoch ms
    period: int | None  # ms
    expires: int | None  # epoch ms


def check_timing(
    now: float,
    delay: object,
    publish_at: object,
    repeat_every: object,
    repeat_expires_at: object,
) -> Timing | None:
    """The due times asked for, or None for an immediate publish; `now` in epoch seconds."""
    if delay is None and publish_at is None and repeat_every is None:
        if repeat_expires_at is not None:
            raise InvalidRepeatExpiryError("repeat_expires_at needs repeat_every")
        return None
    now_ms = now * 1000
    period = None if repeat_every is None else _period(repeat_every)
    if delay is not None and publish_at is not None:
        raise InvalidPublishTimeError("give delay or publish_at, not both")
    if delay is not None:
        seconds = _seconds(delay)
        if seconds is None or not 0 <= seconds <= MAX_SECONDS:
            raise InvalidPublishTimeError(
                f"delay must be seconds (a number or timedelta) from 0 to {MAX_SECONDS:.0f}, "
                f"not {delay!r}"
            )
        first_due = math.ceil(now_ms + seconds * 1000)
    elif publish_at is not None:
        first_due = math.ceil(_epoch_ms(publish_at, "publish_at", InvalidPublishTimeError))
        if first_due < math.floor(now_ms):
            raise InvalidPublishTimeError(f"publish_at {publish_at} is in the past")
    else:
        first_due = math.ceil(now_ms) + (period or 0)  # a repeat starts one period from now
    expires = None
    if repeat_expires_at is not None:
        if period is None:
            raise InvalidRepeatExpiryError("repeat_expires_at needs repeat_every")
        # Rounded up like every due time, so a due time at the expiry stays in.
        expires = math.ceil(
            _epoch_ms(repeat_expires_at, "repeat_expires_at", InvalidRepeatExpiryError)
        )
        if expires < now_ms:
            raise InvalidRepeatExpiryError(f"repeat_expires_at {repeat_expires_at} is in the past")
        if expires < first_due:
            raise InvalidRepeatExpiryError(
                f"repeat_expires_at {repeat_expires_at} is before the first delivery"
            )
    return Timing(first_due, period, expires)


def _seconds(value: object) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _period(value: object) -> int:
    seconds = _seconds(value)
    period = None if seconds is None or seconds > MAX_SECONDS else round(seconds * 1000)
    if period is None or period < 1:
        raise InvalidRepeatError(
            f"repeat_every must be a positive number of seconds or timedelta (at least 1 ms), "
            f"not {value!r}"
        )
    return period


def _epoch_ms(
    value: object,
    name: str,
    error: type[InvalidPublishTimeError] | type[InvalidRepeatExpiryError],
) -> float:
    if not isinstance(value, datetime):
        raise error(f"{name} must be a timezone-aware datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise error(f"{name} must be timezone-aware: {value} has no time zone")
    return value.timestamp() * 1000
