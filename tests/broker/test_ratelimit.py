from __future__ import annotations

import pytest

from broker import BrokerError
from broker.ratelimit import RateLimiter


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_burst_then_its_rate_and_other_keys_are_apart() -> None:
    clock = Clock()
    limiter = RateLimiter(2, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(BrokerError) as info:
        limiter.take("a", "requests for this API key")
    assert info.value.code == 999
    assert "requests for this API key" in info.value.message
    limiter.take("b")  # another key has its own bucket
    clock.now += 0.5  # one token back at 2 per second
    limiter.take("a")
    with pytest.raises(BrokerError):
        limiter.take("a")
    clock.now += 100
    for _ in range(3):  # refills up to the burst, no further
        limiter.take("a")
    with pytest.raises(BrokerError):
        limiter.take("a")


def test_the_table_of_keys_is_bounded_forgetting_the_idlest() -> None:
    clock = Clock()
    limiter = RateLimiter(1, max_keys=2, clock=clock)
    limiter.take("a")
    limiter.take("b")
    limiter.take("c")  # "a" is forgotten, so it starts again with a full bucket
    limiter.take("a")
    with pytest.raises(BrokerError):
        limiter.take("a")


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)
