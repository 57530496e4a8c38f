"""Firebase Cloud Messaging, HTTP v1 API, authorised by a Google service account.

    [push.fcm]
    service_account_file = "/etc/tidings/firebase-service-account.json"

Auth is the OAuth2 service-account flow: an RS256 JWT signed with the
account's key is exchanged at its ``token_uri`` for an access token (valid an
hour), which every send carries as ``Authorization: Bearer``. The token is
cached and refreshed five minutes before it expires, or when FCM answers 401;
one refresh at a time, whatever the number of sends waiting for it.

A send is ``POST {base_url}/v1/projects/{project_id}/messages:send`` with
``{"message": {**payload, "token": device_token}}`` (the payload is
`broker.notifications.build_payload("ANDROID", ...)`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

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
from .h2_client import H2Client, H2Error, Response

__all__ = ["FcmProvider", "FcmSettings"]

SCOPE: Final = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME: Final = 3600  # the most Google accepts
REFRESH_EARLY: Final = 300.0  # seconds before expiry: no send races the deadline


class FcmSettings(msgspec.Struct, forbid_unknown_fields=True):
    service_account_file: str = ""  # empty: FCM not configured
    base_url: str = "https://fcm.googleapis.com"
    ca_file: str = ""  # extra CAs to trust (tests)
    timeout: float = 10.0
    concurrency: int = 100

    @property
    def configured(self) -> bool:
        return bool(self.service_account_file)


class ServiceAccount(msgspec.Struct, frozen=True):
    """The fields of a Google service-account key file that the flow needs."""

    project_id: str
    client_email: str
    private_key: str
    token_uri: str = "https://oauth2.googleapis.com/token"
    private_key_id: str = ""


class _TokenError(Exception):
    """The token endpoint failed; `result` is what each waiting send answers."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


class FcmProvider:
    def __init__(self, settings: FcmSettings, *, clock: Clock = time.time) -> None:
        raw = Path(settings.service_account_file).read_bytes()
        self._account = msgspec.json.decode(raw, type=ServiceAccount)
        key = load_pem_private_key(self._account.private_key.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{settings.service_account_file}: private_key is not an RSA key")
        self._key = key
        self._clock = clock
        project = quote(self._account.project_id, safe="")
        base_path = urlsplit(settings.base_url).path.rstrip("/")
        self._path = f"{base_path}/v1/projects/{project}/messages:send"
        # Sends: one lean HTTP/2 connection to FCM; httpx only for the token endpoint.
        self._h2 = H2Client(settings.base_url, ca_file=settings.ca_file, timeout=settings.timeout)
        self._client = make_client(
            ca_file=settings.ca_file, timeout=settings.timeout, concurrency=1
        )
        self._pool = SendPool(settings.concurrency)
        # The access token: one fetch at a time; a failed fetch is shared by the
        # sends that waited for it rather than retried by each of them.
        self._lock = asyncio.Lock()
        self._token = ""
        self._expires = 0.0
        self._fetches = 0
        self._failure: SendResult | None = None

    async def send(self, notifications: Sequence[Notification]) -> list[SendResult]:
        return await self._pool.run(notifications, self._send)

    async def aclose(self) -> None:
        try:
            await self._h2.aclose()
        finally:
            await self._client.aclose()

    async def _send(self, notification: Notification) -> SendResult:
        body = encode_json({"message": {**notification.payload, "token": notification.token}})
        rejected = ""
        for _ in range(2):  # a 401 refreshes the access token and tries once more
            try:
                token = await self._access_token(rejected)
                response = await self._h2.request(
                    "POST",
                    self._path,
                    {
                        "authorization": f"Bearer {token}",
                        "content-type": "application/json; charset=UTF-8",
                    },
                    body,
                )
            except _TokenError as exc:
                return exc.result
            except H2Error as exc:
                return network_error(exc)
            if response.status != 401:
                break
            rejected = token
        return self._result(response)

    def _result(self, response: Response) -> SendResult:
        status = response.status
        if status == 200:
            return SendResult(Outcome.SENT)
        error = _error(response)
        if should_retry(status):
            return SendResult(
                Outcome.RETRY, retry_after=retry_after(response, self._clock()), error=error.text
            )
        if error.code == "UNREGISTERED" or (error.code == "INVALID_ARGUMENT" and error.about_token):
            return SendResult(Outcome.INVALID_TOKEN, error=error.text)
        return SendResult(Outcome.FAILED, error=error.text)

    async def _access_token(self, rejected: str) -> str:
        if self._fresh(rejected):
            return self._token
        fetched = self._fetches  # fetches completed before this send waited
        async with self._lock:
            if self._fresh(rejected):  # refreshed while this send waited
                return self._token
            if self._failure is not None and self._fetches != fetched:
                raise _TokenError(self._failure)  # it failed as this send waited: no stampede
            try:
                self._token, self._expires = await self._fetch_token()
            except _TokenError as exc:
                self._failure = exc.result
                raise
            finally:
                self._fetches += 1
            self._failure = None
            return self._token

    def _fresh(self, rejected: str) -> bool:
        return (
            bool(self._token)
            and self._token != rejected
            and self._clock() < self._expires - REFRESH_EARLY
        )

    async def _fetch_token(self) -> tuple[str, float]:
        account = self._account
        now = self._clock()
        claims = {
            "iss": account.client_email,
            "scope": SCOPE,
            "aud": account.token_uri,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME,
        }
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        form = {"grant_type": GRANT_TYPE, "assertion": assertion}
        try:
            response = await self._client.post(account.token_uri, data=form)
        except httpx.TransportError as exc:
            raise _TokenError(network_error(exc)) from None
        if response.status_code != 200:
            text = f"access token: HTTP {response.status_code} {response.text[:300]}"
            if should_retry(response.status_code):
                result = SendResult(
                    Outcome.RETRY, retry_after=retry_after(response, now), error=text
                )
            else:  # invalid_grant, invalid_scope, ...: the credentials are wrong
                result = SendResult(Outcome.FAILED, error=text)
            raise _TokenError(result)
        try:
            answer = msgspec.json.decode(response.content, type=_TokenAnswer)
        except msgspec.DecodeError as exc:
            raise _TokenError(SendResult(Outcome.RETRY, error=describe(exc))) from None
        return answer.access_token, now + answer.expires_in


class _TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: float


class _Error(msgspec.Struct, frozen=True):
    text: str
    code: str = ""  # the FcmError errorCode: UNREGISTERED, INVALID_ARGUMENT, ...
    about_token: bool = False  # a field violation on message.token


def _error(response: Response) -> _Error:
    """What a Google API error says: ``{"error": {"code", "message", "status", "details"}}``."""
    try:
        body: Any = json.loads(response.body)
        error = body["error"]
        message = str(error.get("message", ""))
        details = [d for d in error.get("details", ()) if isinstance(d, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return _Error(f"HTTP {response.status} {response.text[:300]}")
    code = next((str(d["errorCode"]) for d in details if "errorCode" in d), "")
    violations = [v for d in details for v in d.get("fieldViolations", ()) if isinstance(v, dict)]
    about_token = any(v.get("field") == "message.token" for v in violations) or (
        "registration token" in message.lower()
    )
    status = error.get("status", "")
    return _Error(f"HTTP {response.status} {code or status}: {message}", code, about_token)
