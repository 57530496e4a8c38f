"""Finding the app a request names, by app id and API key, and its user by user-token
(REST, websockets and socket.io alike)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Protocol, TypeVar

from broker import BrokerError
from broker.accounts import Accounts

ANONYMOUS = ("NotAuthenticatedUser",)


class WrongAppError(BrokerError):
    def __init__(self) -> None:
        super().__init__(2002, "wrong application id or API key")


class _Keyed(Protocol):
    @property
    def api_keys(self) -> tuple[str, ...]: ...


A = TypeVar("A", bound=_Keyed)


def find_app(apps: Mapping[str, A], app_id: str, api_key: str) -> A:
    """The app, if `api_key` is one of its keys (compared in constant time); else 2002."""
    app = apps.get(app_id)
    if app is None or not any(
        hmac.compare_digest(api_key.encode(), key.encode()) for key in app.api_keys
    ):
        raise WrongAppError()
    return app


class _WithAccounts(Protocol):
    @property
    def accounts(self) -> Accounts | None: ...


async def find_user(
    app: _WithAccounts, user_token: str | None
) -> tuple[str | None, tuple[str, ...]]:
    """The user's object id (None: anonymous) and roles; 3064 for a token not valid."""
    if user_token is None:
        return None, ANONYMOUS
    if app.accounts is None:
        raise BrokerError(3064, "this server has no users: user tokens are not accepted")
    user = await app.accounts.authenticate(user_token)
    return user.object_id, user.roles
