"""Push through `tidings serve`: REST publishes and templates reach fake FCM / APNs / Web Push
servers speaking the real protocols; a restart in the middle of a large push loses and
duplicates nothing."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from .live_server import LiveServer, live_server
from .push_fakes import FakeApns, FakeFcm, FakeWebPush, fake_apns, fake_fcm, fake_webpush


def _toml(value: Any) -> str:
    return json.dumps(value)  # strings and numbers are written alike in TOML


def push_config(fcm: FakeFcm, apns: FakeApns, web: FakeWebPush, extra: str = "") -> str:
    f, a, w = fcm.settings, apns.settings, web.settings
    return f"""
[[apps]]
id = "TEST-APP"
api_keys = ["test-key"]
admin_key = "admin"

[push.fcm]
service_account_file = {_toml(f.service_account_file)}
base_url = {_toml(f.base_url)}
ca_file = {_toml(f.ca_file)}

[push.apns]
team_id = {_toml(a.team_id)}
key_id = {_toml(a.key_id)}
key_file = {_toml(a.key_file)}
topic = {_toml(a.topic)}
base_url = {_toml(a.base_url)}
ca_file = {_toml(a.ca_file)}

[push.webpush]
vapid_private_key_file = {_toml(w.vapid_private_key_file)}
subject = {_toml(w.subject)}
ca_file = {_toml(w.ca_file)}

