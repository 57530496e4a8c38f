"""The Backendless socket.io endpoint (transports.backendless_rt) through python-socketio's
client, raw engine.io requests (httpx) and raw websockets, on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import socketio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broker import Broker, BrokerError
from broker.accounts import Accounts
from broker.permissions import Permissions
from broker.stores import SqliteStore
from tests.transports.live_server import API_KEY as LIVE_KEY
from tests.transports.live_server import APP_ID as LIVE_APP
from tests.transports.live_server import live_server
from transports import uvicorn_ws
from transports.backendless_rt import RealtimeServer, parse_packet, realtime_server
from transports.config import WebsocketSettings
from transports.encode_once import EncodeOnce
from transports.engineio import EngineSettings

APP, KEY = "APP", "KEY"
NS = f"/{APP}"
FAST = {"scrypt_n": 2**4, "scrypt_r": 1}


@asynccontextmanager
async def running(
    settings: EngineSettings | None = None,
    limits: WebsocketSettings | None = None,
    permissions: Permissions | None = None,
    users: Path | None = None,
) -> AsyncIterator[tuple[Broker, RealtimeServer, str]]:
    """A broker served over socket.io; with `users` (a directory), on SQLite with accounts
    (the server's `apps[APP].accounts`)."""
    store = SqliteStore(users / "a.sqlite3") if users is not None else None
    async with Broker(store=store) as broker:
        accounts = None
        if store is not None:
            accounts = Accounts(store, **FAST)  # type: ignore[arg-type]
            await accounts.open()
        async with realtime_server(
            broker,
            app_id=APP,
            api_key=KEY,
            port=0,
            settings=settings,
            limits=limits,
            permissions=permissions,
            accounts=accounts,
        ) as server:
            yield broker, server, f"http://127.0.0.1:{server.port}"


class Client:
    """python-socketio's client, with the Backendless RT events queued as they come."""

    def __init__(self, sio: socketio.AsyncClient, namespace: str = NS) -> None:
        self.sio = sio
        self.namespace = namespace
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        for name in ("SUB_READY", "SUB_RES", "MET_RES"):
            sio.on(name, self._recorder(name), namespace=namespace)

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.events.append((name, data))
            self.arrived.set()

        return record

    async def emit(self, event: str, data: Any) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def next(self, name: str | None = None, sub_id: str | None = None) -> dict[str, Any]:
        """The first event queued (of that name, for that id), waiting up to 5 s."""
        async with asyncio.timeout(5):
            while True:
                for index, (event, data) in enumerate(self.events):
                    if (name is None or event == name) and (sub_id is None or data["id"] == sub_id):
                        del self.events[index]
                        return data
                self.arrived.clear()
                await self.arrived.wait()

    async def listen(self, sub_id: str, channel: str = "news", **options: Any) -> dict[str, Any]:
        """SUB_ON PUB_SUB_MESSAGES; the answer (SUB_READY or a SUB_RES refusal)."""
        request = {"id": sub_id, "name": "PUB_SUB_MESSAGES", "options": {"channel": channel}}
        request["options"].update(options)
        await self.emit("SUB_ON", request)
        name, data = await self._answer(sub_id)
        return {"event": name, **data}

    async def _answer(self, sub_id: str) -> tuple[str, dict[str, Any]]:
        async with asyncio.timeout(5):
            while True:
                for index, (event, data) in enumerate(self.events):
                    if data["id"] == sub_id:
                        del self.events[index]
                        return event, data
                self.arrived.clear()
                await self.arrived.wait()

    async def messages(self, sub_id: str, count: int) -> list[dict[str, Any]]:
        return [(await self.next("SUB_RES", sub_id))["data"] for _ in range(count)]


@asynccontextmanager
async def client(
    url: str,
    *,
    transports: tuple[str, ...] = ("polling", "websocket"),
    api_key: str = KEY,
    user_token: str = "null",
    namespace: str = NS,
) -> AsyncIterator[Client]:
    sio = socketio.AsyncClient(reconnection=False)
    peer = Client(sio)
    refusals: list[Any] = []

    async def refused(data: Any) -> None:
        refusals.append(data)

    sio.on("connect_error", refused, namespace=namespace)
    try:
        await sio.connect(
            f"{url}?apiKey={api_key}&userToken={user_token}&clientId=",
            namespaces=[namespace],
            socketio_path=f"/{APP}/",
            transports=list(transports),
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError as exc:  # its message hides the server's
        raise socketio.exceptions.ConnectionError(f"{exc}: {refusals}") from None
    try:
        yield peer
    finally:
        await sio.disconnect()


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 -- polls a counter the server bumps
            await asyncio.sleep(0.01)


# -- the SDK's conversation ----------------------------------------------------------------------


async def test_polling_upgrades_and_listeners_get_messages_in_the_backendless_shape() -> None:
    async with running() as (broker, server, url), client(url) as peer:
        await peer.emit(
            "SUB_ON", {"id": "c", "name": "PUB_SUB_CONNECT", "options": {"channel": "news"}}
        )
        assert await peer.next("SUB_READY", "c") == {"id": "c"}
        assert (await peer.listen("all"))["event"] == "SUB_READY"
        assert (await peer.listen("tokyo", selector="city = 'Tokyo'"))["event"] == "SUB_READY"
        published = await broker.publish(
            "news", {"text": "hi"}, headers={"city": "Tokyo"}, publisher_id="svc"
        )
        await broker.publish("news", "osaka", headers={"city": "Osaka"})
        [first, second] = await peer.messages("all", 2)
        assert first == {
            "messageId": published.message_id,
            "timestamp": first["timestamp"],
            "message": {"text": "hi"},
            "publisherId": "svc",
            "headers": {"city": "Tokyo"},
            "subtopic": None,
            "publishAt": 0,
            "repeatEvery": 0,
            "repeatExpiresAt": 0,
            "publishPolicy": None,
            "pushSinglecast": None,
            "pushBroadcast": None,
            "templateValues": None,
            "query": None,
        }
        assert second["message"] == "osaka"
        [tokyo] = await peer.messages("tokyo", 1)
        assert tokyo["message"] == {"text": "hi"}
        assert peer.sio.transport() == "websocket"
        assert server.engine.stats.upgrades == 1
        assert server.stats.subscriptions == 2
        await broker.publish("news", "last", headers={"city": "Tokyo"})
        assert (await peer.messages("tokyo", 1))[0]["message"] == "last"
        assert [d["message"] for d in await peer.messages("all", 1)] == ["last"]
        assert not [e for e in peer.events if e[0] == "SUB_RES"]  # no osaka for tokyo


async def test_without_uvicorn_s_batching_the_frames_go_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(uvicorn_ws, "PROTOCOL", "websockets-sansio")  # plain ASGI sends
    async with running() as (broker, _, url), client(url) as peer:
        assert (await peer.listen("s"))["event"] == "SUB_READY"
        for number in range(20):
            await broker.publish("news", number)
        assert [m["message"] for m in await peer.messages("s", 20)] == list(range(20))
        assert peer.sio.transport() == "websocket"


async def test_long_polling_alone_delivers_too() -> None:
    async with running() as (broker, server, url), client(url, transports=("polling",)) as peer:
        assert (await peer.listen("s"))["event"] == "SUB_READY"
        for number in range(5):
            await broker.publish("news", number)
        assert [m["message"] for m in await peer.messages("s", 5)] == [0, 1, 2, 3, 4]
        assert peer.sio.transport() == "polling"
        assert server.engine.stats.polls > 0
        assert server.engine.stats.upgrades == 0


async def test_sub_off_ends_a_listener_and_the_others_keep_going() -> None:
    async with running() as (broker, server, url), client(url) as peer:
        await peer.listen("one")
        await peer.listen("two")
        await peer.emit("SUB_OFF", {"id": "one"})
        await _until(lambda: server.stats.subscriptions == 1)
        await broker.publish("news", "after")
        assert (await peer.messages("two", 1))[0]["message"] == "after"
        assert broker.statistics().subscribers == 1
        assert not [e for e in peer.events if e[1]["id"] == "one"]


async def test_the_same_id_again_replaces_its_listener() -> None:
    async with running() as (broker, server, url), client(url) as peer:
        await peer.listen("s", selector="n = 1")
        await peer.listen("s", selector="n = 2")
        await broker.publish("news", "one", headers={"n": 1})
        await broker.publish("news", "two", headers={"n": 2})
        assert [m["message"] for m in await peer.messages("s", 1)] == ["two"]
        assert server.stats.subscriptions == 1


# -- refusals --------------------------------------------------------------------------------------


async def test_refusals_answer_sub_res_with_backendless_codes() -> None:
    permissions = Permissions(
        {"channels": {"vip": {"NotAuthenticatedUser": {"SUBSCRIBE": "DENY"}}}}
    )
    limits = WebsocketSettings(max_subscriptions=1)
    async with running(limits=limits, permissions=permissions) as (_, _, url), client(url) as peer:
        bad_selector = await peer.listen("a", selector="city = ")
        assert bad_selector["event"] == "SUB_RES"
        assert bad_selector["error"]["code"] == 5050
        assert "position" in bad_selector["error"]["message"]
        assert (await peer.listen("b", channel="a/b"))["error"]["code"] == 5044
        assert (await peer.listen("c", channel="vip"))["error"]["code"] == 5008
        await peer.emit("SUB_ON", {"id": "d", "name": "RSO_CHANGES", "options": {}})
        assert (await peer.next("SUB_RES", "d"))["error"]["code"] == 8002
        await peer.emit("SUB_ON", {"id": "e", "name": "PUB_SUB_MESSAGES"})  # no channel
        assert (await peer.next("SUB_RES", "e"))["error"]["code"] == 8002
        await peer.emit("SUB_ON", {"id": "f", "name": 5})
        assert (await peer.next("SUB_RES", "f"))["error"]["code"] == 8002
        assert (await peer.listen("g"))["event"] == "SUB_READY"
        over = await peer.listen("h")
        assert over["error"]["code"] == 999
        await peer.emit(
            "SUB_ON", {"id": "i", "name": "PUB_SUB_CONNECT", "options": {"channel": ""}}
        )
        assert (await peer.next("SUB_RES", "i"))["error"]["code"] == 5044
        await peer.emit("MET_REQ", {"id": "j", "name": "RSO_GET", "options": {}})
        assert (await peer.next("MET_RES", "j"))["error"]["code"] == 8002


@pytest.mark.parametrize(
    ("query", "code"),
    [({"api_key": "wrong"}, "2002"), ({"user_token": "not-a-token"}, "3064")],
)
async def test_a_wrong_api_key_or_user_token_refuses_the_namespace(
    tmp_path: Path, query: dict[str, str], code: str
) -> None:
    async with running(users=tmp_path) as (_, server, url):
        with pytest.raises(socketio.exceptions.ConnectionError, match=code):
            async with client(url, **query):
                pass
        assert server.stats.refused == 1
        assert server.stats.connections == 0


async def test_another_namespace_is_refused() -> None:
    async with running() as (_, server, url):
        with pytest.raises(socketio.exceptions.ConnectionError, match="Invalid namespace"):
            async with client(url, namespace="/OTHER"):
                pass
        assert server.stats.accepted == 0


async def test_connections_per_api_key_are_limited() -> None:
    async with running(limits=WebsocketSettings(max_connections_per_key=1)) as (_, server, url):
        async with client(url):
            with pytest.raises(socketio.exceptions.ConnectionError, match="999"):
                async with client(url):
                    pass
        await _until(lambda: server.stats.connections == 0)
        async with client(url):  # the count went down when it left
            assert server.stats.connections == 1


async def test_listeners_count_against_the_rate_limit() -> None:
    calls: list[tuple[str, str | None]] = []

    def limit(api_key: str, user_id: str | None) -> None:
        calls.append((api_key, user_id))
        if len(calls) > 2:
            raise BrokerError(999, "too many requests for this API key")

    async with Broker() as broker:
        endpoint_server = realtime_server(broker, app_id=APP, api_key=KEY, port=0)
        async with endpoint_server as server:
            server.limit = limit
            async with client(f"http://127.0.0.1:{server.port}") as peer:
                assert (await peer.listen("a"))["event"] == "SUB_READY"
                assert (await peer.listen("b"))["event"] == "SUB_READY"
                assert (await peer.listen("c"))["error"]["code"] == 999
        assert calls[0] == (KEY, None)


# -- users -----------------------------------------------------------------------------------------


async def test_a_login_and_a_logout_change_what_the_connection_may_hear(tmp_path: Path) -> None:
    permissions = Permissions(
        {
            "channels": {
                "vip": {
                    "NotAuthenticatedUser": {"SUBSCRIBE": "DENY"},
                    "AuthenticatedUser": {"SUBSCRIBE": "GRANT"},
                }
            }
        }
    )
    async with running(permissions=permissions, users=tmp_path) as (broker, server, url):
        accounts = server.apps[APP].accounts
        assert accounts is not None
        await accounts.register({"email": "a@example.com", "password": "pw"})
        token = (await accounts.login("a@example.com", "pw"))["user-token"]
        async with client(url) as peer:
            await _login_and_logout(broker, peer, token)


async def _login_and_logout(broker: Broker, peer: Client, token: str) -> None:
    if True:
        assert (await peer.listen("v", channel="vip"))["error"]["code"] == 5008
        await peer.emit(
            "MET_REQ", {"id": "m1", "name": "SET_USER_TOKEN", "options": {"userToken": token}}
        )
        assert await peer.next("MET_RES", "m1") == {"id": "m1", "result": None}
        assert (await peer.listen("v", channel="vip"))["event"] == "SUB_READY"
        await broker.publish("vip", "for members")
        assert (await peer.messages("v", 1))[0]["message"] == "for members"
        bad = {"id": "m2", "name": "SET_USER_TOKEN", "options": {"userToken": "forged"}}
        await peer.emit("MET_REQ", bad)
        assert (await peer.next("MET_RES", "m2"))["error"]["code"] == 3064
        await broker.publish("vip", "still a member")  # a refused token changes nothing
        assert (await peer.messages("v", 1))[0]["message"] == "still a member"
        logout = {"id": "m3", "name": "SET_USER_TOKEN", "options": {"userToken": None}}
        await peer.emit("MET_REQ", logout)
        ended = await peer.next("SUB_RES", "v")
        assert ended["error"]["code"] == 5008
        assert (await peer.next("MET_RES", "m3"))["result"] is None
        await broker.publish("vip", "members only")
        await asyncio.sleep(0.1)
        assert not [e for e in peer.events if e[0] == "SUB_RES"]


async def test_a_role_change_or_logout_elsewhere_ends_listeners_with_5008(tmp_path: Path) -> None:
    permissions = Permissions(
        {
            "default": {"SUBSCRIBE": "DENY"},
            "roles": {"staff": {"SUBSCRIBE": "GRANT"}},
        }
    )
    async with running(permissions=permissions, users=tmp_path) as (_, server, url):
        accounts = server.apps[APP].accounts
        assert accounts is not None
        user = await accounts.register({"email": "a@example.com", "password": "pw"})
        token = (await accounts.login("a@example.com", "pw"))["user-token"]
        await accounts.set_roles(user["objectId"], ["staff"])
        async with client(url, user_token=token) as peer:
            await _roles_change(server, accounts, peer, user["objectId"], token)


async def _roles_change(
    server: RealtimeServer, accounts: Accounts, peer: Client, object_id: str, token: str
) -> None:
    if True:
        assert (await peer.listen("s"))["event"] == "SUB_READY"
        await accounts.set_roles(object_id, [])
        assert (await peer.next("SUB_RES", "s"))["error"]["code"] == 5008
        await _until(lambda: server.stats.subscriptions == 0)
        await accounts.set_roles(object_id, ["staff"])
        assert (await peer.listen("s"))["event"] == "SUB_READY"
        await accounts.logout(token)  # the connection goes on, as an anonymous one
        assert (await peer.next("SUB_RES", "s"))["error"]["code"] == 5008
        assert server.stats.connections == 1


# -- bad input -------------------------------------------------------------------------------------


async def test_events_the_server_does_not_know_are_ignored_and_the_connection_stays() -> None:
    async with running() as (broker, server, url), client(url) as peer:
        await peer.listen("s")
        await peer.emit("HELLO", {"id": "x"})
        await peer.emit("SUB_OFF", {"id": "nobody"})
        await peer.emit("SUB_OFF", "not an object")
        await peer.emit("SUB_ON", ["no", "id"])
        await peer.emit("MET_REQ", None)
        await _until(lambda: server.stats.ignored == 5)
        await broker.publish("news", "still here")
        assert (await peer.messages("s", 1))[0]["message"] == "still here"


@asynccontextmanager
async def raw(url: str, query: str = "") -> AsyncIterator[ClientConnection]:
    """A websocket engine.io session connected to the namespace, by hand."""
    ws_url = url.replace("http", "ws") + f"/{APP}/?EIO=4&transport=websocket&apiKey={KEY}{query}"
    async with connect(ws_url) as ws:
        opened = await ws.recv()
        assert isinstance(opened, str)
        assert opened.startswith("0{")
        assert json.loads(opened[1:])["upgrades"] == ["websocket"]
        await ws.send(f"40{NS},")
        assert str(await ws.recv()).startswith(f"40{NS},")
        yield ws


async def closed(ws: ClientConnection) -> tuple[int | None, list[str]]:
    """Read to the end: the close code and the packets before it."""
    packets = []
    with pytest.raises(ConnectionClosed):
        while True:
            packets.append(str(await asyncio.wait_for(ws.recv(), 10)))
    return ws.close_code, packets


@pytest.mark.parametrize(
    "packet",
    [
        "4" + "7/APP,[]",
        f"42{NS},[not json",
        "451-" + '/APP,["SUB_ON",{"_placeholder":true,"num":0}]',
    ],
)
async def test_a_packet_that_does_not_parse_ends_the_session(packet: str) -> None:
    async with running() as (broker, server, url), raw(url) as ws:
        await ws.send(packet)
        _, packets = await closed(ws)
        assert packets[-1] == "1"  # engine.io's close
        assert server.engine.stats.sessions == 0
        assert broker.statistics().subscribers == 0


async def test_binary_frames_end_the_session() -> None:
    async with running() as (_, server, url), raw(url) as ws:
        await ws.send(b"\x04binary")
        code, _ = await closed(ws)
        assert code == 1000
        assert server.engine.stats.sessions == 0


def test_socket_io_packets_parse() -> None:
    assert parse_packet('2/APP,12["SUB_ON",{}]') == ("2", "/APP", ["SUB_ON", {}])
    assert parse_packet("0/APP,") == ("0", "/APP", None)
    assert parse_packet("1/APP") == ("1", "/APP", None)
    assert parse_packet('0{"token":1}') == ("0", "/", {"token": 1})
    with pytest.raises(ValueError, match="not served"):
        parse_packet("")
    with pytest.raises(ValueError, match="JSON"):
        parse_packet("2/APP,[")


# -- engine.io over HTTP ---------------------------------------------------------------------------


async def test_engine_io_refusals_answer_the_reference_codes() -> None:
    async with running() as (_, server, url), httpx.AsyncClient(base_url=url) as http:
        base = f"/{APP}/"
        cases = [
            ("GET", {"EIO": "3", "transport": "polling"}, 400, 5),
            ("GET", {"EIO": "4", "transport": "flashsocket"}, 400, 0),
            ("GET", {"EIO": "4", "transport": "polling", "sid": "nope"}, 400, 1),
            ("POST", {"EIO": "4", "transport": "polling"}, 400, 2),
        ]
        for method, params, status, code in cases:
            answer = await http.request(method, base, params=params)
            assert (answer.status_code, answer.json()["code"]) == (status, code), params
        assert (await http.get("/NOAPP/", params={"EIO": "4"})).status_code == 404
        assert server.engine.stats.opened == 0


async def test_a_polling_session_by_hand_overlapping_polls_and_cors() -> None:
    settings = EngineSettings(ping_interval=30)
    async with running(settings) as (broker, server, url), httpx.AsyncClient(base_url=url) as http:
        base = f"/{APP}/"
        headers = {"Origin": "https://app.example.com"}
        handshake_params = {"EIO": "4", "transport": "polling", "apiKey": KEY}
        opened = await http.get(base, params=handshake_params, headers=headers)
        assert opened.headers["access-control-allow-origin"] == "https://app.example.com"
        assert opened.headers["access-control-allow-credentials"] == "true"
        assert opened.text[0] == "0"
        handshake = json.loads(opened.text[1:])
        assert handshake["pingInterval"] == 30_000
        assert handshake["maxPayload"] == 1_000_000
        params = {"EIO": "4", "transport": "polling", "sid": handshake["sid"]}
        posted = await http.post(base, params=params, content=f"40{NS},")
        assert posted.text == "ok"
        assert (await http.get(base, params=params)).text.startswith(f"40{NS},")
        sub_on = {"id": "s", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}
        two = "\x1e".join([f"42{NS},{json.dumps(['SUB_OFF', {'id': 'none'}])}",
                           f"42{NS},{json.dumps(['SUB_ON', sub_on])}"])  # fmt: skip
        assert (await http.post(base, params=params, content=two)).text == "ok"
        assert "SUB_READY" in (await http.get(base, params=params)).text
        for number in range(3):
            await broker.publish("news", number)
        payload = (await http.get(base, params=params)).text.split("\x1e")
        assert [json.loads(p.split(",", 1)[1])[1]["data"]["message"] for p in payload] == [0, 1, 2]
        preflight = await http.options(
            base, headers={**headers, "Access-Control-Request-Headers": "content-type"}
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-headers"] == "content-type"
        # A second GET while one waits: the reference server ends the session.
        waiting = asyncio.create_task(http.get(base, params=params))
        await _until(lambda: server.engine.sessions[handshake["sid"]].polling)
        overlap = await http.get(base, params=params)
        assert overlap.status_code == 400
        assert (await waiting).text == "1"
        assert handshake["sid"] not in server.engine.sessions


async def test_origins_follow_the_cors_setting() -> None:
    async with Broker() as broker:
        serving = realtime_server(broker, app_id=APP, api_key=KEY, port=0)
        async with serving as server:
            server.engine.origins = frozenset({"https://good.example"})
            url = f"http://127.0.0.1:{server.port}/{APP}/"
            params = {"EIO": "4", "transport": "polling"}
            async with httpx.AsyncClient() as http:
                bad = await http.get(url, params=params, headers={"Origin": "https://evil.example"})
                assert bad.status_code == 403
                good = await http.get(
                    url, params=params, headers={"Origin": "https://good.example"}
                )
                assert good.status_code == 200
                assert (await http.get(url, params=params)).status_code == 200  # not a browser


async def test_an_oversize_post_ends_the_session() -> None:
    settings = EngineSettings(max_payload=1000)
    async with running(settings) as (_, server, url), httpx.AsyncClient(base_url=url) as http:
        base = f"/{APP}/"
        opened = await http.get(base, params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        too_big = await http.post(base, params=params, content="4" + "x" * 2000)
        assert too_big.status_code == 413
        assert sid not in server.engine.sessions


# -- heartbeat, slow consumers, resuming -----------------------------------------------------------


async def test_a_client_that_does_not_answer_pings_is_dropped() -> None:
    settings = EngineSettings(ping_interval=0.1, ping_timeout=0.1)
    async with running(settings) as (_, server, url), raw(url) as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == "2"  # a ping; no pong from us
        await closed(ws)
        assert server.stats.connections == 0


async def test_a_client_that_answers_pings_stays() -> None:
    settings = EngineSettings(ping_interval=0.05, ping_timeout=0.1)
    async with running(settings) as (_, server, url), raw(url) as ws:
        for _ in range(5):
            assert await asyncio.wait_for(ws.recv(), 5) == "2"
            await ws.send("3")
        assert server.stats.connections == 1


async def test_no_namespace_connect_in_time_ends_the_session() -> None:
    settings = EngineSettings(connect_timeout=0.1)
    async with running(settings) as (_, server, url):
        ws_url = url.replace("http", "ws") + f"/{APP}/?EIO=4&transport=websocket"
        async with connect(ws_url) as ws:
            assert str(await ws.recv()).startswith("0{")
            await closed(ws)
        assert server.engine.stats.sessions == 0


async def test_a_listener_over_its_bound_closes_the_connection_with_4008() -> None:
    limits = WebsocketSettings(max_pending=5)
    async with (
        running(limits=limits) as (broker, server, url),
        httpx.AsyncClient(base_url=url) as http,
    ):
        base = f"/{APP}/"
        opened = await http.get(base, params={"EIO": "4", "transport": "polling", "apiKey": KEY})
        params = {"EIO": "4", "transport": "polling", "sid": json.loads(opened.text[1:])["sid"]}
        sub_on = ["SUB_ON", {"id": "s", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}]
        await http.post(base, params=params, content=f"40{NS},\x1e42{NS},{json.dumps(sub_on)}")
        assert "SUB_READY" in (await http.get(base, params=params)).text
        for number in range(10):  # nobody polls: over the bound of 5
            await broker.publish("news", number)
        assert (await http.get(base, params=params)).text == "1"
        assert server.stats.slow_consumers == 1
        assert server.stats.subscriptions == 0
        assert broker.statistics().subscribers == 0


async def test_a_client_that_stops_reading_is_closed_with_4008_and_the_others_get_all() -> None:
    limits = WebsocketSettings(slow_consumer_timeout=0.5, max_pending=100_000)
    big = "x" * 65_536
    total = 400  # 26 MB: far more than loopback socket buffers hold
    async with running(limits=limits) as (broker, server, url):
        slow_url = url.replace("http", "ws") + f"/{APP}/?EIO=4&transport=websocket&apiKey={KEY}"
        async with connect(slow_url, max_queue=1, max_size=None) as slow, client(url) as fast:
            await slow.recv()
            await slow.send(f"40{NS},")
            await slow.recv()
            sub_on = {"id": "s", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}
            await slow.send(f"42{NS},{json.dumps(['SUB_ON', sub_on])}")
            assert "SUB_READY" in str(await slow.recv())
            await fast.listen("s")
            for number in range(total):
                await broker.publish("news", big, headers={"n": number})
                await fast.next("SUB_RES", "s")  # paced by the reader that keeps up
            await _until(lambda: server.engine.stats.slow_consumers == 1)
            code, _ = await closed(slow)
            assert code == 4008
            assert server.stats.connections == 1


async def test_a_reconnecting_client_gets_its_listeners_and_what_it_missed() -> None:
    async with running() as (broker, server, url):
        async with raw(url, "&clientId=c-1") as ws:
            for sub_id, options in (("s1", {"channel": "news"}), ("s2", {"channel": "other"})):
                request = {"id": sub_id, "name": "PUB_SUB_MESSAGES", "options": options}
                await ws.send(f"42{NS},{json.dumps(['SUB_ON', request])}")
                assert "SUB_READY" in str(await ws.recv())
        # The transport dropped; the listeners wait for the client.
        await _until(lambda: server.stats.connections == 0)
        assert server.stats.subscriptions == 2
        await broker.publish("news", "while away")
        async with raw(url, "&clientId=c-1") as ws:
            request = {"id": "s1", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}
            await ws.send(f"42{NS},{json.dumps(['SUB_ON', request])}")
            assert "SUB_READY" in str(await ws.recv())
            missed = json.loads(str(await ws.recv()).split(",", 1)[1])
            assert missed[0] == "SUB_RES"
            assert missed[1]["id"] == "s1"
            assert missed[1]["data"]["message"] == "while away"
            assert server.stats.resumed == 1
            await broker.publish("news", "back")
            back = json.loads(str(await ws.recv()).split(",", 1)[1])
            assert back[1]["data"]["message"] == "back"
            await ws.send(f"41{NS},")  # a deliberate disconnect: nothing waits for it
            await _until(lambda: server.stats.subscriptions == 0)


async def test_listeners_nobody_comes_back_for_are_dropped_after_the_window() -> None:
    settings = EngineSettings(resume_window=0.2)
    async with running(settings) as (broker, server, url):
        async with raw(url, "&clientId=c-2") as ws:
            request = {"id": "s", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}
            await ws.send(f"42{NS},{json.dumps(['SUB_ON', request])}")
            await ws.recv()
        await _until(lambda: server.stats.subscriptions == 0)
        assert broker.statistics().subscribers == 0
        async with raw(url, "&clientId=c-3") as ws:  # a new id of a different selector
            request = {"id": "s", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}
            await ws.send(f"42{NS},{json.dumps(['SUB_ON', request])}")
            await ws.recv()
        async with raw(url, "&clientId=c-3") as ws:
            request["options"] = {"channel": "news", "selector": "n = 1"}
            await ws.send(f"42{NS},{json.dumps(['SUB_ON', request])}")
            await ws.recv()
            await broker.publish("news", "not for n = 1", headers={"n": 2})
            await broker.publish("news", "for n = 1", headers={"n": 1})
            got = json.loads(str(await ws.recv()).split(",", 1)[1])
            assert got[1]["data"]["message"] == "for n = 1"
            assert server.stats.resumed == 0


async def test_shutdown_ends_every_session() -> None:
    async with Broker() as broker:
        serving = realtime_server(broker, app_id=APP, api_key=KEY, port=0)
        server = await serving.__aenter__()
        async with raw(f"http://127.0.0.1:{server.port}", "&clientId=c") as ws:
            request = {"id": "s", "name": "PUB_SUB_MESSAGES", "options": {"channel": "news"}}
            await ws.send(f"42{NS},{json.dumps(['SUB_ON', request])}")
            await ws.recv()
            closing = asyncio.create_task(serving.__aexit__(None, None, None))
            _, packets = await closed(ws)
            assert packets == ["1"]
            await closing
        assert broker.statistics().subscribers == 0


async def test_each_message_is_encoded_once_for_every_socket() -> None:
    encoded: list[str] = []

    def encode(message: Any) -> bytes:
        encoded.append(message.message_id)
        return json.dumps({"m": message.message}).encode()

    async with running() as (broker, server, url):
        server.wire = EncodeOnce(encode)
        async with client(url) as one, client(url) as two, client(url) as three:
            for peer in (one, two, three):
                await peer.listen("s")
            await broker.publish("news", "once")
            for peer in (one, two, three):
                assert (await peer.messages("s", 1))[0] == {"m": "once"}
        assert len(encoded) == 1


# -- through `tidings serve` -----------------------------------------------------------------------


async def test_tidings_serve_has_socket_io_beside_the_rest_api(tmp_path: Path) -> None:
    with live_server(tmp_path / "data") as server:
        async with httpx.AsyncClient() as http:
            info = (await http.get(f"{server.api}/info")).json()
            assert info == {"rtURL": server.origin, "loggers": []}
            sio = socketio.AsyncClient(reconnection=False)
            peer = Client(sio, f"/{LIVE_APP}")
            await sio.connect(
                f"{info['rtURL']}?apiKey={LIVE_KEY}&userToken=null",
                namespaces=[f"/{LIVE_APP}"],
                socketio_path=f"/{LIVE_APP}/",
                wait_timeout=5,
            )
            assert (await peer.listen("s"))["event"] == "SUB_READY"
            published = await http.post(f"{server.api}/messaging/news", json={"message": "hi"})
            assert published.status_code == 200
            [message] = await peer.messages("s", 1)
            assert message["messageId"] == published.json()["messageId"]
            metrics = (await http.get(f"{server.origin}/metrics")).text
            assert "tidings_rt_connections 1.0" in metrics
            assert "tidings_rt_subscriptions 1.0" in metrics
            await sio.disconnect()
            # A long-poll in flight does not hold the shutdown up.
            base = f"{server.origin}/{LIVE_APP}/"
            params = {"EIO": "4", "transport": "polling", "apiKey": LIVE_KEY}
            sid = json.loads((await http.get(base, params=params)).text[1:])["sid"]
            await http.post(base, params={**params, "sid": sid}, content=f"40/{LIVE_APP},")
            await http.get(base, params={**params, "sid": sid})  # the connect answer
            polling = asyncio.create_task(http.get(base, params={**params, "sid": sid}))
            await asyncio.sleep(0.2)  # let the GET reach the server and wait there
            started = time.monotonic()
            assert await anyio.to_thread.run_sync(server.stop) == 0
            assert time.monotonic() - started < 5
            assert (await polling).text == "1"


async def test_batches_framed_once_fit_every_listener_s_id() -> None:
    # Frames are built once per batch and prefix length: ids of other lengths, and
    # selectors whose batches share both ends, must still get exactly their own messages.
    async with running() as (broker, server, url), client(url) as one, client(url) as two:
        await one.listen("a")
        await two.listen("a-much-longer-id")
        await two.listen("b", selector="n <> 1")
        for number in range(3):
            await broker.publish("news", number, headers={"n": number})
        assert [m["message"] for m in await one.messages("a", 3)] == [0, 1, 2]
        assert [m["message"] for m in await two.messages("a-much-longer-id", 3)] == [0, 1, 2]
        assert [m["message"] for m in await two.messages("b", 2)] == [0, 2]
        assert server.stats.deliveries == 8
