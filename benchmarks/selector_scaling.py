"""Publish throughput on one channel as non-matching selector subscriptions pile up.

Metric: messages/s of ``await broker.publish(CHANNEL, {"n": i}, headers={"city": "Tokyo",
"price": 1})`` in a loop (20 000 messages), on one channel that always has one
subscription without a selector, drained by a consumer task, so every publish
really delivers something. Contenders, each on a fresh ``Broker()`` in the same run:

- ``none``: only the drained subscription.
- ``eq_10k``: plus 10 000 subscriptions with equality selectors that do not match,
  all distinct (``city = 'c0'`` ... ``city = 'c9999'``). The broker is expected to
  find candidates through its equality index, so this should cost little.
- ``range_1k``: plus 1000 subscriptions with distinct selectors that no index can
  serve and that do not match (``price > 1`` ... ``price > 1000``; the message has
  price = 1). Each is evaluated once per message.
- ``eq_10k_naive_scan``: the reference for what the index saves. The ``none``
  setup, and for every message, after ``broker.publish``, a plain Python loop over
  10 000 predicates ``lambda h: h.get("city") == "c<i>"`` (appending to a deque
  on a match, which never happens) - a broker that scans every subscription.
  Because that is slow it publishes ``--naive-messages`` (default 500) messages;
  its figure is a rate like the others.

Every contender publishes through the same loop, which awaits ``asyncio.sleep(0)``
after every ``--yield-every`` messages (default 100) so the consumer drains in
batches while publishing goes on; the clock runs from the first publish until the
last publish has returned (the consumer's catch-up afterwards is not timed, its
count is checked). The drained subscription's ``max_pending`` exceeds the message
count, so nothing can overflow. Subscriptions are entered with one
``contextlib.AsyncExitStack``, outside the clock (``setup_s`` reports that time, best
of the rounds: the broker may cache compiled selectors between rounds); those that
never receive anything have no consumer task.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
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
CONTENDERS = ("none", "eq_10k", "range_1k", "eq_10k_naive_scan")
METRIC = "messages_per_s"
RATIO_PAIRS = (("eq_10k", "none"), ("range_1k", "none"), ("eq_10k", "eq_10k_naive_scan"))
TARGETS = {"eq_10k / none": 0.8}

Headers = dict[str, Any]


def _eq_predicate(value: str) -> Callable[[Headers], bool]:
    return lambda h: h.get("city") == value


class Sizes:
    def __init__(self, args: argparse.Namespace) -> None:
        quick = args.quick
        self.messages: int = args.messages or (2000 if quick else 20_000)
        self.naive_messages: int = args.naive_messages or (50 if quick else 500)
        self.equality: int = args.equality or (1000 if quick else 10_000)
        self.ranges: int = args.ranges or (100 if quick else 1000)
        self.yield_every: int = args.yield_every


async def trial(
    kind: str, sizes: Sizes, setup_seconds: dict[str, list[float]], message_counts: dict[str, int]
) -> float:
    from broker import Broker  # noqa: PLC0415 - lets --help work without the broker

    messages = sizes.naive_messages if kind == "eq_10k_naive_scan" else sizes.messages
    message_counts[kind] = messages
    naive: list[tuple[Callable[[Headers], bool], collections.deque[Any]]] = []
    async with Broker() as broker, AsyncExitStack() as stack:
        setup_start = time.perf_counter()
        drained = await stack.enter_async_context(
            broker.subscribe(CHANNEL, max_pending=messages + 10_000, overflow="close")
        )
        if kind == "eq_10k":
            for i in range(sizes.equality):
                await stack.enter_async_context(
                    broker.subscribe(CHANNEL, selector=f"city = 'c{i}'", max_pending=10_000)
                )
        elif kind == "range_1k":
            for i in range(sizes.ranges):
                await stack.enter_async_context(
                    broker.subscribe(CHANNEL, selector=f"price > {i + 1}", max_pending=10_000)
                )
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
    return elapsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="default 20000 (quick: 2000)")
    parser.add_argument("--naive-messages", type=int, default=None, help="default 500 (quick: 50)")
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
        "naive_messages": sizes.naive_messages,
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
        f"{NAME}: {sizes.messages} messages ({sizes.naive_messages} for the naive scan), "
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
