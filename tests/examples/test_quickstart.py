from __future__ import annotations

import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.py"


def test_quickstart_runs_and_filters() -> None:
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)], capture_output=True, text=True, check=True, timeout=60
    )
    lines = done.stdout.splitlines()
    assert "tokyo subscriber got: 'Quake drill at noon'" in lines[0]
    assert "has 0 more" in lines[1]
    assert sum("everything subscriber got" in line for line in lines) == 3
    assert any(line.startswith("bad selector refused: [5050]") for line in lines)
    assert any(line.startswith("cancel refused: [5040]") for line in lines)
    assert lines[-1] == ("channel 'news': 2 subscribers, 3 published, 4 delivered, 0 dropped")
