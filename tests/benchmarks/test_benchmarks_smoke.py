"""Each benchmark script runs end to end with --quick and writes its JSON result.

The scripts run in a subprocess exactly as a user runs them
(``python benchmarks/<name>.py --quick``), writing into a temporary directory so
a smoke run never overwrites the figures of a real run in benchmarks/results/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

EXPECTED = {
    "inproc_fanout": {
        "contenders": {"deque_limit", "asyncio_queue", "broadcaster", "tidings"},
        "metric": "deliveries_per_s",
        "ratios": {
            "tidings / deque_limit",
            "tidings / broadcaster",
            "tidings / asyncio_queue",
        },
    },
    "push_outbox": {
        "contenders": {"ceiling", "provider", "outbox"},
        "metric": "pushes_per_s",
        "ratios": {"outbox / ceiling", "provider / ceiling", "outbox / provider"},
    },
    "rest_publish": {
        "contenders": {
            "publish",
            "publish_via_litestar",
            "publish_with_pollers",
            "status",
            "status_on_disk",
            "health",
            "bare_uvicorn",
        },
        "metric": "requests_per_s",
        "ratios": {
            "publish / health",
            "publish / bare_uvicorn",
            "publish / publish_via_litestar",
            "health / bare_uvicorn",
            "publish_with_pollers / publish",
            "status / health",
            "status_on_disk / status",
        },
    },
    "scheduled_publish": {
        "contenders": {
            "sqlite_delay_1",
            "sqlite_delay_100",
            "raw_sqlite_commit_each",
            "raw_sqlite_batch_100",
            "fire_memory",
            "fire_sqlite",
            "immediate_memory",
            "immediate_sqlite",
        },
        "metric": "us_per_msg",
        "ratios": {
            "sqlite_delay_1 / raw_sqlite_commit_each (publishes_per_s)",
            "sqlite_delay_100 / raw_sqlite_batch_100 (publishes_per_s)",
            "sqlite_delay_100 / sqlite_delay_1 (publishes_per_s)",
            "fire_memory / immediate_memory (deliveries_per_s)",
            "fire_sqlite / immediate_memory (deliveries_per_s)",
            "fire_sqlite / immediate_sqlite (deliveries_per_s)",
        },
    },
    "selector_scaling": {
        "contenders": {"none", "eq_10k", "range_1k", "scan_1k", "eq_10k_naive_scan"},
        "metric": "messages_per_s",
        "ratios": {
            "eq_10k / none",
            "range_1k / none",
            "scan_1k / none",
            "eq_10k / eq_10k_naive_scan",
        },
    },
    "timer_wheel": {
        "contenders": {"wheel", "call_at"},
        "metric": "schedule_us",
        "ratios": {
            "call_at / wheel (schedule_us)",
            "call_at / wheel (cancel_us)",
            "call_at / wheel (bytes_per_timer)",
        },
    },
    "ws_fanout": {
        # nats-server comes from Debian (`make nats`, a prerequisite of `make test`).
        "contenders": {"tidings", "naive", "nats", "idle"},
        "metric": "deliveries_per_s",
        "ratios": {"tidings / naive", "tidings / nats"},
        "metric_of": {"idle": "bytes_per_connection"},
    },
    "socketio_fanout": {
        "contenders": {"socketio", "native", "python-socketio"},
        "metric": "deliveries_per_s",
        "ratios": {"socketio / native", "socketio / python-socketio"},
    },
    "timers": {
        "contenders": {
            "delay_publish",
            "call_at",
            "lateness_tidings",
            "lateness_call_at",
            "burst_tidings",
            "burst_call_at",
            "restart_sqlite",
            "raw_select",
        },
        "metric": "us_per_msg",
        "ratios": {
            "delay_publish / call_at (bytes_per_msg)",
            "delay_publish / call_at (us_per_msg)",
            "delay_publish / call_at (cancel_us)",
            "lateness_tidings / lateness_call_at (p99_ms)",
            "lateness_tidings / lateness_call_at (max_ms)",
            "burst_tidings / burst_call_at (max_lag_ms)",
            "burst_tidings / burst_call_at (drain_s)",
            "burst_tidings / burst_call_at (us_per_msg)",
            "restart_sqlite / raw_select (seconds)",
        },
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_script_runs_quick_and_writes_its_results(name: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / f"{name}.py"),
            "--quick",
            "--repeat",
            "1",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    document = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    expected = EXPECTED[name]
    assert set(document) == {"name", "params", "results", "ratios"}
    assert document["name"] == name
    assert document["params"]["quick"] is True
    assert set(document["results"]) == expected["contenders"]
    for contender, metrics in document["results"].items():
        metric = expected.get("metric_of", {}).get(contender, expected["metric"])
        value = metrics[metric]
        assert value > 0, f"{contender}: {metric} = {value}"
    assert set(document["ratios"]) == expected["ratios"]
    assert all(value > 0 for value in document["ratios"].values())
    # the printed table carries the same ratios
    for ratio_name in expected["ratios"]:
        assert ratio_name in completed.stdout
