"""The pinned public API of the in-process Broker, as a user drives it."""

from __future__ import annotations

import asyncio
import enum
import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from broker import (
    Broker,
    BrokerError,
    BrokerStatistics,
    Message,
    MessageStatus,
    PublishResult,
    SelectorError,
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_publish_reaches_matching_subscriber_with_all_fields() -> None:
    clock = FakeClock()
    async with Broker(clock=clock) as broker:
        sub = broker.subscribe("news", selector="city = 'Tokyo' AND priority > 3")
        async with sub:
            result = await broker.publish(
                "news",
                {"text": "hi"},
                headers={"city": "Tokyo", "priority": 5},
                publisher_id="svc-1",
            )
            await broker.publish("news", {"text": "no"}, headers={"city": "Osaka", "priority": 9})
            assert isinstance(result, PublishResult)
            assert result.status is MessageStatus.PUBLISHED
            assert result.message_id.startswith("message:")
            assert len(result.message_id) == len("message:") + 36
            msg = await anext(sub)
            assert isinstance(msg, Message)
            assert msg.message == {"text": "hi"}
            assert msg.headers == {"city": "Tokyo", "priority": 5}
            assert msg.channel == "news"
            assert msg.message_id == result.message_id
            assert msg.publisher_id == "svc-1"
            assert msg.timestamp == 1_700_000_000_000
            assert sub.pending == 0


async def test_publish_returns_after_the_message_is_queued() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        await broker.publish("c", 1)
        # No yield to the loop happened, yet the message is already waiting.
        assert sub.pending == 1


async def test_subscription_is_registered_only_when_entered() -> None:
    async with Broker() as broker:
        sub = broker.subscribe("c")
        await broker.publish("c", "before")
        async with sub:
            await broker.publish("c", "after")
            assert (await anext(sub)).message == "after"


async def test_invalid_selector_raises_at_subscribe_call() -> None:
    async with Broker() as broker:
        with pytest.raises(SelectorError) as info:
            broker.subscribe("c", selector="a = 'unterminated")
        assert info.value.code == 5050
        assert info.value.position == 4
        assert "position 4" in info.value.message


async def test_order_is_preserved_per_publisher() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        for i in range(100):
            await broker.publish("c", i)
        received = [(await anext(sub)).message for _ in range(100)]
        assert received == list(range(100))


async def test_consumer_task_wakes_for_new_messages() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        got: list[object] = []

        async def consume() -> None:
            async for msg in sub:
                got.append(msg.message)
                if len(got) == 3:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # the consumer is now waiting on an empty subscription
        for i in range(3):
            await broker.publish("c", i)
            await asyncio.sleep(0)
        await asyncio.wait_for(task, 5)
        assert got == [0, 1, 2]


async def test_several_consumers_waiting_on_one_selector_group_all_wake() -> None:
    async with Broker() as broker:
        subs = [broker.subscribe("c", selector="x = 1") for _ in range(3)]
        for sub in subs:
            await sub.__aenter__()
        tasks = [asyncio.create_task(anext(sub)) for sub in subs]
        await asyncio.sleep(0)
        await broker.publish("c", "hello", headers={"x": 1})
        results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert [m.message for m in results] == ["hello"] * 3


async def test_breaking_out_of_iteration_loses_nothing() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        for i in range(10):
            await broker.publish("c", i)
        first: list[object] = []
        async for msg in sub:
            first.append(msg.message)
            if len(first) == 3:
                break
        assert sub.pending == 7
        rest = [(await anext(sub)).message for _ in range(7)]
        assert first + rest == list(range(10))


async def test_payload_is_delivered_in_json_form_not_the_publishers_object() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        payload = {"items": (1, 2), "when": datetime(2024, 1, 2, tzinfo=UTC)}
        headers = {"k": "v"}
        await broker.publish("c", payload, headers=headers)
        payload["items"] = ()
        headers["k"] = "changed"
        msg = await anext(sub)
        assert msg.message == {"items": [1, 2], "when": "2024-01-02T00:00:00Z"}
        assert msg.headers == {"k": "v"}


async def test_every_subscriber_gets_the_same_message_object() -> None:
    async with Broker() as broker, broker.subscribe("c") as a, broker.subscribe("c") as b:
        await broker.publish("c", {"big": "x" * 1000})
        assert (await anext(a)) is (await anext(b))


async def test_identical_selectors_share_one_group_evaluated_once() -> None:
    async with Broker() as broker:
        subs = [
            broker.subscribe("c", selector="price>5"),
            broker.subscribe("c", selector="price  >  5"),
            broker.subscribe("c", selector="price > 5"),
        ]
        assert {s.selector for s in subs} == {"price > 5"}
        for sub in subs:
            await sub.__aenter__()
        assert len(broker._channels["c"].groups) == 1
        await broker.publish("c", "m", headers={"price": 6})
        assert [(await anext(s)).message for s in subs] == ["m"] * 3
        for sub in subs:
            sub.close()


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


async def test_header_subclasses_are_unwrapped_to_plain_values() -> None:
    async with Broker() as broker, broker.subscribe("c", selector="color = 'red'") as sub:
        await broker.publish("c", 1, headers={"color": Color.RED, "level": Level.HIGH})
        msg = await anext(sub)
        assert type(msg.headers["color"]) is str
        assert type(msg.headers["level"]) is int
        assert msg.headers == {"color": "red", "level": 3}


async def test_statistics_count_per_channel() -> None:
    async with Broker() as broker:
        async with broker.subscribe("a") as sub_a, broker.subscribe("a", selector="x = 1"):
            await broker.publish("a", 1, headers={"x": 1})
            await broker.publish("a", 2, headers={"x": 2})
            await broker.publish("b", 3)
            stats = broker.statistics()
            assert isinstance(stats, BrokerStatistics)
            assert stats.channels["a"].subscribers == 2
            assert stats.channels["a"].published == 2
            assert stats.channels["a"].delivered == 3
            assert stats.channels["b"].published == 1
            assert stats.channels["b"].delivered == 0
            assert (stats.subscribers, stats.published, stats.delivered) == (2, 3, 3)
            assert msgspec.to_builtins(stats)["channels"]["a"]["dropped"] == 0
            sub_a.close()
            assert broker.statistics().channels["a"].subscribers == 1
        assert broker.statistics().channels["a"].subscribers == 0
        # statistics are a snapshot, not live objects
        snapshot = broker.statistics()
        await broker.publish("a", 4)
        assert snapshot.channels["a"].published == 2


async def test_empty_channel_fan_out_structures_are_freed() -> None:
    async with Broker() as broker:
        async with broker.subscribe("c", selector="x = 1"), broker.subscribe("c", selector="y > 1"):
            async with broker.subscribe("c"):
                pass
            channel = broker._channels["c"]
            assert not channel.idle
        assert channel.idle
        assert not channel.index
        assert not channel.scan
        assert channel.all is None
        # the channel itself still exists for clients: delete works, publish still counts
        await broker.publish("c", 1)
        assert broker.statistics().channels["c"].published == 1


async def test_status_of_published_and_unknown_messages() -> None:
    async with Broker() as broker:
        result = await broker.publish("c", "x")
        status = await broker.get_status(result.message_id)
        assert status == PublishResult(result.message_id, MessageStatus.PUBLISHED)
        unknown = await broker.get_status("message:00000000-0000-4000-8000-000000000000")
        assert unknown.status is MessageStatus.UNKNOWN
        assert (await broker.get_status(42)).status is MessageStatus.UNKNOWN  # type: ignore[arg-type]


async def test_statuses_expire_after_retention_and_beyond_max_count() -> None:
    clock = FakeClock()
    async with Broker(clock=clock, status_retention=60, max_statuses=3) as broker:
        first = await broker.publish("c", 1)
        clock.now += 59
        assert (await broker.get_status(first.message_id)).status == "published"
        clock.now += 1
        assert (await broker.get_status(first.message_id)).status == "unknown"
        ids = [(await broker.publish("c", i)).message_id for i in range(4)]
        statuses = [(await broker.get_status(i)).status for i in ids]
        assert statuses == ["unknown", "published", "published", "published"]


async def test_status_retention_accepts_timedelta() -> None:
    clock = FakeClock()
    async with Broker(clock=clock, status_retention=timedelta(minutes=1)) as broker:
        r = await broker.publish("c", 1)
        clock.now += 61
        assert (await broker.get_status(r.message_id)).status == "unknown"


async def test_cancel_of_a_published_or_unknown_message_is_5040() -> None:
    async with Broker() as broker:
        result = await broker.publish("c", 1)
        with pytest.raises(BrokerError) as info:
            await broker.cancel(result.message_id)
        assert info.value.code == 5040
        assert "published" in info.value.message
        with pytest.raises(BrokerError) as info:
            await broker.cancel("message:nope")
        assert info.value.code == 5040


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 256,
        "a/b",
        "a b",
        "tab\there",
        "nl\n",
        "nul\x00",
        "del\x7f",
        "registrations",
        "channels",
        "push",
        "pushtemplates",
        "PUSH",
        "message:123",
        None,
        5,
    ],
)
async def test_invalid_channel_names_are_5044(name: object) -> None:
    async with Broker() as broker:
        with pytest.raises(BrokerError) as info:
            await broker.publish(name, 1)  # type: ignore[arg-type]
        assert info.value.code == 5044
        with pytest.raises(BrokerError) as info:
            broker.subscribe(name)  # type: ignore[arg-type]
        assert info.value.code == 5044
        assert broker.statistics().channels == {}


