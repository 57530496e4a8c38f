"""Polling subscriptions: what a REST client polling `messaging/<channel>/<id>` gets."""

from __future__ import annotations

import pytest

from broker import Broker, BrokerError
from broker.polling import PollingSubscriptions
from broker.testing import VirtualClock


async def test_a_poll_takes_what_arrived_since_the_last_one_filtered_by_selector() -> None:
    clock = VirtualClock()
    async with Broker(clock=clock) as broker:
        polling = PollingSubscriptions(broker, clock=clock)
        tokyo = await polling.subscribe("news", "city = 'Tokyo'")
        everything = await polling.subscribe("news", None)
        assert len(polling) == 2
        await broker.publish("news", 1, headers={"city": "Tokyo"})
        await broker.publish("news", 2, headers={"city": "Osaka"})
        assert [m.message for m in polling.poll("news", tokyo)] == [1]
        assert polling.poll("news", tokyo) == []
        assert [m.message for m in polling.poll("news", everything)] == [1, 2]
        polling.close()
        assert len(polling) == 0


async def test_a_poll_hands_out_at_most_max_batch_and_keeps_the_rest() -> None:
    async with Broker() as broker:
        polling = PollingSubscriptions(broker, max_batch=3)
        sub = await polling.subscribe("c", None)
        for number in range(7):
            await broker.publish("c", number)
        assert [[m.message for m in polling.poll("c", sub)] for _ in range(4)] == [
            [0, 1, 2],
            [3, 4, 5],
            [6],
            [],
        ]


async def test_an_unpolled_subscription_expires_after_ttl_and_then_reads_5002() -> None:
    clock = VirtualClock()
    async with Broker(clock=clock) as broker:
        polling = PollingSubscriptions(broker, ttl=60, clock=clock)
        sub = await polling.subscribe("c", None)
        kept = await polling.subscribe("c", None)
        clock.set(clock() + 59)
        polling.poll("c", kept)
        clock.set(clock() + 1)
        polling.sweep()
        assert len(polling) == 1
        with pytest.raises(BrokerError) as info:
            polling.poll("c", sub)
        assert info.value.code == 5002
        assert broker.statistics().subscribers == 1  # the expired one was unsubscribed
        with pytest.raises(BrokerError):
            polling.poll("other-channel", kept)  # an id belongs to its channel


async def test_a_deleted_channel_gives_its_pollers_what_they_held_then_5002() -> None:
    async with Broker() as broker:
        polling = PollingSubscriptions(broker)
        sub = await polling.subscribe("c", None)
        await broker.publish("c", "last")
        await broker.delete_channel("c")
        assert [m.message for m in polling.poll("c", sub)] == ["last"]
        with pytest.raises(BrokerError) as info:
            polling.poll("c", sub)
        assert info.value.code == 5002


async def test_the_number_of_polling_subscriptions_is_bounded() -> None:
    async with Broker() as broker:
        polling = PollingSubscriptions(broker, max_subscriptions=1)
        await polling.subscribe("c", None)
        with pytest.raises(BrokerError) as info:
            await polling.subscribe("c", None)
        assert info.value.code == 999


async def test_a_bad_selector_is_5050_and_opens_nothing() -> None:
    async with Broker() as broker:
        polling = PollingSubscriptions(broker)
        with pytest.raises(BrokerError) as info:
            await polling.subscribe("c", "a = ")
        assert info.value.code == 5050
        assert len(polling) == 0
