from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "scheduled.py"


def run(db: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


def test_scheduled_example_delivers_on_time_and_keeps_state_in_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "data" / "tidings.db"
    first = run(db)
    assert first[0].endswith("0 scheduled message(s) left by earlier runs")
    assert first[1] == "scheduled: scheduled, scheduled, scheduled"
    assert first[2] == "cancelled: cancelled"
    assert first[3].startswith("refused: [5030]")
    got = [line for line in first if line.startswith("got ")]
    assert [line.split(" at ")[0] for line in got] == [
        "got 'tea is ready'",
        "got 'tick'",
        "got 'tick'",
        "got 'tick'",
    ]
    offsets = [int(line.split("+")[1].removesuffix(" ms")) for line in got]
    assert [o >= due for o, due in zip(offsets, [300, 500, 750, 1000], strict=True)] == [True] * 4
    assert first[-3:] == ["one-shot: published", "repeat: published", "cancelled: cancelled"]
    # The hourly reminder is still pending in the file on the next run.
    assert run(db)[0].endswith("1 scheduled message(s) left by earlier runs")
