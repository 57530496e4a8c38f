"""transports.client against the websocket server: in-process, and through `tidings serve`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from broker import Broker, BrokerError, MessageStatus
from transports import ws_frames
from transports.client import ClientClosedError, connect
from transports.websocket import WebsocketServer, websocket_server

from .live_server import API_KEY, APP_ID, live_server

APP, KEY = "A", "K"


@asynccontextmanager
async def serving(port: int = 0) -> AsyncIterator[tuple[Broker, WebsocketServer, str]]:
    async with (
        Broker() as broker,
        websocket_server(broker, app_id=APP, api_key=KEY, port=port) as server,
    ):
        yield broker, server, f"ws://127.0.0.1:{server.port}/"


async def test_subscribe_publish_and_iterate() -> None:
    async with serving() as (_, _, url), connect(url, app_id=APP, api_key=KEY) as client:
        async with client.subscribe("news", selector="priority > 3") as sub:
            for priority in (1, 5, 9):
                result = await client.publish(
                    "news", {"p": priority}, headers={"priority": priority}, publisher_id="me"
                )
                assert result.status is MessageStatus.PUBLISHED
            first = await anext(sub)
            second = await anext(sub)
        assert (first.message, second.message) == ({"p": 5}, {"p": 9})
        assert first.headers == {"priority": 5}
        assert first.publisher_id == "me"
        assert first.channel == "news"
        assert first.message_id.startswith("message:")
        async for _ in sub:  # ended by leaving its context: iteration stops
            pytest.fail("no message after unsubscribing")


async def test_delayed_repeating_status_and_cancel() -> None:
    async with (
        serving() as (_, _, url),
        connect(url, app_id=APP, api_key=KEY) as client,
        client.subscribe("news") as sub,
    ):
        soon = await client.publish("news", "soon", delay=timedelta(milliseconds=20))
        assert soon.status is MessageStatus.SCHEDULED
        assert (await anext(sub)).message == "soon"
        assert (await client.get_status(soon.message_id)).status is MessageStatus.PUBLISHED
        later = await client.publish(
            "news",
            "tick",
            publish_at=datetime.now(UTC) + timedelta(hours=1),
            repeat_every=60,
            repeat_expires_at=datetime.now(UTC) + timedelta(hours=2),
        )
        cancelled = await client.cancel(later.message_id)
        assert cancelled.status is MessageStatus.CANCELLED
        with pytest.raises(BrokerError) as refused:
            await client.cancel(later.message_id)
        assert refused.value.code == 5040
        await client.ping()


async def test_refusals_raise_broker_errors_with_codes() -> None:
    async with serving() as (_, _, url), connect(url, app_id=APP, api_key=KEY) as client:
        with pytest.raises(BrokerError) as bad_selector:
            async with client.subscribe("news", selector="a = "):
                pass
        assert bad_selector.value.code == 5050
        with pytest.raises(BrokerError) as bad_delay:
            await client.publish("news", 1, delay=-1)
        assert bad_delay.value.code == 5030
        await client.ping()  # still connected


async def test_wrong_credentials_raise_with_the_close_code() -> None:
    async with serving() as (_, _, url):
        with pytest.raises(ClientClosedError) as refused:
            async with connect(url, app_id=APP, api_key="wrong"):
                pass
        assert refused.value.close_code == 4001
        with pytest.raises(OSError, match=r"Connect call failed|refused"):
            async with connect("ws://127.0.0.1:1/", app_id=APP, api_key=KEY):
                pass


async def test_reconnects_and_resubscribes_after_a_server_restart() -> None:
    async with serving() as (_, server, url):
        port = server.port
        client_cm = connect(url, app_id=APP, api_key=KEY, backoff=(0.01, 0.05))
        client = await client_cm.__aenter__()
        try:
            sub_cm = client.subscribe("news", selector="n > 0")
            sub = await sub_cm.__aenter__()
            await client.publish("news", "before", headers={"n": 1})
            assert (await anext(sub)).message == "before"
        except BaseException:
            await client_cm.__aexit__(None, None, None)
            raise
    # The server is gone (closed with 1001); a new one comes up on the same port.
    try:
        async with serving(port) as (broker, _, _):
            await asyncio.wait_for(_until(lambda: broker.statistics().subscribers == 1), 10)
            assert client.reconnects == 1
            await broker.publish("news", "filtered out", headers={"n": 0})
            await broker.publish("news", "after", headers={"n": 2})
            assert (await asyncio.wait_for(anext(sub), 5)).message == "after"
            result = await client.publish("news", "via client", headers={"n": 3})
            assert result.status is MessageStatus.PUBLISHED
            assert (await asyncio.wait_for(anext(sub), 5)).message == "via client"
            await sub_cm.__aexit__(None, None, None)
            await asyncio.wait_for(_until(lambda: broker.statistics().subscribers == 0), 5)
    finally:
        await client_cm.__aexit__(None, None, None)


async def test_a_channel_deleted_ends_the_iteration_with_5010() -> None:
    async with (
        serving() as (broker, _, url),
        connect(url, app_id=APP, api_key=KEY) as client,
        client.subscribe("news") as sub,
    ):
        await client.publish("news", "last")
        await broker.delete_channel("news")
        assert (await anext(sub)).message == "last"
        with pytest.raises(BrokerError) as ended:
            await anext(sub)
        assert ended.value.code == 5010


async def test_a_full_client_queue_drops_and_counts() -> None:
    async with (
        serving() as (broker, _, url),
        connect(url, app_id=APP, api_key=KEY) as client,
        client.subscribe("news", max_pending=3) as sub,
    ):
        for number in range(5):
            await broker.publish("news", number)
        fence = await client.publish("fence", 0)  # answered after the deliveries
        assert fence.status is MessageStatus.PUBLISHED
        await asyncio.wait_for(_until(lambda: sub.dropped == 2), 5)
        assert [(await anext(sub)).message for _ in range(3)] == [0, 1, 2]


# -- through `tidings serve` ---------------------------------------------------------------------


async def test_the_served_endpoint_carries_rest_publishes_users_and_revocation(
    tmp_path: Path,
) -> None:
    config = """
