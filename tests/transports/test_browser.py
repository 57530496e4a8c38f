"""A real browser as a `tidings.v1` subscriber: Debian's headless Chromium driven over CDP.

The page (browser_page.html, loaded from a file:// URL) connects with the browser's own
`new WebSocket(url, "tidings.v1")`, authenticates, subscribes to "news" with the selector
`city = 'Tokyo' AND priority > 3` and lists the text of each message it is sent. The test
publishes matching and non-matching messages and reads the page's DOM over the Chrome
DevTools Protocol (plain websockets, no playwright, no browser download): only the
matching ones may appear, in order.

Chromium comes from Debian (`make browser`, a prerequisite of `make test`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from broker import Broker
from tests.transports.live_server import API_KEY, APP_ID, live_server
from transports.websocket import websocket_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE = Path(__file__).with_name("browser_page.html")
SELECTOR = "city = 'Tokyo' AND priority > 3"
WAIT = 20.0  # seconds for any one thing to happen

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason="Debian's chromium is not installed: `make browser` installs it (apt-get)",
)

# What the test reads of the page, as one JSON value.
SNAPSHOT = """JSON.stringify({
  url: location.href,
  title: document.title,
  state: document.body ? document.body.dataset.state || null : null,
  protocol: document.body ? document.body.dataset.protocol || null : null,
  selector: document.body ? document.body.dataset.selector || null : null,
  messages: Array.from(document.querySelectorAll("#messages li"), (li) => li.textContent),
  log: (document.getElementById("log") || {}).textContent || "",
})"""


class Page:
    """One page target over CDP: calls are answered in turn, events are kept as console."""

    def __init__(self, cdp: ClientConnection, browser_log: Path) -> None:
        self.cdp = cdp
        self.browser_log = browser_log
        self.console: list[str] = []
        self._next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        call_id = self._next_id
        await self.cdp.send(json.dumps({"id": call_id, "method": method, "params": params}))
        async with asyncio.timeout(WAIT):
            while True:
                answer = json.loads(await self.cdp.recv())
                if answer.get("id") == call_id:
                    if "error" in answer:
                        raise AssertionError(f"CDP {method} failed: {answer['error']}")
                    result: dict[str, Any] = answer["result"]
                    return result
                self._note(answer)

    def _note(self, event: dict[str, Any]) -> None:
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.console.append(f"console.{params['type']}: {args}")
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.append(f"exception: {text}")
        elif event.get("method") == "Log.entryAdded":
            entry = params["entry"]
            self.console.append(f"log.{entry['level']}: {entry['text']}")

    async def snapshot(self) -> dict[str, Any]:
        answer = await self.call("Runtime.evaluate", expression=SNAPSHOT, returnByValue=True)
        if "exceptionDetails" in answer:
            return {"error": answer["exceptionDetails"].get("text")}
        value: dict[str, Any] = json.loads(answer["result"]["value"])
        return value

    async def wait_for(self, what: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll the page until `ready(snapshot)`; fail with what the page shows if it never is."""
        deadline = time.monotonic() + WAIT
        while True:
            snapshot = await self.snapshot()
            if ready(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                report = self.report(snapshot)
                pytest.fail(f"the page did not show {what} within {WAIT}s\n{report}")
            await asyncio.sleep(0.05)

    def report(self, snapshot: dict[str, Any] | None = None) -> str:
        return "\n".join(
            [
                f"page: {json.dumps(snapshot, indent=1)}",
                "console:",
                *self.console,
                "chromium log (tail):",
                *_tail(self.browser_log),
            ]
        )

    async def open_subscriber(self, ws_url: str) -> dict[str, Any]:
        """Load the page against `ws_url`; the snapshot once it is subscribed."""
        query = urlencode({"ws": ws_url, "app": APP_ID, "key": API_KEY, "selector": SELECTOR})
        navigated = await self.call("Page.navigate", url=f"{PAGE.as_uri()}?{query}")
        assert "errorText" not in navigated, navigated
        snapshot = await self.wait_for("subscribed", _state_is("subscribed"))
        assert snapshot["protocol"] == "tidings.v1", snapshot  # the subprotocol was selected
        assert snapshot["selector"] == SELECTOR, snapshot
        assert snapshot["messages"] == [], snapshot
        return snapshot


def _state_is(state: str) -> Callable[[dict[str, Any]], bool]:
    def ready(snapshot: dict[str, Any]) -> bool:
        if (snapshot.get("state") or "").startswith(("error", "closed")):
            pytest.fail(f"the page is {snapshot['state']!r}, waiting for {state!r}: {snapshot}")
        return snapshot.get("state") == state

    return ready


def _shows(*texts: str) -> Callable[[dict[str, Any]], bool]:
    def ready(snapshot: dict[str, Any]) -> bool:
        shown = snapshot.get("messages", [])
        return texts[-1] in shown or len(shown) >= len(texts)

    return ready


def _tail(path: Path, lines: int = 30) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if "dbus" not in line][-lines:]


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """Headless Chromium with DevTools on an ephemeral port (`profile`, created by Chromium,
    is its user data dir); its first page, over CDP."""
    browser_log = profile.parent / f"{profile.name}.log"
    with browser_log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # its own process group: its helpers end with it
        )
    try:
        port = await _devtools_port(process, profile / "DevToolsActivePort", browser_log)
        page_url = await _page_target(port, browser_log)
        async with connect(page_url, max_size=None, open_timeout=WAIT) as cdp:
            page = Page(cdp, browser_log)
            await page.call("Runtime.enable")
            await page.call("Log.enable")
            await page.call("Page.enable")
            yield page
    finally:
        await _stop(process)


