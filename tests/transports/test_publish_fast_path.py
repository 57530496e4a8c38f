"""The publish fast path: which requests it answers, that it answers them as the Litestar app
would, and that everything else reaches the Litestar app with its body intact."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker import Broker
from broker.accounts import Accounts
from broker.devices import Devices
from broker.permissions import Permissions
from broker.polling import PollingSubscriptions
from broker.ratelimit import RateLimiter
from broker.stores import SqliteStore
from tests.transports.live_server import LiveServer, live_server
from transports.metrics import Metrics
from transports.publish_fast_path import ROUTE, PublishFastPath
from transports.runtime import AppRuntime, Tidings

BODY = b'{"message": "hi", "headers": {"city": "Tokyo"}}'
PATH = "/A/K/messaging/news"
JSON = (b"content-type", b"application/json")


@dataclass
class Inner:
    """Stands for the Litestar app: records what reached it, answers 299."""

    calls: list[tuple[str, bytes, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        first = await receive()
        after = await receive() if first.get("body") else {}
        self.calls.append((scope["path"], first.get("body", b""), after))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Call:
    status: int | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class World:
    fast: PublishFastPath
    inner: Inner
    broker: Broker
    tidings: Tidings
    permissions: Permissions

    async def call(
        self,
        path: str = PATH,
        body: bytes = BODY,
        headers: list[tuple[bytes, bytes]] | None = None,
        method: str = "POST",
        chunks: list[bytes] | None = None,
        disconnect: bool = False,
        **scope: Any,
    ) -> Call:
        if headers is None:
            headers = [JSON, (b"content-length", str(len(body)).encode())]
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks or []
        ]
        if disconnect:
            messages.append({"type": "http.disconnect"})
        else:
            messages.append({"type": "http.request", "body": body, "more_body": False})
        messages.append({"type": "http.disconnect"})
        answer = Call()

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = dict(message["headers"])
            else:
                answer.body += message["body"]

        full = {"type": "http", "method": method, "path": path, "headers": headers, **scope}
        await self.fast(full, receive, send)
        return answer


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[World]:
    """A broker on SQLite behind the fast path (a context, not a fixture: the broker's task
    group must be left in the task it was entered in)."""
    store = SqliteStore(tmp_path / "a.sqlite3")
    async with Broker(store=store) as broker:
        accounts, devices = Accounts(store), Devices(store)
        await accounts.open()
        await devices.open()
        permissions = Permissions()
        app = AppRuntime(
            "A", ("K",), broker, accounts, devices, permissions, PollingSubscriptions(broker)
        )
        tidings = Tidings(
            {"A": app},
            Metrics(lambda: {"A": broker.statistics()}),
            max_body_size=100_000,
            api_key_limiter=RateLimiter(1, 3),
        )
        inner = Inner()
        yield World(PublishFastPath(tidings, inner), inner, broker, tidings, permissions)


async def test_a_plain_publish_is_answered_without_the_litestar_app(tmp_path: Path) -> None:
    async with running(tmp_path) as world:
        async with world.broker.subscribe("news") as sub:
            answer = await world.call(chunks=[BODY[:10]], body=BODY[10:])
            assert answer.status == 200
            assert answer.headers[b"content-type"] == b"application/json"
            assert int(answer.headers[b"content-length"]) == len(answer.body)
            reply = answer.json()
            assert reply["status"] == "published"
            message = await anext(sub)
        assert (message.message_id, message.message, message.headers) == (
            reply["messageId"],
            "hi",
            {"city": "Tokyo"},
        )
        assert world.inner.calls == []
        text = world.tidings.metrics.render().decode()
        assert (
            f'tidings_request_seconds_count{{method="POST",route="{ROUTE}",status="200"}} 1.0'
            in text
        )
        assert "tidings_rest_publishes_total 1.0" in text


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "GET"}, "another method"),
        ({"path": "/A/K/messaging/registrations"}, "device registration"),
        ({"path": "/A/K/messaging/news/subscribe"}, "another route"),
        ({"path": "/A/K/users/login"}, "another route"),
        ({"path": "/A/K/messaging/"}, "no channel"),
        ({"root_path": "/api"}, "mounted under a prefix"),
        ({"headers": [JSON, (b"content-length", b"47"), (b"origin", b"https://x")]}, "CORS"),
        ({"headers": [JSON, (b"content-length", b"47"), (b"user-token", b"t")]}, "a user"),
        ({"headers": [JSON]}, "no content-length"),
        ({"headers": [JSON, (b"content-length", b"x")]}, "a bad content-length"),
        ({"headers": [JSON, (b"content-length", b"100001")]}, "over the body limit"),
        ({"headers": [(b"content-type", b"text/plain"), (b"content-length", b"47")]}, "not JSON"),
        ({"headers": [(b"content-length", b"47")]}, "no content-type"),
    ],
)
async def test_other_requests_reach_the_litestar_app_untouched(
    tmp_path: Path, change: dict[str, Any], reason: str
) -> None:
    async with running(tmp_path) as world:
        answer = await world.call(**change)
        assert answer.status == 299, reason
        assert world.inner.calls[0][1] == BODY  # nothing of the body was taken
        assert world.broker.statistics().published == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/A/wrong-key/messaging/news", BODY),
        ("/NOPE/K/messaging/news", BODY),
        (PATH, b'{"message": '),
        (PATH, b'{"message": "\xff"}'),
        (PATH, b'{"message": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
        (PATH, b'{"headers": {}}'),
        (PATH, b'{"message": 1, "publishAt": "soon"}'),
        (PATH, b"[1]"),
        ("/A/K/messaging/closed", BODY),
    ],
)
async def test_a_request_it_would_refuse_is_handed_on_with_its_body(
    tmp_path: Path, path: str, body: bytes
) -> None:
    async with running(tmp_path) as world:
        world.permissions.set_channel_rule("closed", "NotAuthenticatedUser", "PUBLISH", "DENY")
        answer = await world.call(path=path, body=body, chunks=[b""])
        assert answer.status == 299
        assert world.inner.calls == [(path, body, {"type": "http.disconnect"})]
        assert world.broker.statistics().published == 0


async def test_after_the_rate_limit_it_answers_errors_itself(tmp_path: Path) -> None:
    async with running(tmp_path) as world:
        assert (await world.call(path="/A/K/messaging/a b")).json()["code"] == 5044
        past = await world.call(body=b'{"message": 1, "publishAt": 5}')
        assert (past.status, past.json()["code"]) == (400, 5030)
        assert (await world.call()).status == 200  # the third of a burst of three
        limited = await world.call()
        assert (limited.status, limited.json()["code"]) == (429, 999)
        assert world.inner.calls == []


async def test_an_unexpected_failure_is_a_json_500_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as world:

        async def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(world.broker, "publish", broken)
        with caplog.at_level(logging.ERROR, "tidings.rest"):
            answer = await world.call()
        assert (answer.status, answer.json()["code"]) == (500, 500)
        assert "disk on fire" in caplog.text


async def test_a_client_gone_before_the_body_ends_gets_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as world:
        answer = await world.call(chunks=[BODY[:10]], disconnect=True)
        assert answer.status is None
        assert world.inner.calls == []
        assert world.broker.statistics().published == 0


# -- against the real server: the same answers either way --------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fast") / "data") as running:
        yield running
        assert running.stop() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi", "headers": {"city": "Tokyo", "n": 3}, "publisherId": "me"},
        {"message": {"nested": [1, 2]}, "publishAt": 4_102_444_800_000},
        {"message": "tick", "repeatEvery": 5, "repeatExpiresAt": 4_102_444_800_000},
        {"message": "push", "publishPolicy": "PUSH", "pushBroadcast": 3},
        {"message": 1, "publishAt": 5},
        {"message": 1, "repeatEvery": -1},
        {"message": 1, "repeatExpiresAt": "x"},
        {"message": 1, "headers": {"a": [1]}},
        {"message": 1, "publishPolicy": "NOPE"},
        {"headers": {"a": 1}},
    ],
)
def test_answers_are_the_same_as_through_litestar(server: LiveServer, body: Any) -> None:
    """The same request, plain (fast path) and with an Origin header (the Litestar app)."""
    answers = []
    for headers in ({}, {"origin": "https://app.example"}):
        response = httpx.post(f"{server.api}/messaging/same", json=body, headers=headers)
        reply = response.json()
        if "messageId" in reply:
            reply["messageId"] = reply["messageId"].startswith("message:")
        answers.append((response.status_code, response.headers["content-type"], reply))
    assert answers[0] == answers[1]
