"""The `tidings` command line. `serve` and `bench` arrive with the server issues."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from broker import SelectorError
from broker.selectors import compile_selector


def _check_selector(text: str) -> int:
    try:
        selector = compile_selector(text)
    except SelectorError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        print(f"  {text}", file=sys.stderr)
        print("  " + " " * exc.position + "^", file=sys.stderr)
        return 2
    print(selector.text or "(matches every message)")
    key = selector.equality
    if key is not None:
        print(f"indexed on header {key.name!r}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tidings", description="Tidings pub/sub broker")
    parser.add_argument("--version", action="version", version=f"tidings {version('tidings')}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check-selector", help="validate a selector and print its canonical form"
    )
    check.add_argument("selector")
    args = parser.parse_args(argv)
    return _check_selector(args.selector)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
