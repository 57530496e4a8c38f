"""The push providers against fake FCM, APNs and Web Push services (tests/transports/push_fakes)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from broker.notifications import Notification, Outcome, SendResult, build_payload
from transports.push_providers import (
    ApnsProvider,
    ApnsSettings,
    FcmProvider,
    FcmSettings,
    PushSettings,
    WebPushProvider,
    WebPushSettings,
    build_providers,
    close_providers,
)

from .push_fakes import (
    closed_port,
    fake_apns,
    fake_fcm,
    fake_webpush,
    http_date,
    write_service_account,
    write_vapid_key,
)


class Clock:
    """Epoch seconds that only move when told: token lifetimes without sleeping."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def note(
    os: str,
    token: str,
    key: int = 0,
    text: str = "hello",
    headers: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
) -> Notification:
    return Notification(
        key=key,
        message_id="message-1",
        device_id=f"device-{key}",
        os=os,
        token=token,
        payload=payload if payload is not None else build_payload(os, text, headers or {}),
    )


def outcomes(results: Sequence[SendResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def apns_token(n: int) -> str:
    return f"{n:064x}"


# -- FCM ------------------------------------------------------------------------------------

ANDROID_HEADERS: dict[str, str | int | bool] = {
    "android-content-title": "Goal!",
    "android-ticker-text": "1-0",
    "android-action": "OPEN_MATCH",
    "android-image": "https://example.com/goal.png",
    "score": 1,
    "live": True,
}


async def test_fcm_send_has_oauth_and_the_android_payload(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_fcm(tmp_path, clock=clock) as fcm,
        aclosing(FcmProvider(fcm.settings, clock=clock)) as provider,
    ):
        results = await provider.send([note("ANDROID", "fcm-token-1", headers=ANDROID_HEADERS)])
    assert results == [SendResult(Outcome.SENT)]
    assert fcm.received == [("fcm-token-1", build_payload("ANDROID", "hello", ANDROID_HEADERS))]
    assert fcm.received[0][1]["data"] == {"score": "1", "live": "true"}
    send = fcm.requests[-1]
    assert send.path == "/v1/projects/tidings-test/messages:send"
    assert send.headers["authorization"].startswith("Bearer ya29.fake-")
    assert send.http_version == "2"
    assert fcm.token_requests == 1


async def test_fcm_fetches_the_access_token_once_and_refreshes_it_early(
    tmp_path: Path, clock: Clock
) -> None:
    async with (
        fake_fcm(tmp_path, clock=clock, expires_in=3600) as fcm,
        aclosing(FcmProvider(fcm.settings, clock=clock)) as provider,
    ):
        batch = [note("ANDROID", f"t{i}", key=i) for i in range(50)]
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 50
        assert fcm.token_requests == 1  # 50 concurrent sends, one token
        clock.advance(3600 - 300 - 1)  # not yet within five minutes of expiry
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 50
        assert fcm.token_requests == 1
        clock.advance(1)
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 50
        assert fcm.token_requests == 2
        tokens = {r.headers["authorization"] for r in fcm.requests if r.path != "/token"}
        assert len(tokens) == 2


async def test_fcm_refreshes_a_rejected_token_once(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_fcm(tmp_path, clock=clock) as fcm,
        aclosing(FcmProvider(fcm.settings, clock=clock)) as provider,
    ):
        assert outcomes(await provider.send([note("ANDROID", "a")])) == [Outcome.SENT]
        fcm.revoke_tokens()  # the next sends answer 401 UNAUTHENTICATED
        batch = [note("ANDROID", f"t{i}", key=i) for i in range(20)]
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 20
        assert fcm.token_requests == 2  # one refresh for the 20 rejected sends
        fcm.fail("always-401", 401)
        [result] = await provider.send([note("ANDROID", "always-401")])
        assert result.outcome is Outcome.FAILED
        assert "THIRD_PARTY_AUTH_ERROR" in (result.error or "")
        assert fcm.token_requests == 3  # refreshed once, then gave up


async def test_fcm_invalid_tokens_and_failures(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_fcm(tmp_path, clock=clock) as fcm,
        aclosing(FcmProvider(fcm.settings, clock=clock)) as provider,
    ):
        fcm.fail("gone", 404)  # UNREGISTERED
        fcm.fail("malformed", 400)  # INVALID_ARGUMENT on message.token
        fcm.fail("other-app", 403)  # SENDER_ID_MISMATCH
        bad_data = note("ANDROID", "ok", payload={"data": {"n": 1}})  # data values: strings
        results = await provider.send(
            [
                note("ANDROID", "gone"),
                note("ANDROID", "malformed"),
                note("ANDROID", "other-app"),
                bad_data,
            ]
        )
    assert outcomes(results) == [
        Outcome.INVALID_TOKEN,
        Outcome.INVALID_TOKEN,
        Outcome.FAILED,
        Outcome.FAILED,
    ]
    assert "UNREGISTERED" in (results[0].error or "")
    assert "SENDER_ID_MISMATCH" in (results[2].error or "")
    assert "invalid argument" in (results[3].error or "")
    assert fcm.received == []


async def test_fcm_retries_429_and_5xx_with_retry_after(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_fcm(tmp_path, clock=clock) as fcm,
        aclosing(FcmProvider(fcm.settings, clock=clock)) as provider,
    ):
        fcm.fail("busy", 429, retry_after=7, times=1)
        fcm.fail("down", 503, retry_after=http_date(clock.now + 120))
        fcm.fail("broken", 500)
        results = await provider.send(
            [note("ANDROID", "busy"), note("ANDROID", "down"), note("ANDROID", "broken")]
        )
        assert results[0] == SendResult(Outcome.RETRY, 7.0, results[0].error)
        assert "QUOTA_EXCEEDED" in (results[0].error or "")
        assert results[1].outcome is Outcome.RETRY
        assert results[1].retry_after == pytest.approx(120, abs=1)
        assert results[2] == SendResult(Outcome.RETRY, None, results[2].error)
        # `times=1`: the second try goes through
        assert outcomes(await provider.send([note("ANDROID", "busy")])) == [Outcome.SENT]


async def test_fcm_network_errors_retry(tmp_path: Path, clock: Clock) -> None:
    async with fake_fcm(tmp_path, clock=clock) as fcm:
        refused = msgspec.structs.replace(
            fcm.settings, base_url=f"https://127.0.0.1:{closed_port()}"
        )
        async with aclosing(FcmProvider(refused, clock=clock)) as provider:
            [result] = await provider.send([note("ANDROID", "a")])
            assert result.outcome is Outcome.RETRY
            assert "ConnectError" in (result.error or "")

        slow = msgspec.structs.replace(fcm.settings, timeout=0.5)
        async with aclosing(FcmProvider(slow, clock=clock)) as provider:
            assert outcomes(await provider.send([note("ANDROID", "warm-up")])) == [Outcome.SENT]
            fcm.slow("sluggish", 30)  # cut short when the fake stops
            results = await provider.send([note("ANDROID", "sluggish"), note("ANDROID", "quick")])
            assert outcomes(results) == [Outcome.RETRY, Outcome.SENT]
            assert "ReadTimeout" in (results[0].error or "")


async def test_fcm_token_endpoint_failures_are_shared_not_repeated(
    tmp_path: Path, clock: Clock
) -> None:
    async with fake_fcm(tmp_path, clock=clock) as fcm:
        # A key the fake does not know (a rotated service account): invalid_grant.
        stale = tmp_path / "stale-account.json"
        write_service_account(stale, fcm.token_uri)
        async with aclosing(
            FcmProvider(
                msgspec.structs.replace(fcm.settings, service_account_file=str(stale)), clock=clock
            )
        ) as provider:
            results = await provider.send([note("ANDROID", f"t{i}", key=i) for i in range(20)])
            assert outcomes(results) == [Outcome.FAILED] * 20
            assert "invalid_grant" in (results[0].error or "")
            assert fcm.token_requests == 1  # the waiting sends took the failure, no stampede

        # The token endpoint unreachable: retry later.
        unreachable = tmp_path / "unreachable-account.json"
        account = dict(fcm.account, token_uri=f"https://127.0.0.1:{closed_port()}/token")
        unreachable.write_text(json.dumps(account))
        async with aclosing(
            FcmProvider(
                msgspec.structs.replace(fcm.settings, service_account_file=str(unreachable)),
                clock=clock,
            )
        ) as provider:
            assert outcomes(await provider.send([note("ANDROID", "a")])) == [Outcome.RETRY]


async def test_fcm_mixed_batch_of_100_comes_back_in_order(tmp_path: Path, clock: Clock) -> None:
    expected: list[Outcome] = []
    batch: list[Notification] = []
    async with fake_fcm(tmp_path, clock=clock) as fcm:
        for i in range(100):
            token = f"device-{i}"
            batch.append(note("ANDROID", token, key=i, text=f"n{i}"))
            match i % 5:
                case 0:
                    fcm.fail(token, 404)
                    expected.append(Outcome.INVALID_TOKEN)
                case 1:
                    fcm.fail(token, 429, retry_after=3)
                    expected.append(Outcome.RETRY)
                case 2:
                    fcm.fail(token, 503, delay=0.05)
                    expected.append(Outcome.RETRY)
                case 3:
                    fcm.slow(token, 0.05)
                    expected.append(Outcome.SENT)
                case _:
                    expected.append(Outcome.SENT)
        async with aclosing(FcmProvider(fcm.settings, clock=clock)) as provider:
            results = await provider.send(batch)
    assert outcomes(results) == expected
    assert [r.retry_after for r in results[1::5]] == [3.0] * 20
    assert sorted(fcm.received) == sorted(
        (n.token, n.payload) for n, o in zip(batch, expected, strict=True) if o is Outcome.SENT
    )
    assert 1 < fcm.max_in_flight <= 100  # concurrent, not in turn


async def test_fcm_concurrency_bounds_requests_in_flight(tmp_path: Path, clock: Clock) -> None:
    async with fake_fcm(tmp_path, clock=clock) as fcm:
        settings = msgspec.structs.replace(fcm.settings, concurrency=4)
        async with aclosing(FcmProvider(settings, clock=clock)) as provider:
            batch = [note("ANDROID", f"t{i}", key=i) for i in range(40)]
            for n in batch:
                fcm.slow(n.token, 0.01)
            # two batches at once share the provider's bound
            first, second = await asyncio.gather(provider.send(batch), provider.send(batch))
    assert outcomes(first) == outcomes(second) == [Outcome.SENT] * 40
    assert fcm.max_in_flight == 4


# -- APNs -----------------------------------------------------------------------------------

IOS_HEADERS: dict[str, str | int] = {
    "ios-alert": "Goal!",
    "ios-alert-title": "Match",
    "ios-alert-subtitle": "Final",
    "ios-badge": 3,
    "ios-sound": "default",
    "ios-category": "MATCH",
    "match": 42,
}


async def test_apns_send_has_jwt_headers_and_the_ios_payload(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_apns(tmp_path, clock=clock) as apns,
        aclosing(ApnsProvider(apns.settings, clock=clock)) as provider,
    ):
        sends = [
            note("IOS", apns_token(1), key=1, headers=IOS_HEADERS),
            note("OSX", apns_token(2), key=2, text="on the mac"),
        ]
        results = await provider.send(sends)
        again = await provider.send(sends[:1])  # a retry of the same (message, device)
    assert outcomes(results + again) == [Outcome.SENT] * 3
    assert apns.received[:2] == [
        (apns_token(1), build_payload("IOS", "hello", IOS_HEADERS)),
        (apns_token(2), build_payload("OSX", "on the mac", {})),
    ]
    ios, osx, retry = apns.requests
    assert ios.path == f"/3/device/{apns_token(1)}"
    assert ios.http_version == "2"
    assert ios.headers["apns-topic"] == apns.topic
    assert osx.headers["apns-topic"] == apns.osx_topic
    assert ios.headers["apns-push-type"] == "alert"
    assert ios.headers["apns-priority"] == "10"
    assert uuid.UUID(ios.headers["apns-id"]) != uuid.UUID(osx.headers["apns-id"])
    assert retry.headers["apns-id"] == ios.headers["apns-id"]  # the same id when retried
    assert ios.headers["authorization"].startswith("bearer ")
    assert len(apns.jwts) == 1


async def test_apns_background_push(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_apns(tmp_path, clock=clock) as apns,
        aclosing(ApnsProvider(apns.settings, clock=clock)) as provider,
    ):
        silent = note("IOS", apns_token(1), payload={"aps": {"content-available": 1}, "k": "v"})
        assert outcomes(await provider.send([silent])) == [Outcome.SENT]
    [request] = apns.requests
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"


async def test_apns_jwt_is_reused_and_renewed_after_50_minutes(
    tmp_path: Path, clock: Clock
) -> None:
    async with (
        fake_apns(tmp_path, clock=clock) as apns,
        aclosing(ApnsProvider(apns.settings, clock=clock)) as provider,
    ):
        batch = [note("IOS", apns_token(i), key=i) for i in range(20)]
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 20
        clock.advance(49 * 60)
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 20
        assert len(apns.jwts) == 1
        clock.advance(60)
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 20
        assert len(apns.jwts) == 2  # and not 429 TooManyProviderTokenUpdates


async def test_apns_renews_a_jwt_rejected_as_expired(tmp_path: Path, clock: Clock) -> None:
    skew = [0.0]
    async with (
        fake_apns(tmp_path, clock=lambda: clock() + skew[0]) as apns,
        aclosing(ApnsProvider(apns.settings, clock=clock)) as provider,
    ):
        assert outcomes(await provider.send([note("IOS", apns_token(1))])) == [Outcome.SENT]
        # 40 minutes on for the provider (its JWT still fresh to it), 61 for APNs.
        clock.advance(40 * 60)
        skew[0] = 21 * 60
        assert outcomes(await provider.send([note("IOS", apns_token(2))])) == [Outcome.SENT]
    assert [r.status for r in apns.requests] == [200, 403, 200]
    assert len(apns.jwts) == 2


async def test_apns_invalid_tokens_and_failures(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_apns(tmp_path, clock=clock) as apns,
        aclosing(ApnsProvider(apns.settings, clock=clock)) as provider,
    ):
        apns.fail(apns_token(1), 410)  # Unregistered
        apns.fail(apns_token(2), 400, reason="DeviceTokenNotForTopic")
        apns.fail(apns_token(3), 400, reason="BadCollapseId")
        big = note("IOS", apns_token(4), payload={"aps": {"alert": "x" * 5000}})
        results = await provider.send(
            [
                note("IOS", apns_token(1)),
                note("IOS", apns_token(2)),
                note("IOS", "not-a-device-token"),  # the fake itself: BadDeviceToken
                note("IOS", apns_token(3)),
                big,
            ]
        )
    assert outcomes(results) == [
        Outcome.INVALID_TOKEN,
        Outcome.INVALID_TOKEN,
        Outcome.INVALID_TOKEN,
        Outcome.FAILED,
        Outcome.FAILED,
    ]
    assert [r.error for r in results] == [
        "HTTP 410 Unregistered",
        "HTTP 400 DeviceTokenNotForTopic",
        "HTTP 400 BadDeviceToken",
        "HTTP 400 BadCollapseId",
        "HTTP 413 PayloadTooLarge",
    ]


async def test_apns_wrong_key_fails(tmp_path: Path, clock: Clock) -> None:
    async with fake_apns(tmp_path, clock=clock) as apns, fake_apns(tmp_path) as other:
        wrong_key = msgspec.structs.replace(apns.settings, key_file=other.settings.key_file)
        async with aclosing(ApnsProvider(wrong_key, clock=clock)) as provider:
            [result] = await provider.send([note("IOS", apns_token(1))])
    assert result == SendResult(Outcome.FAILED, error="HTTP 403 InvalidProviderToken")


async def test_apns_retries_429_5xx_and_network_errors(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_apns(tmp_path, clock=clock) as apns,
        aclosing(ApnsProvider(apns.settings, clock=clock)) as provider,
    ):
        apns.fail(apns_token(1), 429, retry_after=30)
        apns.fail(apns_token(2), 503)
        results = await provider.send([note("IOS", apns_token(1)), note("IOS", apns_token(2))])
        assert results == [
            SendResult(Outcome.RETRY, 30.0, "HTTP 429 TooManyRequests"),
            SendResult(Outcome.RETRY, None, "HTTP 503 ServiceUnavailable"),
        ]
        refused = msgspec.structs.replace(
            apns.settings, base_url=f"https://127.0.0.1:{closed_port()}"
        )
        async with aclosing(ApnsProvider(refused, clock=clock)) as unreachable:
            assert outcomes(await unreachable.send([note("IOS", apns_token(1))])) == [Outcome.RETRY]


async def test_apns_mixed_batch_of_100_comes_back_in_order(tmp_path: Path, clock: Clock) -> None:
    async with fake_apns(tmp_path, clock=clock) as apns:
        expected = []
        for i in range(100):
            if i % 3 == 0:
                apns.fail(apns_token(i), 410, delay=0.02)
                expected.append(Outcome.INVALID_TOKEN)
            elif i % 3 == 1:
                apns.fail(apns_token(i), 500)
                expected.append(Outcome.RETRY)
            else:
                expected.append(Outcome.SENT)
        async with aclosing(ApnsProvider(apns.settings, clock=clock)) as provider:
            results = await provider.send([note("IOS", apns_token(i), key=i) for i in range(100)])
    assert outcomes(results) == expected
    assert len(apns.received) == 33
    assert apns.max_in_flight > 1


async def test_fake_apns_refuses_http_1_1(tmp_path: Path) -> None:
    async with fake_apns(tmp_path) as apns:
        context = ssl.create_default_context(cafile=apns.ca_file)
        async with httpx.AsyncClient(verify=context) as client:  # HTTP/1.1 only
            response = await client.post(f"{apns.origin}/3/device/{apns_token(1)}")
    assert response.status_code == 505
    assert apns.received == []


# -- Web Push -------------------------------------------------------------------------------


async def test_webpush_send_is_vapid_signed_and_encrypted(tmp_path: Path, clock: Clock) -> None:
    headers: dict[str, str | int] = {"web-title": "Goal!", "match": 42}
    async with (
        fake_webpush(tmp_path, clock=clock) as web,
        aclosing(WebPushProvider(web.settings, clock=clock)) as provider,
    ):
        browser = web.subscription("browser-1")
        results = await provider.send([note("WEB", browser, headers=headers)])
    assert results == [SendResult(Outcome.SENT)]
    assert web.received == [("browser-1", build_payload("WEB", "hello", headers))]
    [request] = web.requests
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "86400"
    assert request.headers["urgency"] == "normal"
    assert request.headers["authorization"].startswith("vapid t=")
    assert f"k={web.application_server_key}" in request.headers["authorization"]


async def test_webpush_vapid_jwt_is_reused_per_origin_for_an_hour(
    tmp_path: Path, clock: Clock
) -> None:
    async with (
        fake_webpush(tmp_path, clock=clock) as web,
        fake_webpush(tmp_path) as other,
        aclosing(WebPushProvider(web.settings, clock=clock)) as provider,
    ):
        batch = [note("WEB", web.subscription(f"b{i}"), key=i) for i in range(10)]
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 10
        clock.advance(3599)
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 10
        assert len(web.vapid_tokens) == 1
        clock.advance(1)
        assert outcomes(await provider.send(batch)) == [Outcome.SENT] * 10
        assert len(web.vapid_tokens) == 2
        # another push service: its own audience; the key is not its applicationServerKey
        [result] = await provider.send([note("WEB", other.subscription("x"))])
        assert result.outcome is Outcome.FAILED
        assert "HTTP 403" in (result.error or "")


async def test_webpush_answers(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_webpush(tmp_path, clock=clock) as web,
        aclosing(WebPushProvider(web.settings, clock=clock)) as provider,
    ):
        tokens = {name: web.subscription(name) for name in ("gone", "lost", "big", "busy", "down")}
        web.unsubscribe("gone")
        web.fail("lost", 404)
        web.fail("busy", 429, retry_after=60)
        web.fail("down", 502)
        big = note("WEB", tokens["big"], text="x" * 5000)
        not_a_subscription = note("WEB", '{"endpoint": "nowhere"}')
        keys = {"p256dh": "AAAA", "auth": "AAAA"}  # not a P-256 point, nor 16 bytes
        bad_keys = note("WEB", json.dumps({"endpoint": web.origin, "keys": keys}))
        results = await provider.send(
            [
                note("WEB", tokens["gone"]),
                note("WEB", tokens["lost"]),
                big,
                note("WEB", tokens["busy"]),
                note("WEB", tokens["down"]),
                not_a_subscription,
                bad_keys,
            ]
        )
    assert outcomes(results) == [
        Outcome.INVALID_TOKEN,
        Outcome.INVALID_TOKEN,
        Outcome.FAILED,
        Outcome.RETRY,
        Outcome.RETRY,
        Outcome.INVALID_TOKEN,
        Outcome.INVALID_TOKEN,
    ]
    assert "HTTP 413" in (results[2].error or "")
    assert results[3].retry_after == 60.0


async def test_webpush_network_errors_retry(tmp_path: Path, clock: Clock) -> None:
    async with (
        fake_webpush(tmp_path, clock=clock) as web,
        aclosing(WebPushProvider(web.settings, clock=clock)) as provider,
    ):
        token = json.loads(web.subscription("b"))
        token["endpoint"] = f"https://127.0.0.1:{closed_port()}/push/b"
        [result] = await provider.send([note("WEB", json.dumps(token))])
    assert result.outcome is Outcome.RETRY


async def test_webpush_mixed_batch_of_100_comes_back_in_order(tmp_path: Path, clock: Clock) -> None:
    async with fake_webpush(tmp_path, clock=clock) as web:
        batch, expected = [], []
        for i in range(100):
            name = f"b{i}"
            batch.append(note("WEB", web.subscription(name), key=i, text=f"n{i}"))
            if i % 4 == 0:
                web.fail(name, 410, delay=0.02)
                expected.append(Outcome.INVALID_TOKEN)
            elif i % 4 == 1:
                web.fail(name, 429)
                expected.append(Outcome.RETRY)
            else:
                expected.append(Outcome.SENT)
        async with aclosing(WebPushProvider(web.settings, clock=clock)) as provider:
            results = await provider.send(batch)
    assert outcomes(results) == expected
    assert sorted(payload["body"] for _, payload in web.received) == sorted(
        f"n{i}" for i in range(100) if i % 4 >= 2
    )


# -- configuration --------------------------------------------------------------------------


async def test_build_providers_makes_the_configured_ones(tmp_path: Path) -> None:
    assert build_providers(PushSettings()) == {}
    assert build_providers(msgspec.convert({"fcm": {}, "apns": {}}, PushSettings)) == {}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"fcm": {"api_key": "x"}}, PushSettings)
    async with (
        fake_fcm(tmp_path) as fcm,
        fake_apns(tmp_path) as apns,
        fake_webpush(tmp_path) as web,
    ):
        settings = PushSettings(fcm=fcm.settings, apns=apns.settings, webpush=web.settings)
        providers = build_providers(settings)
        assert sorted(providers) == ["ANDROID", "IOS", "OSX", "WEB"]
        assert providers["IOS"] is providers["OSX"]
        assert isinstance(providers["ANDROID"], FcmProvider)
        assert isinstance(providers["WEB"], WebPushProvider)
        only_web = build_providers(PushSettings(webpush=web.settings))
        assert list(only_web) == ["WEB"]
        await close_providers(providers)
        await close_providers(only_web)
        await close_providers(providers)  # closing twice is harmless
        # a closed provider answers rather than raising
        [result] = await providers["ANDROID"].send([note("ANDROID", "a")])
        assert result.outcome is Outcome.FAILED