async def _devtools_port(
    process: asyncio.subprocess.Process, active_port: Path, browser_log: Path
) -> int:
    """Chromium writes its DevTools port (line 1) and browser path (line 2) once listening."""
    deadline = time.monotonic() + WAIT
    while True:
        if process.returncode is not None:
            pytest.fail(
                f"chromium exited with {process.returncode}:\n" + "\n".join(_tail(browser_log))
            )
        with contextlib.suppress(OSError):
            lines = (await asyncio.to_thread(active_port.read_text)).splitlines()
            if len(lines) >= 2 and lines[0].isdigit():
                return int(lines[0])
        if time.monotonic() > deadline:
            pytest.fail(
                f"chromium wrote no {active_port.name} in {WAIT}s:\n"
                + "\n".join(_tail(browser_log))
            )
        await asyncio.sleep(0.05)


async def _page_target(port: int, browser_log: Path) -> str:
    """The DevTools websocket URL of a page target (the initial about:blank tab)."""
    deadline = time.monotonic() + WAIT
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as http:
        while True:
            targets = (await http.get("/json/list")).json()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                url: str = pages[0]["webSocketDebuggerUrl"]
                return url
            if time.monotonic() > deadline:
                pytest.fail(
                    f"chromium shows no page target: {targets}\n" + "\n".join(_tail(browser_log))
                )
            await asyncio.sleep(0.05)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End the browser (and the helper processes of its group) and reap it."""
    if process.returncode is None:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
    with contextlib.suppress(ProcessLookupError):  # helpers left over, or a hung browser
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


# -- the tests ------------------------------------------------------------------------------------

MATCHING = {"city": "Tokyo", "priority": 5}
NOT_MATCHING = [{"city": "Tokyo", "priority": 1}, {"city": "Paris", "priority": 9}]
FENCE = {"city": "Tokyo", "priority": 7}


async def test_a_browser_subscriber_is_shown_only_matching_messages(tmp_path: Path) -> None:
    async with (
        asyncio.timeout(90),
        Broker() as broker,
        websocket_server(broker, app_id=APP_ID, api_key=API_KEY, port=0) as server,
        chromium(tmp_path / "profile") as page,
    ):
        await page.open_subscriber(f"ws://127.0.0.1:{server.port}/")

        await broker.publish("news", {"text": "tokyo 1"}, headers=NOT_MATCHING[0])
        await broker.publish("news", {"text": "tokyo 5"}, headers=MATCHING)
        await broker.publish("news", {"text": "paris 9"}, headers=NOT_MATCHING[1])
        await page.wait_for("the matching message", _shows("tokyo 5"))

        # Messages reach a subscription in order: once the fence is shown, anything the
        # server let through before it would be shown too.
        await broker.publish("news", {"text": "fence"}, headers=FENCE)
        snapshot = await page.wait_for("the fence", _shows("tokyo 5", "fence"))
        assert snapshot["messages"] == ["tokyo 5", "fence"], page.report(snapshot)
        assert snapshot["state"] == "subscribed", snapshot
        assert server.stats.connections == 1


async def test_a_browser_subscriber_of_tidings_serve(tmp_path: Path) -> None:
    """End to end: the page on `tidings serve`'s websocket port, messages published over REST."""
    with live_server(tmp_path / "data") as running:
        async with (
            asyncio.timeout(90),
            httpx.AsyncClient(base_url=running.api, timeout=WAIT) as http,
            chromium(tmp_path / "profile") as page,
        ):
            await page.open_subscriber(running.ws_url)

            async def publish(text: str, headers: dict[str, Any]) -> None:
                body = {"message": {"text": text}, "headers": headers}
                response = await http.post("/messaging/news", json=body)
                assert response.status_code == 200, response.text

            await publish("tokyo 1", NOT_MATCHING[0])
            await publish("tokyo 5", MATCHING)
            await publish("paris 9", NOT_MATCHING[1])
            await page.wait_for("the matching message", _shows("tokyo 5"))

            await publish("fence", FENCE)
            snapshot = await page.wait_for("the fence", _shows("tokyo 5", "fence"))
            assert snapshot["messages"] == ["tokyo 5", "fence"], page.report(snapshot)
            assert snapshot["state"] == "subscribed", snapshot
