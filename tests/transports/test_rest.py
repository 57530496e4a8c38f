"""The REST API as a Backendless client uses it, against a real `tidings serve` subprocess."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.transports.live_server import API_KEY, APP_ID, LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("rest") / "data") as running:
        yield running
        assert running.stop() == 0


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api, timeout=10) as http:
        yield http


def error(response: httpx.Response) -> tuple[int, int]:
    """(HTTP status, Backendless code) of an error answer, which is always JSON."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"code", "message"}
    assert isinstance(body["message"], str)
    assert body["message"]
    return response.status_code, body["code"]


def publish(client: httpx.Client, channel: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/messaging/{channel}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def poll_until(client: httpx.Client, channel: str, sub: str, count: int) -> list[dict[str, Any]]:
    """Poll until `count` messages came (a poll answers at once; bounded by a deadline)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {got}"
        response = client.get(f"/messaging/{channel}/{sub}")
        assert response.status_code == 200, response.text
        got += response.json()["messages"]
    return got


# -- the first calls of an SDK ---------------------------------------------------------------


def test_info_answers_the_realtime_origin_and_health_is_ok(server: LiveServer) -> None:
    answer = httpx.get(f"{server.api}/info")
    assert answer.json() == {"rtURL": server.origin, "loggers": []}
    assert httpx.get(f"{server.origin}/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/info"),
        ("POST", "/messaging/news"),
        ("GET", "/messaging/message:x"),
        ("POST", "/users/login"),
        ("POST", "/messaging/registrations"),
    ],
)
def test_a_wrong_app_id_or_api_key_is_2002(server: LiveServer, method: str, path: str) -> None:
    for prefix in (f"/{APP_ID}/wrong-key", f"/WRONG-APP/{API_KEY}"):
        response = httpx.request(method, f"{server.origin}{prefix}{path}", json={"message": 1})
        assert error(response) == (401, 2002)


# -- publish, poll, status, cancel -----------------------------------------------------------


def test_publish_reaches_polling_subscribers_through_their_selectors(client: httpx.Client) -> None:
    tokyo = client.post("/messaging/news/subscribe", json={"selector": "city = 'Tokyo'"})
    everyone = client.post("/messaging/news/subscribe", json={})
    tokyo_id, everyone_id = tokyo.json()["subscriptionId"], everyone.json()["subscriptionId"]
    first = publish(
        client,
        "news",
        {"message": {"text": "hi"}, "headers": {"city": "Tokyo", "n": 5}, "publisherId": "svc"},
    )
    assert first["status"] == "published"
    assert first["messageId"].startswith("message:")
    assert first["errorMessage"] is None
    publish(client, "news", {"message": "osaka", "headers": {"city": "Osaka"}})
    [delivered] = poll_until(client, "news", tokyo_id, 1)
    assert delivered == {
        "messageId": first["messageId"],
        "timestamp": delivered["timestamp"],
        "message": {"text": "hi"},
        "publisherId": "svc",
        "headers": {"city": "Tokyo", "n": 5},
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
    assert abs(delivered["timestamp"] - time.time() * 1000) < 60_000
    assert [m["message"] for m in poll_until(client, "news", everyone_id, 2)] == [
        {"text": "hi"},
        "osaka",
    ]
    assert client.get(f"/messaging/news/{tokyo_id}").json() == {"messages": []}
    assert client.get(f"/messaging/{first['messageId']}").json() == {
        "status": "published",
        "messageId": first["messageId"],
        "errorMessage": None,
    }


def test_a_delayed_publish_reaches_a_polling_subscriber_when_due(client: httpx.Client) -> None:
    sub = client.post("/messaging/later/subscribe", json={}).json()["subscriptionId"]
    due = int(time.time() * 1000) + 500
    answer = publish(client, "later", {"message": "due", "publishAt": due})
    assert answer["status"] == "scheduled"
    assert client.get(f"/messaging/{answer['messageId']}").json()["status"] == "scheduled"
    [message] = poll_until(client, "later", sub, 1)
    assert message["message"] == "due"
    assert message["timestamp"] >= due
    assert client.get(f"/messaging/{answer['messageId']}").json()["status"] == "published"


def test_a_repeating_message_keeps_its_id_until_cancelled(client: httpx.Client) -> None:
    sub = client.post("/messaging/ticks/subscribe", json={}).json()["subscriptionId"]
    answer = publish(client, "ticks", {"message": "tick", "repeatEvery": 0.2})
    ticks = poll_until(client, "ticks", sub, 2)
    assert {t["messageId"] for t in ticks} == {answer["messageId"]}
    cancelled = client.delete(f"/messaging/{answer['messageId']}")
    assert cancelled.json() == {
        "status": "cancelled",
        "messageId": answer["messageId"],
        "errorMessage": None,
    }
    assert error(client.delete(f"/messaging/{answer['messageId']}")) == (400, 5040)
    assert client.get(f"/messaging/{answer['messageId']}").json()["status"] == "cancelled"


def test_an_unknown_message_reads_unknown_and_cannot_be_cancelled(client: httpx.Client) -> None:
    unknown = "message:00000000-0000-4000-8000-000000000000"
    assert client.get(f"/messaging/{unknown}").json()["status"] == "unknown"
    assert error(client.delete(f"/messaging/{unknown}")) == (400, 5040)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"headers": {"a": 1}}, (400, 8002)),  # no message
        ({"message": 1, "headers": {"a": [1]}}, (400, 8002)),
        ({"message": 1, "headers": "x"}, (400, 8002)),
        ({"message": 1, "publisherId": 5}, (400, 8002)),
        ({"message": 1, "publishAt": "soon"}, (400, 5030)),
        ({"message": 1, "publishAt": 5}, (400, 5030)),  # 1970
        ({"message": 1, "publishAt": 10**20}, (400, 5030)),
        ({"message": 1, "repeatEvery": -1}, (400, 5031)),
        ({"message": 1, "repeatEvery": "often"}, (400, 5031)),
        ({"message": 1, "repeatEvery": 60, "repeatExpiresAt": 5}, (400, 5003)),
        ({"message": 1, "repeatEvery": 60, "repeatExpiresAt": "x"}, (400, 5003)),
        ({"message": 1, "publishPolicy": "SOMETIMES"}, (400, 8002)),
        ({"message": {"no": "string"}, "publishPolicy": "PUSH"}, (400, 5041)),
        ({"message": 1, "segmentQuery": "a = "}, (400, 5050)),
        ({"message": "x" * 1_100_000}, (413, 5052)),
    ],
)
def test_bad_publish_bodies_answer_their_codes(
    client: httpx.Client, body: dict[str, Any], expected: tuple[int, int]
) -> None:
    assert error(client.post("/messaging/bad", json=body)) == expected


def test_bad_requests_answer_json_errors(server: LiveServer, client: httpx.Client) -> None:
    assert error(client.post("/messaging/news", content=b"x")) == (415, 8002)
    headers = {"content-type": "application/json"}
    assert error(client.post("/messaging/news", content=b"{bad", headers=headers)) == (400, 8002)
    assert error(client.post("/messaging/news", content=b"[1]", headers=headers)) == (400, 8002)
    not_utf8 = b'{"message": "\xff"}'
    assert error(client.post("/messaging/news", content=not_utf8, headers=headers)) == (400, 8002)
    nested = b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert error(client.post("/messaging/news", content=nested, headers=headers)) == (400, 8002)
    huge = b'{"message": "' + b"x" * 3_000_000 + b'"}'
    assert error(client.post("/messaging/news", content=huge, headers=headers)) == (413, 5052)
    assert error(client.post("/messaging/a%20b", json={"message": 1})) == (400, 5044)
    assert error(client.post("/messaging/news/subscribe", json={"selector": "a = "})) == (400, 5050)
    assert error(client.get("/messaging/news/no-such-subscription")) == (404, 5002)
    assert error(client.delete("/messaging/channels/never-made")) == (404, 5010)
    assert error(client.get("/no/such/route")) == (404, 404)
    assert error(httpx.get(f"{server.origin}/elsewhere")) == (404, 404)


def test_deleting_a_channel_ends_its_polling_subscriptions(client: httpx.Client) -> None:
    sub = client.post("/messaging/doomed/subscribe", json={}).json()["subscriptionId"]
    publish(client, "doomed", {"message": "last"})
    assert client.delete("/messaging/channels/doomed").json() == {"result": True}
    assert [m["message"] for m in poll_until(client, "doomed", sub, 1)] == ["last"]
    assert error(client.get(f"/messaging/doomed/{sub}")) == (404, 5002)


# -- users -------------------------------------------------------------------------------------


def test_register_login_and_logout(client: httpx.Client) -> None:
    registered = client.post(
        "/users/register", json={"email": "ann@example.com", "password": "pw1", "name": "Ann"}
    )
    assert registered.status_code == 200, registered.text
    user = registered.json()
    assert user["email"] == "ann@example.com"
    assert user["name"] == "Ann"
    assert "password" not in user
    again = client.post("/users/register", json={"email": "ANN@example.com", "password": "x"})
    assert error(again) == (400, 3033)
    wrong = client.post("/users/login", json={"login": "ann@example.com", "password": "nope"})
    assert error(wrong) == (401, 3003)
    logged_in = client.post("/users/login", json={"login": "ann@example.com", "password": "pw1"})
    assert logged_in.json()["objectId"] == user["objectId"]
    token = logged_in.json()["user-token"]
    as_ann = {"user-token": token}
    assert client.get("/messaging/message:x", headers=as_ann).status_code == 200
    assert client.get("/users/logout", headers=as_ann).status_code in (200, 204)
    assert error(client.get("/messaging/message:x", headers=as_ann)) == (401, 3064)
    assert error(client.get("/users/logout", headers=as_ann)) == (401, 3064)
    assert error(client.post("/users/login", json={"login": "ann@example.com"})) == (400, 8002)


# -- device registrations ----------------------------------------------------------------------


def test_device_registrations(client: httpx.Client) -> None:
    body = {
        "deviceToken": "tok-1",
        "deviceId": "phone-1",
        "os": "ANDROID",
        "osVersion": "14",
        "channels": ["news"],
        "expiration": time.time() + 3600,
    }
    registration_id = client.post("/messaging/registrations", json=body).json()["registrationId"]
    device = client.get("/messaging/registrations/phone-1").json()
    assert device["deviceId"] == "phone-1"
    assert device["registrationId"] == registration_id
    assert device["channels"] == ["news"]
    assert client.delete("/messaging/registrations/phone-1").json() == {"result": True}
    assert error(client.get("/messaging/registrations/phone-1")) == (404, 5000)
    assert error(client.delete("/messaging/registrations/phone-1")) == (404, 5001)
    no_id = {k: v for k, v in body.items() if k != "deviceId"}
    assert error(client.post("/messaging/registrations", json=no_id)) == (400, 5011)
    past = {**body, "expiration": 5}
    assert error(client.post("/messaging/registrations", json=past)) == (400, 5004)
    bad_os = {**body, "os": "PALM"}
    assert error(client.post("/messaging/registrations", json=bad_os)) == (400, 5005)


# -- around the API ----------------------------------------------------------------------------


def test_cors_preflight_and_headers_for_browsers(server: LiveServer) -> None:
    preflight = httpx.options(
        f"{server.api}/messaging/news",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, user-token",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://app.example")
    answer = httpx.get(f"{server.api}/info", headers={"origin": "https://app.example"})
    assert answer.headers["access-control-allow-origin"] in ("*", "https://app.example")


def test_metrics_and_openapi_are_served(server: LiveServer, client: httpx.Client) -> None:
    publish(client, "metered", {"message": 1})
    metrics = httpx.get(f"{server.origin}/metrics").text
    for name in (
        "tidings_messages_published_total",
        "tidings_deliveries_total",
        "tidings_drops_total",
        "tidings_subscribers",
        "tidings_scheduled",
        "tidings_request_seconds_bucket",
    ):
        assert name in metrics
    schema = httpx.get(f"{server.origin}/schema/openapi.json").json()
    publish_op = schema["paths"]["/{app_id}/{api_key}/messaging/{channel}"]["post"]
    assert "requestBody" in publish_op


# -- servers of their own ----------------------------------------------------------------------


def test_a_restart_keeps_users_registrations_and_scheduled_messages(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with live_server(data) as first, httpx.Client(base_url=first.api) as http:
        http.post("/users/register", json={"login": "bob", "password": "pw"})
        http.post(
            "/messaging/registrations",
            json={"deviceToken": "t", "deviceId": "d1", "os": "IOS"},
        )
        due = int(time.time() * 1000) + 4000
        scheduled = publish(http, "later", {"message": "after restart", "publishAt": due})
        assert first.stop() == 0
    with live_server(data) as second, httpx.Client(base_url=second.api, timeout=10) as http:
        status = http.get(f"/messaging/{scheduled['messageId']}").json()["status"]
        assert status == "scheduled"
        sub = http.post("/messaging/later/subscribe", json={}).json()["subscriptionId"]
        token = http.post("/users/login", json={"login": "bob", "password": "pw"})
        assert token.status_code == 200
        assert http.get("/messaging/registrations/d1").json()["os"] == "IOS"
        [message] = poll_until(http, "later", sub, 1)
        assert message["messageId"] == scheduled["messageId"]
        assert message["timestamp"] >= due
        assert second.stop() == 0


def test_generated_credentials_are_printed_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with live_server(data, credentials=False) as first:
        [line] = [x for x in first.stdout_lines if x.startswith("app-id=")]
        app_id, api_key = (part.split("=", 1)[1] for part in line.split())
        assert httpx.get(f"{first.origin}/{app_id}/{api_key}/info").status_code == 200
        assert first.stop(signal.SIGINT) == 0
    with live_server(data, credentials=False) as second:
        assert f"app-id={app_id} api-key={api_key}" in second.stdout_lines
        assert httpx.get(f"{second.origin}/{app_id}/{api_key}/info").status_code == 200


PERMISSIONS = f"""
[[apps]]
id = "{APP_ID}"
api_keys = ["{API_KEY}"]
admin_key = "admin-secret"

[permissions.channels.members]
NotAuthenticatedUser = {{ PUBLISH = "DENY", SUBSCRIBE = "DENY", DELETE = "DENY" }}

[permissions.channels.editors]
AuthenticatedUser = {{ PUBLISH = "DENY" }}
Writer = {{ PUBLISH = "GRANT" }}

[rate_limit]
per_user = 5
per_api_key = 30
"""


def test_channel_permissions_by_role_and_rate_limits_per_user(tmp_path: Path) -> None:
    with (
        live_server(tmp_path / "data", config=PERMISSIONS, credentials=False) as server,
        httpx.Client(base_url=server.api) as http,
    ):
        assert error(http.post("/messaging/members", json={"message": 1})) == (403, 5007)
        assert error(http.post("/messaging/members/subscribe", json={})) == (403, 5008)
        assert error(http.delete("/messaging/channels/members")) == (403, 5007)
        assert http.post("/messaging/public", json={"message": 1}).status_code == 200
        carl = http.post("/users/register", json={"login": "carl", "password": "pw"}).json()
        token = http.post("/users/login", json={"login": "carl", "password": "pw"}).json()
        as_carl = {"user-token": token["user-token"]}
        assert http.post("/messaging/members/subscribe", json={}, headers=as_carl).is_success
        denied = http.post("/messaging/editors", json={"message": 1}, headers=as_carl)
        assert error(denied) == (403, 5007)
        # An admin gives carl the Writer role, which the channel grants.
        roles_url = f"{server.origin}/admin/{APP_ID}/users/{carl['objectId']}/roles"
        wrong = httpx.put(roles_url, json={"roles": ["Writer"]}, headers={"admin-key": "guess"})
        assert error(wrong) == (401, 2002)
        granted = httpx.put(
            roles_url, json={"roles": ["Writer"]}, headers={"admin-key": "admin-secret"}
        )
        assert granted.json()["roles"] == ["AuthenticatedUser", "Writer"]
        answers = [
            http.post("/messaging/editors", json={"message": n}, headers=as_carl) for n in range(4)
        ]
        assert [a.status_code for a in answers[:2]] == [200] * 2
        assert error(answers[-1]) == (429, 999)  # 5 requests a second for one user
        # Everyone on the API key shares its 30 a second.
        flood = [http.get("/messaging/message:x") for _ in range(40)]
        assert error(flood[-1]) == (429, 999)
