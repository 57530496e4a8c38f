"""`tidings serve`: each app's broker on SQLite in the data dir, the REST API and the
Backendless socket.io endpoint (transports.backendless_rt, at `/<appId>/`) on uvicorn,
and the native websocket endpoint (transports.websocket) on its own port.

Everything runs under one task group. The HTTP port opens only once every
broker and store is ready, so `/health` and `/info` answer as soon as it is
open. SIGINT / SIGTERM stop accepting, let requests in flight finish, close
websocket connections with 1001, then close the brokers (flushing their stores).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import signal
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import uvicorn

from broker import Broker
from broker.accounts import Accounts
from broker.devices import Devices
from broker.outbox import Outbox
from broker.permissions import Permissions
from broker.polling import PollingSubscriptions
from broker.push_templates import PushTemplates, check_template, from_config
from broker.ratelimit import RateLimiter
from broker.stores import SqliteStore
from transports import uvicorn_ws
from transports.backendless_rt import RealtimeServer
from transports.config import AppSettings, Config
from transports.metrics import Metrics
from transports.publish_fast_path import PublishFastPath
from transports.push_providers import build_providers, close_providers
from transports.rest import create_app
from transports.runtime import AppRuntime, Tidings
from transports.websocket import WebsocketServer, bind

log = logging.getLogger("tidings.server")

CREDENTIALS = "credentials.json"
SWEEP_EVERY = 5.0  # seconds between sweeps of expired polling subscriptions
PURGE_EVERY = 120  # sweeps between purges of expired device registrations (10 min)


def credentials(data_dir: Path) -> AppSettings:
    """The generated app id / API key pair of this data dir, created on first start."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CREDENTIALS
    if path.exists():
        saved = json.loads(path.read_text())
        return AppSettings(id=saved["app_id"], api_keys=[saved["api_key"]])
    app_id, api_key = secrets.token_hex(8).upper(), secrets.token_urlsafe(24)
    path.write_text(json.dumps({"app_id": app_id, "api_key": api_key}) + "\n")
    path.chmod(0o600)
    log.warning("generated credentials", extra={"app_id": app_id, "api_key": api_key})
    return AppSettings(id=app_id, api_keys=[api_key])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the serve() task group owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    config: Config,
    *,
    on_ready: Callable[[str], None] = print,
    stop: anyio.Event | None = None,
) -> None:
    """Run until SIGINT / SIGTERM (or `stop` is set); `on_ready` gets the `listening` line."""
    settings, limits = config.server, config.limits
    data_dir = Path(settings.data_dir)
    apps = config.apps
    if not apps:
        generated = await anyio.to_thread.run_sync(credentials, data_dir)
        on_ready(f"app-id={generated.id} api-key={generated.api_keys[0]}")
        apps = [generated]
    permissions = Permissions.from_config(config.permissions)
    push = config.push
    for name, template in push.templates.items():  # a bad template fails here, at startup
        check_template(name, from_config(template))
    providers = build_providers(push)  # wrong keys fail here too
    http = bind(settings.host, settings.port)  # a port in use fails here, before any store
    ws_sock = bind(settings.host, settings.ws_port)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(close_providers, providers)
        runtimes: dict[str, AppRuntime] = {}
        for app in apps:
            store = SqliteStore(data_dir / f"{app.id}.sqlite3")
            broker = await stack.enter_async_context(
                Broker(
                    store=store,
                    max_message_size=limits.max_message_size,
                    status_retention=limits.status_retention,
                    max_statuses=limits.max_statuses,
                    max_scheduled=limits.max_scheduled,
                )
            )
            accounts = Accounts(store, token_ttl=config.users.token_ttl)
            await accounts.open()
            devices = Devices(store)
            await devices.open()
            outbox = Outbox(
                store,
                devices,
                providers,
                batch=push.outbox.batch,
                in_flight=push.outbox.in_flight,
                max_attempts=push.outbox.max_attempts,
                backoff=(push.outbox.backoff_min, push.outbox.backoff_max),
                report_retention=push.outbox.report_retention,
            )
            await outbox.open()
            # Entered after the broker: on the way out it stops (recording the batches in
            # flight) before the broker closes the store.
            await stack.enter_async_context(outbox.running())
            broker.send_push_to(outbox)
            templates = PushTemplates(store)
            await templates.open(push.templates)
            polling = PollingSubscriptions(
                broker,
                ttl=limits.poll_ttl,
                max_subscriptions=limits.max_polling_subscriptions,
            )
            stack.callback(polling.close)
            runtimes[app.id] = AppRuntime(
                app.id,
                tuple(app.api_keys),
                broker,
                accounts,
                devices,
                permissions,
                polling,
                admin_key=app.admin_key,
                outbox=outbox,
                templates=templates,
            )
        rates = config.rate_limit
        tidings = Tidings(
            runtimes,
            Metrics(lambda: {a: r.broker.statistics() for a, r in runtimes.items()}),
            public_url=settings.public_url,
            cors_origins=tuple(settings.cors_origins),
            max_body_size=settings.max_body_size,
            api_key_limiter=RateLimiter(rates.per_api_key, rates.burst or None)
            if rates.per_api_key
            else None,
            user_limiter=RateLimiter(rates.per_user, rates.burst or None)
            if rates.per_user
            else None,
        )
        websockets = WebsocketServer(
            runtimes, config.websocket, origins=tuple(settings.cors_origins), limit=tidings.limit
        )
        tidings.metrics.add_websocket(lambda: websockets.stats)
        await stack.enter_async_context(websockets.listen(ws_sock))
        realtime = RealtimeServer(
            runtimes,
            config.realtime,
            config.websocket,
            origins=tuple(settings.cors_origins),
            limit=tidings.limit,
        )
        tidings.metrics.add_realtime(lambda: (realtime.stats, realtime.engine.stats))
        await stack.enter_async_context(realtime.running())
        server = _Server(
            uvicorn.Config(
                realtime.route(PublishFastPath(tidings, create_app(tidings))),
                log_config=None,
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=10,
                # Longer than clients keep idle connections (Node's agent: 5 s, like
                # uvicorn's default), so a client never reuses one the server is closing.
                timeout_keep_alive=75,
                server_header=False,
                # socket.io's websockets: encode-once means no per-socket compression, and
                # engine.io has its own heartbeat.
                ws=uvicorn_ws.PROTOCOL,
                ws_per_message_deflate=False,
                ws_max_size=config.realtime.max_payload,
                ws_ping_interval=None,
            )
        )
        async with anyio.create_task_group() as tasks:

            async def run_http() -> None:
                await server.serve([http])
                tasks.cancel_scope.cancel()  # stopped (signal or failure): end the rest

            tasks.start_soon(_sweep, runtimes)
            tasks.start_soon(_stop_on_signal, server, realtime)
            if stop is not None:
                tasks.start_soon(_stop_on_event, server, realtime, stop)
            tasks.start_soon(run_http)
            while not server.started:  # noqa: ASYNC110 -- uvicorn offers a flag, not an event
                await anyio.sleep(0.01)
            host, port = http.getsockname()[:2]
            ws_host, ws_port = ws_sock.getsockname()[:2]
            on_ready(f"listening http={host}:{port} ws={ws_host}:{ws_port}")
            for app in apps:
                log.info("serving app", extra={"app_id": app.id, "data_dir": str(data_dir)})
    log.info("stopped")


async def _stop_on_signal(server: uvicorn.Server, realtime: RealtimeServer) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            _stop(server, realtime)


async def _stop_on_event(
    server: uvicorn.Server, realtime: RealtimeServer, stop: anyio.Event
) -> None:
    await stop.wait()
    _stop(server, realtime)


def _stop(server: uvicorn.Server, realtime: RealtimeServer) -> None:
    # socket.io sessions end first: a long-poll in flight would hold uvicorn's shutdown.
    realtime.close()
    server.should_exit = True


async def _sweep(runtimes: dict[str, AppRuntime]) -> None:
    sweeps = 0
    while True:
        await anyio.sleep(SWEEP_EVERY)
        sweeps += 1
        for runtime in runtimes.values():
            runtime.polling.sweep()
            if sweeps % PURGE_EVERY == 0:
                removed = await runtime.devices.purge_expired()
                log.info("purged expired registrations", extra={"removed": removed})
