"""Publish throughput on one channel as non-matching selector subscriptions pile up.

Metric: messages/s of ``await broker.publish(CHANNEL, {"n": i}, headers={"city": "Tokyo",
"price": 1})`` in a loop (20 000 messages), on one channel that always has one
subscription without a selector, drained by a consumer task, so every publish
really delivers something. Contenders, each on a fresh ``Broker()`` in the same run:

- ``none``: only the drained subscription.
- ``eq_10k``: plus 10 000 subscriptions with equality selectors that do not match,
  all distinct (``city = 'c0'`` ... ``city = 'c9999'``). The broker is expected to
  find candidates through its equality index, so this should cost little.
- ``range_1k``: plus 1000 subscriptions with distinct range selectors that do not
  match (``price > 1`` ... ``price > 1000``; the message has price = 1). No
  equality index serves them; a broker either evaluates each once per message or
  keeps an ordered index of the bounds.
- ``scan_1k``: plus 1000 distinct selectors that no index can reasonably serve and
  that do not match (``price * price > 1`` ... ``> 1000``): the per-message cost of
  evaluating selectors one by one.
- ``eq_10k_naive_scan``: the reference for what the index saves. The ``none``
  setup, and for every message, after ``broker.publish``, a plain Python loop over
  10 000 predicates ``lambda h: h.get("city") == "c<i>"`` (appending to a deque
  on a match, which never happens) - a broker that scans every subscription.

The two scanning contenders (``scan_1k``, ``eq_10k_naive_scan``) are slow, so they
publish ``--scan-messages`` (default 500) messages instead of 20 000; their figure
is a rate like the others.

Every contender publishes through the same loop, which awaits ``asyncio.sleep(0)``
after every ``--yield-every`` messages (default 100) so the consumer drains in
batches while publishing goes on; the clock runs from the first publish until the
last publish has returned (the consumer's catch-up afterwards is not timed, its
count is checked). The drained subscription's ``max_pending`` exceeds the message
count, so nothing can overflow. Subscriptions are entered with one
``contextlib.AsyncExitStack``, outside the clock (``setup_s`` reports that time, best
of the rounds: the broker may cache compiled selectors between rounds); those that
never receive anything have no consumer task.

After the clock stops each trial checks what the broker delivered: the drained
subscription got every message in order, no selector subscription got any, and one
probe message (e.g. ``city = 'c7'``, or ``price = 3``) reaches exactly the
subscriptions whose selectors it satisfies. A failed check fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from _common import (
    Samples,
    add_yield_every,
    best_of,
    compute_ratios,
    environment,
    parse_args,
    print_table,
    run,
    selected,
    write_results,
)

NAME = "selector_scaling"
CHANNEL = "prices"
CONTENDERS = ("none", "eq_10k", "range_1k", "scan_1k", "eq_10k_naive_scan")
METRIC = "messages_per_s"
RATIO_PAIRS = (
    ("eq_10k", "none"),
    ("range_1k", "none"),
    ("scan_1k", "none"),
    ("eq_10k", "eq_10k_naive_scan"),
)
SCANNING = frozenset({"scan_1k", "eq_10k_naive_scan"})
TARGETS = {"eq_10k / none": 0.8}

Headers = dict[str, Any]


def _eq_predicate(value: str) -> Callable[[Headers], bool]:
    return lambda h: h.get("city") == value


# The selectors of subscription i for each contender that has some, and a probe: headers
# published once after the clock stops, with the indexes of the subscriptions that must
# receive it (the others must not), so a fast path that drops or adds messages fails here.
SELECTORS: dict[str, Callable[[int], str]] = {
    "eq_10k": lambda i: f"city = 'c{i}'",
    "range_1k": lambda i: f"price > {i + 1}",
    "scan_1k": lambda i: f"price * price > {i + 1}",
}
PROBES: dict[str, tuple[Headers, set[int]]] = {
    "eq_10k": ({"city": "c7", "price": 1}, {7}),  # city = 'c7'
    "range_1k": ({"city": "Tokyo", "price": 3}, {0, 1}),  # price > 1, price > 2
    "scan_1k": ({"city": "Tokyo", "price": 2}, {0, 1, 2}),  # 4 > 1, 2, 3
}


async def ready_now(subscriptions: Sequence[AsyncIterator[Any]]) -> set[int]:
    """Indexes of the subscriptions with a message ready (taken), without waiting for one."""
    tasks = [asyncio.ensure_future(anext(sub)) for sub in subscriptions]
    for _ in range(5):
        await asyncio.sleep(0)
    ready = {i for i, task in enumerate(tasks) if task.done()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return ready


class Sizes:
    def __init__(self, args: argparse.Namespace) -> None:
        quick = args.quick
        self.messages: int = args.messages or (2000 if quick else 20_000)
        self.scan_messages: int = args.scan_messages or (50 if quick else 500)
        self.equality: int = args.equality or (1000 if quick else 10_000)
        self.ranges: int = args.ranges or (100 if quick else 1000)
        self.counts = {"eq_10k": self.equality, "range_1k": self.ranges, "scan_1k": self.ranges}
        self.yield_every: int = args.yield_every


async def trial(
    kind: str, sizes: Sizes, setup_seconds: dict[str, list[float]], message_counts: dict[str, int]
) -> float:
    from broker import Broker  # noqa: PLC0415 - lets --help work without the broker

    messages = sizes.scan_messages if kind in SCANNING else sizes.messages
    message_counts[kind] = messages
    naive: list[tuple[Callable[[Headers], bool], collections.deque[Any]]] = []
    async with Broker() as broker, AsyncExitStack() as stack:
        setup_start = time.perf_counter()
        drained = await stack.enter_async_context(
            broker.subscribe(CHANNEL, max_pending=messages + 10_000, overflow="close")
        )
        selected_subs = []
        if kind in SELECTORS:
            selector = SELECTORS[kind]
            for i in range(sizes.counts[kind]):
                sub = broker.subscribe(CHANNEL, selector=selector(i), max_pending=10_000)
                selected_subs.append(await stack.enter_async_context(sub))
        elif kind == "eq_10k_naive_scan":
            naive = [(_eq_predicate(f"c{i}"), collections.deque()) for i in range(sizes.equality)]
        setup_seconds.setdefault(kind, []).append(time.perf_counter() - setup_start)

        async def consume() -> int:
            count = 0
            last: Any = None
            async for msg in drained:
                last = msg.message
                count += 1
                if count == messages:
                    break
            if last != {"n": messages - 1}:
                raise AssertionError(f"last message {last!r}, expected n={messages - 1}")
            return count

        consumer = asyncio.create_task(consume())
        for _ in range(3):
            await asyncio.sleep(0)

        publish = broker.publish
        yield_every = sizes.yield_every
        start = time.perf_counter()
        if naive:
            for i in range(messages):
                headers = {"city": "Tokyo", "price": 1}
                payload = {"n": i}
                await publish(CHANNEL, payload, headers=headers)
                for predicate, queue in naive:
                    if predicate(headers):
                        queue.append(payload)
                if yield_every and (i + 1) % yield_every == 0:
                    await asyncio.sleep(0)
        else:
            for i in range(messages):
                await publish(CHANNEL, {"n": i}, headers={"city": "Tokyo", "price": 1})
                if yield_every and (i + 1) % yield_every == 0:
                    await asyncio.sleep(0)
        elapsed = time.perf_counter() - start

        count = await asyncio.wait_for(consumer, timeout=60)
        if count != messages:
            raise AssertionError(f"{kind}: consumer got {count} of {messages} messages")
        if any(queue for _, queue in naive):
            raise AssertionError("a naive predicate matched")
        if selected_subs:
            wrong = await ready_now(selected_subs)
            if wrong:
                raise AssertionError(
                    f"{kind}: {len(wrong)} non-matching subscriptions got messages"
                )
            headers, expected = PROBES[kind]
            await publish(CHANNEL, {"probe": True}, headers=headers)
            got = await ready_now(selected_subs)
            if got != expected:
                raise AssertionError(
                    f"{kind}: probe {headers} reached {sorted(got)}, not {expected}"
                )
    return elapsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="default 20000 (quick: 2000)")
    parser.add_argument(
        "--scan-messages",
        type=int,
        default=None,
        help="messages for scan_1k and eq_10k_naive_scan, default 500 (quick: 50)",
    )
    parser.add_argument(
        "--equality", type=int, default=None, help="equality selectors, default 10000 (quick: 1000)"
    )
    parser.add_argument(
        "--ranges", type=int, default=None, help="range selectors, default 1000 (quick: 100)"
    )
    add_yield_every(parser)


async def main(args: argparse.Namespace) -> None:
    sizes = Sizes(args)
    names = selected(args, CONTENDERS)
    setup_seconds: dict[str, list[float]] = {}
    message_counts: dict[str, int] = {}

    def bind(kind: str) -> Callable[[], Awaitable[float]]:
        return lambda: trial(kind, sizes, setup_seconds, message_counts)

    samples: dict[str, Samples] = await best_of({n: bind(n) for n in names}, args.repeat)
    results = {
        name: {
            METRIC: message_counts[name] / s.best,
            "median_messages_per_s": message_counts[name] / s.median,
            "us_per_publish": s.best / message_counts[name] * 1e6,
            "messages": message_counts[name],
            "setup_s": min(setup_seconds[name]),
        }
        for name, s in samples.items()
    }
    ratios = compute_ratios(results, METRIC, RATIO_PAIRS)
    params = {
        "messages": sizes.messages,
        "scan_messages": sizes.scan_messages,
        "equality_selectors": sizes.equality,
        "range_selectors": sizes.ranges,
        "headers": {"city": "Tokyo", "price": 1},
        "payload": '{"n": i}',
        "yield_every": sizes.yield_every,
        "repeat": args.repeat,
        "quick": args.quick,
        "metric": f"{METRIC} = messages / best time of the publish loop",
        "targets": TARGETS,
        **environment(),
    }
    print_table(
        f"{NAME}: {sizes.messages} messages ({sizes.scan_messages} for the scanning ones), "
        f"{sizes.equality} eq / {sizes.ranges} range selectors, publisher yields every "
        f"{sizes.yield_every or 'never'}, loop {params['loop']}, best of {args.repeat}",
        results,
        ratios,
        metrics=[METRIC, "median_messages_per_s", "us_per_publish", "messages", "setup_s"],
        targets=TARGETS,
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments)
    run(lambda: main(arguments))
