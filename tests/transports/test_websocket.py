"""The websocket endpoint (docs/PROTOCOL.md) through a real `websockets` client on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from broker import Broker
from broker.permissions import Permissions
from broker.ratelimit import RateLimiter
from transports.config import WebsocketSettings
from transports.websocket import BrokerEndpoint, WebsocketServer, bind, websocket_server

APP, KEY = "A", "K"


@asynccontextmanager
async def running(
    settings: WebsocketSettings | None = None, permissions: Permissions | None = None
) -> AsyncIterator[tuple[Broker, WebsocketServer, str]]:
    async with (
        Broker() as broker,
        websocket_server(
            broker, app_id=APP, api_key=KEY, port=0, settings=settings, permissions=permissions
        ) as server,
    ):
        yield broker, server, f"ws://127.0.0.1:{server.port}/"


class Peer:
    """A raw protocol client: sends operations, reads events one by one (arrays flattened)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, **op: Any) -> None:
        await self.ws.send(json.dumps(op))

    async def event(self) -> dict[str, Any]:
        while not self.events:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            self.events.extend(frame if isinstance(frame, list) else [frame])
        return self.events.pop(0)

    async def answer(self, request_id: Any) -> dict[str, Any]:
        """The event answering `request_id`; events before it are kept for later."""
        skipped = []
        while True:
            event = await self.event()
            if event.get("id") == request_id and event["event"] != "messages":
                self.events[:0] = skipped
                return event
            skipped.append(event)

    async def messages(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < count:
            event = await self.event()
            if event["event"] == "messages":
                found += [dict(m, subscription=event["subscription"]) for m in event["messages"]]
        return found

    async def closed(self) -> tuple[int | None, str]:
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), 10)
        return self.ws.close_code, self.ws.close_reason or ""


@asynccontextmanager
async def peer(url: str, *, auth: bool = True, **auth_fields: Any) -> AsyncIterator[Peer]:
    async with connect(url, subprotocols=["tidings.v1"]) as ws:  # type: ignore[list-item]
        client = Peer(ws)
        if auth:
            await client.send(op="auth", id="auth", appId=APP, apiKey=KEY, **auth_fields)
            assert (await client.answer("auth"))["event"] == "authenticated"
        yield client


async def subscribe(client: Peer, channel: str = "news", selector: str | None = None) -> str:
    op: dict[str, Any] = {"channel": channel}
    if selector is not None:
        op["selector"] = selector
    await client.send(op="subscribe", id=f"s-{channel}-{selector}", **op)
    answer = await client.answer(f"s-{channel}-{selector}")
    assert answer["event"] == "subscribed", answer
    return str(answer["subscription"])


# -- conformance ---------------------------------------------------------------------------------


async def test_auth_subscribe_publish_and_receive_the_message_shape() -> None:
    async with running() as (_, _, url), peer(url, auth=False) as client:
        assert client.ws.subprotocol == "tidings.v1"
        await client.send(op="auth", id=1, appId=APP, apiKey=KEY)
        hello = await client.event()
        assert hello["event"] == "authenticated"
        assert hello["id"] == 1
        assert hello["protocol"] == "tidings.v1"
        assert hello["connection"]
        assert hello["limits"] == {
            "maxFrameSize": 1114112,
            "maxSubscriptions": 100,
            "maxPending": 1000,
        }

        await client.send(
            op="subscribe", id=2, channel="news", selector="city='Tokyo'AND priority>3"
        )
        subscribed = await client.event()
        assert subscribed == {
            "event": "subscribed",
            "id": 2,
            "subscription": subscribed["subscription"],
            "channel": "news",
            "selector": "city = 'Tokyo' AND priority > 3",
        }
        await client.send(
            op="publish",
            id=3,
            channel="news",
            message={"text": "hi"},
            headers={"city": "Tokyo", "priority": 5},
            publisherId="svc-1",
        )
        published = await client.answer(3)
        assert published["event"] == "published"
        assert published["status"] == "published"
        [message] = await client.messages(1)
        assert message == {
            "subscription": subscribed["subscription"],
            "messageId": published["messageId"],
            "channel": "news",
            "timestamp": message["timestamp"],
            "publisherId": "svc-1",
            "headers": {"city": "Tokyo", "priority": 5},
            "message": {"text": "hi"},
        }
        assert message["timestamp"] > 1_700_000_000_000


