"""Device registrations: the POST/GET/DELETE messaging/registrations contract, expiry, audiences."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from broker import BrokerError, InvalidArgumentError, InvalidChannelError, SelectorError
from broker.devices import (
    DEFAULT_CHANNEL,
    CannotUnregisterError,
    Devices,
    InvalidExpirationError,
    InvalidRegistrationError,
    MissingDeviceIdError,
    Registration,
    UnknownDeviceError,
    WebPushSubscription,
    parse_web_token,
)
from broker.push_options import ALL, OS_BITS
from broker.stores import SqliteStore, StatusPolicy
from broker.testing import VirtualClock

NOW = 1_767_225_600.0  # the VirtualClock's start
WEB_TOKEN = json.dumps(
    {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc:def",
        "expirationTime": None,
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }
)


def body(device_id: str = "dev-1", **fields: Any) -> dict[str, Any]:
    registration: dict[str, Any] = {
        "deviceToken": f"token-of-{device_id}",
        "deviceId": device_id,
        "os": "ANDROID",
        "osVersion": "14",
    }
    registration.update(fields)
    return registration


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tidings.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(path)
    await opened.open(StatusPolicy())
    yield opened
    await opened.close()


@pytest.fixture
async def devices(store: SqliteStore, clock: VirtualClock) -> Devices:
    registry = Devices(store, clock=clock)
    await registry.open()
    return registry


async def code_of_register(devices: Devices, registration: Any) -> int:
    with pytest.raises(BrokerError) as caught:
        await devices.register(registration)
    return caught.value.code


async def count_rows(store: SqliteStore, table: str) -> int:
    return int(
        await store.query(lambda con: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    )


# -- register and get -----------------------------------------------------------------------


async def test_a_registered_device_reads_back_as_backendless_returns_it(devices: Devices) -> None:
    registration_id = await devices.register(
        body(channels=["news", "sports"], expiration=NOW + 3600.5)
    )
    assert isinstance(registration_id, str)
    assert registration_id
    got = await devices.get("dev-1")
    assert got == Registration(
        device_id="dev-1",
        device_token="token-of-dev-1",
        os="ANDROID",
        os_version="14",
        channels=("news", "sports"),
        expiration=NOW + 3600.5,
        registration_id=registration_id,
    )
    assert json.loads(msgspec.json.encode(got)) == {
        "deviceId": "dev-1",
        "deviceToken": "token-of-dev-1",
        "os": "ANDROID",
        "osVersion": "14",
        "channels": ["news", "sports"],
        "expiration": NOW + 3600.5,
        "registrationId": registration_id,
    }
    assert got.os_bit == OS_BITS["ANDROID"] == 2


async def test_an_integer_expiration_reads_back_as_the_integer_it_was(devices: Devices) -> None:
    await devices.register(body(expiration=1_795_613_394))
    expiration = (await devices.get("dev-1")).expiration
    assert expiration == 1_795_613_394
    assert type(expiration) is int
    assert b'"expiration":1795613394,' in msgspec.json.encode(await devices.get("dev-1"))


@pytest.mark.parametrize("channels", [None, [], "absent"])
async def test_without_channels_a_device_is_on_the_default_channel(
    devices: Devices, channels: object
) -> None:
    registration = body() if channels == "absent" else body(channels=channels)
    await devices.register(registration)
    got = await devices.get("dev-1")
    assert got.channels == (DEFAULT_CHANNEL,) == ("default",)
    assert got.expiration is None
    assert [d.device_id for d in await devices.audience("default")] == ["dev-1"]


async def test_os_is_case_insensitive_and_os_version_optional(devices: Devices) -> None:
    await devices.register({"deviceToken": "t", "deviceId": "d", "os": "ios"})
    got = await devices.get("d")
    assert got.os == "IOS"
    assert got.os_version is None
    assert got.os_bit == 1


async def test_channels_are_deduplicated_in_order(devices: Devices) -> None:
    await devices.register(body(channels=("b", "a", "b")))  # a tuple from a Python caller
    assert (await devices.get("dev-1")).channels == ("b", "a")


@pytest.mark.parametrize("os", sorted(OS_BITS))
async def test_every_os_registers(devices: Devices, os: str) -> None:
    token = WEB_TOKEN if os == "WEB" else "t"
    await devices.register(body(os=os, deviceToken=token))
    got = await devices.get("dev-1")
    assert got.os == os
    assert got.os_bit == OS_BITS[os]


# -- registering again ----------------------------------------------------------------------


async def test_registering_again_keeps_the_id_adds_channels_and_replaces_the_rest(
    devices: Devices, clock: VirtualClock
) -> None:
    first = await devices.register(body(channels=["news"], expiration=NOW + 100))
    clock.set(NOW + 10)
    again = await devices.register(
        body(channels=["sports", "news"], deviceToken="new-token", os="IOS", osVersion="17.2")
    )
    assert again == first
    got = await devices.get("dev-1")
    assert got.channels == ("news", "sports")
    assert (got.device_token, got.os, got.os_version) == ("new-token", "IOS", "17.2")
    assert got.expiration is None  # the latest call had none: it never expires
    clock.set(NOW + 1000)
    assert (await devices.get("dev-1")).registration_id == first
    assert [d.device_id for d in await devices.audience("news")] == ["dev-1"]
    assert [d.device_id for d in await devices.audience("sports")] == ["dev-1"]


async def test_registering_again_without_channels_adds_the_default_channel(
    devices: Devices,
) -> None:
    await devices.register(body(channels=["news"]))
    await devices.register(body())
    assert (await devices.get("dev-1")).channels == ("news", "default")


async def test_an_expired_registration_is_gone_and_registering_again_starts_afresh(
    devices: Devices, clock: VirtualClock, store: SqliteStore
) -> None:
    first = await devices.register(body(channels=["news"], expiration=NOW + 60))
    clock.set(NOW + 60)  # expiration is the first instant it no longer holds
    with pytest.raises(UnknownDeviceError):
        await devices.get("dev-1")
    second = await devices.register(body(channels=["sports"]))
    assert second != first
    got = await devices.get("dev-1")
    assert got.channels == ("sports",)
    assert got.registration_id == second
    assert await devices.audience("news") == []
    assert await count_rows(store, "registration_channels") == 1


async def test_different_devices_get_different_ids(devices: Devices) -> None:
    ids = {await devices.register(body(f"dev-{n}")) for n in range(5)}
    assert len(ids) == 5


async def test_concurrent_registrations_all_land(devices: Devices) -> None:
    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(devices.register, body(f"dev-{n:02}", channels=["c", f"own-{n}"]))
    assert len(await devices.audience("c")) == 20


# -- bad bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "registration",
    [
        {"deviceToken": "t", "os": "IOS"},
        body(deviceId=None),
        body(deviceId=""),
        body(deviceId="   "),
    ],
    ids=["missing", "null", "empty", "blank"],
)
async def test_a_missing_device_id_is_5011(devices: Devices, registration: dict[str, Any]) -> None:
    with pytest.raises(MissingDeviceIdError) as caught:
        await devices.register(registration)
    assert caught.value.code == 5011
    assert caught.value.message == "deviceId is missing"


@pytest.mark.parametrize(
    "registration",
    [
        None,
        [body()],
        "dev-1",
        body(deviceId=5),
        body(deviceId=["dev-1"]),
        body(deviceId="x" * 256),
        body(deviceId="a/b"),
        body(deviceId="a\nb"),
        {"deviceId": "d", "os": "IOS"},
        body(deviceToken=None),
        body(deviceToken=123),
        body(deviceToken=""),
        body(deviceToken="  "),
        body(deviceToken="x" * 4097),
        {"deviceId": "d", "deviceToken": "t"},
        body(os="BLACKBERRY"),
        body(os=""),
        body(os=1),
        body(os=None),
        body(osVersion=14),
        body(osVersion=["14"]),
        body(channels="news"),
        body(channels={"news": True}),
        body(channels=[5]),
        body(channels=[None]),
        body(channels=[""]),
        body(channels=["a/b"]),
        body(channels=["has space"]),
        body(channels=["registrations"]),
        body(channels=["ok", "x" * 256]),
    ],
)
async def test_an_invalid_body_is_5005(devices: Devices, registration: Any) -> None:
    assert await code_of_register(devices, registration) == 5005


async def test_the_5005_message_says_what_is_wrong(devices: Devices) -> None:
    with pytest.raises(InvalidRegistrationError, match="os must be one of IOS, ANDROID"):
        await devices.register(body(os="SYMBIAN"))
    with pytest.raises(InvalidRegistrationError, match="reserved"):
        await devices.register(body(channels=["push"]))
    with pytest.raises(InvalidRegistrationError, match="channel names"):
        await devices.register(body(channels=[3]))


@pytest.mark.parametrize(
    "token",
    [
        "not json",
        "{",
        json.dumps(["https://push.example"]),
        json.dumps("https://push.example"),
        json.dumps({"keys": {"p256dh": "k", "auth": "a"}}),
        json.dumps({"endpoint": 5, "keys": {"p256dh": "k", "auth": "a"}}),
        json.dumps({"endpoint": "ftp://push.example", "keys": {"p256dh": "k", "auth": "a"}}),
        json.dumps({"endpoint": "push.example/x", "keys": {"p256dh": "k", "auth": "a"}}),
        json.dumps({"endpoint": "https://push.example"}),
        json.dumps({"endpoint": "https://push.example", "keys": ["k", "a"]}),
        json.dumps({"endpoint": "https://push.example", "keys": {"auth": "a"}}),
        json.dumps({"endpoint": "https://push.example", "keys": {"p256dh": "k"}}),
        json.dumps({"endpoint": "https://push.example", "keys": {"p256dh": "", "auth": "a"}}),
        json.dumps({"endpoint": "https://push.example", "keys": {"p256dh": "k", "auth": 1}}),
        "token-of-an-android-device",
    ],
)
async def test_a_web_token_must_be_a_push_subscription(devices: Devices, token: str) -> None:
    assert await code_of_register(devices, body(os="WEB", deviceToken=token)) == 5005


async def test_a_web_token_is_kept_as_registered_and_parses(devices: Devices) -> None:
    await devices.register(body(os="web", deviceToken=WEB_TOKEN))
    got = await devices.get("dev-1")
    assert got.device_token == WEB_TOKEN
    assert parse_web_token(got.device_token) == WebPushSubscription(
        endpoint="https://fcm.googleapis.com/fcm/send/abc:def",
        p256dh="BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA",
        auth="tBHItJI5svbpez7KI4CCXg",
    )
    local = json.dumps({"endpoint": "http://127.0.0.1:9/p", "keys": {"p256dh": "k", "auth": "a"}})
    assert parse_web_token(local).endpoint == "http://127.0.0.1:9/p"


@pytest.mark.parametrize(
    "expiration",
    [
        "tomorrow",
        "1795613394",
        True,
        [NOW + 10],
        {"at": NOW + 10},
        NOW - 1,
        NOW,
        0,
        -5,
        math.nan,
        math.inf,
        NOW + 101 * 365 * 86_400,
        10**30,  # past what SQLite can hold
    ],
)
async def test_an_invalid_expiration_is_5004(devices: Devices, expiration: object) -> None:
    with pytest.raises(InvalidExpirationError) as caught:
        await devices.register(body(expiration=expiration))
    assert caught.value.code == 5004


async def test_a_device_id_is_checked_before_the_rest_of_the_body(devices: Devices) -> None:
    assert await code_of_register(devices, {"os": "nope", "expiration": "x"}) == 5011
    assert await code_of_register(devices, body(os="nope", expiration="x")) == 5005


async def test_a_refused_registration_changes_nothing(devices: Devices) -> None:
    registration_id = await devices.register(body(channels=["news"]))
    with pytest.raises(InvalidExpirationError):
        await devices.register(body(channels=["sports"], expiration=NOW - 1))
    got = await devices.get("dev-1")
    assert (got.channels, got.registration_id) == (("news",), registration_id)


# -- get and unregister ---------------------------------------------------------------------


@pytest.mark.parametrize("device_id", ["never-registered", "", 5, None])
async def test_get_of_an_unknown_device_is_5000(devices: Devices, device_id: Any) -> None:
    await devices.register(body())
    with pytest.raises(UnknownDeviceError) as caught:
        await devices.get(device_id)
    assert caught.value.code == 5000


async def test_unregister_removes_the_device(devices: Devices, store: SqliteStore) -> None:
    await devices.register(body(channels=["news", "sports"]))
    await devices.register(body("dev-2", channels=["news"]))
    await devices.unregister("dev-1")
    with pytest.raises(UnknownDeviceError):
        await devices.get("dev-1")
    assert [d.device_id for d in await devices.audience("news")] == ["dev-2"]
    assert await devices.audience("sports") == []
    assert await count_rows(store, "device_registrations") == 1
    assert await count_rows(store, "registration_channels") == 1


@pytest.mark.parametrize("device_id", ["never-registered", 5, None])
async def test_unregister_of_an_unknown_device_is_5001(devices: Devices, device_id: Any) -> None:
    with pytest.raises(CannotUnregisterError) as caught:
        await devices.unregister(device_id)
    assert caught.value.code == 5001


async def test_unregister_twice_is_5001(devices: Devices) -> None:
    await devices.register(body())
    await devices.unregister("dev-1")
    with pytest.raises(CannotUnregisterError):
        await devices.unregister("dev-1")


async def test_unregister_of_an_expired_device_is_5001_and_drops_its_row(
    devices: Devices, clock: VirtualClock, store: SqliteStore
) -> None:
    await devices.register(body(expiration=NOW + 5))
    clock.set(NOW + 5)
    with pytest.raises(CannotUnregisterError):
        await devices.unregister("dev-1")
    assert await count_rows(store, "device_registrations") == 0
    assert await count_rows(store, "registration_channels") == 0


async def test_unregister_from_some_channels_keeps_the_others(
    devices: Devices, clock: VirtualClock
) -> None:
    registration_id = await devices.register(body(channels=["a", "b", "c"]))
    await devices.unregister("dev-1", ["b", "not-on-it"])
    got = await devices.get("dev-1")
    assert (got.channels, got.registration_id) == (("a", "c"), registration_id)
    assert await devices.audience("b") == []
    assert [d.device_id for d in await devices.audience("c")] == ["dev-1"]
    await devices.unregister("dev-1", ["a", "c"])  # no channel left: the registration goes
    with pytest.raises(UnknownDeviceError):
        await devices.get("dev-1")


async def test_unregister_checks_its_channels(devices: Devices) -> None:
    await devices.register(body(channels=["a"]))
    with pytest.raises(InvalidArgumentError):
        await devices.unregister("dev-1", "a")
    with pytest.raises(InvalidChannelError):
        await devices.unregister("dev-1", ["a/b"])
    with pytest.raises(InvalidChannelError):
        await devices.unregister("dev-1", [7])  # type: ignore[list-item]
    assert (await devices.get("dev-1")).channels == ("a",)


# -- persistence ----------------------------------------------------------------------------


async def test_registrations_survive_closing_and_reopening_the_store(
    path: Path, clock: VirtualClock
) -> None:
    store = SqliteStore(path)
    await store.open(StatusPolicy())
    devices = Devices(store, clock=clock)
    await devices.open()
    registration_id = await devices.register(body(channels=["news"], expiration=NOW + 10.25))
    await devices.register(body("dev-2", os="IOS", channels=["news", "sports"]))
    await devices.register(body("dev-3"))
    await devices.unregister("dev-3")
    await store.close()

    reopened = SqliteStore(path)
    await reopened.open(StatusPolicy())
    try:
        again = Devices(reopened, clock=clock)
        await again.open()  # the tables exist: nothing is lost
        got = await again.get("dev-1")
        assert (got.registration_id, got.channels, got.expiration) == (
            registration_id,
            ("news",),
            NOW + 10.25,
        )
        assert [d.device_id for d in await again.audience("news")] == ["dev-1", "dev-2"]
        with pytest.raises(UnknownDeviceError):
            await again.get("dev-3")
        again_id = await again.register(body(channels=["x"], expiration=NOW + 10.25))
        assert again_id == registration_id
        clock.set(NOW + 11)  # the expiration survived too
        with pytest.raises(UnknownDeviceError):
            await again.get("dev-1")
    finally:
        await reopened.close()


async def test_a_closed_store_is_a_store_error(path: Path) -> None:
    store = SqliteStore(path)
    devices = Devices(store)
    with pytest.raises(BrokerError) as caught:
        await devices.open()
    assert caught.value.code == 5090


async def test_the_wall_clock_is_the_default(store: SqliteStore) -> None:
    devices = Devices(store)
    await devices.open()
    with pytest.raises(InvalidExpirationError):
        await devices.register(body(expiration=time.time() - 1))
    await devices.register(body(expiration=time.time() + 3600))
    assert [d.device_id for d in await devices.audience("default")] == ["dev-1"]
    assert await devices.purge_expired() == 0


# -- audience -------------------------------------------------------------------------------


@pytest.fixture
async def fleet(devices: Devices) -> Devices:
    """a-ios, b-android, c-wp, d-osx, e-web on "news"; f-ios on "sports"; g-android on both."""
    await devices.register(body("a-ios", os="IOS", osVersion="17", channels=["news"]))
    await devices.register(body("b-android", os="ANDROID", osVersion="14", channels=["news"]))
    await devices.register(body("c-wp", os="WP", channels=["news"]))
    await devices.register(body("d-osx", os="OSX", channels=["news"]))
    await devices.register(body("e-web", os="WEB", deviceToken=WEB_TOKEN, channels=["news"]))
    await devices.register(body("f-ios", os="IOS", osVersion="16", channels=["sports"]))
    await devices.register(body("g-android", os="ANDROID", channels=["sports", "news"]))
    return devices


def ids(registrations: list[Registration]) -> list[str]:
    return [registration.device_id for registration in registrations]


async def test_the_audience_is_every_device_on_the_channel(fleet: Devices) -> None:
    everyone = await fleet.audience("news")
    assert ids(everyone) == ["a-ios", "b-android", "c-wp", "d-osx", "e-web", "g-android"]
    assert all(isinstance(r, Registration) for r in everyone)
    assert everyone[0] == await fleet.get("a-ios")
    assert ids(await fleet.audience("sports")) == ["f-ios", "g-android"]
    assert await fleet.audience("nobody-here") == []


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (1, ["a-ios"]),
        (2, ["b-android", "g-android"]),
        (3, ["a-ios", "b-android", "g-android"]),
        (4, ["c-wp"]),
        (8, ["d-osx"]),
        (16, ["e-web"]),
        (ALL, ["a-ios", "b-android", "c-wp", "d-osx", "g-android"]),
        (31, ["a-ios", "b-android", "c-wp", "d-osx", "e-web", "g-android"]),
        (0, []),
    ],
)
async def test_the_audience_by_os(fleet: Devices, mask: int, expected: list[str]) -> None:
    assert ids(await fleet.audience("news", os_mask=mask)) == expected


async def test_the_audience_by_device_ids_is_exactly_those_on_the_channel(fleet: Devices) -> None:
    chosen = await fleet.audience("news", device_ids=["g-android", "f-ios", "a-ios", "a-ios", "zz"])
    assert ids(chosen) == ["a-ios", "g-android"]  # f-ios is not on "news"; zz is unknown
    assert await fleet.audience("news", device_ids=[]) == []
    both = await fleet.audience("news", device_ids=["a-ios", "b-android"], os_mask=2)
    assert ids(both) == ["b-android"]


async def test_the_audience_by_segment(fleet: Devices) -> None:
    assert ids(await fleet.audience("news", segment="osVersion = '17'")) == ["a-ios"]
    assert ids(await fleet.audience("news", segment="os IN ('IOS', 'WEB')")) == ["a-ios", "e-web"]
    assert ids(await fleet.audience("news", segment="deviceId LIKE 'b%'", os_mask=2)) == [
        "b-android"
    ]
    assert ids(await fleet.audience("news", segment="expiration IS NULL", os_mask=1)) == ["a-ios"]
    with pytest.raises(SelectorError):
        await fleet.audience("news", segment="osVersion = ")


async def test_the_audience_skips_expired_devices(devices: Devices, clock: VirtualClock) -> None:
    await devices.register(body("short", channels=["c"], expiration=NOW + 10))
    await devices.register(body("long", channels=["c"], expiration=NOW + 1000))
    await devices.register(body("forever", channels=["c"]))
    assert ids(await devices.audience("c")) == ["forever", "long", "short"]
    assert ids(await devices.audience("c", now=NOW + 10)) == ["forever", "long"]
    clock.set(NOW + 500)
    assert ids(await devices.audience("c")) == ["forever", "long"]
    assert ids(await devices.audience("c", device_ids=["short", "long"])) == ["long"]
    assert ids(await devices.audience("c", now=NOW + 2000)) == ["forever"]


async def test_the_audience_comes_in_pages(fleet: Devices) -> None:
    first = await fleet.audience("news", limit=4)
    assert ids(first) == ["a-ios", "b-android", "c-wp", "d-osx"]
    rest = await fleet.audience("news", limit=4, after=first[-1].device_id)
    assert ids(rest) == ["e-web", "g-android"]
    assert await fleet.audience("news", limit=4, after=rest[-1].device_id) == []
    assert ids(await fleet.audience("news", after="d")) == ["d-osx", "e-web", "g-android"]


async def test_a_page_is_full_even_when_the_segment_skips_devices(fleet: Devices) -> None:
    page = await fleet.audience("news", segment="os <> 'WP' AND os <> 'OSX'", limit=3)
    assert ids(page) == ["a-ios", "b-android", "e-web"]
    page = await fleet.audience("news", segment="os = 'ANDROID'", limit=1, after="b-android")
    assert ids(page) == ["g-android"]
    assert await fleet.audience("news", segment="os = 'BLACKBERRY'", limit=2) == []


async def test_pages_of_device_ids(fleet: Devices, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("broker.devices._CHUNK", 2)  # many `IN (...)` chunks
    wanted = ["g-android", "e-web", "d-osx", "c-wp", "b-android", "a-ios", "f-ios", "zz"]
    assert ids(await fleet.audience("news", device_ids=wanted)) == [
        "a-ios",
        "b-android",
        "c-wp",
        "d-osx",
        "e-web",
        "g-android",
    ]
    page = await fleet.audience("news", device_ids=wanted, limit=3)
    assert ids(page) == ["a-ios", "b-android", "c-wp"]
    page = await fleet.audience("news", device_ids=wanted, limit=3, after="c-wp")
    assert ids(page) == ["d-osx", "e-web", "g-android"]
    page = await fleet.audience("news", device_ids=wanted, limit=5, after="e-web")
    assert ids(page) == ["g-android"]


async def test_audience_checks_its_arguments(fleet: Devices) -> None:
    with pytest.raises(InvalidChannelError):
        await fleet.audience("bad/channel")
    with pytest.raises(InvalidChannelError):
        await fleet.audience("")
    bad_arguments: list[dict[str, Any]] = [
        {"os_mask": -1},
        {"os_mask": True},
        {"os_mask": 1.0},
        {"limit": 0},
        {"limit": True},
        {"limit": "5"},
        {"after": 5},
    ]
    for bad in bad_arguments:
        with pytest.raises(InvalidArgumentError):
            await fleet.audience("news", **bad)
    with pytest.raises(InvalidArgumentError):
        await fleet.audience("news", device_ids="a-ios")
    with pytest.raises(InvalidArgumentError):
        await fleet.audience("news", device_ids=["a-ios", 5])  # type: ignore[list-item]


async def test_the_audience_is_read_through_the_channel_index(store: SqliteStore) -> None:
    devices = Devices(store)
    await devices.open()

    def plan(con: Any) -> str:
        rows = con.execute(
            "EXPLAIN QUERY PLAN SELECT r.device_id FROM registration_channels AS c "
            "JOIN device_registrations AS r ON r.device_id = c.device_id "
            "WHERE c.channel = ? AND (r.expiration IS NULL OR r.expiration > ?) "
            "ORDER BY c.device_id",
            ("news", NOW),
        ).fetchall()
        return " | ".join(row[-1] for row in rows)

    detail = await store.query(plan)
    assert "SEARCH c USING PRIMARY KEY (channel=?)" in detail
    assert "SCAN" not in detail
    assert "TEMP B-TREE" not in detail


async def test_a_registration_lists_what_a_segment_can_test(fleet: Devices) -> None:
    got = await fleet.get("a-ios")
    assert got.properties() == {
        "deviceId": "a-ios",
        "os": "IOS",
        "osVersion": "17",
        "expiration": None,
        "registrationId": got.registration_id,
    }


# -- invalid tokens and expiry --------------------------------------------------------------


async def test_remove_tokens_drops_the_devices_holding_them(
    fleet: Devices, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broker.devices._CHUNK", 2)
    removed = await fleet.remove_tokens(
        ["token-of-a-ios", WEB_TOKEN, "token-of-g-android", "unknown", "token-of-a-ios"]
    )
    assert removed == 3
    assert ids(await fleet.audience("news")) == ["b-android", "c-wp", "d-osx"]
    assert ids(await fleet.audience("sports")) == ["f-ios"]
    for gone in ("a-ios", "e-web", "g-android"):
        with pytest.raises(UnknownDeviceError):
            await fleet.get(gone)
    assert await count_rows(store, "registration_channels") == 4
    assert await fleet.remove_tokens([]) == 0
    assert await fleet.remove_tokens(["unknown"]) == 0
    assert await fleet.remove_tokens([5, None]) == 0  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        await fleet.remove_tokens("token-of-b-android")


async def test_remove_tokens_spares_a_device_that_registered_again_since(
    devices: Devices, clock: VirtualClock
) -> None:
    await devices.register(body("old", deviceToken="shared"))
    await devices.register(body("stale", deviceToken="stale"))
    sent_at = clock()
    clock.set(NOW + 30)
    await devices.register(body("old", deviceToken="shared"))  # re-registered after the send
    assert await devices.remove_tokens(["shared", "stale"], before=sent_at) == 1
    assert (await devices.get("old")).device_token == "shared"
    with pytest.raises(UnknownDeviceError):
        await devices.get("stale")


async def test_purge_expired_deletes_the_rows_of_expired_registrations(
    devices: Devices, clock: VirtualClock, store: SqliteStore
) -> None:
    await devices.register(body("a", channels=["x", "y"], expiration=NOW + 10))
    await devices.register(body("b", channels=["x"], expiration=NOW + 20))
    await devices.register(body("c", channels=["x"]))
    assert await devices.purge_expired() == 0
    assert await devices.purge_expired(now=NOW + 10) == 1
    clock.set(NOW + 25)
    assert await devices.purge_expired() == 1
    assert await count_rows(store, "device_registrations") == 1
    assert await count_rows(store, "registration_channels") == 1
    assert ids(await devices.audience("x")) == ["c"]


# -- errors ---------------------------------------------------------------------------------


def test_the_error_classes_carry_backendless_codes() -> None:
    errors: list[BrokerError] = [
        UnknownDeviceError("x"),
        CannotUnregisterError("x"),
        InvalidExpirationError("x"),
        InvalidRegistrationError("x"),
        MissingDeviceIdError(),
    ]
    assert [error.code for error in errors] == [5000, 5001, 5004, 5005, 5011]
    assert all(isinstance(error, BrokerError) for error in errors)
