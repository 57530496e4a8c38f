"""Helpers shared by the benchmark scripts.

- ``parse_args``: the options every script takes (``--quick``, ``--repeat N``,
  ``--results-dir``, ``--only``) plus the script's own.
- ``best_of``: same-run timing; runs every contender ``repeat`` times, interleaved
  round by round, and keeps every sample so the best (minimum) and the median can
  be reported.
- ``run``: runs the benchmark's main coroutine on uvloop when it is installed,
  else on the default asyncio loop; ``loop_name`` says which.
- ``print_table``: a plain-text table of contenders x metrics, then the ratios.
- ``write_results``: ``benchmarks/results/<name>.json`` in the shape DESIGN.md pins.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported as
``_common`` (the script's directory is first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Results = dict[str, dict[str, float]]


# --------------------------------------------------------------------------- CLI


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    default_repeat: int = 5,
) -> argparse.Namespace:
    """Parse the common options and, through ``add_arguments``, the script's own.

    ``--repeat`` defaults to ``default_repeat``, or to 1 with ``--quick``.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, for the smoke test (seconds, not minutes)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help=f"runs per contender; the best is reported (default {default_repeat}, 1 with --quick)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where <name>.json is written (default {RESULTS_DIR})",
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="A,B",
        help="comma-separated contenders to run (default: all); ratios need both sides",
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else default_repeat
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def add_yield_every(parser: argparse.ArgumentParser, default: int = 100) -> None:
    """``--yield-every K``: the publisher awaits ``asyncio.sleep(0)`` after every K messages."""
    parser.add_argument(
        "--yield-every",
        type=int,
        default=default,
        metavar="K",
        help=f"publisher awaits asyncio.sleep(0) after every K messages, 0 = never ({default})",
    )


def selected(args: argparse.Namespace, contenders: Sequence[str]) -> list[str]:
    """The contenders ``--only`` asks for, in the script's order; all by default."""
    if args.only is None:
        return list(contenders)
    wanted = [name.strip() for name in str(args.only).split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(contenders))
    if unknown:
        raise SystemExit(f"unknown contender(s) {unknown}; choose from {list(contenders)}")
    return [name for name in contenders if name in wanted]


# ------------------------------------------------------------------- event loop


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """``"uvloop <version>"`` when uvloop is installed (and so used), else ``"asyncio"``."""
    if _uvloop_factory() is None:
        return "asyncio"
    import uvloop  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

    return f"uvloop {getattr(uvloop, '__version__', '?')}"


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on uvloop if it is installed, else on the default asyncio loop."""
    with asyncio.Runner(loop_factory=_uvloop_factory()) as runner:
        return runner.run(main())


def environment() -> dict[str, Any]:
    """What the figures depend on besides the code: goes into ``params``."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loop": loop_name(),
    }


# ---------------------------------------------------------------------- timing


@dataclass
class Samples:
    """Every measured duration of one contender, in seconds."""

    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.elapsed`` (seconds, perf_counter)."""

    __slots__ = ("elapsed", "start")

    def __init__(self) -> None:
        self.start = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.elapsed = time.perf_counter() - self.start


async def best_of(
    trials: Mapping[str, Callable[[], Awaitable[float]]],
    repeat: int,
    *,
    verbose: bool = True,
) -> dict[str, Samples]:
    """Run each contender's trial ``repeat`` times, in the same process and loop.

    A trial sets itself up, measures the part that counts with ``time.perf_counter``
    and returns those seconds, so setup and teardown stay out of the figure.
    Rounds are interleaved (round r runs every contender once, the starting
    contender rotating) so that drift on a shared machine hits everyone alike;
    a full ``gc.collect()`` precedes every trial so one contender's garbage is
    not collected on another's clock.
    """
    names = list(trials)
    samples = {name: Samples() for name in names}
    for round_index in range(repeat):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            seconds = await trials[name]()
            samples[name].seconds.append(seconds)
            if verbose:
                print(
                    f"  round {round_index + 1}/{repeat}  {name:<20} {seconds:9.4f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return samples


# ----------------------------------------------------------------------- output


def make_delays(count: int, seed: int, low: float, high: float) -> list[float]:
    """`count` seconds drawn uniformly from [low, high], the same for every run of a seed."""
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(count)]


async def settle_loop() -> None:
    """Let the loop run what a trial left behind (cancelled handles, a consumer task parking
    on its first wait) before the next one is clocked."""
    for _ in range(3):
        await asyncio.sleep(0)


def format_value(value: float) -> str:
    """Compact human form: 14.20 M, 853.1 k, 0.1412; whole numbers (counts) as they are."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.2f} M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.1f} k"
    return f"{value:.4g}"


def ratio(results: Mapping[str, Mapping[str, float]], metric: str, top: str, bottom: str) -> float:
    return results[top][metric] / results[bottom][metric]


def compute_ratios(
    results: Mapping[str, Mapping[str, float]],
    metric: str,
    pairs: Sequence[tuple[str, str]],
) -> dict[str, float]:
    """``{"a / b": results[a][metric] / results[b][metric]}`` for the pairs both measured."""
    return {
        f"{top} / {bottom}": ratio(results, metric, top, bottom)
        for top, bottom in pairs
        if top in results and bottom in results
    }


def print_table(
    title: str,
    results: Mapping[str, Mapping[str, float]],
    ratios: Mapping[str, float],
    *,
    metrics: Sequence[str] | None = None,
    targets: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Print contenders x metrics, then each ratio (with its target, if it has one)."""
    if metrics is None:
        metrics = list(dict.fromkeys(m for row in results.values() for m in row))
    header = ["contender", *metrics]
    rows = [
        [name, *(format_value(row[m]) if m in row else "-" for m in metrics)]
        for name, row in results.items()
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    print()
    print(title)
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    if ratios:
        targets = targets or {}
        name_width = max(len(name) for name in ratios)
        print()
        print(f"{'ratio'.ljust(name_width)}  {'value':>7}  target")
        for name, value in ratios.items():
            target = targets.get(name)
            verdict = (
                ""
                if target is None
                else f">= {target:g}  " + ("met" if value >= target else "BELOW TARGET")
            )
            print(f"{name.ljust(name_width)}  {value:7.3f}  {verdict}")
    for note in notes:
        print(note)
    print()


def write_results(
    name: str,
    params: Mapping[str, Any],
    results: Mapping[str, Mapping[str, float]],
    ratios: Mapping[str, float],
    directory: Path | None = None,
) -> Path:
    """Write ``<directory>/<name>.json`` (default ``benchmarks/results``); return its path."""
    directory = RESULTS_DIR if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {
        "name": name,
        "params": dict(params),
        "results": {contender: dict(metrics) for contender, metrics in results.items()},
        "ratios": dict(ratios),
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
