"""What the websocket and socket.io servers share about their live connections: how many
each API key holds, and re-checking their users when accounts change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol

from broker.accounts import Accounts


class PerKeyCount:
    """Open connections per API key; the refusal past the limit is the caller's."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def take(self, api_key: str, limit: int) -> bool:
        count = self._counts.get(api_key, 0)
        if count >= limit:
            return False
        self._counts[api_key] = count + 1
        return True

    def give_back(self, api_key: str) -> None:
        count = self._counts[api_key] - 1
        if count:
            self._counts[api_key] = count
        else:
            del self._counts[api_key]


class _WithAccounts(Protocol):
    @property
    def accounts(self) -> Accounts | None: ...


class _Live(Protocol):
    user_token: str | None

    def revalidate_soon(self) -> None: ...


@asynccontextmanager
async def users_watched(
    apps: Iterable[_WithAccounts], connections: Collection[_Live], every: float
) -> AsyncIterator[None]:
    """While entered, the connections with a user re-check it when any app's accounts
    change (logout, roles) and every `every` seconds (expiry)."""

    def changed() -> None:
        for connection in list(connections):
            if connection.user_token is not None:
                connection.revalidate_soon()

    async def periodically() -> None:
        while True:
            await asyncio.sleep(every)
            changed()

    async with AsyncExitStack() as stack:
        for app in apps:
            if app.accounts is not None:
                stack.callback(app.accounts.watch(changed))
        task = asyncio.create_task(periodically())
        try:
            yield
        finally:
            task.cancel()
