"""`POST /<app-id>/<api-key>/messaging/<channel>` without Litestar's per-request machinery.

Publishing is the request servers send most, and Litestar's routing, parameter
parsing, response objects and middleware stack cost more than the publish
itself (measured: about 50 µs of CPU a request against 10 µs for the broker).
This ASGI app sits in front of the Litestar app and answers the plain case of
a publish itself, with the same code (`publishing.publish_message`), the same answers
and the same metrics. Anything else goes to Litestar unchanged: other routes,
browser requests (an `Origin` header: CORS), a user-token, a body without a
`Content-Length` or over the limit, and every request the fast path would refuse
before publishing (wrong app or key, a body that does not decode, no message,
no permission), so that every refusal is Litestar's, with its exact answer;
the body read so far is handed on. Once the API-key rate limit is taken, the
fast path answers everything itself, errors as the Litestar app's handlers do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeAlias

import msgspec

from broker import BrokerError
from broker.permissions import Permission
from transports.publishing import PublishBody, publish_message
from transports.runtime import Tidings
from transports.wire import ErrorBody, error_body, http_status

log = logging.getLogger("tidings.rest")

ROUTE: Final = "/messaging/{channel:str}"  # the Litestar handler's, as /metrics labels it
_decode_body = msgspec.json.Decoder(PublishBody).decode
_encode = msgspec.json.Encoder().encode
_INTERNAL_ERROR: Final = ErrorBody(500, "internal error; the server log has the details")
# Plain ASGI: Litestar's TypedDicts are stricter than a shim in front of it needs.
_Message: TypeAlias = dict[str, Any]
Scope: TypeAlias = dict[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[_Message]]
Send: TypeAlias = Callable[[_Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[..., Awaitable[None]]  # the Litestar app


class PublishFastPath:
    def __init__(self, tidings: Tidings, app: ASGIApp) -> None:
        self._tidings = tidings
        self._app = app
        self._observe = tidings.metrics.latency.labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await self._app(scope, receive, send)
        parts = scope["path"].split("/")
        if len(parts) != 5 or parts[3] != "messaging" or parts[4] in ("", "registrations"):
            return await self._app(scope, receive, send)
        length = _plain_json_length(scope["headers"])
        if length is None or length > self._tidings.max_body_size:
            return await self._app(scope, receive, send)
        await self._publish(scope, receive, send, parts)

    async def _publish(self, scope: Scope, receive: Receive, send: Send, parts: list[str]) -> None:
        started = time.perf_counter()
        _, app_id, api_key, _, channel = parts
        body = bytearray()
        while True:  # the body, as the server framed it by Content-Length
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        tidings = self._tidings
        try:
            app = tidings.app(app_id, api_key)
            data = _decode_body(body)
        except (BrokerError, ValueError, RecursionError):  # msgspec's errors are ValueErrors
            return await self._app(scope, _replay(bytes(body), receive), send)
        roles = ("NotAuthenticatedUser",)
        if data.message is msgspec.UNSET or not app.permissions.allowed(
            channel, roles, Permission.PUBLISH
        ):
            return await self._app(scope, _replay(bytes(body), receive), send)
        try:
            tidings.limit_api_key(api_key)
            status, answer = 200, _encode(await publish_message(app, roles, channel, data))
            tidings.metrics.publishes.inc()
        except BrokerError as exc:
            status, answer = http_status(exc), _encode(error_body(exc))
        except Exception:
            log.exception("request failed", extra={"path": scope["path"]})
            status, answer = 500, _encode(_INTERNAL_ERROR)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        self._observe("POST", ROUTE, str(status)).observe(time.perf_counter() - started)


def _plain_json_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length of a JSON body from a non-browser caller without a user-token."""
    length = None
    json = False
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name in (b"origin", b"user-token", b"transfer-encoding"):
            return None
    return length if json else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the Litestar app: the body already read, then the rest of the connection."""
    pending = True

    async def again() -> _Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect

    return again
