"""The push outbox: audiences, payloads, retries, invalid tokens, reports, restarts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from broker import Broker, BrokerError, Message
from broker.devices import Devices
from broker.notifications import Notification, Outcome, SendResult, build_payload, report
from broker.outbox import Outbox
from broker.push_options import PushOptions
from broker.stores import SqliteStore
from broker.testing import VirtualClock

NOW = 1_767_225_600.0
WEB_TOKEN = json.dumps(
    {"endpoint": "https://push.example/abc", "keys": {"p256dh": "BNc", "auth": "tBH"}}
)


class FakeProvider:
    """Answers SENT unless told otherwise per token; records every notification."""

    def __init__(self) -> None:
        self.received: list[Notification] = []
        self.answers: dict[str, list[SendResult]] = {}
        self.gate: anyio.Event | None = None  # when set, sends wait for it
        self.calls = 0

    async def send(self, notifications: Sequence[Notification]) -> list[SendResult]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        results = []
        for notification in notifications:
            self.received.append(notification)
            queued = self.answers.get(notification.token)
            results.append(queued.pop(0) if queued else SendResult(Outcome.SENT))
        return results

    async def aclose(self) -> None:
        pass

    def tokens(self) -> list[str]:
        return [n.token for n in self.received]


class App:
    def __init__(self, broker: Broker, devices: Devices, outbox: Outbox, clock: VirtualClock):
        self.broker, self.devices, self.outbox, self.clock = broker, devices, outbox, clock

    async def register(self, device_id: str, os: str = "ANDROID", **fields: Any) -> None:
        token = WEB_TOKEN if os == "WEB" else f"tok-{device_id}"
        await self.devices.register(
            {"deviceId": device_id, "deviceToken": token, "os": os, **fields}
        )

    async def push(self, message: Any = "hello", **options: Any) -> str:
        options.setdefault("policy", "PUSH")
        headers = options.pop("headers", None)
        result = await self.broker.publish(
            "news", message, headers=headers, push=PushOptions(**options)
        )
        return result.message_id


@asynccontextmanager
async def app(
    path: Path,
    providers: dict[str, FakeProvider],
    clock: VirtualClock | None = None,
    drain_timeout: float = 10.0,
    **outbox_options: Any,
) -> AsyncIterator[App]:
    clock = clock or VirtualClock(NOW)
    async with Broker(store=SqliteStore(path), clock=clock) as broker:
        store = broker._store
        assert isinstance(store, SqliteStore)
        devices = Devices(store, clock=clock)
        await devices.open()
        outbox = Outbox(store, devices, providers, clock=clock, **outbox_options)
        await outbox.open()
        broker.send_push_to(outbox)
        async with outbox.running(drain_timeout):
            yield App(broker, devices, outbox, clock)


async def until(condition: Callable[[], Any], seconds: float = 10) -> None:
    with anyio.fail_after(seconds):
        while not await _call(condition):  # noqa: ASYNC110 -- polls state the outbox keeps
            await anyio.sleep(0.005)


async def _call(condition: Callable[[], Any]) -> Any:
    result = condition()
    if hasattr(result, "__await__"):
        return await result
    return result


async def test_each_live_device_on_the_channel_gets_its_os_payload_once(tmp_path: Path) -> None:
    apns, fcm, web = FakeProvider(), FakeProvider(), FakeProvider()
    providers = {"IOS": apns, "OSX": apns, "ANDROID": fcm, "WEB": web}
    async with app(tmp_path / "db", providers) as a:
        await a.register("phone", "IOS", channels=["news"])
        await a.register("tablet", "ANDROID", channels=["news"])
        await a.register("browser", "WEB", channels=["news"])
        await a.register("elsewhere", "ANDROID", channels=["sports"])
        await a.register("expired", "ANDROID", channels=["news"], expiration=NOW + 1)
        await a.clock.advance(2)
        async with a.broker.subscribe("news") as sub:
            headers = {"ios-alert-title": "Hi", "android-content-title": "Hi", "city": "Oslo"}
            message_id = await a.push("hello", headers=headers)
            await until(lambda: len(apns.received) + len(fcm.received) + len(web.received) == 3)
            assert sub.pending == 0  # PUSH only: not for subscribers
        assert [n.device_id for n in apns.received] == ["phone"]
        assert apns.received[0].payload == build_payload("IOS", "hello", headers)
        assert apns.received[0].payload["aps"]["alert"] == {"body": "hello", "title": "Hi"}
        assert fcm.tokens() == ["tok-tablet"]
        assert fcm.received[0].payload["notification"] == {"body": "hello", "title": "Hi"}
        assert fcm.received[0].payload["data"] == {"city": "Oslo"}
        assert web.received[0].token == WEB_TOKEN
        assert all(n.message_id == message_id for n in apns.received + fcm.received)
        await until(lambda: _drained(a))
        await until(lambda: _reported(a, message_id, 3))
        assert await a.outbox.report(message_id) == {
            "ANDROID": {"sent": 1, "failed": 0},
            "IOS": {"sent": 1, "failed": 0},
            "WEB": {"sent": 1, "failed": 0},
        }


async def _due_later(a: App) -> bool:
    due = await a.outbox._store.query(
        lambda con: con.execute("SELECT min(due) FROM push_outbox").fetchone()[0]
    )
    return due is not None and due > a.clock()


async def _drained(a: App) -> bool:
    return await a.outbox.pending() == 0


async def _reported(a: App, message_id: str, total: int) -> bool:
    found = await a.outbox.report(message_id) or {}
    return sum(c["sent"] + c["failed"] for c in found.values()) == total


async def test_both_reaches_subscribers_and_devices(tmp_path: Path) -> None:
    fcm = FakeProvider()
    async with app(tmp_path / "db", {"ANDROID": fcm}) as a:
        await a.register("tablet", channels=["news"])
        async with a.broker.subscribe("news") as sub:
            await a.push("both", policy="BOTH")
            assert (await anext(sub)).message == "both"
        await until(lambda: len(fcm.received) == 1)


async def test_audiences_by_os_mask_device_ids_and_segment(tmp_path: Path) -> None:
    apns, fcm = FakeProvider(), FakeProvider()
    async with app(tmp_path / "db", {"IOS": apns, "ANDROID": fcm}) as a:
        for number in range(4):
            await a.register(f"a{number}", "ANDROID", channels=["news"], osVersion=str(10 + number))
            await a.register(f"i{number}", "IOS", channels=["news"])
        await a.push("ios only", broadcast=1)
        await until(lambda: len(apns.received) == 4)
        await a.push("two", singlecast=("a1", "i2", "nobody"))
        await until(lambda: len(apns.received) == 5 and len(fcm.received) == 1)
        await a.push("segment", segment_query="osVersion >= '12' AND os = 'ANDROID'")
        await until(lambda: len(fcm.received) == 3)
        await until(lambda: _drained(a))
        assert fcm.tokens() == ["tok-a1", "tok-a2", "tok-a3"]
        assert [n.payload["aps"]["alert"]["body"] for n in apns.received] == [
            *["ios only"] * 4,
            "two",
        ]


async def test_an_os_without_provider_is_reported_failed(tmp_path: Path) -> None:
    fcm = FakeProvider()
    async with app(tmp_path / "db", {"ANDROID": fcm}) as a:
        await a.register("old", "WP", channels=["news"])
        await a.register("tablet", "ANDROID", channels=["news"])
        message_id = await a.push()
        await until(lambda: _reported(a, message_id, 2))
        assert await a.outbox.report(message_id) == {
            "ANDROID": {"sent": 1, "failed": 0},
            "WP": {"sent": 0, "failed": 1},
        }


async def test_retries_back_off_honour_retry_after_and_give_up(tmp_path: Path) -> None:
    fcm = FakeProvider()
    clock = VirtualClock(NOW)
    async with app(tmp_path / "db", {"ANDROID": fcm}, clock, max_attempts=3) as a:
        await a.register("busy", channels=["news"])
        await a.register("down", channels=["news"])
        fcm.answers["tok-busy"] = [SendResult(Outcome.RETRY, retry_after=120)]
        fcm.answers["tok-down"] = [SendResult(Outcome.RETRY)] * 5
        message_id = await a.push()
        await until(lambda: len(fcm.received) == 2)
        await a.clock.advance(60)  # Retry-After 120 s: not yet
        await until(lambda: fcm.tokens().count("tok-down") >= 2)  # backoff ~1 s: retried
        assert fcm.tokens().count("tok-busy") == 1
        await a.clock.advance(61)
        await until(lambda: fcm.tokens().count("tok-busy") == 2)
        for _ in range(4):
            await a.clock.advance(3600)
        await until(lambda: _reported(a, message_id, 2))
        assert fcm.tokens().count("tok-down") == 3  # max_attempts
        assert await a.outbox.report(message_id) == {"ANDROID": {"sent": 1, "failed": 1}}
        assert a.outbox.stats.retried == 3


async def test_an_invalid_token_removes_the_registration(tmp_path: Path) -> None:
    fcm = FakeProvider()
    async with app(tmp_path / "db", {"ANDROID": fcm}) as a:
        await a.register("gone", channels=["news"])
        await a.register("here", channels=["news"])
        fcm.answers["tok-gone"] = [SendResult(Outcome.INVALID_TOKEN, error="UNREGISTERED")]
        message_id = await a.push()
        await until(lambda: _reported(a, message_id, 2))
        with pytest.raises(BrokerError) as unknown:
            await a.devices.get("gone")
        assert unknown.value.code == 5000
        assert (await a.devices.get("here")).device_id == "here"
        assert a.outbox.stats.invalid_tokens == 1


async def test_delayed_and_repeating_push_go_through_the_timing_wheel(tmp_path: Path) -> None:
    fcm = FakeProvider()
    async with app(tmp_path / "db", {"ANDROID": fcm}) as a:
        await a.register("tablet", channels=["news"])
        await a.broker.publish(
            "news", "later", delay=timedelta(seconds=30), push=PushOptions("PUSH")
        )
        await a.broker.publish(
            "news", "tick", repeat_every=60, delay=60, push=PushOptions("PUSH", broadcast=2)
        )
        await a.clock.advance(29)
        assert fcm.received == []
        await a.clock.advance(1)
        await until(lambda: len(fcm.received) == 1)
        await a.clock.advance(30)
        await until(lambda: len(fcm.received) == 2)
        await a.clock.advance(60)
        await until(lambda: len(fcm.received) == 3)
        bodies = [n.payload["notification"]["body"] for n in fcm.received]
        assert bodies == ["later", "tick", "tick"]


async def test_a_push_message_must_be_a_string(tmp_path: Path) -> None:
    async with app(tmp_path / "db", {}) as a:
        with pytest.raises(BrokerError) as refused:
            await a.push({"not": "a string"})
        assert refused.value.code == 5041


async def test_a_graceful_restart_mid_push_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    fcm = FakeProvider()
    devices = 2000
    async with app(path, {"ANDROID": fcm}, batch=100, in_flight=2, page=300) as a:
        rows = [(f"d{n:05}",) for n in range(devices)]
        for (device_id,) in rows:
            await a.register(device_id, channels=["news"])
        fcm.gate = anyio.Event()
        message_id = await a.push()
        await until(lambda: fcm.calls >= 2)  # two batches in flight, the rest waiting
        fcm.gate.set()
        await until(lambda: len(fcm.received) >= 400)
        fcm.gate = gate = anyio.Event()  # stop the next ones mid-flight
        calls = fcm.calls
        await until(lambda: fcm.calls > calls)
        gate.set()  # in flight as the outbox stops: finished and recorded before it stops
    sent_before = len(fcm.received)
    assert sent_before < devices
    second = FakeProvider()
    async with app(path, {"ANDROID": second}) as b:
        await until(lambda: len(fcm.received) + len(second.received) == devices, 30)
        await until(lambda: _reported(b, message_id, devices))
        assert await b.outbox.pending() == 0
    everyone = fcm.tokens() + second.tokens()
    assert sorted(everyone) == sorted(f"tok-d{n:05}" for n in range(devices))
    assert await _report_of(path, message_id) == {"ANDROID": {"sent": devices, "failed": 0}}


async def test_a_stop_that_cannot_drain_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    stuck = FakeProvider()
    stuck.gate = anyio.Event()  # never released: a provider that hangs
    async with app(path, {"ANDROID": stuck}, drain_timeout=0.05, batch=10) as a:
        for number in range(25):
            await a.register(f"d{number:02}", channels=["news"])
        message_id = await a.push()
        await until(lambda: stuck.calls >= 1)
    after = FakeProvider()
    async with app(path, {"ANDROID": after}) as b:
        await until(lambda: _reported(b, message_id, 25))
    # At least once: the batches cut off at the stop are sent again.
    assert sorted(set(after.tokens())) == sorted(f"tok-d{n:02}" for n in range(25))


async def _report_of(path: Path, message_id: str) -> Any:
    async with app(path, {}) as a:
        return await a.outbox.report(message_id)


def test_report_counts_final_outcomes() -> None:
    outcomes = [("IOS", Outcome.SENT), ("IOS", Outcome.FAILED), ("WEB", Outcome.INVALID_TOKEN)]
    assert report(outcomes) == {
        "IOS": {"sent": 1, "failed": 1},
        "WEB": {"sent": 0, "failed": 1},
    }


def test_payloads_follow_the_headers() -> None:
    headers = {
        "ios-alert": "Alert",
        "ios-alert-subtitle": "Sub",
        "ios-badge": "3",
        "ios-sound": "ding",
        "ios-content-available": True,
        "ios-category": "NEWS",
        "android-ticker-text": "tick",
        "android-content-text": "Text",
        "android-action": "OPEN",
        "android-image": "https://img",
        "n": 5,
        "flag": False,
        "none": None,
    }
    ios = build_payload("IOS", "msg", headers)
    assert ios["aps"] == {
        "alert": {"body": "Alert", "subtitle": "Sub"},
        "badge": 3,
        "sound": "ding",
        "content-available": 1,
        "category": "NEWS",
    }
    assert ios["n"] == 5
    assert build_payload("IOS", "msg", {"ios-badge": "x"})["aps"] == {"alert": {"body": "msg"}}
    android = build_payload("ANDROID", "msg", headers)
    assert android == {
        "notification": {"body": "Text", "image": "https://img"},
        "android": {"notification": {"ticker": "tick", "click_action": "OPEN"}},
        "data": {"n": "5", "flag": "false", "none": ""},
    }
    assert build_payload("ANDROID", "m", {}) == {"notification": {"body": "m"}}
    assert build_payload("WEB", "m", {"web-title": "T", "k": 1}) == {
        "body": "m",
        "data": {"k": 1},
        "title": "T",
    }
    assert build_payload("WP", "m", {}) == {"text": "m", "data": {}}


async def test_edges_no_audience_a_failing_provider_and_a_full_handover(tmp_path: Path) -> None:
    class Broken(FakeProvider):
        async def send(self, notifications: Sequence[Notification]) -> list[SendResult]:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("provider bug")
            return await super().send(notifications)

    broken = Broken()
    async with app(tmp_path / "db", {"WEB": broken}, max_unrecorded=0) as a:
        nobody = await a.push("to nobody")
        await until(lambda: _drained(a))
        assert await a.outbox.report(nobody) is None
        await a.register("browser", "WEB", channels=["news"])
        await a.push("retried after a provider bug")
        await until(lambda: broken.calls == 1)
        await until(lambda: _due_later(a))
        await a.clock.advance(2)  # the backoff of a first retry: 0.5 to 1 s
        await until(lambda: len(broken.received) == 1)
        assert broken.received[0].payload == {"body": "retried after a provider bug", "data": {}}
        # A scheduled push released while the hand-over queue is full is counted, not kept.
        await a.broker.publish("news", "later", delay=1, push=PushOptions("PUSH"))
        await a.clock.advance(1)
        assert a.outbox.stats.dropped_unrecorded == 1
    with pytest.raises(ValueError, match="push options"):
        await a.outbox.accept(Message("message:x", "news", "m", {}, None, 0))