async def test_status_cancel_ping_and_unsubscribe() -> None:
    async with running() as (broker, _, url), peer(url) as client:
        sub = await subscribe(client)
        await client.send(op="publish", id="d", channel="news", message="later", delay=60)
        scheduled = await client.answer("d")
        assert scheduled["status"] == "scheduled"
        message_id = scheduled["messageId"]
        await client.send(op="status", id="st", messageId=message_id)
        assert (await client.answer("st"))["status"] == "scheduled"
        await client.send(op="cancel", id="c", messageId=message_id)
        assert await client.answer("c") == {
            "event": "status",
            "id": "c",
            "messageId": message_id,
            "status": "cancelled",
        }
        await client.send(op="cancel", id="c2", messageId=message_id)
        again = await client.answer("c2")
        assert again["event"] == "error"
        assert again["code"] == 5040
        await client.send(op="status", id="u", messageId="message:nope")
        assert (await client.answer("u"))["status"] == "unknown"
        await client.send(op="ping", id=7)
        assert await client.answer(7) == {"event": "pong", "id": 7}

        await client.send(op="unsubscribe", id="un", subscription=sub)
        assert await client.answer("un") == {
            "event": "unsubscribed",
            "id": "un",
            "subscription": sub,
        }
        assert broker.statistics().subscribers == 0
        await client.send(op="publish", id="p", channel="news", message="after")
        await client.answer("p")
        await client.send(op="ping", id="fence")
        await client.answer("fence")
        assert client.events == []  # nothing delivered after unsubscribing


async def test_a_delayed_publish_arrives_through_the_timing_wheel() -> None:
    async with running() as (_, _, url), peer(url) as client:
        await subscribe(client)
        await client.send(op="publish", id=1, channel="news", message="soon", delay=0.05)
        assert (await client.answer(1))["status"] == "scheduled"
        [message] = await client.messages(1)
        assert message["message"] == "soon"


async def test_selectors_filter_over_the_wire() -> None:
    selectors = {
        "tokyo": "city = 'Tokyo'",
        "urgent": "priority > 3",
        "both": "city = 'Tokyo' AND priority > 3",
        "like": "city LIKE 'Par%'",
        "all": None,
    }
    published = [
        {"city": "Tokyo", "priority": 5},
        {"city": "Tokyo", "priority": 1},
        {"city": "Paris", "priority": 9},
        {"city": "Oslo"},
        {},
    ]
    async with running() as (broker, _, url), peer(url) as client:
        ids = {name: await subscribe(client, selector=sel) for name, sel in selectors.items()}
        for number, headers in enumerate(published):
            await broker.publish("news", number, headers=headers)
        expected = {
            "tokyo": [0, 1],
            "urgent": [0, 2],
            "both": [0],
            "like": [2],
            "all": [0, 1, 2, 3, 4],
        }
        received = await client.messages(sum(len(v) for v in expected.values()))
        await client.send(op="ping", id="fence")
        await client.answer("fence")
        assert [e for e in client.events if e["event"] == "messages"] == []
        for name, sub_id in ids.items():
            got = [m["message"] for m in received if m["subscription"] == sub_id]
            assert got == expected[name], name


async def test_several_subscriptions_and_answers_share_one_frame() -> None:
    async with running() as (broker, _, url), peer(url) as client:
        first = await subscribe(client, "a")
        second = await subscribe(client, "b")
        # Published in one go, before the writer runs: they leave as one frame.
        await broker.publish("a", 1)
        await broker.publish("b", 2)
        await broker.publish("a", 3)
        frame = json.loads(await asyncio.wait_for(client.ws.recv(), 5))
        assert isinstance(frame, list)
        assert [(e["subscription"], [m["message"] for m in e["messages"]]) for e in frame] == [
            (first, [1, 3]),
            (second, [2]),
        ]


async def test_refusals_answer_error_frames_with_codes() -> None:
    permissions = Permissions(
        {"channels": {"secret": {"NotAuthenticatedUser": {"SUBSCRIBE": "DENY", "PUBLISH": "DENY"}}}}
    )
    settings = WebsocketSettings(max_subscriptions=2)
    async with running(settings, permissions) as (_, _, url), peer(url) as client:
        cases = [
            ({"op": "subscribe", "channel": "news", "selector": "city = "}, 5050),
            ({"op": "subscribe", "channel": "bad name!"}, 5044),
            ({"op": "subscribe", "channel": "secret"}, 5008),
            ({"op": "publish", "channel": "secret", "message": 1}, 5007),
            ({"op": "publish", "channel": "news", "message": 1, "publishAt": 1}, 5030),
            ({"op": "publish", "channel": "news", "message": 1, "repeatEvery": "x"}, 5031),
            ({"op": "publish", "channel": "news", "message": 1, "delay": -1}, 5030),
            ({"op": "publish", "channel": "news"}, 8002),
            (
                {"op": "publish", "channel": "news", "message": 1, "headers": {"h": {"nested": 1}}},
                8002,
            ),
        ]
        for number, (op, code) in enumerate(cases):
            await client.send(id=number, **op)
            answer = await client.answer(number)
            assert (answer["event"], answer["code"]) == ("error", code), (op, answer)
            assert answer["message"]
        await subscribe(client, "one")
        await subscribe(client, "two")
        await client.send(op="subscribe", id="third", channel="three")
        assert (await client.answer("third"))["code"] == 999


