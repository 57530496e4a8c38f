"""Token buckets per key (API key, user): `rate` requests per second with bursts of `burst`.

Pure and clock-injected. The table of buckets is bounded: when full, the
bucket idle the longest is forgotten (it would be full again by now anyway,
or close to it), so a flood of distinct keys cannot grow memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from broker._errors import BrokerError


class RateLimitedError(BrokerError):
    def __init__(self, message: str) -> None:
        super().__init__(999, message)


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, rate if burst is None else burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def take(self, key: str, what: str = "requests") -> None:
        """Spend one token of `key`'s bucket, or raise 999 (HTTP 429)."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            raise RateLimitedError(f"too many {what}: at most {self.rate:g} per second")
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
