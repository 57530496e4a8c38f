"""Fake FCM, APNs and Web Push services that speak and check the real protocols.

Each fake is a small ASGI app served in-process by hypercorn on 127.0.0.1 (an
ephemeral port) over TLS (certificates from one trustme CA per process), and
verifies what the real service would: credentials (JWT signatures, claims,
lifetimes), paths, headers and payload shapes. It records what it accepted
and answers chosen tokens with chosen errors::

    async with fake_fcm(tmp_path) as fcm:           # or fake_apns, fake_webpush
        async with aclosing(FcmProvider(fcm.settings)) as provider:  # aimed at the fake
            await provider.send([...])
        fcm.received          # [(token, payload), ...] accepted, in arrival order
        fcm.requests          # every request: Request(method, path, headers, http_version, status)
        fcm.fail(token, 404)  # answer token's sends 404 (FCM UNREGISTERED) from now on
        fcm.fail(token, 429, retry_after=7, times=2)  # only the next two sends
        fcm.fail(token, 503, delay=0.1)               # after a delay
        fcm.slow(token, 30)   # answer normally after 30 s (cut short when the fake stops)
        fcm.max_in_flight     # the most requests it was handling at once

Options of all three: ``clock`` (epoch seconds for every time check: pass the
provider's too, to move time for both) and ``goaway_after`` (requests per
connection); `fake_fcm` also ``expires_in`` (of access tokens). Each exposes
``settings`` (ready to use, pointing at ``origin`` and trusting ``ca_file``).
The payload recorded is what a provider is given (`build_payload`'s output):
FCM the message without its token, APNs the body, Web Push the decrypted JSON.

- `FakeFcm`: ``POST /token`` (the service account's token_uri) checks the RS256
  assertion and issues access tokens (`token_requests` counts the requests;
  `revoke_tokens()` makes the next sends answer 401);
  ``POST /v1/projects/<id>/messages:send`` checks the bearer token, the
  project and the message shape. `fail` reasons are FCM errorCodes, defaulted
  from the status (404 UNREGISTERED, 400 INVALID_ARGUMENT on message.token, ...).
- `FakeApns`: HTTP/2 only; checks the ES256 provider JWT (kid, iss, at most an
  hour old, renewed at most every 20 minutes: `jwts` lists those seen), path,
  token, topic, push type, priority, apns-id and the ``aps`` body. `fail`
  reasons are APNs reasons, defaulted from the status (410 Unregistered, ...).
- `FakeWebPush`: ``subscription(name)`` makes a browser's keys and returns its
  PushSubscription JSON (a WEB deviceToken); ``POST /push/<name>`` checks the
  VAPID JWT against the fake's origin and applicationServerKey (`vapid_tokens`
  lists those seen), TTL and Content-Encoding, and decrypts the body. Tokens in
  `received` / `fail` are subscription names; `unsubscribe(name)` → 410.

Credentials for other uses: `write_service_account`, `write_p8_key`,
`write_vapid_key`; and `closed_port()`, `http_date()`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import json
import logging
import re
import secrets
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import http_ece  # type: ignore[import-untyped]
import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

from transports.push_providers import ApnsSettings, FcmSettings, WebPushSettings

Clock = Callable[[], float]
JSON = "application/json"
_log = logging.getLogger("tests.push_fakes")


@dataclass
class Request:
    """One request a fake answered."""

    method: str
    path: str
    headers: dict[str, str]
    http_version: str
    status: int = 0


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, body: Any, **headers: str) -> Response:
        return cls(status, json.dumps(body).encode(), {"content-type": JSON, **headers})


@dataclass
class _Failure:
    status: int | None  # None: answer normally, after `delay`
    reason: str | None
    retry_after: str | None
    times: int | None  # None: every time
    delay: float


class _Reject(Exception):
    """Raised by a check: answer with `response`."""

    def __init__(self, response: Response) -> None:
        self.response = response


# -- the server -----------------------------------------------------------------------------


async def read_request(scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
    """An ASGI request's whole body; None for the lifespan scope, which it answers."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


@functools.cache
def test_ca() -> trustme.CA:
    """One CA for every fake of the process: any fake's `ca_file` trusts them all."""
    return trustme.CA()


