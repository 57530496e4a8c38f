"""Web Push: VAPID (RFC 8292) authorisation and aes128gcm message encryption (RFC 8291).

    [push.webpush]
    vapid_private_key_file = "/etc/tidings/vapid.pem"   # EC P-256, PEM
    subject = "mailto:ops@example.com"

A WEB device's token is the browser's PushSubscription JSON (endpoint and the
p256dh / auth keys, `broker.devices.parse_web_token`). The payload
(`build_payload("WEB", ...)`) is JSON-encoded, encrypted for that browser
with a fresh ECDH key, and POSTed to the endpoint with ``Authorization:
vapid t=<JWT>, k=<public key>``; the browser's push service checks that the
key is the applicationServerKey the subscription was made with.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]
import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from py_vapid import Vapid02, VapidException  # type: ignore[import-untyped]

from broker.devices import InvalidRegistrationError, parse_web_token
from broker.notifications import Notification, Outcome, SendResult

from ._common import (
    Clock,
    SendPool,
    describe,
    encode_json,
    make_client,
    network_error,
    retry_after,
    should_retry,
)

__all__ = ["WebPushProvider", "WebPushSettings"]

VAPID_LIFETIME: Final = 12 * 3600  # the JWT's exp; push services accept up to 24 h
VAPID_REUSE: Final = 3600.0  # sign once an hour per push service, not once per message
MAX_CACHED_AUDIENCES: Final = 1024  # endpoints come from clients: bound the cache


class WebPushSettings(msgspec.Struct, forbid_unknown_fields=True):
    vapid_private_key_file: str = ""  # empty: Web Push not configured
    subject: str = ""  # a mailto: or https: contact for the push services
    ca_file: str = ""  # extra CAs to trust (tests)
    timeout: float = 10.0
    concurrency: int = 100
    ttl: int = 86_400  # seconds a push service keeps a message for an offline browser

    @property
    def configured(self) -> bool:
        return bool(self.vapid_private_key_file)


class WebPushProvider:
    def __init__(self, settings: WebPushSettings, *, clock: Clock = time.time) -> None:
        if not settings.subject.startswith(("mailto:", "https://")):
            raise ValueError("Web Push settings need a subject: mailto:... or https://...")
        # Loaded here rather than by Vapid.from_file, which *creates* a new key
        # when the file is missing: every subscription would then be refused.
        key = load_pem_private_key(Path(settings.vapid_private_key_file).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{settings.vapid_private_key_file} is not a VAPID (EC P-256) key")
        self._vapid = Vapid02(private_key=key)
        try:  # py_vapid checks the subject's form when signing: fail now, not on each send
            self._vapid.sign({"sub": settings.subject, "aud": "https://push.example"})
        except VapidException as exc:
            raise ValueError(f"Web Push subject {settings.subject!r}: {exc}") from None
        self._settings = settings
        self._clock = clock
        self._authorizations: dict[str, tuple[str, float]] = {}  # audience → (header, signed)
        self._client = make_client(
            ca_file=settings.ca_file, timeout=settings.timeout, concurrency=settings.concurrency
        )
        self._pool = SendPool(settings.concurrency)

    async def send(self, notifications: Sequence[Notification]) -> list[SendResult]:
        return await self._pool.run(notifications, self._send)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, notification: Notification) -> SendResult:
        try:
            subscription = parse_web_token(notification.token)
            endpoint = urlsplit(subscription.endpoint)
            body = _encrypt(
                encode_json(notification.payload), subscription.p256dh, subscription.auth
            )
        except InvalidRegistrationError as exc:  # not a subscription any browser could hold
            return SendResult(Outcome.INVALID_TOKEN, error=exc.message)
        except (ValueError, http_ece.ECEException) as exc:  # nor keys it could have made
            return SendResult(Outcome.INVALID_TOKEN, error=describe(exc))
        audience = f"{endpoint.scheme}://{endpoint.netloc.rpartition('@')[2]}"
        try:
            authorization = self._authorization(audience)
        except VapidException as exc:  # an endpoint py_vapid cannot sign for (IPv6 host, ...)
            return SendResult(Outcome.FAILED, error=f"VAPID: {exc}")
        headers = {
            "authorization": authorization,
            "ttl": str(self._settings.ttl),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "urgency": "normal",
        }
        try:
            response = await self._client.post(subscription.endpoint, content=body, headers=headers)
        except httpx.TransportError as exc:
            return network_error(exc)
        status = response.status_code
        if status in (200, 201, 202):
            return SendResult(Outcome.SENT)
        error = f"HTTP {status} {response.text[:300]}".rstrip()
        if status in (404, 410):  # the subscription expired or was unsubscribed
            return SendResult(Outcome.INVALID_TOKEN, error=error)
        if should_retry(status):
            return SendResult(
                Outcome.RETRY, retry_after=retry_after(response, self._clock()), error=error
            )
        return SendResult(Outcome.FAILED, error=error)  # 413 too large, 401/403 VAPID, ...

    def _authorization(self, audience: str) -> str:
        """``vapid t=<JWT>, k=<key>`` for a push service's origin, reused for an hour."""
        now = self._clock()
        cached = self._authorizations.get(audience)
        if cached is not None and now - cached[1] < VAPID_REUSE:
            return cached[0]
        claims = {"sub": self._settings.subject, "aud": audience, "exp": int(now) + VAPID_LIFETIME}
        header = str(self._vapid.sign(claims)["Authorization"])
        if len(self._authorizations) >= MAX_CACHED_AUDIENCES:
            self._authorizations.clear()
        self._authorizations[audience] = (header, now)
        return header


def _encrypt(plaintext: bytes, p256dh: str, auth: str) -> bytes:
    """RFC 8291: aes128gcm for the browser's key, from a new ECDH key per message."""
    try:
        dh, secret = _b64url(p256dh), _b64url(auth)
    except binascii.Error as exc:
        raise ValueError(f"the subscription's keys are not base64url: {exc}") from None
    if len(secret) != 16:
        raise ValueError("the subscription's auth secret is not 16 bytes")
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext, private_key=sender, dh=dh, auth_secret=secret, version="aes128gcm"
    )
    return body


def _b64url(text: str) -> bytes:
    text = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