def test_misconfigured_providers_fail_at_startup(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    write_vapid_key(key)
    with pytest.raises(ValueError, match="team_id"):
        ApnsProvider(ApnsSettings(key_file=str(key), key_id="K", topic="t"))
    with pytest.raises(ValueError, match="subject"):
        WebPushProvider(WebPushSettings(vapid_private_key_file=str(key)))
    with pytest.raises(ValueError, match="subject"):
        WebPushProvider(WebPushSettings(vapid_private_key_file=str(key), subject="mailto:nobody"))
    with pytest.raises(FileNotFoundError):  # py_vapid would have made a new key here
        WebPushProvider(
            WebPushSettings(
                vapid_private_key_file=str(tmp_path / "nope.pem"), subject="mailto:a@b.c"
            )
        )
    assert not (tmp_path / "nope.pem").exists()
    account = tmp_path / "account.json"
    write_service_account(account, "https://127.0.0.1/token")
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_text(json.loads(account.read_text())["private_key"])
    with pytest.raises(ValueError, match="not an APNs"):
        ApnsProvider(ApnsSettings(key_file=str(rsa_key), key_id="K", team_id="T", topic="t"))
    with pytest.raises(ValueError, match="not a VAPID"):
        WebPushProvider(
            WebPushSettings(vapid_private_key_file=str(rsa_key), subject="mailto:a@b.c")
        )
    with pytest.raises(msgspec.DecodeError):
        FcmProvider(FcmSettings(service_account_file=str(key)))
