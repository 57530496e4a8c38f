"""Push notifications, provider-neutral: what each OS is sent, and what a provider answers.

Pure: a notification's payload is built here from the message and its headers
(BACKENDLESS.md, Push notifications); transports.push_providers turn payloads
into FCM, APNs and Web Push requests (the `PushProvider` protocol).

Payloads, by the OS a device registered with:

- IOS, OSX (APNs): the APNs JSON body, ``{"aps": {"alert": {"title", "subtitle",
  "body"}, "badge", "sound", "content-available", "category"}, ...}`` from the
  ``ios-*`` headers; the alert body is ``ios-alert``, else the message text.
  Other headers (not ``ios-*`` / ``android-*``) ride along as custom keys.
- ANDROID (FCM HTTP v1): the ``message`` object without its ``token``:
  ``{"notification": {"title", "body", "image"}, "android": {"notification":
  {"ticker", "click_action"}}, "data": {...}}`` from the ``android-*`` headers;
  the body is ``android-content-text``, else the message text. FCM data values
  must be strings, so other headers are sent as their text.
- WEB (Web Push): ``{"title", "body", "data"}``, encrypted by the provider.
- WP: ``{"text", "data"}`` (no provider exists any more; reported as failed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

import msgspec

__all__ = [
    "Notification",
    "Outcome",
    "PushProvider",
    "SendResult",
    "build_payload",
]

HeaderValue = str | int | float | bool | None


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One (message, device) send, as the outbox hands it to a provider."""

    key: int  # the outbox row: results are matched back by position, this is for logs
    message_id: str
    device_id: str
    os: str  # IOS | ANDROID | WP | OSX | WEB
    token: str  # the deviceToken as registered (WEB: the PushSubscription JSON)
    payload: dict[str, Any]  # build_payload(os, ...)


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # 429 / 5xx / network: try again later (honouring retry_after)
    FAILED = "failed"  # will not succeed: bad request, provider not configured, …
    INVALID_TOKEN = "invalid_token"  # the device is gone: drop its registration


class SendResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    retry_after: float | None = None  # seconds, from the provider's Retry-After
    error: str | None = None


class PushProvider(Protocol):
    """Sends notifications to one provider (FCM, APNs, Web Push)."""

    async def send(self, notifications: Sequence[Notification]) -> list[SendResult]:
        """One result per notification, in order; never raises for a single send's failure."""
        ...

    async def aclose(self) -> None: ...


def _text(value: HeaderValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _custom(headers: Mapping[str, HeaderValue]) -> dict[str, HeaderValue]:
    return {k: v for k, v in headers.items() if not k.startswith(("ios-", "android-", "web-"))}


def _apns(text: str, headers: Mapping[str, HeaderValue]) -> dict[str, Any]:
    alert: dict[str, Any] = {"body": _text(headers.get("ios-alert", text))}
    for header, key in (("ios-alert-title", "title"), ("ios-alert-subtitle", "subtitle")):
        if header in headers:
            alert[key] = _text(headers[header])
    aps: dict[str, Any] = {"alert": alert}
    badge = headers.get("ios-badge")
    if badge is not None:
        with contextlib.suppress(TypeError, ValueError):  # not a number: no badge, still sent
            aps["badge"] = int(badge)
    if "ios-sound" in headers:
        aps["sound"] = _text(headers["ios-sound"])
    if headers.get("ios-content-available") not in (None, False, 0, "0", "false"):
        aps["content-available"] = 1
    if "ios-category" in headers:
        aps["category"] = _text(headers["ios-category"])
    return {**_custom(headers), "aps": aps}


def _fcm(text: str, headers: Mapping[str, HeaderValue]) -> dict[str, Any]:
    notification: dict[str, str] = {"body": _text(headers.get("android-content-text", text))}
    if "android-content-title" in headers:
        notification["title"] = _text(headers["android-content-title"])
    if "android-image" in headers:
        notification["image"] = _text(headers["android-image"])
    android: dict[str, str] = {}
    if "android-ticker-text" in headers:
        android["ticker"] = _text(headers["android-ticker-text"])
    if "android-action" in headers:
        android["click_action"] = _text(headers["android-action"])
    message: dict[str, Any] = {"notification": notification}
    if android:
        message["android"] = {"notification": android}
    data = {k: _text(v) for k, v in _custom(headers).items()}
    if data:
        message["data"] = data
    return message


def build_payload(os: str, message: str, headers: Mapping[str, HeaderValue]) -> dict[str, Any]:
    """What a device of `os` is sent for a push `message` (a string: 5041 is checked at
    publish) with `headers`."""
    if os in ("IOS", "OSX"):
        return _apns(message, headers)
    if os == "ANDROID":
        return _fcm(message, headers)
    title = headers.get("web-title", headers.get("android-content-title"))
    if os == "WEB":
        web: dict[str, Any] = {"body": message, "data": _custom(headers)}
        if title is not None:
            web["title"] = _text(title)
        return web
    return {"text": message, "data": _custom(headers)}


def report(results: Sequence[tuple[str, Outcome]]) -> dict[str, dict[str, int]]:
    """A delivery report, ``{"IOS": {"sent": n, "failed": n}, ...}``, from (os, final outcome)."""
    found: dict[str, dict[str, int]] = {}
    for os, outcome in results:
        counts = found.setdefault(os, {"sent": 0, "failed": 0})
        counts["sent" if outcome is Outcome.SENT else "failed"] += 1
    return found