class FakeService:
    """An ASGI app on hypercorn with TLS; subclasses check and answer requests in `handle`."""

    h2_only: ClassVar[bool] = False

    def __init__(
        self, tmp_path: Path, *, clock: Clock = time.time, goaway_after: int = 10**9
    ) -> None:
        self.clock = clock
        # Requests per connection before hypercorn sends GOAWAY. It then drops the
        # connection at once (real services let the streams in flight finish), so
        # answers are lost and asyncio logs SSL errors: for load experiments.
        self.goaway_after = goaway_after
        self.dir = Path(tempfile.mkdtemp(prefix=f"{type(self).__name__}-", dir=tmp_path))
        self.received: list[tuple[str, Any]] = []
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures: dict[str, _Failure] = {}
        self._closing = asyncio.Event()
        # Listening before hypercorn starts: no request can race its startup.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        self.port: int = sock.getsockname()[1]
        self.origin = f"https://127.0.0.1:{self.port}"
        self._fd = sock.detach()  # hypercorn owns the socket from here
        self.ca_file = self._tls()

    def _tls(self) -> str:
        ca = test_ca()
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        server.private_key_and_cert_chain_pem.write_to_path(str(self.dir / "server.pem"))
        return str(self.dir / "ca.pem")

    # -- what tests call --

    def fail(
        self,
        token: str,
        status: int,
        *,
        reason: str | None = None,
        retry_after: str | int | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer `token`'s sends with `status` (and the service's error body for `reason`).

        `times`: only the next n sends (None: all); `retry_after`: a Retry-After
        header (seconds or an HTTP date); `delay`: seconds to wait before answering.
        """
        after = None if retry_after is None else str(retry_after)
        self._failures[token] = _Failure(status, reason, after, times, delay)

    def slow(self, token: str, seconds: float, *, times: int | None = None) -> None:
        """Answer `token`'s sends normally, after `seconds` (cut short when the fake stops)."""
        self._failures[token] = _Failure(None, None, None, times, seconds)

    # -- for subclasses --

    async def handle(self, request: Request, body: bytes) -> Response:
        raise NotImplementedError

    def error(self, status: int, reason: str | None) -> Response:
        """The service's error answer for an injected failure."""
        return Response.json(status, {"error": reason or "injected"})

    async def injected(self, token: str) -> Response | None:
        """The failure set for `token` by `fail` / `slow`, if any (counting it down)."""
        failure = self._failures.get(token)
        if failure is None:
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[token]
        if failure.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), failure.delay)
        if failure.status is None:
            return None
        response = self.error(failure.status, failure.reason)
        if failure.retry_after is not None:
            response.headers["retry-after"] = failure.retry_after
        return response

    # -- ASGI --

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_request(scope, receive, send)
        if body is None:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = Request(scope["method"], scope["path"], headers, scope["http_version"])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.handle(request, body)
        except _Reject as reject:
            response = reject.response
        finally:
            self.in_flight -= 1
        request.status = response.status
        self.requests.append(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        config = Config()
        config.bind = [f"fd://{self._fd}"]
        config.certfile = config.keyfile = str(self.dir / "server.pem")
        config.alpn_protocols = ["h2"] if self.h2_only else ["h2", "http/1.1"]
        config.errorlog = _log
        config.graceful_timeout = 0.5
        config.keep_alive_max_requests = self.goaway_after  # then HTTP/2 GOAWAY
        config.h2_max_concurrent_streams = 1000
        stop = asyncio.Event()
        server = asyncio.create_task(serve(self, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        try:
            yield
        finally:
            self._closing.set()
            stop.set()
            await server


# -- FCM ------------------------------------------------------------------------------------

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_FCM_ERROR_CODES = {  # the FcmError errorCode FCM gives with each status
    400: "INVALID_ARGUMENT",
    401: "THIRD_PARTY_AUTH_ERROR",
    403: "SENDER_ID_MISMATCH",
    404: "UNREGISTERED",
    429: "QUOTA_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_FCM_MESSAGES = {
    "UNREGISTERED": "Requested entity was not found.",
    "INVALID_ARGUMENT": "The registration token is not a valid FCM registration token",
    "SENDER_ID_MISMATCH": "SenderId mismatch",
    "QUOTA_EXCEEDED": "Quota exceeded for quota metric 'Send requests'.",
    "UNAVAILABLE": "The service is currently unavailable.",
    "INTERNAL": "Internal error encountered.",
}
_FCM_MESSAGE_FIELDS = {
    "name", "data", "notification", "android", "webpush", "apns", "fcm_options",
    "token", "topic", "condition",
}  # fmt: skip
_FCM_ANDROID_FIELDS = {
    "collapse_key", "priority", "ttl", "restricted_package_name", "data",
    "notification", "fcm_options", "direct_boot_ok",
}  # fmt: skip
_FCM_ANDROID_NOTIFICATION_FIELDS = {
    "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key",
    "title_loc_key", "channel_id", "ticker", "image",
}  # fmt: skip


def google_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    violations: Sequence[tuple[str, str]] = (),
) -> Response:
    """A Google API error body, with FCM's errorCode detail and field violations."""
    details: list[dict[str, Any]] = []
    if code:
        details.append(
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        )
    if violations:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": f, "description": d} for f, d in violations],
            }
        )
    error = {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return Response.json(status, {"error": error})


def write_service_account(path: Path, token_uri: str, project_id: str = "tidings-test") -> Any:
    """A Google service-account key file with a fresh RSA key; returns the key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(account, indent=2))
    return key


class FakeFcm(FakeService):
    project_id = "tidings-test"

    def __init__(self, tmp_path: Path, *, expires_in: int = 3599, **options: Any):
        super().__init__(tmp_path, **options)
        self.expires_in = expires_in
        self.token_uri = f"{self.origin}/token"
        account_file = self.dir / "service-account.json"
        key = write_service_account(account_file, self.token_uri, self.project_id)
        self.account = json.loads(account_file.read_text())
        self.public_key = key.public_key()
        self.settings = FcmSettings(
            service_account_file=str(account_file),
            base_url=self.origin,
            ca_file=self.ca_file,
            timeout=5,
        )
        self.token_requests = 0
        self.access_tokens: dict[str, float] = {}  # issued token → expiry
        self._message_ids = 0

    def revoke_tokens(self) -> None:
        """Forget every access token issued: sends carrying one answer 401."""
        self.access_tokens.clear()

    def error(self, status: int, reason: str | None) -> Response:
        code = reason or _FCM_ERROR_CODES.get(status, "UNSPECIFIED_ERROR")
        violations = [("message.token", "Invalid registration token")]
        return google_error(
            status,
            _FCM_MESSAGES.get(code, code),
            code=code,
            violations=violations if code == "INVALID_ARGUMENT" else [],
        )

    async def handle(self, request: Request, body: bytes) -> Response:
        if request.method != "POST":
            return google_error(405, "Method not allowed")
        if request.path == "/token":
            return self._token(request, body)
        match = re.fullmatch(r"/v1/projects/([^/]+)/messages:send", request.path)
        if match is None:
            return google_error(404, "The requested URL was not found on this server.")
        return await self._send(request, match.group(1), body)

    def _token(self, request: Request, body: bytes) -> Response:
        """Google's OAuth2 token endpoint, for the jwt-bearer grant."""
        self.token_requests += 1

        def refuse(error: str, description: str) -> Response:
            return Response.json(400, {"error": error, "error_description": description})

        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return refuse("invalid_request", "Invalid Content-Type")
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refuse("unsupported_grant_type", "Invalid grant_type")
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidAudienceError:
            return refuse("invalid_grant", "Invalid JWT: Failed audience check.")
        except jwt.PyJWTError:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        now = self.clock()
        if header.get("typ") != "JWT" or header.get("kid") != self.account["private_key_id"]:
            return refuse("invalid_grant", "Invalid JWT header: typ JWT and the key id")
        if claims.get("iss") != self.account["client_email"]:
            return refuse("invalid_grant", "Invalid JWT: wrong issuer")
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int)
            or not isinstance(exp, int)
            or exp - iat > 3600
            or not iat - 60 <= now <= exp
        ):
            return refuse(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self.access_tokens[token] = now + self.expires_in
        return Response.json(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    async def _send(self, request: Request, project: str, body: bytes) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.access_tokens.get(token)
        if scheme != "Bearer" or expiry is None or self.clock() >= expiry:
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        if project != self.project_id:
            return google_error(
                403,
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                "(or it may not exist).",
            )
        if not request.headers.get("content-type", "").startswith(JSON):
            return google_error(400, "Invalid Content-Type: expected JSON")
        try:
            document = json.loads(body)
        except ValueError:
            return google_error(400, "Invalid JSON payload received.")
        message = document.get("message") if isinstance(document, dict) else None
        if not isinstance(message, dict) or set(document) != {"message"}:
            return google_error(400, "Invalid JSON payload received: a message is required.")
        problems = _fcm_message_problems(message)
        if problems:
            return google_error(
                400,
                "Request contains an invalid argument.",
                code="INVALID_ARGUMENT",
                violations=problems,
            )
        device = message.pop("token")
        injected = await self.injected(device)
        if injected is not None:
            return injected
        self.received.append((device, message))
        self._message_ids += 1
        return Response.json(
            200, {"name": f"projects/{self.project_id}/messages/0:{self._message_ids}"}
        )


def _fcm_message_problems(message: dict[str, Any]) -> list[tuple[str, str]]:
    """The field violations FCM would report for a v1 `message`."""
    problems = [
        (f"message.{name}", f'Invalid JSON payload received. Unknown name "{name}"')
        for name in message
        if name not in _FCM_MESSAGE_FIELDS
    ]
    targets = [t for t in ("token", "topic", "condition") if t in message]
    if targets != ["token"] or not isinstance(message["token"], str) or not message["token"]:
        problems.append(("message.token", "exactly one target: a non-empty registration token"))

    def strings(path: str, value: Any, allowed: set[str] | None = None) -> None:
        if not isinstance(value, dict):
            problems.append((path, "must be an object"))
            return
        for key, item in value.items():
            if allowed is not None and key not in allowed:
                problems.append((f"{path}.{key}", f'Unknown name "{key}"'))
            elif not isinstance(item, str):
                problems.append((f"{path}.{key}", f"Invalid value (TYPE_STRING), {item!r}"))

    if "data" in message:
        strings("message.data", message["data"])
    if "notification" in message:
        strings("message.notification", message["notification"], {"title", "body", "image"})
    android = message.get("android")
    if android is not None:
        if not isinstance(android, dict):
            problems.append(("message.android", "must be an object"))
        else:
            problems.extend(
                (f"message.android.{k}", f'Unknown name "{k}"')
                for k in android
                if k not in _FCM_ANDROID_FIELDS
            )
            if "notification" in android:
                strings(
                    "message.android.notification",
                    android["notification"],
                    _FCM_ANDROID_NOTIFICATION_FIELDS,
                )
    return problems


@contextlib.asynccontextmanager
async def fake_fcm(tmp_path: Path, **options: Any) -> AsyncIterator[FakeFcm]:
    """options: clock, expires_in (of access tokens), goaway_after (requests)."""
    fake = FakeFcm(tmp_path, **options)
    async with fake.serving():
        yield fake


# -- APNs -----------------------------------------------------------------------------------

_APNS_PUSH_TYPES = {
    "alert", "background", "voip", "complication", "fileprovider", "mdm", "location",
    "liveactivity", "pushtotalk", "widgets", "controls",
}  # fmt: skip
_APNS_DEFAULT_REASONS = {
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    404: "BadPath",
    405: "MethodNotAllowed",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def write_p8_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """An APNs auth key file (.p8: an EC P-256 key, PKCS#8 PEM); returns the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


class FakeApns(FakeService):
    h2_only = True
    team_id = "TEAM123456"
    key_id = "KEY1234567"
    topic = "com.example.tidings"
    osx_topic = "com.example.tidings.mac"

    def __init__(self, tmp_path: Path, **options: Any):
        super().__init__(tmp_path, **options)
        key_file = self.dir / f"AuthKey_{self.key_id}.p8"
        self.public_key = write_p8_key(key_file).public_key()
        self.settings = ApnsSettings(
            team_id=self.team_id,
            key_id=self.key_id,
            key_file=str(key_file),
            topic=self.topic,
            osx_topic=self.osx_topic,
            base_url=self.origin,
            ca_file=self.ca_file,
            timeout=5,
        )
        self.jwts: list[str] = []  # provider tokens, in the order first seen
        self._jwt_first_seen: dict[str, float] = {}

    def error(self, status: int, reason: str | None) -> Response:
        reason = reason or _APNS_DEFAULT_REASONS.get(status, "InternalServerError")
        body: dict[str, Any] = {"reason": reason}
        if status == 410:
            body["timestamp"] = int(self.clock() * 1000)
        return Response.json(status, body)

    async def handle(self, request: Request, body: bytes) -> Response:
        if request.http_version != "2":
            # APNs speaks only HTTP/2: an HTTP/1.1 client gets nothing it can use.
            return Response(505, b"HTTP/2 required", {"connection": "close"})
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        try:
            device = self._check(request, body)
            response = await self.injected(device)
            if response is None:
                self.received.append((device, json.loads(body)))
                response = Response(200)
        except _Reject as reject:
            response = reject.response
        response.headers["apns-id"] = apns_id
        return response

    def _check(self, request: Request, body: bytes) -> str:
        """The device token of a request APNs would accept; raises _Reject otherwise."""

        def reject(status: int, reason: str) -> _Reject:
            return _Reject(self.error(status, reason))

        if request.method != "POST":
            raise reject(405, "MethodNotAllowed")
        match = re.fullmatch(r"/3/device/([^/]+)", request.path)
        if match is None:
            raise reject(404, "BadPath")
        self._check_provider_token(request.headers.get("authorization", ""))
        headers = request.headers
        topic = headers.get("apns-topic")
        if not topic:
            raise reject(400, "MissingTopic")
        if topic not in (self.topic, self.osx_topic):
            raise reject(400, "TopicDisallowed")
        push_type = headers.get("apns-push-type", "")
        if push_type not in _APNS_PUSH_TYPES:
            raise reject(400, "InvalidPushType")
        priority = headers.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5"):
            raise reject(400, "BadPriority")
        if "apns-id" in headers and not _UUID.fullmatch(headers["apns-id"]):
            raise reject(400, "BadMessageId")
        device = match.group(1)
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){32,100}", device):
            raise reject(400, "BadDeviceToken")
        if not body:
            raise reject(400, "PayloadEmpty")
        if len(body) > 4096:
            raise reject(413, "PayloadTooLarge")
        try:
            payload = json.loads(body)
        except ValueError:
            raise reject(400, "BadPayload") from None
        aps = payload.get("aps") if isinstance(payload, dict) else None
        if not isinstance(aps, dict):
            raise reject(400, "BadPayload")
        if push_type == "background" and (
            aps.get("content-available") != 1 or {"alert", "sound", "badge"} & set(aps)
        ):
            raise reject(400, "BadPayload")  # a background push wakes the app, silently
        if push_type == "alert" and not {"alert", "sound", "badge"} & set(aps):
            raise reject(400, "BadPayload")
        return device

    def _check_provider_token(self, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if not token:
            raise _Reject(self.error(403, "MissingProviderToken"))
        invalid = _Reject(self.error(403, "InvalidProviderToken"))
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"verify_iat": False, "require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            raise invalid from None
        now = self.clock()
        if scheme.lower() != "bearer" or header.get("kid") != self.key_id:
            raise invalid
        if claims["iss"] != self.team_id or not isinstance(claims["iat"], int):
            raise invalid
        if claims["iat"] > now + 60:
            raise invalid
        if claims["iat"] < now - 3600:
            raise _Reject(self.error(403, "ExpiredProviderToken"))
        if token not in self._jwt_first_seen:
            if self.jwts and now - self._jwt_first_seen[self.jwts[-1]] < 20 * 60:
                raise _Reject(self.error(429, "TooManyProviderTokenUpdates"))
            self.jwts.append(token)
            self._jwt_first_seen[token] = now


@contextlib.asynccontextmanager
async def fake_apns(tmp_path: Path, **options: Any) -> AsyncIterator[FakeApns]:
    """options: clock, goaway_after (requests)."""
    fake = FakeApns(tmp_path, **options)
    async with fake.serving():
        yield fake


# -- Web Push -------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_vapid_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key file (EC P-256, PKCS#8 PEM); returns the key."""
    return write_p8_key(path)


def _raw_public(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class FakeWebPush(FakeService):
    subject = "mailto:push@tidings.example"

    def __init__(self, tmp_path: Path, **options: Any):
        super().__init__(tmp_path, **options)
        key_file = self.dir / "vapid.pem"
        # The applicationServerKey every subscription of this fake is made with.
        self.application_server_key = b64url(_raw_public(write_vapid_key(key_file).public_key()))
        self.settings = WebPushSettings(
            vapid_private_key_file=str(key_file),
            subject=self.subject,
            ca_file=self.ca_file,
            timeout=5,
        )
        self.vapid_tokens: list[str] = []  # distinct VAPID JWTs, in the order first seen
        self._subscriptions: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self._gone: set[str] = set()

    def subscription(self, name: str) -> str:
        """A new browser subscription's PushSubscription JSON (a WEB deviceToken)."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        self._subscriptions[name] = (key, auth)
        return json.dumps(
            {
                "endpoint": f"{self.origin}/push/{name}",
                "expirationTime": None,
                "keys": {"p256dh": b64url(_raw_public(key.public_key())), "auth": b64url(auth)},
            }
        )

    def unsubscribe(self, name: str) -> None:
        """The browser unsubscribed: its endpoint answers 410 Gone."""
        self._gone.add(name)

    def error(self, status: int, reason: str | None) -> Response:
        # Mozilla autopush's error shape
        return Response.json(status, {"code": status, "errno": 999, "error": reason or "Error"})

    async def handle(self, request: Request, body: bytes) -> Response:
        match = re.fullmatch(r"/push/([^/]+)", request.path)
        if request.method != "POST" or match is None:
            return self.error(404, "Not Found")
        name = match.group(1)
        if name in self._gone:
            return self.error(410, "Gone")
        if name not in self._subscriptions:
            return self.error(404, "Not Found")
        self._check_vapid(request.headers.get("authorization", ""))
        headers = request.headers
        if not headers.get("ttl", "").isdigit():
            return self.error(400, "Missing TTL header")
        if headers.get("content-encoding") != "aes128gcm":
            return self.error(415, "Unsupported Content-Encoding")
        if headers.get("urgency", "normal") not in ("very-low", "low", "normal", "high"):
            return self.error(400, "Invalid Urgency header")
        if len(body) > 4096:
            return self.error(413, "Payload Too Large")
        key, auth = self._subscriptions[name]
        try:
            plaintext = http_ece.decrypt(
                body, private_key=key, auth_secret=auth, version="aes128gcm"
            )
        except Exception:  # http_ece raises ECEException, cryptography InvalidTag, ...
            return self.error(400, "Could not decrypt the message")
        injected = await self.injected(name)
        if injected is not None:
            return injected
        try:
            payload: Any = json.loads(plaintext)
        except ValueError:
            payload = plaintext
        self.received.append((name, payload))
        return Response(201, headers={"location": f"{self.origin}/message/{uuid.uuid4()}"})

    def _check_vapid(self, authorization: str) -> None:
        """RFC 8292: ``vapid t=<JWT>, k=<key>``, the key the subscription was made with."""

        def refuse(status: int, why: str) -> _Reject:
            return _Reject(self.error(status, why))

        scheme, _, rest = authorization.partition(" ")
        params = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        if scheme.lower() != "vapid" or "t" not in params or "k" not in params:
            raise refuse(401, "Missing or malformed VAPID authorization")
        if params["k"] != self.application_server_key:
            raise refuse(403, "The VAPID key is not the subscription's applicationServerKey")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(params["k"])
            )
            claims = jwt.decode(
                params["t"],
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"verify_exp": False, "require": ["aud", "exp", "sub"]},
            )
        except (ValueError, jwt.PyJWTError) as exc:
            raise refuse(401, f"Invalid VAPID token: {exc}") from None
        now = self.clock()
        if not isinstance(claims["exp"], int) or not now < claims["exp"] <= now + 24 * 3600:
            raise refuse(401, "VAPID exp must be in the future, at most 24 hours away")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise refuse(401, "VAPID sub must be a mailto: or https: URI")
        if params["t"] not in self.vapid_tokens:
            self.vapid_tokens.append(params["t"])


@contextlib.asynccontextmanager
async def fake_webpush(tmp_path: Path, **options: Any) -> AsyncIterator[FakeWebPush]:
    """options: clock, goaway_after (requests)."""
    fake = FakeWebPush(tmp_path, **options)
    async with fake.serving():
        yield fake


def http_date(epoch: float) -> str:
    """An HTTP date (for Retry-After)."""
    return email.utils.formatdate(epoch, usegmt=True)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