[[apps]]
id = "TEST-APP"
api_keys = ["test-key"]
admin_key = "admin"

[permissions.roles.NotAuthenticatedUser]
SUBSCRIBE = "DENY"
[permissions.channels.vip.AuthenticatedUser]
SUBSCRIBE = "DENY"
[permissions.channels.vip.Gold]
SUBSCRIBE = "GRANT"
"""
    with live_server(tmp_path / "data", config=config, credentials=False) as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
            # Anonymous connections may not subscribe.
            async with connect(server.ws_url, app_id=APP_ID, api_key=API_KEY) as anonymous:
                with pytest.raises(BrokerError) as denied:
                    async with anonymous.subscribe("news"):
                        pass
                assert denied.value.code == 5008

            user = {"email": "u@example.com", "password": "secret-pass"}
            assert (await http.post("/users/register", json=user)).status_code == 200
            login = await http.post(
                "/users/login", json={"login": user["email"], "password": user["password"]}
            )
            token, object_id = login.json()["user-token"], login.json()["objectId"]

            async with (
                connect(
                    server.ws_url, app_id=APP_ID, api_key=API_KEY, user_token=token, reconnect=False
                ) as client,
                client.subscribe("news", selector="city = 'Tokyo'") as news,
            ):
                for city in ("Paris", "Tokyo"):
                    body = {"message": city, "headers": {"city": city}}
                    assert (await http.post("/messaging/news", json=body)).status_code == 200
                assert (await asyncio.wait_for(anext(news), 5)).message == "Tokyo"

                # A role granting vip, then taking it away, mid-connection.
                admin = {"admin-key": "admin"}
                roles = f"{server.origin}/admin/{APP_ID}/users/{object_id}/roles"
                assert (
                    await http.put(roles, json={"roles": ["Gold"]}, headers=admin)
                ).status_code == 200
                vip_cm = client.subscribe("vip")
                vip = await vip_cm.__aenter__()
                assert (await http.put(roles, json={"roles": []}, headers=admin)).status_code == 200
                with pytest.raises(BrokerError) as revoked_role:
                    await asyncio.wait_for(anext(vip), 5)
                assert revoked_role.value.code == 5008
                await vip_cm.__aexit__(None, None, None)

                # Logging out closes the connection: 4003, and no reconnect.
                out = await http.get("/users/logout", headers={"user-token": token})
                assert out.status_code == 200
                with pytest.raises(ClientClosedError) as closed:
                    await asyncio.wait_for(anext(news), 5)
                assert closed.value.close_code == 4003

            async def metrics() -> str:
                return (await http.get(f"{server.origin}/metrics")).text

            for _ in range(500):  # the server sees the client's close a moment later
                if "tidings_ws_connections 0.0" in await metrics():
                    break
                await asyncio.sleep(0.01)
            assert "tidings_ws_connections 0.0" in await metrics()
            assert "tidings_ws_accepted_total 2.0" in await metrics()
        assert server.stop() == 0


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]  # noqa: ASYNC110 -- polls a counter
        await asyncio.sleep(0.01)


def test_protocol_doc_lists_every_operation_and_event() -> None:
    """docs/PROTOCOL.md names every op and event the server knows."""
    doc = (Path(__file__).parents[2] / "docs" / "PROTOCOL.md").read_text()
    ops = {c.__struct_config__.tag for c in ws_frames.AnyOp.__args__}  # type: ignore[attr-defined]
    events = {
        c.__struct_config__.tag
        for c in vars(ws_frames).values()
        if isinstance(c, type) and issubclass(c, ws_frames.Event) and c is not ws_frames.Event
    }
    for name in ops | events | {"messages"}:
        assert f"`{name}`" in doc, name
    assert json.loads('{"ok": 1}')  # the doc's examples are JSON; spot-checked by hand


async def test_the_served_endpoint_applies_the_api_key_rate_limit(tmp_path: Path) -> None:
    config = "[rate_limit]\nper_api_key = 0.001\nburst = 2\n"
    with live_server(tmp_path / "data", config=config) as server:
        async with connect(server.ws_url, app_id=APP_ID, api_key=API_KEY) as client:
            await client.ping()
            await client.ping()
            with pytest.raises(BrokerError) as limited:
                await client.ping()
            assert limited.value.code == 999
        assert server.stop() == 0