async def test_bad_frames_get_error_frames_and_the_connection_stays() -> None:
    async with running() as (_, server, url), peer(url) as client:
        bad = [
            ("not json", None),
            ("[1, 2]", None),
            ('"a string"', None),
            ('{"op": "fly", "id": "f"}', "f"),
            ('{"id": 3}', 3),
            ('{"op": "subscribe", "id": 4, "channel": 5}', 4),
            ('{"op": "subscribe", "id": 5}', 5),
            ('{"op": "publish", "id": {"x": 1}, "channel": "c", "message": 1}', None),
            ('{"op": "ping", "id": "' + "x" * 65 + '"}', None),
            ("[" * 10_000 + "]" * 10_000, None),
            ('{"op": "ping", "id": 1e400}', None),
        ]
        for frame, request_id in bad:
            await client.ws.send(frame)
            answer = await client.event()
            assert (answer["event"], answer["code"]) == ("error", 8002), frame[:40]
            assert answer["id"] == request_id
        await client.ws.send(b'{"op": "ping", "id": 1}')  # binary
        answer = await client.event()
        assert (answer["code"], "text") == (8002, "text")
        assert "text" in answer["message"]
        await client.send(op="ping", id="alive")
        assert (await client.answer("alive"))["event"] == "pong"
        assert server.stats.connections == 1


async def test_an_oversize_frame_closes_with_1009() -> None:
    async with running(WebsocketSettings(max_frame_size=1000)) as (_, _, url), peer(url) as client:
        await client.send(op="publish", channel="news", message="x" * 2000)
        code, _ = await client.closed()
        assert code == 1009


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ({"op": "ping"}, 4000, "protocol error"),
        ({"op": "auth", "appId": APP, "apiKey": "wrong"}, 4001, "2002"),
        ({"op": "auth", "appId": "nope", "apiKey": KEY}, 4001, "2002"),
        ({"op": "auth", "appId": APP, "apiKey": KEY, "userToken": "t"}, 4001, "3064"),
        ({"op": "auth", "appId": APP}, 4000, "protocol error"),
    ],
)
async def test_a_connection_must_authenticate_first(
    first: dict[str, Any], code: int, reason: str
) -> None:
    async with running() as (_, server, url), peer(url, auth=False) as client:
        await client.send(**first)
        closed_code, closed_reason = await client.closed()
        assert closed_code == code
        assert closed_reason.startswith(reason)
        assert server.stats.refused == 1
        assert server.stats.connections == 0


async def test_no_auth_in_time_closes_with_4000() -> None:
    async with (
        running(WebsocketSettings(auth_timeout=0.05)) as (_, _, url),
        peer(url, auth=False) as client,
    ):
        code, reason = await client.closed()
        assert code == 4000
        assert "in time" in reason


