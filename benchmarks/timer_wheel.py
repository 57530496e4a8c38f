"""Timer cost: the timing wheel against one asyncio handle per timer (loop.call_at).

N timers with deadlines spread over an hour are scheduled, half are cancelled,
and the memory they hold is measured with tracemalloc, for both contenders in
the same run. Metrics: microseconds per schedule and per cancel, bytes per
pending timer (the wheel's Timer and bucket entry; call_at's TimerHandle and
heap slot). Firing is not timed here: the wheel hands out due items in batches
to one driver, call_at runs one callback per timer.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _common import environment, parse_args, print_table, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker._timers import TimingWheel

NAME = "timer_wheel"


def _noop() -> None:
    pass


def measure_wheel(deadlines: list[float]) -> dict[str, float]:
    def schedule_all() -> tuple[TimingWheel[int], list[Any]]:
        wheel: TimingWheel[int] = TimingWheel(0.0)
        return wheel, [wheel.schedule(d, i) for i, d in enumerate(deadlines)]

    def cancel_half(state: tuple[TimingWheel[int], list[Any]]) -> None:
        wheel, timers = state
        for timer in timers[::2]:
            wheel.cancel(timer)

    return _measure(schedule_all, cancel_half, len(deadlines))


def measure_call_at(deadlines: list[float]) -> dict[str, float]:
    loop = asyncio.new_event_loop()
    try:
        offsets = [loop.time() + d / 1000 for d in deadlines]

        def schedule_all() -> list[asyncio.TimerHandle]:
            return [loop.call_at(o, _noop) for o in offsets]

        def cancel_half(handles: list[asyncio.TimerHandle]) -> None:
            for handle in handles[::2]:
                handle.cancel()

        return _measure(schedule_all, cancel_half, len(deadlines))
    finally:
        loop.close()


def _measure(schedule_all: Any, cancel_half: Any, n: int) -> dict[str, float]:
    """Time schedule and cancel untraced, then count held bytes in a traced rerun."""
    gc.collect()
    start = time.perf_counter()
    state = schedule_all()
    scheduled = time.perf_counter() - start
    start = time.perf_counter()
    cancel_half(state)
    cancelled = time.perf_counter() - start
    del state
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state = schedule_all()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del state
    return {
        "schedule_us": scheduled / n * 1e6,
        "cancel_us": cancelled / (n // 2) * 1e6,
        "bytes_per_timer": held / n,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timers", type=int, default=100_000)


def main() -> None:
    args = parse_args(__doc__ or NAME, add_arguments=add_arguments, default_repeat=3)
    count = 2_000 if args.quick else args.timers
    rng = random.Random(7)
    deadlines = [rng.uniform(0, 3_600_000) for _ in range(count)]
    results: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):  # keep each contender's best (smallest) figures
        for name, figures in (
            ("wheel", measure_wheel(deadlines)),
            ("call_at", measure_call_at(deadlines)),
        ):
            best = results.setdefault(name, figures)
            for metric, value in figures.items():
                best[metric] = min(best[metric], value)
    ratios: dict[str, Any] = {
        f"call_at / wheel ({metric})": results["call_at"][metric] / results["wheel"][metric]
        for metric in ("schedule_us", "cancel_us", "bytes_per_timer")
    }
    params = {
        "timers": count,
        "spread_ms": 3_600_000,
        "repeat": args.repeat,
        "quick": args.quick,
        **environment(),
    }
    print_table(f"{NAME}: {count} timers over an hour, best of {args.repeat}", results, ratios)
    write_results(NAME, params, results, ratios, directory=args.results_dir)


if __name__ == "__main__":
    main()
