"""`tidings serve` settings: a TOML file (`--config`), overridden by command-line flags.

[server]                 # every key optional; these are the defaults
host = "127.0.0.1"
port = 8080              # 0 picks a free port
ws_port = 8081
data_dir = "./data"
log_level = "info"
public_url = ""          # the origin /info gives as rtURL; default: the request's Host
cors_origins = ["*"]
max_body_size = 2097152  # bytes; larger request bodies answer 5052 (HTTP 413)

[limits]
max_message_size = 1048576
max_scheduled = 1000000
status_retention = 86400     # seconds
max_statuses = 100000
poll_ttl = 60                # seconds a polling subscription lives without a poll
max_polling_subscriptions = 10000

[rate_limit]             # off unless set: requests per second, and burst
per_api_key = 0
per_user = 0
burst = 0                # 0: one second's worth

[websocket]              # see docs/PROTOCOL.md
max_frame_size = 1114112 # bytes a client frame may hold
max_subscriptions = 100  # per connection
max_pending = 1000       # messages queued per subscription before it is a slow consumer
write_buffer = 1048576   # bytes of socket write buffer per connection
slow_consumer_timeout = 5
max_connections_per_key = 20000
auth_timeout = 10

[realtime]               # the socket.io endpoint of the Backendless SDKs, at /<appId>/ on port
ping_interval = 25       # seconds between engine.io pings
ping_timeout = 20        # seconds a client has to answer one
max_payload = 1000000    # bytes of one packet batch (POST body or websocket message)
connect_timeout = 10     # seconds from the handshake to the namespace connect
resume_window = 30       # seconds a dropped client's listeners wait for its reconnect
max_parked = 10000       # dropped clients waiting at once
# listeners share [websocket]'s max_pending, max_subscriptions, slow_consumer_timeout,
# max_connections_per_key and revalidate_every

[push.fcm]               # each provider is off unless configured; see docs/push.md
service_account_file = "firebase-service-account.json"
[push.apns]
team_id = "TEAM"
key_id = "KEY"
key_file = "AuthKey_KEY.p8"
topic = "com.example.app"
[push.webpush]
vapid_private_key_file = "vapid.pem"
subject = "mailto:ops@example.com"
[push.outbox]
max_attempts = 8
[push.templates.welcome]
message = "Welcome, {name}!"
headers = { "ios-alert-title" = "Hello" }
channel = "default"

[users]
token_ttl = 2592000      # seconds a user-token lives (30 days)

[[apps]]                 # none: a generated pair, kept in the data dir
id = "my-app"
api_keys = ["my-key"]

[permissions]            # see docs/operations.md
default = { PUBLISH = "GRANT", SUBSCRIBE = "GRANT", DELETE = "GRANT" }
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from transports.engineio import EngineSettings
from transports.push_providers import PushSettings

LogLevel = Literal["debug", "info", "warning", "error"]


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    ws_port: int = 8081
    data_dir: str = "./data"
    log_level: LogLevel = "info"
    public_url: str = ""
    cors_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    max_body_size: int = 2_097_152


class Limits(msgspec.Struct, forbid_unknown_fields=True):
    max_message_size: int = 1_048_576
    max_scheduled: int = 1_000_000
    status_retention: float = 86_400.0
    max_statuses: int = 100_000
    poll_ttl: float = 60.0
    max_polling_subscriptions: int = 10_000


class RateLimits(msgspec.Struct, forbid_unknown_fields=True):
    per_api_key: float = 0.0
    per_user: float = 0.0
    burst: float = 0.0


class WebsocketSettings(msgspec.Struct, forbid_unknown_fields=True):
    max_frame_size: int = 1_114_112
    max_subscriptions: int = 100
    max_pending: int = 1000
    write_buffer: int = 1_048_576
    slow_consumer_timeout: float = 5.0
    max_connections_per_key: int = 20_000
    auth_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    max_batch: int = 1000  # messages of one subscription in one frame
    revalidate_every: float = 60.0  # seconds between checks that user tokens are still valid


class OutboxSettings(msgspec.Struct, forbid_unknown_fields=True):
    batch: int = 500  # sends per provider call
    in_flight: int = 4  # provider calls at once
    max_attempts: int = 8
    backoff_min: float = 1.0  # seconds before the first retry (doubling, with jitter)
    backoff_max: float = 3600.0
    report_retention: float = 86_400.0


class PushConfig(PushSettings, forbid_unknown_fields=True):
    """``[push]``: the providers (``fcm``, ``apns``, ``webpush``), the outbox, templates."""

    outbox: OutboxSettings = msgspec.field(default_factory=OutboxSettings)
    templates: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


class UserSettings(msgspec.Struct, forbid_unknown_fields=True):
    token_ttl: float = 30 * 86_400.0


class AppSettings(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    api_keys: list[str]
    admin_key: str = ""  # enables the admin endpoints (header `admin-key`); empty: off


class Config(msgspec.Struct, forbid_unknown_fields=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    limits: Limits = msgspec.field(default_factory=Limits)
    rate_limit: RateLimits = msgspec.field(default_factory=RateLimits)
    users: UserSettings = msgspec.field(default_factory=UserSettings)
    websocket: WebsocketSettings = msgspec.field(default_factory=WebsocketSettings)
    realtime: EngineSettings = msgspec.field(default_factory=EngineSettings)
    push: PushConfig = msgspec.field(default_factory=PushConfig)
    apps: list[AppSettings] = msgspec.field(default_factory=list)
    permissions: dict[str, Any] = msgspec.field(default_factory=dict)


class ConfigError(Exception):
    """The config file is missing, not TOML, or has a wrong key or value (says which)."""


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    try:
        with open(path, "rb") as file:
            raw = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    try:
        return msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
