"""What the three providers share: the HTTP client, bounded concurrent sends, Retry-After."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC
from typing import Final, Protocol

import httpx
import msgspec

from broker.notifications import Notification, Outcome, SendResult

Clock = Callable[[], float]  # epoch seconds: token lifetimes, JWT claims, Retry-After dates

log = logging.getLogger("tidings.push")
encode_json: Final = msgspec.json.Encoder().encode


def make_client(*, ca_file: str, timeout: float, concurrency: int) -> httpx.AsyncClient:
    """An HTTP/2 client (HTTP/1.1 when the server offers only that) trusting `ca_file` too."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    # HTTP/2 multiplexes every request to a host on one connection; the pool
    # only matters for HTTP/1.1 servers (some Web Push services).
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(http2=True, verify=context, timeout=timeout, limits=limits)


class SendPool:
    """Runs a provider's sends, at most `concurrency` at a time across all its `send` calls.

    The bound is the provider's, not a call's: the outbox keeps a few batches in
    flight, and IOS and OSX share one APNs provider.
    """

    def __init__(self, concurrency: int) -> None:
        self.size = max(1, concurrency)
        self._slots = asyncio.Semaphore(self.size)

    async def run(
        self,
        notifications: Sequence[Notification],
        send_one: Callable[[Notification], Awaitable[SendResult]],
    ) -> list[SendResult]:
        """`send_one` each notification concurrently; the results in order."""
        results: list[SendResult] = [_NOT_SENT] * len(notifications)
        jobs = iter(enumerate(notifications))

        async def worker() -> None:
            for index, notification in jobs:  # one shared iterator: each job is taken once
                async with self._slots:
                    try:
                        results[index] = await send_one(notification)
                    except Exception as exc:  # a bug in one send must not lose the others
                        log.exception("push send failed", extra={"key": notification.key})
                        results[index] = SendResult(Outcome.FAILED, error=describe(exc))

        async with asyncio.TaskGroup() as group:
            for _ in range(min(len(notifications), self.size)):
                group.create_task(worker())
        return results


_NOT_SENT: Final = SendResult(Outcome.RETRY, error="not sent")


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def network_error(exc: Exception) -> SendResult:
    """Connection refused or reset, TLS failure, timeout (an `httpx.TransportError` or an
    `h2_client.H2Error`): the provider may do better later."""
    return SendResult(Outcome.RETRY, error=describe(exc))


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


def retry_after(response: _HasHeaders, now: float) -> float | None:
    """The Retry-After header in seconds from `now`: delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def should_retry(status: int) -> bool:
    """429 Too Many Requests and 5xx: the service may take the same request later."""
    return status == 429 or status >= 500
