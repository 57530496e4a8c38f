"""`tidings bench`, run as a user runs it, against a real `tidings serve`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.transports.live_server import API_KEY, APP_ID, LiveServer, live_server
from transports.bench_worker import bucket_of, bucket_value, merge, percentile
from transports.cli import main

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("bench") / "data") as running:
        yield running


def bench(url: str, *args: str, api_key: str = API_KEY) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "transports.cli", "bench", url]
    command += ["--app-id", APP_ID, "--api-key", api_key, *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def bench_json(server: LiveServer, *args: str) -> dict[str, Any]:
    done = bench(server.ws_url, *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["error"] is None
    return result


def test_every_subscriber_gets_every_message(server: LiveServer) -> None:
    result = bench_json(
        server,
        *("--subscribers", "20", "--publishers", "2", "--messages", "200", "--workers", "2"),
    )
    assert result["url"] == server.ws_url
    assert (result["subscribers"], result["publishers"], result["workers"]) == (20, 2, 2)
    assert result["published"] == 200
    assert result["publish_errors"] == 0
    assert result["deliveries"] == result["expected_deliveries"] == 4000
    assert result["drops"] == 0
    assert result["disconnects"] == {}
    assert 0 < result["frames"] <= 4000  # the server may batch several messages in a frame
    assert result["publish_per_s"] > 0
    assert result["deliveries_per_s"] > 0
    latency = result["latency_ms"]
    assert set(latency) == {"p50", "p99", "p999", "max"}
    assert 0 <= latency["p50"] <= latency["p99"] <= latency["p999"] <= latency["max"]


def test_rate_paces_the_publishers(server: LiveServer) -> None:
    result = bench_json(
        server,
        *("--subscribers", "5", "--workers", "1", "--publishers", "2"),
        *("--rate", "200", "--duration", "1"),
    )
    assert 150 <= result["published"] <= 250
    assert 150 <= result["publish_per_s"] <= 250
    assert 0.9 <= result["duration_s"] <= 1.5
    assert result["deliveries"] == result["expected_deliveries"] == 5 * result["published"]
    assert result["drops"] == 0


def test_warmup_messages_are_not_counted(server: LiveServer) -> None:
    result = bench_json(
        server,
        *("--subscribers", "3", "--workers", "1", "--rate", "100"),
        *("--warmup", "0.5", "--duration", "0.5"),
    )
    assert 35 <= result["published"] <= 65  # the half second measured, not the whole second
    assert result["deliveries"] == result["expected_deliveries"] == 3 * result["published"]
    assert result["drops"] == 0


def test_expected_deliveries_follow_the_selector(server: LiveServer) -> None:
    """Each publisher alternates the two header sets: the selector matches half."""
    result = bench_json(
        server,
        *("--subscribers", "4", "--workers", "2", "--publishers", "2", "--messages", "100"),
        *("--headers", '{"k": 1, "city": "Tokyo"}', "--headers", '{"k": 2}'),
        *("--selector", "k = 1 AND city = 'Tokyo'"),
    )
    assert result["published"] == 100
    assert result["expected_deliveries"] == 4 * 50
    assert result["deliveries"] == 200
    assert result["drops"] == 0


def test_a_selector_that_never_matches_expects_nothing(server: LiveServer) -> None:
    result = bench_json(
        server,
        *("--subscribers", "3", "--workers", "4", "--messages", "50"),
        *("--headers", '{"k": 2}', "--selector", "k = 1"),
    )
    assert result["workers"] == 3  # never more workers than subscribers
    assert result["published"] == 50
    assert result["deliveries"] == result["expected_deliveries"] == result["drops"] == 0
    assert result["latency_ms"] == {"p50": None, "p99": None, "p999": None, "max": None}


def test_without_json_it_shows_a_summary(server: LiveServer) -> None:
    done = bench(server.ws_url, "--subscribers", "4", "--workers", "1", "--messages", "40")
    assert done.returncode == 0, done.stderr
    assert "deliveries/s" in done.stdout
    assert "drops" in done.stdout
    assert "p50" in done.stdout
    assert "0 of 160" in done.stdout  # drops of the expected deliveries


def test_an_unreachable_server_fails_clearly() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = bench(f"ws://127.0.0.1:{port}/", "--messages", "10")
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"error: cannot connect to ws://127.0.0.1:{port}/" in done.stderr


def test_wrong_credentials_fail_clearly(server: LiveServer) -> None:
    done = bench(server.ws_url, "--messages", "10", api_key="wrong-key")
    assert done.returncode == 1
    assert "refused the connection: closed 4001" in done.stderr


def test_refused_subscriptions_fail_the_run(server: LiveServer) -> None:
    args = ("--subscribers", "2", "--workers", "1", "--messages", "5", "--channel", "no spaces")
    done = bench(server.ws_url, *args)
    assert done.returncode == 1
    assert "2 of 2 subscribers could not connect and subscribe" in done.stderr
    assert "5044" in done.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["http://127.0.0.1:8081/"], "not a ws:// or wss:// URL"),
        (["ws://h/", "--duration", "1", "--messages", "5"], "not allowed with argument"),
        (["ws://h/", "--selector", "a = = 1"], "invalid selector"),
        (["ws://h/", "--headers", "[1]"], "headers must be a JSON object"),
        (["ws://h/", "--headers", "{"], "not JSON"),
        (["ws://h/", "--rate", "-1"], "must be at least 0"),
        (["ws://h/", "--duration", "0"], "must be more than 0"),
        (["ws://h/", "--subscribers", "many"], "not an integer"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", *args, "--app-id", APP_ID, "--api-key", API_KEY])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_latency_histogram_is_close_and_mergeable() -> None:
    for us in (0, 1, 127, 128, 129, 1000, 12_345, 987_654, 10**9):
        assert abs(bucket_value(bucket_of(us)) - us) <= us / 64
    keys = [bucket_of(us) for us in range(5000)]
    assert keys == sorted(keys)  # buckets grow with the value
    assert bucket_of(-5) == 0  # a clock step back counts as zero
    first = {bucket_of(us): 1 for us in range(1, 101)}
    second: dict[int, int] = {}
    merge(second, {bucket_of(1000): 10})
    merge(second, first)
    assert sum(second.values()) == 110
    assert percentile(second, 0.5) == 55
    assert percentile(second, 0.9) == 99
    p999 = percentile(second, 0.999)
    assert p999 is not None
    assert abs(p999 - 1000) <= 1000 / 64
    assert percentile({}, 0.5) is None
