from __future__ import annotations

import subprocess
import sys

import pytest

from transports.cli import main


def test_check_selector_prints_canonical_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-selector", "city='Tokyo'AND priority>3"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "city = 'Tokyo' AND priority > 3"
    assert "indexed on header 'city'" in err


def test_check_selector_points_at_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-selector", "a = 1 b"]) == 2
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0].startswith("error 5050: invalid selector at position 6")
    assert lines[2] == "  " + " " * 6 + "^"


def test_empty_selector_matches_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-selector", "  "]) == 0
    assert "every message" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "transports.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("tidings ")
