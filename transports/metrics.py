"""Prometheus metrics (`GET /metrics`): broker counters read at scrape time, request latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from broker import BrokerStatistics


class _BrokerCollector(Collector):
    def __init__(self, sources: Callable[[], dict[str, BrokerStatistics]]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        families = {
            "published": CounterMetricFamily(
                "tidings_messages_published", "Messages released to subscribers", labels=["app"]
            ),
            "delivered": CounterMetricFamily(
                "tidings_deliveries", "Messages queued to subscriptions", labels=["app"]
            ),
            "dropped": CounterMetricFamily(
                "tidings_drops", "Messages lost to slow consumers' overflow", labels=["app"]
            ),
        }
        subscribers = GaugeMetricFamily("tidings_subscribers", "Live subscriptions", labels=["app"])
        scheduled = GaugeMetricFamily(
            "tidings_scheduled", "Delayed and repeating messages waiting", labels=["app"]
        )
        for app, stats in self._sources().items():
            for name, family in families.items():
                family.add_metric([app], getattr(stats, name))
            subscribers.add_metric([app], stats.subscribers)
            scheduled.add_metric([app], stats.scheduled)
        yield from families.values()
        yield subscribers
        yield scheduled


class _WebsocketCollector(Collector):
    def __init__(self, source: Callable[[], Any]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        stats = self._source()
        yield GaugeMetricFamily(
            "tidings_ws_connections", "Open websocket connections", value=stats.connections
        )
        for name, help_text in (
            ("accepted", "Websocket connections authenticated"),
            ("slow_consumers", "Websocket connections closed as slow consumers (4008)"),
            ("refused", "Websocket connections refused at authentication"),
            ("frames_in", "Websocket frames received"),
            ("frames_out", "Websocket frames sent"),
        ):
            yield CounterMetricFamily(f"tidings_ws_{name}", help_text, value=getattr(stats, name))


class _RealtimeCollector(Collector):
    def __init__(self, source: Callable[[], tuple[Any, Any]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        rt, engine = self._source()
        yield GaugeMetricFamily(
            "tidings_rt_connections", "socket.io clients connected", value=rt.connections
        )
        yield GaugeMetricFamily(
            "tidings_rt_subscriptions", "socket.io message listeners", value=rt.subscriptions
        )
        yield GaugeMetricFamily(
            "tidings_rt_sessions", "engine.io sessions open", value=engine.sessions
        )
        for name, help_text in (
            ("accepted", "socket.io namespace connects accepted"),
            ("refused", "socket.io namespace connects refused"),
            ("resumed", "socket.io listeners handed back to a reconnecting client"),
            ("slow_consumers", "socket.io connections closed as slow consumers (5051)"),
            ("ignored", "socket.io packets or events not understood"),
            ("deliveries", "socket.io SUB_RES messages sent"),
        ):
            yield CounterMetricFamily(f"tidings_rt_{name}", help_text, value=getattr(rt, name))
        for name, help_text in (
            ("opened", "engine.io handshakes"),
            ("upgrades", "engine.io sessions upgraded to a websocket"),
            ("polls", "engine.io long-polling GETs answered"),
            ("packets_in", "engine.io message packets received"),
            ("writes", "engine.io websocket writes and polling answers"),
        ):
            yield CounterMetricFamily(
                f"tidings_rt_engine_{name}", help_text, value=getattr(engine, name)
            )


class Metrics:
    def __init__(self, sources: Callable[[], dict[str, BrokerStatistics]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_BrokerCollector(sources))
        self.publishes = Counter(
            "tidings_rest_publishes", "Publish requests accepted", registry=self.registry
        )
        self.latency = Histogram(
            "tidings_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    def add_websocket(self, source: Callable[[], Any]) -> None:
        """Export the websocket server's statistics (a WebsocketStatistics, read at scrape)."""
        self.registry.register(_WebsocketCollector(source))

    def add_realtime(self, source: Callable[[], tuple[Any, Any]]) -> None:
        """Export the socket.io endpoint's statistics: (RealtimeStatistics, EngineStatistics)."""
        self.registry.register(_RealtimeCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware timing each HTTP request, labelled by route template."""

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                handler = scope.get("route_handler")
                route = getattr(handler, "paths", None)
                label = sorted(route)[0] if route else "unmatched"
                self.latency.labels(scope.get("method", ""), label, str(status)).observe(
                    time.perf_counter() - started
                )

        return timed