async def test_valid_unusual_channel_names() -> None:
    async with Broker() as broker:
        for name in ["x" * 255, "news.sports", "Ünïcode-✓", "default", "pushy", "message"]:
            async with broker.subscribe(name) as sub:
                await broker.publish(name, name)
                assert (await anext(sub)).message == name


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        (["a"], "mapping"),
        ({1: "a"}, "header names"),
        ({"a": [1]}, "must be str"),
        ({"a": {"b": 1}}, "must be str"),
        ({"a": math.nan}, "finite"),
        ({"a": math.inf}, "finite"),
        ({"a": b"x"}, "must be str"),
    ],
)
async def test_invalid_headers_are_8002(headers: object, fragment: str) -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", 1, headers=headers)  # type: ignore[arg-type]
        assert info.value.code == 8002
        assert fragment in info.value.message
        assert isinstance(info.value, ValueError)
        assert sub.pending == 0


class InfiniteFloat(float):
    pass


class Name(str):
    __slots__ = ()


async def test_header_float_subclass_and_str_subclass_keys() -> None:
    async with Broker() as broker, broker.subscribe("c") as sub:
        await broker.publish("c", 1, headers={Name("k"): InfiniteFloat(1.5)})
        msg = await anext(sub)
        assert msg.headers == {"k": 1.5}
        assert type(next(iter(msg.headers))) is str
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", 1, headers={"k": InfiniteFloat("inf")})
        assert info.value.code == 8002