[push.templates.welcome]
message = "Welcome, {{name}}!"
headers = {{ "ios-alert-title" = "Hello {{name}}", "android-content-title" = "Hello" }}
channel = "news"
push_broadcast = "FOR_IOS|FOR_ANDROID"
{extra}
"""


@asynccontextmanager
async def fakes(tmp_path: Path) -> AsyncIterator[tuple[FakeFcm, FakeApns, FakeWebPush]]:
    async with (
        fake_fcm(tmp_path) as fcm,
        fake_apns(tmp_path) as apns,
        fake_webpush(tmp_path) as web,
    ):
        yield fcm, apns, web


@asynccontextmanager
async def serving(data_dir: Path, config: str) -> AsyncIterator[LiveServer]:
    """The server in a subprocess; started and stopped off the event loop, which the fake
    providers in this process must keep answering."""
    context = live_server(data_dir, config=config, credentials=False)
    server = await anyio.to_thread.run_sync(context.__enter__)
    try:
        yield server
    finally:
        await anyio.to_thread.run_sync(context.__exit__, None, None, None)


async def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 -- polls what the fakes recorded
            await anyio.sleep(0.01)


async def test_publish_templates_reports_and_invalid_tokens(tmp_path: Path) -> None:
    async with fakes(tmp_path) as (fcm, apns, web), AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            serving(tmp_path / "data", push_config(fcm, apns, web))
        )
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=server.api, timeout=10))
        devices = [
            ("phone", "IOS", "a" * 64),
            ("tablet", "ANDROID", "fcm-token-1"),
            ("laptop", "WEB", web.subscription("laptop")),
            ("gone", "ANDROID", "fcm-token-gone"),
        ]
        for device_id, os, token in devices:
            body = {"deviceId": device_id, "os": os, "deviceToken": token, "channels": ["news"]}
            answer = await http.post("/messaging/registrations", json=body)
            assert answer.status_code == 200, answer.text
        fcm.fail("fcm-token-gone", 404)  # UNREGISTERED

        published = await http.post(
            "/messaging/news",
            json={
                "message": "hello",
                "publishPolicy": "BOTH",
                "headers": {"ios-alert-title": "Hi", "android-content-title": "Hi", "n": 1},
            },
        )
        assert published.status_code == 200, published.text
        message_id = published.json()["messageId"]
        await until(lambda: len(apns.received) == 1 and len(web.received) == 1)
        await until(lambda: len(fcm.requests) >= 3)  # token + two sends
        assert apns.received[0][1]["aps"]["alert"] == {"body": "hello", "title": "Hi"}
        assert [t for t, _ in fcm.received] == ["fcm-token-1"]
        assert fcm.received[0][1]["notification"] == {"body": "hello", "title": "Hi"}
        assert fcm.received[0][1]["data"] == {"n": "1"}
        # Web: the title falls back to android-content-title.
        assert web.received[0] == ("laptop", {"body": "hello", "data": {"n": 1}, "title": "Hi"})

        async def report() -> Any:
            return (await http.get(f"/messaging/{message_id}")).json()

        with anyio.fail_after(15):
            while _count(await report(), "ANDROID", "failed") != 1:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        assert await report() == {
            "status": "published",
            "messageId": message_id,
            "errorMessage": None,
            "pushDelivery": {
                "ANDROID": {"sent": 1, "failed": 1},
                "IOS": {"sent": 1, "failed": 0},
                "WEB": {"sent": 1, "failed": 0},
            },
        }
        gone = await http.get("/messaging/registrations/gone")
        assert gone.status_code == 404
        assert gone.json()["code"] == 5000

        # Templates: from the config file, and through the admin endpoints.
        listed = await http.get("/messaging/pushtemplates/IOS")
        assert [t["name"] for t in listed.json()] == ["welcome"]
        assert (await http.get("/messaging/pushtemplates/WEB")).json() == []
        sent = await http.post("/messaging/push/welcome", json={"templateValues": {"name": "Ann"}})
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "published"
        await until(lambda: len(apns.received) == 2 and len(fcm.received) == 2)
        assert apns.received[1][1]["aps"]["alert"] == {
            "body": "Welcome, Ann!",
            "title": "Hello Ann",
        }
        assert fcm.received[1][1]["notification"]["body"] == "Welcome, Ann!"
        assert len(web.received) == 1  # not in the template's audience

        admin = {"admin-key": "admin"}
        put = await http.put(
            f"{server.origin}/admin/TEST-APP/pushtemplates/web-only",
            json={"message": "Hi {who}", "channel": "news", "pushBroadcast": "FOR_WEB"},
            headers=admin,
        )
        assert put.status_code == 200, put.text
        await http.post("/messaging/push/web-only", json={"templateValues": {"who": "you"}})
        await until(lambda: len(web.received) == 2)
        assert web.received[1][1]["body"] == "Hi you"
        missing = await http.post("/messaging/push/nope", json={})
        assert (missing.status_code, missing.json()["code"]) == (400, 5042)
        bad = await http.post(
            "/messaging/news", json={"message": {"x": 1}, "publishPolicy": "PUSH"}
        )
        assert (bad.status_code, bad.json()["code"]) == (400, 5041)


async def test_a_restart_in_the_middle_of_a_push_to_10000_devices(tmp_path: Path) -> None:
    devices = int(os.environ.get("PUSH_DEVICES", "10000"))
    async with fakes(tmp_path) as (fcm, apns, web):
        config = push_config(fcm, apns, web, extra="[push.outbox]\nbatch = 200\n")
        data = tmp_path / "data"
        async with serving(data, config) as server:
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                limit = anyio.CapacityLimiter(32)

                async def register(number: int) -> None:
                    async with limit:
                        body = {
                            "deviceId": f"d{number:05}",
                            "os": "ANDROID",
                            "deviceToken": f"t{number:05}",
                            "channels": ["big"],
                        }
                        answer = await http.post("/messaging/registrations", json=body)
                        assert answer.status_code == 200

                async with anyio.create_task_group() as tasks:
                    for number in range(devices):
                        tasks.start_soon(register, number)
                published = await http.post(
                    "/messaging/big", json={"message": "to all", "publishPolicy": "PUSH"}
                )
                message_id = published.json()["messageId"]
                await until(lambda: len(fcm.received) >= devices // 5, 60)
            # SIGTERM, off the event loop (the fakes answer the batches still in flight,
            # which the server finishes and records before it stops).
            assert await anyio.to_thread.run_sync(server.stop) == 0
        before = len(fcm.received)
        assert before < devices, "the push finished before the restart: nothing was tested"
        async with serving(data, config) as again:
            await until(lambda: len(fcm.received) >= devices, 120)
            async with httpx.AsyncClient(base_url=again.api, timeout=10) as http:
                with anyio.fail_after(30):
                    while True:
                        status = (await http.get(f"/messaging/{message_id}")).json()
                        if status.get("pushDelivery", {}).get("ANDROID", {}).get("sent") == devices:
                            break
                        await anyio.sleep(0.05)
        tokens = [token for token, _ in fcm.received]
        assert len(tokens) == devices  # no duplicates
        assert set(tokens) == {f"t{n:05}" for n in range(devices)}  # none lost


def _count(status: Any, os: str, outcome: str) -> int | None:
    found: int | None = status.get("pushDelivery", {}).get(os, {}).get(outcome)
    return found
