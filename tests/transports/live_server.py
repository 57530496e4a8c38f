"""A real `tidings serve` in a subprocess on 127.0.0.1 with an ephemeral port, for tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

APP_ID = "TEST-APP"
API_KEY = "test-key"
_LISTENING = re.compile(r"^listening http=([\d.]+):(\d+) ws=([\d.]+):(\d+)$")


class LiveServer:
    def __init__(
        self, process: subprocess.Popen[str], host: str, port: int, ws_port: int, lines: list[str]
    ):
        self.process = process
        self.origin = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{ws_port}/"
        self.api = f"{self.origin}/{APP_ID}/{API_KEY}"
        self.stdout_lines = lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server and wait for it to exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read()


@contextmanager
def live_server(
    data_dir: Path,
    *extra: str,
    config: str | None = None,
    credentials: bool = True,
    timeout: float = 30,
) -> Iterator[LiveServer]:
    args = [sys.executable, "-m", "transports.cli", "serve", "--port", "0", "--ws-port", "0"]
    args += ["--data-dir", str(data_dir)]
    if credentials:
        args += ["--app-id", APP_ID, "--api-key", API_KEY]
    if config is not None:
        path = data_dir.parent / f"{data_dir.name}.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    args += list(extra)
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:  # readline blocks; the deadline is checked per line and by the test timeout
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(
                    f"server exited early: {process.stderr and process.stderr.read()}"
                )
            lines.append(line.rstrip("\n"))
            found = _LISTENING.match(lines[-1])
            if found:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
        yield LiveServer(process, found.group(1), int(found.group(2)), int(found.group(4)), lines)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
