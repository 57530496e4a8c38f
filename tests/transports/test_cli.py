from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

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


def test_serve_refuses_an_app_id_without_its_api_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--app-id", "only-the-id"]) == 2
    assert "--app-id and --api-key go together" in capsys.readouterr().err


def test_serve_names_what_is_wrong_in_a_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n")
    assert main(["serve", "--config", str(bad)]) == 2
    assert "server.port" in capsys.readouterr().err
    bad.write_text("[server\n")
    assert main(["serve", "--config", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read config" in capsys.readouterr().err
    bad.write_text("[servr]\nport = 1\n")
    assert main(["serve", "--config", str(bad)]) == 2
    assert "servr" in capsys.readouterr().err


def test_serve_reports_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    assert code == 1
    assert "error:" in capsys.readouterr().err
