"""What the transports share at run time: each app's broker, accounts, devices, permissions."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from broker import Broker
from broker.accounts import Accounts
from broker.devices import Devices
from broker.outbox import Outbox
from broker.permissions import Permissions
from broker.polling import PollingSubscriptions
from broker.push_templates import PushTemplates
from broker.ratelimit import RateLimiter
from transports.app_keys import WrongAppError, find_app
from transports.metrics import Metrics


@dataclass
class AppRuntime:
    app_id: str
    api_keys: tuple[str, ...]
    broker: Broker
    accounts: Accounts
    devices: Devices
    permissions: Permissions
    polling: PollingSubscriptions
    admin_key: str = ""
    outbox: Outbox | None = None
    templates: PushTemplates | None = None


@dataclass
class Tidings:
    apps: Mapping[str, AppRuntime]
    metrics: Metrics
    public_url: str = ""
    cors_origins: tuple[str, ...] = ("*",)
    max_body_size: int = 2_097_152
    api_key_limiter: RateLimiter | None = None
    user_limiter: RateLimiter | None = None

    def app(self, app_id: str, api_key: str) -> AppRuntime:
        """The app, if `api_key` is one of its keys (compared in constant time); else 2002."""
        return find_app(self.apps, app_id, api_key)

    def admin(self, app_id: str, admin_key: str) -> AppRuntime:
        """The app, if `admin_key` is its (non-empty) admin key; else 2002."""
        app = self.apps.get(app_id)
        if (
            app is None
            or not app.admin_key
            or not hmac.compare_digest(admin_key.encode(), app.admin_key.encode())
        ):
            raise WrongAppError()
        return app

    def limit_api_key(self, api_key: str) -> None:
        if self.api_key_limiter is not None:
            self.api_key_limiter.take(api_key, "requests for this API key")

    def limit(self, api_key: str, user_id: str | None) -> None:
        """The rate limits of one request (999 when over): its API key's, then its user's."""
        self.limit_api_key(api_key)
        if user_id is not None:
            self.limit_user(user_id)

    def limit_user(self, user_id: str) -> None:
        if self.user_limiter is not None:
            self.user_limiter.take(user_id, "requests for this user")
