"""The official Backendless JS SDK (npm `backendless` 8.0.0, under Node) against `tidings serve`.

tests/e2e/sdk_realtime.mjs drives the SDK the way an app does: `Messaging.subscribe`, message
listeners with and without a selector, delayed and repeating publishes, `removeMessageListener`,
`UserService.register / login / logout` on a live socket, and a socket dropped under the SDK. It
waits for each event with a timeout and prints, per step, what it saw (including the socket.io
traffic it tapped); the tests below assert on those facts, one step each. One server and one
Node run (about 5 s) serve the whole module.

Node and the SDK come from `make test`: `make node` installs Debian's nodejs and npm when `node`
is missing, `make e2e` runs `npm ci` in tests/e2e.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from .live_server import API_KEY, APP_ID, live_server

E2E = Path(__file__).parents[1] / "e2e"
SCRIPT = E2E / "sdk_realtime.mjs"
NODE = shutil.which("node")
NODE_TIMEOUT = 40.0  # seconds; the script gives up on its own after 30
PUBLISHER = "sdk-e2e"

pytestmark = pytest.mark.skipif(
    NODE is None or not (E2E / "node_modules" / "backendless").is_dir(),
    reason="node or tests/e2e/node_modules is missing: `make node e2e` installs them",
)

CONFIG = """
[realtime]
resume_window = 10  # seconds a dropped SDK's listeners wait for it to reconnect

[permissions.channels.vip]
NotAuthenticatedUser = { SUBSCRIBE = "DENY" }
AuthenticatedUser = { SUBSCRIBE = "GRANT" }
"""


@dataclass
class Run:
    returncode: int | None  # None: killed after NODE_TIMEOUT
    stdout: str
    stderr: str
    result: dict[str, Any] | None  # the script's JSON, None if it printed none
    metrics: str = ""  # the server's /metrics after the run
    leftover: dict[str, float] = field(default_factory=dict)  # rt gauges once Node has exited

    def step(self, name: str) -> dict[str, Any]:
        """The facts of one step; fails the test with the run's output if the step broke."""
        steps = (self.result or {}).get("steps", {})
        facts = steps.get(name)
        if facts is None or facts["error"] is not None:
            why = "did not run" if facts is None else facts["error"]
            pytest.fail(
                f"step {name!r} {why}\nfacts: {json.dumps(facts, indent=1)}\n"
                f"node exit: {self.returncode}\nstderr: {self.stderr[-3000:]}"
            )
        return facts


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


