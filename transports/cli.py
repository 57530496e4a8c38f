"""The `tidings` command line: `serve`, `check-selector`, `bench`."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

import anyio

from broker import BrokerError, SelectorError
from broker.selectors import compile_selector
from transports import bench, logs
from transports.config import AppSettings, ConfigError, load_config
from transports.server import serve


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
    serve = commands.add_parser("serve", help="run the server (REST API) on the data dir")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080; 0 picks a free one)")
    serve.add_argument("--ws-port", type=int, help="websocket port (default 8081)")
    serve.add_argument("--app-id", help="application id (with --api-key; default: generated)")
    serve.add_argument("--api-key", help="REST API key of --app-id")
    serve.add_argument("--data-dir", help="where the SQLite stores live (default ./data)")
    serve.add_argument("--config", help="a TOML file (see docs/operations.md)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    bench.add_arguments(commands.add_parser("bench", help="load-test a running server"))
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench":
        return bench.main(args)
    return _check_selector(args.selector)


def _serve(args: argparse.Namespace) -> int:
    if (args.app_id is None) != (args.api_key is None):
        print("error: --app-id and --api-key go together", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = config.server
    for flag in ("host", "port", "ws_port", "data_dir", "log_level"):
        value = getattr(args, flag)
        if value is not None:
            setattr(server, flag, value)
    if args.app_id is not None:
        config.apps = [AppSettings(id=args.app_id, api_keys=[args.api_key])]
    logs.configure(server.log_level)

    def ready(line: str) -> None:
        print(line, flush=True)

    try:
        anyio.run(lambda: serve(config, on_ready=ready), backend_options={"use_uvloop": True})
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (BrokerError, ValueError) as exc:  # a config the server cannot start with
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
