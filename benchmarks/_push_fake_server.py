"""The fake FCM of tests/transports/push_fakes.py in a process of its own (for push_outbox.py).

    python benchmarks/_push_fake_server.py DIR

Serves `FakeFcm` (HTTP/2 over TLS on 127.0.0.1, an ephemeral port; its OAuth2
token endpoint, its checks of every send) on uvloop when installed, prints one
line ``fake-fcm {"origin", "port", "ca_file", "service_account_file",
"token_uri", "project_id"}`` (JSON) once it listens, and runs until SIGTERM or
SIGINT, then exits 0. Its files (CA, server certificate, service account) go
under DIR.

The fake is the tests' one with two changes for a long run: what it accepted
is counted, not kept (``received`` would hold 100 000 payloads, ``requests``
as many header dicts), and two control routes on the same origin, which the
counts leave out:

- ``GET /_bench/stats``: ``{"received", "distinct_tokens", "requests",
  "statuses": {"200": n, ...}, "max_in_flight", "token_requests", "cpu_s"}``
  (``cpu_s``: this process's CPU time so far, all threads).
- ``POST /_bench/reset``: zero the counts (and ``max_in_flight``).

The benchmark runs the fake in its own process so that the fake and the client
measured against it each get a core (sharing one event loop halves both).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.transports.push_fakes import FakeFcm, Request, Response

READY = "fake-fcm"


class _Received:
    """Stands in for ``FakeFcm.received``: counts (token, payload) and keeps the tokens."""

    def __init__(self) -> None:
        self.count = 0
        self.tokens: set[str] = set()

    def append(self, item: tuple[str, Any]) -> None:
        self.count += 1
        self.tokens.add(item[0])

    def __len__(self) -> int:
        return self.count


class _Requests:
    """Stands in for ``FakeService.requests``: counts the answers by status."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()

    def append(self, request: Request) -> None:
        if not request.path.startswith("/_bench/"):
            self.statuses[request.status] += 1

    def __len__(self) -> int:
        return sum(self.statuses.values())


class BenchFcm(FakeFcm):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.reset()

    def reset(self) -> None:
        self.received = _Received()  # type: ignore[assignment]
        self.requests = _Requests()  # type: ignore[assignment]
        self.token_requests = 0
        self.max_in_flight = self.in_flight

    def stats(self) -> dict[str, Any]:
        received: _Received = self.received  # type: ignore[assignment]
        requests: _Requests = self.requests  # type: ignore[assignment]
        return {
            "received": received.count,
            "distinct_tokens": len(received.tokens),
            "requests": len(requests),
            "statuses": {str(status): n for status, n in sorted(requests.statuses.items())},
            "max_in_flight": self.max_in_flight,
            "token_requests": self.token_requests,
            "cpu_s": time.process_time(),
        }

    async def handle(self, request: Request, body: bytes) -> Response:
        if request.path == "/_bench/stats":
            return Response.json(200, self.stats())
        if request.path == "/_bench/reset":
            self.reset()
            return Response.json(200, {"reset": True})
        return await super().handle(request, body)


async def main(directory: Path) -> None:
    fake = BenchFcm(directory)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake.serving():
        ready = {
            "origin": fake.origin,
            "port": fake.port,
            "ca_file": fake.ca_file,
            "service_account_file": fake.settings.service_account_file,
            "token_uri": fake.token_uri,
            "project_id": fake.project_id,
        }
        print(f"{READY} {json.dumps(ready)}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        raise SystemExit(f"usage: {sys.argv[0]} [DIR]")
    where = Path(sys.argv[1]) if len(sys.argv) == 2 else Path(tempfile.mkdtemp(prefix="fake-fcm-"))
    run(lambda: main(where))