async def test_an_unknown_subprotocol_is_refused_at_the_handshake() -> None:
    async with running() as (_, _, url):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=["tidings.v9"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 400
        async with connect(url) as ws:  # none offered: served as version 1
            await ws.send(json.dumps({"op": "auth", "appId": APP, "apiKey": KEY}))
            assert json.loads(await ws.recv())["event"] == "authenticated"


async def test_origins_follow_the_cors_setting() -> None:
    async with Broker() as broker:
        server = WebsocketServer(
            {APP: BrokerEndpoint(APP, (KEY,), broker)}, origins=("https://app.example",)
        )
        async with server.listen(bind("127.0.0.1", 0)):
            url = f"ws://127.0.0.1:{server.port}/"
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403
            for origin in ("https://app.example", None):  # a page of the app; not a browser
                async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                    await ws.send(json.dumps({"op": "auth", "appId": APP, "apiKey": KEY}))
                    assert json.loads(await ws.recv())["event"] == "authenticated"


async def test_operations_count_against_the_rate_limit() -> None:
    limiter = RateLimiter(rate=0.001, burst=3)  # three operations, then none for a long while

    def limit(api_key: str, user_id: str | None) -> None:
        assert user_id is None  # anonymous here; users are limited by their object id
        limiter.take(api_key, "requests for this API key")

    async with Broker() as broker:
        server = WebsocketServer({APP: BrokerEndpoint(APP, (KEY,), broker)}, limit=limit)
        async with server.listen(bind("127.0.0.1", 0)), peer(f"ws://127.0.0.1:{server.port}/") as c:
            for number in range(3):
                await c.send(op="ping", id=number)
                assert (await c.answer(number))["event"] == "pong"
            await c.send(op="publish", id="over", channel="news", message=1)
            refused = await c.answer("over")
            assert (refused["event"], refused["code"]) == ("error", 999)
            assert broker.statistics().published == 0


async def test_connections_per_api_key_are_limited() -> None:
    async with running(WebsocketSettings(max_connections_per_key=2)) as (_, server, url):
        async with peer(url), peer(url), peer(url, auth=False) as third:
            await third.send(op="auth", appId=APP, apiKey=KEY)
            code, reason = await third.closed()
            assert code == 4029
            assert reason.startswith("999")
        async with peer(url):  # the count went down when they left
            assert server.stats.connections == 1


async def test_a_deleted_channel_ends_its_subscriptions_with_5010() -> None:
    async with running() as (broker, _, url), peer(url) as client:
        sub = await subscribe(client)
        await broker.publish("news", "last")
        await broker.delete_channel("news")
        [message] = await client.messages(1)
        assert message["message"] == "last"
        ended = await client.event()
        assert ended["event"] == "unsubscribed"
        assert ended["subscription"] == sub
        assert ended["code"] == 5010


async def test_shutdown_closes_with_1001() -> None:
    async with Broker() as broker:
        serving = websocket_server(broker, app_id=APP, api_key=KEY, port=0)
        server = await serving.__aenter__()
        async with peer(f"ws://127.0.0.1:{server.port}/") as client:
            await subscribe(client)
            await serving.__aexit__(None, None, None)
            code, reason = await client.closed()
            assert code == 1001
            assert reason == "server shutting down"
            assert broker.statistics().subscribers == 0


# -- slow consumers --------------------------------------------------------------------------------


async def test_a_slow_consumer_is_closed_with_4008_and_the_others_get_everything() -> None:
    settings = WebsocketSettings(max_pending=20, write_buffer=16_384, slow_consumer_timeout=0.5)
    big = "x" * 65_536
    total = 400  # 26 MB: far more than loopback socket buffers hold
    async with running(settings) as (broker, server, url):
        async with (
            connect(url, subprotocols=["tidings.v1"], max_queue=1, max_size=None) as slow,  # type: ignore[list-item]
            peer(url) as fast,
        ):
            stalled = Peer(slow)
            await stalled.send(op="auth", id="a", appId=APP, apiKey=KEY)
            await stalled.answer("a")
            await subscribe(stalled)
            await subscribe(fast)
            received = 0

            async def read_fast() -> None:
                nonlocal received
                while received < total:
                    received += len(await fast.messages(1))

            reader = asyncio.create_task(read_fast())
            for number in range(total):
                await broker.publish("news", big, headers={"n": number})
                # Paced by the reader that keeps up; the stalled one falls behind.
                await asyncio.wait_for(_until(lambda n=number: received > n - 5), 10)
            await asyncio.wait_for(_until(lambda: server.stats.slow_consumers == 1), 10)
            await asyncio.wait_for(reader, 20)
            assert received == total
            # The stalled client now reads what reached it, then the close.
            code, reason = await stalled.closed()
            assert code == 4008
            assert reason.startswith("5051 slow consumer")
        assert broker.statistics().channels["news"].dropped > 0


async def _until(condition: Any) -> None:
    while not condition():  # noqa: ASYNC110 -- polls a counter the server bumps
        await asyncio.sleep(0.01)


async def test_batches_of_different_selectors_with_the_same_ends_stay_apart() -> None:
    # Encoded batches are shared between connections by (channel, selector, first, last):
    # two selectors whose batches start and end alike must still get their own middles.
    async with running() as (broker, _, url), peer(url) as one, peer(url) as two:
        await subscribe(one, selector="n IN (1, 2, 4)")
        await subscribe(two, selector="n IN (1, 3, 4)")
        for n in (1, 2, 3, 4):
            await broker.publish("news", n, headers={"n": n})
        assert [m["message"] for m in await one.messages(3)] == [1, 2, 4]
        assert [m["message"] for m in await two.messages(3)] == [1, 3, 4]
