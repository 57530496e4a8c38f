"""Apple Push Notification service over HTTP/2, with token-based (JWT) auth.

    [push.apns]
    team_id = "ABCDE12345"
    key_id = "KEY1234567"
    key_file = "/etc/tidings/AuthKey_KEY1234567.p8"
    topic = "com.example.app"         # the iOS app's bundle id
    osx_topic = ""                    # the macOS app's, when it differs
    base_url = "https://api.push.apple.com"   # sandbox: https://api.sandbox.push.apple.com

Every request carries ``authorization: bearer <JWT>``, an ES256 JWT of the
team id and its issue time, signed with the .p8 key. APNs rejects a token
older than an hour and one renewed more often than every 20 minutes, so one
token is reused and renewed when 50 minutes old (or when APNs answers 403
ExpiredProviderToken). A send is ``POST {base_url}/3/device/<token>`` with the
payload of `broker.notifications.build_payload("IOS", ...)` as its body.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from broker.notifications import Notification, Outcome, SendResult

from ._common import (
    Clock,
    SendPool,
    encode_json,
    network_error,
    retry_after,
    should_retry,
)
from .h2_client import H2Client, H2Error, Response

__all__ = ["ApnsProvider", "ApnsSettings"]

JWT_MAX_AGE: Final = 50 * 60.0  # APNs: at most an hour old, renewed at most every 20 minutes
# apns-id is derived from (message, device), so a retried send carries the same id.
APNS_ID_NAMESPACE: Final = uuid.UUID("6f0b8c1e-5d1a-4b7e-9a51-7a1d2c0e4f10")
INVALID_TOKEN_REASONS: Final = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})


class ApnsSettings(msgspec.Struct, forbid_unknown_fields=True):
    team_id: str = ""
    key_id: str = ""
    key_file: str = ""  # empty: APNs not configured
    topic: str = ""
    osx_topic: str = ""  # OSX devices' apns-topic; empty: `topic`
    base_url: str = "https://api.push.apple.com"
    ca_file: str = ""  # extra CAs to trust (tests)
    timeout: float = 10.0
    concurrency: int = 100

    @property
    def configured(self) -> bool:
        return bool(self.key_file)


class ApnsProvider:
    def __init__(self, settings: ApnsSettings, *, clock: Clock = time.time) -> None:
        missing = [f for f in ("team_id", "key_id", "topic") if not getattr(settings, f)]
        if missing:
            raise ValueError(f"APNs settings need {', '.join(missing)} with key_file")
        key = load_pem_private_key(Path(settings.key_file).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{settings.key_file} is not an APNs (EC P-256) key")
        self._key = key
        self._settings = settings
        self._clock = clock
        self._topics = {"IOS": settings.topic, "OSX": settings.osx_topic or settings.topic}
        self._base = f"{urlsplit(settings.base_url).path.rstrip('/')}/3/device/"
        self._client = H2Client(
            settings.base_url, ca_file=settings.ca_file, timeout=settings.timeout
        )
        self._pool = SendPool(settings.concurrency)
        self._jwt = ""
        self._jwt_issued = 0.0

    async def send(self, notifications: Sequence[Notification]) -> list[SendResult]:
        return await self._pool.run(notifications, self._send)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, notification: Notification) -> SendResult:
        path = self._base + quote(notification.token, safe="")
        body = encode_json(notification.payload)
        headers = self._headers(notification)
        rejected = ""
        for _ in range(2):  # ExpiredProviderToken renews the JWT and tries once more
            token = self._token(rejected)
            try:
                response = await self._client.request(
                    "POST", path, {**headers, "authorization": f"bearer {token}"}, body
                )
            except H2Error as exc:
                return network_error(exc)
            reason = _reason(response)
            if response.status != 403 or reason != "ExpiredProviderToken":
                break
            rejected = token
        return self._result(response, reason)

    def _headers(self, notification: Notification) -> dict[str, str]:
        aps: Any = notification.payload.get("aps")
        background = isinstance(aps, dict) and set(aps) == {"content-available"}
        apns_id = uuid.uuid5(
            APNS_ID_NAMESPACE, f"{notification.message_id}\0{notification.device_id}"
        )
        return {
            "apns-topic": self._topics.get(notification.os, self._settings.topic),
            "apns-push-type": "background" if background else "alert",
            "apns-priority": "5" if background else "10",  # APNs requires 5 for background
            "apns-id": str(apns_id),
            "content-type": "application/json",
        }

    def _token(self, rejected: str) -> str:
        """The provider JWT, renewed when 50 minutes old or rejected as expired.

        Minting is synchronous (no await), so concurrent sends never mint twice.
        """
        now = self._clock()
        if not self._jwt or self._jwt == rejected or now - self._jwt_issued >= JWT_MAX_AGE:
            settings = self._settings
            self._jwt = jwt.encode(
                {"iss": settings.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": settings.key_id, "typ": None},  # Apple's header: alg and kid
            )
            self._jwt_issued = now
        return self._jwt

    def _result(self, response: Response, reason: str) -> SendResult:
        status = response.status
        if status == 200:
            return SendResult(Outcome.SENT)
        error = f"HTTP {status} {reason or response.text[:300]}"
        if should_retry(status):
            return SendResult(
                Outcome.RETRY, retry_after=retry_after(response, self._clock()), error=error
            )
        if status == 410 or (status == 400 and reason in INVALID_TOKEN_REASONS):
            return SendResult(Outcome.INVALID_TOKEN, error=error)
        return SendResult(Outcome.FAILED, error=error)


def _reason(response: Response) -> str:
    """The ``reason`` of an APNs error body, ``{"reason": "BadDeviceToken"}``."""
    if response.status == 200 or not response.body:
        return ""
    try:
        body = msgspec.json.decode(response.body)
    except msgspec.DecodeError:
        return ""
    return str(body.get("reason", "")) if isinstance(body, dict) else ""
