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
        self.stderr_path = Path()
        self.api = f"{self.origin}/{APP_ID}/{API_KEY}"
        self.stdout_lines = lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server and wait for it to exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text()


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
    stderr_path = data_dir.parent / f"{data_dir.name}.stderr.log"
    stderr = stderr_path.open("a")
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=stderr,  # a file: a pipe nobody reads would block a chatty server
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
                raise RuntimeError(f"server exited early: {stderr_path.read_text()}")
            lines.append(line.rstrip("\n"))
            found = _LISTENING.match(lines[-1])
            if found:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
        server = LiveServer(
            process, found.group(1), int(found.group(2)), int(found.group(4)), lines
        )
        server.stderr_path = stderr_path
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        stderr.close()