def _rt_gauges(origin: str) -> dict[str, float]:
    text = httpx.get(f"{origin}/metrics").text
    return {name: metric(text, f"tidings_rt_{name}") for name in ("connections", "subscriptions")}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    assert NODE is not None
    data_dir = tmp_path_factory.mktemp("sdk") / "data"
    with live_server(data_dir, config=CONFIG) as server:
        env = {
            **os.environ,
            "TIDINGS_URL": server.origin,
            "TIDINGS_APP_ID": APP_ID,
            "TIDINGS_API_KEY": API_KEY,
        }
        try:
            done = subprocess.run(
                [NODE, SCRIPT.name],
                cwd=E2E,
                env=env,
                capture_output=True,
                text=True,
                timeout=NODE_TIMEOUT,  # kills Node
                check=False,  # the exit code is asserted with the output
            )
            returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = None
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        lines = [line for line in stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            result = None
        outcome = Run(returncode, stdout, stderr, result)
        outcome.metrics = httpx.get(f"{server.origin}/metrics").text
        # Node has exited: its socket.io DISCONNECT reaches the server a moment later.
        deadline = time.monotonic() + 5
        outcome.leftover = _rt_gauges(server.origin)
        while any(outcome.leftover.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
            outcome.leftover = _rt_gauges(server.origin)
        assert server.stop() == 0, server.stderr()
    return outcome


def test_the_scenario_runs_to_the_end_and_node_exits(run: Run) -> None:
    assert run.result is not None, f"no JSON from Node:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, f"node exit {run.returncode}: {run.stderr[-3000:]}"
    assert "error" not in run.result
    assert run.result["sdk"] == "8.0.0"  # what tests/e2e/package-lock.json pins
    assert set(run.result["steps"]) == {
        "subscribe",
        "listeners",
        "timers",
        "unsubscribe",
        "permissions",
        "reconnect",
    }
    # Backendless.RT.terminate() let Node exit and left nothing behind on the server.
    assert run.leftover == {"connections": 0, "subscriptions": 0}


def test_subscribe_fires_the_connect_listener(run: Run) -> None:
    facts = run.step("subscribe")
    assert facts["connectListenerCalls"] == 1
    assert facts["connectErrors"] == []
    assert facts["isJoined"] is True
    assert facts["subOnSent"] == [{"name": "PUB_SUB_CONNECT", "options": {"channel": "news"}}]
    # Long-polling first, then the upgrade the SDK asks for.
    assert facts["transport"] == "websocket"
    assert metric(run.metrics, "tidings_rt_engine_upgrades_total") >= 1


def test_message_listeners_with_and_without_a_selector(run: Run) -> None:
    facts = run.step("listeners")
    assert [answer["status"] for answer in facts["answers"]] == ["published"] * 5
    assert facts["all"] == ["tokyo-1", "paris-1", "tokyo-2", "no-city", "end"]
    assert facts["tokyo"] == ["tokyo-1", "tokyo-2", "end"]  # "city = 'Tokyo'"
    assert facts["errors"] == []
    first = facts["first"]
    assert first["messageId"] == facts["answers"][0]["messageId"]
    assert first["messageId"].startswith("message:")
    assert first["message"] == "tokyo-1"
    assert first["headers"] == {"city": "Tokyo", "n": 1}
    assert first["publisherId"] == PUBLISHER
    published_from, answered_at = facts["firstPublishWindow"]
    assert published_from <= first["timestamp"] <= answered_at


def test_delayed_and_repeating_messages_reach_the_listener_on_time(run: Run) -> None:
    facts = run.step("timers")
    delayed, repeating = facts["delayed"], facts["repeating"]
    assert delayed["answer"]["status"] == "scheduled"
    assert delayed["messageIds"] == [delayed["answer"]["messageId"]]
    [arrived] = delayed["arrivals"]
    assert arrived >= delayed["publishAt"], f"{delayed['publishAt'] - arrived} ms early"
    assert arrived - delayed["publishAt"] < 2000

    assert repeating["answer"]["status"] == "scheduled"
    # repeatEvery 1 s without publishAt: due one period after the publish, then every period
    # up to repeatExpiresAt. The server's "now" lies between our request and its answer.
    arrivals, expires = repeating["arrivals"], repeating["repeatExpiresAt"]
    at_least = (expires - repeating["answeredAt"]) // 1000
    at_most = (expires - repeating["repeatFrom"]) // 1000
    assert at_least == 2, "the publish took too long to tell"
    assert at_least <= len(arrivals) <= at_most, arrivals  # more would be after the expiry
    for n, at in enumerate(arrivals, start=1):
        assert at >= repeating["repeatFrom"] + n * 1000, f"repeat {n} early"
    assert set(repeating["messageIds"]) == {repeating["answer"]["messageId"]}
    # The marker was published 1.2 s after the expiry: nothing repeated in between.
    assert facts["texts"][-1] == "end"
    assert facts["errors"] == []


def test_remove_message_listener_stops_only_that_listener(run: Run) -> None:
    facts = run.step("unsubscribe")
    assert facts["subOffSent"] == {"plain": 1, "selector": 1, "stays": 0}
    assert facts["stays"] == ["before", "after-1", "after-2", "end"]
    assert facts["later"] == ["after-1", "after-2", "end"]  # added after the removals
    assert facts["leaves"] == ["before"]
    assert facts["leavesSelector"] == ["before"]
    # Not just dropped by the SDK: the server sent nothing more for the removed ids.
    assert facts["sentAfterRemoval"] == {"plain": [], "selector": []}


def test_login_and_logout_change_what_the_socket_may_subscribe(run: Run) -> None:
    facts = run.step("permissions")
    assert [error["code"] for error in facts["anonymous"]["errors"]] == [5008]
    assert facts["anonymous"]["texts"] == []
    assert facts["loggedIn"]["hasToken"] is True
    assert facts["loggedIn"]["objectId"] == facts["registered"]["objectId"]
    # The SDK told the server on its socket (MET_REQ SET_USER_TOKEN), which answered.
    assert facts["tokenAnswers"] == [
        {"sent": "token", "result": None},
        {"sent": "null", "result": None},
    ]
    assert facts["socketsAfterLogout"] == 1  # no reconnect: the same socket throughout
    # Logged in: accepted and delivered; after logout: ended by the server with 5008.
    assert facts["member"]["errors"] == []
    assert facts["member"]["texts"] == ["vip-1"]
    assert [error["code"] for error in facts["afterLogout"]["errors"]] == [5008]
    assert facts["vip2Answer"]["status"] == "published"
    assert facts["sentAfterLogout"] == []  # vip-2 went to nobody


def test_a_dropped_socket_reconnects_with_its_listeners_and_misses_nothing(run: Run) -> None:
    facts = run.step("reconnect")
    assert facts["transportBeforeDrop"] == "websocket"
    assert facts["publishedWhileDown"] is True
    assert [answer["status"] for answer in facts["downAnswers"]] == ["published"] * 2
    assert facts["clientIdAfter"] == facts["clientIdBefore"]
    assert facts["subOnAgain"] == 1
    assert facts["subReadyAgain"] == 1
    # Each exactly once, in order, those published while down after the reconnect.
    assert facts["texts"] == ["before", "down-1", "down-2", "after-1", "after-2", "end"]
    assert facts["arrivals"]["down-1"] >= facts["reconnectedAt"]
    assert facts["errors"] == []
    # The server handed back the listener it kept, not a new one.
    assert metric(run.metrics, "tidings_rt_resumed_total") == facts["messageListenersAtDrop"] == 1