async def test_publisher_id_must_be_a_string() -> None:
    async with Broker() as broker:
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", 1, publisher_id=5)  # type: ignore[arg-type]
        assert info.value.code == 8002


async def test_payload_must_be_json_encodable() -> None:
    async with Broker() as broker:
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", object())
        assert info.value.code == 8002
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", {"set": {1, object()}})
        assert info.value.code == 8002


async def test_exceptions_in_the_broker_body_propagate_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with Broker():
            raise KeyError("mine")


async def test_message_size_limit_is_5052() -> None:
    async with Broker(max_message_size=100) as broker, broker.subscribe("c") as sub:
        await broker.publish("c", "x" * 90)
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", "x" * 100)
        assert info.value.code == 5052
        with pytest.raises(BrokerError) as info:
            await broker.publish("c", "x", headers={"h": "y" * 100})
        assert info.value.code == 5052
        assert sub.pending == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"max_message_size": 0}, {"max_statuses": 0}, {"status_retention": -1}],
)
def test_broker_options_are_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(BrokerError) as info:
        Broker(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == 8002


async def test_subscribe_options_are_validated() -> None:
    async with Broker() as broker:
        for kwargs in (
            {"max_pending": 0},
            {"max_pending": 1.5},
            {"max_pending": True},
            {"overflow": "block"},
            {"selector": 5},
        ):
            with pytest.raises(BrokerError) as info:
                broker.subscribe("c", **kwargs)  # type: ignore[arg-type]
            assert info.value.code == 8002


async def test_using_a_broker_that_is_not_running_is_an_error() -> None:
    broker = Broker()
    with pytest.raises(RuntimeError, match="not running"):
        await broker.publish("c", 1)
    sub = broker.subscribe("c")
    with pytest.raises(RuntimeError, match="not running"):
        await sub.__aenter__()
    async with broker:
        pass
    with pytest.raises(RuntimeError, match="not running"):
        await broker.publish("c", 1)
    with pytest.raises(RuntimeError, match="only once"):
        await broker.__aenter__()


async def test_broker_exit_ends_subscriptions_after_what_they_hold() -> None:
    got: list[object] = []
    async with Broker() as broker:
        sub = broker.subscribe("c")
        await sub.__aenter__()
        await broker.publish("c", 1)
        await broker.publish("c", 2)
    async for msg in sub:
        got.append(msg.message)
    assert got == [1, 2]
    assert sub.closed


async def test_delete_channel_ends_subscriptions_with_5010() -> None:
    async with Broker() as broker:
        async with broker.subscribe("c") as sub:
            await broker.publish("c", "held")
            await broker.delete_channel("c")
            assert (await anext(sub)).message == "held"
            with pytest.raises(BrokerError) as info:
                await anext(sub)
            assert info.value.code == 5010
        assert "c" not in broker.statistics().channels
        with pytest.raises(BrokerError) as info:
            await broker.delete_channel("c")
        assert info.value.code == 5010
        with pytest.raises(BrokerError) as info:
            await broker.delete_channel(None)  # type: ignore[arg-type]
        assert info.value.code == 5010
        # a deleted channel comes back on its next use
        await broker.publish("c", 1)
        await broker.delete_channel("c")


async def test_delete_channel_ends_async_for_with_5010() -> None:
    async with Broker() as broker, broker.subscribe("c", selector="x = 1") as sub:
        await broker.publish("c", "m", headers={"x": 1})
        await broker.delete_channel("c")
        got = []
        with pytest.raises(BrokerError) as info:
            async for msg in sub:
                got.append(msg.message)
        assert info.value.code == 5010
        assert got == ["m"]


def test_broker_error_text() -> None:
    error = BrokerError(5040, "nope")
    assert str(error) == "[5040] nope"
    assert repr(error) == "BrokerError(5040, 'nope')"
    assert (error.code, error.message) == (5040, "nope")
