"""In-process fan-out: S subscribers, each drained by its own task; M messages from one publisher.

Metric: deliveries/s = S x M / (wall time from the first publish until the last
consumer has received its M-th message). Subscription setup and teardown are
outside the clock; so is the creation of the consumer tasks, which are all parked
waiting for their first message before the first publish.

Contenders, all with the same structure (one publisher task, one consumer task
per subscriber, same payload ``{"n": i}`` built per message, same publish loop):

- ``deque_limit``: the physical limit of PERFORMANCE.md. The publisher appends a
  reference to each subscriber's ``collections.deque`` and completes the
  subscriber's waiting future only if it is parked (i.e. on the empty ->
  non-empty transition); the consumer pops in a plain loop and parks only when
  its deque is empty.
- ``asyncio_queue``: one ``asyncio.Queue`` per subscriber, ``put_nowait`` /
  ``await get()``.
- ``broadcaster``: the ``broadcaster`` package, ``Broadcast("memory://")``;
  consumers ``async with broadcast.subscribe(channel=...)`` and ``async for``.
  Its ``publish`` is a coroutine that puts the event on an unbounded queue
  read by broadcaster's own listener task, which then puts it on each
  subscriber's unbounded ``asyncio.Queue``; neither ``put`` suspends.
- ``tidings``: ``Broker()``; ``broker.subscribe(...)`` entered by each consumer
  task, ``async for msg in sub``; ``await broker.publish(...)``.

Fairness of the publisher: every contender's publish is called through the same
``async`` loop, which does ``await asyncio.sleep(0)`` after every
``--yield-every`` messages (default 100; 0 = never yield). The yield is what lets
consumers run while publishing goes on, i.e. a publisher emitting bursts of K
messages; K bounds how far any queue grows (tidings' ``max_pending`` of 10 000 is
never reached). A contender whose publish suspends on its own (none of the
references does) gives its consumers more, smaller wake-ups; that cost is its own.

Every consumer counts what it receives and checks the last payload; the trial
fails if any subscriber got fewer or more than M messages or got them out of order.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from _common import (
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

NAME = "inproc_fanout"
CHANNEL = "bench"
CONTENDERS = ("deque_limit", "asyncio_queue", "broadcaster", "tidings")
METRIC = "deliveries_per_s"
RATIO_PAIRS = (
    ("tidings", "deque_limit"),
    ("tidings", "broadcaster"),
    ("tidings", "asyncio_queue"),
)
TARGETS = {"tidings / deque_limit": 0.5, "tidings / broadcaster": 4.0}

Payload = dict[str, int]
Publish = Callable[[Payload], Awaitable[object]]


class Harness:
    """Start line and finish line shared by a trial's consumer tasks."""

    def __init__(self, subscribers: int, messages: int) -> None:
        self.subscribers = subscribers
        self.messages = messages
        self._not_ready = subscribers
        self.all_ready = asyncio.Event()
        self.all_done = asyncio.Event()
        self.finished_at: list[float] = []

    def ready(self) -> None:
        """Call once subscribed, right before waiting for the first message."""
        self._not_ready -= 1
        if self._not_ready == 0:
            self.all_ready.set()

    async def done(self, count: int, last: Any) -> None:
        """Call on the M-th message; returns once every consumer is done, so teardown
        (leaving the subscription) stays off the clock for everyone."""
        self.finished_at.append(time.perf_counter())
        complete = count == self.messages and last == {"n": self.messages - 1}
        if not complete or len(self.finished_at) == self.subscribers:
            self.all_done.set()
        if not complete:
            raise AssertionError(
                f"consumer got {count} messages (last {last!r}), expected {self.messages}"
            )
        await self.all_done.wait()


async def trial(
    subscribers: int,
    messages: int,
    yield_every: int,
    consumer: Callable[[Harness], Coroutine[Any, Any, None]],
    publish: Publish,
) -> float:
    """Start the consumers, wait until all are parked, publish, return the delivery time."""
    harness = Harness(subscribers, messages)
    tasks = [asyncio.create_task(consumer(harness)) for _ in range(subscribers)]
    ready = asyncio.create_task(harness.all_ready.wait())
    await asyncio.wait([ready, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task.done():
            task.result()  # a consumer that failed before the start raises here
    for _ in range(3):  # let the last ones reach their first wait
        await asyncio.sleep(0)
    start = time.perf_counter()
    for i in range(messages):
        await publish({"n": i})
        if yield_every and (i + 1) % yield_every == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    if len(harness.finished_at) != subscribers:
        raise AssertionError(f"{len(harness.finished_at)} of {subscribers} consumers finished")
    return max(harness.finished_at) - start


# ------------------------------------------------------------------ contenders


class _DequeSub:
    __slots__ = ("queue", "waiter")

    def __init__(self) -> None:
        self.queue: collections.deque[Payload] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None


async def run_deque_limit(subscribers: int, messages: int, yield_every: int) -> float:
    subs: list[_DequeSub] = []
    loop = asyncio.get_running_loop()

    async def consumer(harness: Harness) -> None:
        sub = _DequeSub()
        subs.append(sub)
        queue = sub.queue
        popleft = queue.popleft
        count = 0
        last: Payload | None = None
        harness.ready()
        while True:
            while queue:
                last = popleft()
                count += 1
            if count >= messages:
                break
            sub.waiter = loop.create_future()
            await sub.waiter
        await harness.done(count, last)

    async def publish(payload: Payload) -> None:
        for sub in subs:
            sub.queue.append(payload)
            waiter = sub.waiter
            if waiter is not None:
                sub.waiter = None
                waiter.set_result(None)

    return await trial(subscribers, messages, yield_every, consumer, publish)


async def run_asyncio_queue(subscribers: int, messages: int, yield_every: int) -> float:
    queues: list[asyncio.Queue[Payload]] = []

    async def consumer(harness: Harness) -> None:
        queue: asyncio.Queue[Payload] = asyncio.Queue()
        queues.append(queue)
        get = queue.get
        count = 0
        last: Payload | None = None
        harness.ready()
        while count < messages:
            last = await get()
            count += 1
        await harness.done(count, last)

    async def publish(payload: Payload) -> None:
        for queue in queues:
            queue.put_nowait(payload)

    return await trial(subscribers, messages, yield_every, consumer, publish)


async def run_broadcaster(subscribers: int, messages: int, yield_every: int) -> float:
    from broadcaster import Broadcast  # noqa: PLC0415 - optional (the "bench" extra)

    async with Broadcast("memory://") as broadcast:

        async def consumer(harness: Harness) -> None:
            count = 0
            last: Any = None
            async with broadcast.subscribe(channel=CHANNEL) as subscriber:
                harness.ready()
                async for event in subscriber:  # type: ignore[union-attr]
                    last = event.message  # type: ignore[union-attr]
                    count += 1
                    if count == messages:
                        break
                await harness.done(count, last)

        async def publish(payload: Payload) -> None:
            await broadcast.publish(channel=CHANNEL, message=payload)

        return await trial(subscribers, messages, yield_every, consumer, publish)


async def run_tidings(subscribers: int, messages: int, yield_every: int) -> float:
    from broker import Broker  # noqa: PLC0415 - lets the references run without it

    async with Broker() as broker:

        async def consumer(harness: Harness) -> None:
            count = 0
            last: Any = None
            async with broker.subscribe(CHANNEL, max_pending=10_000, overflow="close") as sub:
                harness.ready()
                async for msg in sub:
                    last = msg.message
                    count += 1
                    if count == messages:
                        break
                await harness.done(count, last)

        async def publish(payload: Payload) -> None:
            await broker.publish(CHANNEL, payload)

        return await trial(subscribers, messages, yield_every, consumer, publish)


RUNNERS: dict[str, Callable[[int, int, int], Awaitable[float]]] = {
    "deque_limit": run_deque_limit,
    "asyncio_queue": run_asyncio_queue,
    "broadcaster": run_broadcaster,
    "tidings": run_tidings,
}


# ------------------------------------------------------------------------ main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscribers", type=int, default=None, help="default 1000 (quick: 50)")
    parser.add_argument("--messages", type=int, default=None, help="default 2000 (quick: 200)")
    add_yield_every(parser)


async def main(args: argparse.Namespace) -> None:
    subscribers = args.subscribers or (50 if args.quick else 1000)
    messages = args.messages or (200 if args.quick else 2000)
    names = selected(args, CONTENDERS)

    def bind(name: str) -> Callable[[], Awaitable[float]]:
        runner = RUNNERS[name]
        return lambda: runner(subscribers, messages, args.yield_every)

    samples = await best_of({name: bind(name) for name in names}, args.repeat)
    deliveries = subscribers * messages
    results = {
        name: {
            METRIC: deliveries / s.best,
            "best_s": s.best,
            "median_s": s.median,
            "median_deliveries_per_s": deliveries / s.median,
        }
        for name, s in samples.items()
    }
    ratios = compute_ratios(results, METRIC, RATIO_PAIRS)
    params = {
        "subscribers": subscribers,
        "messages": messages,
        "deliveries": deliveries,
        "payload": '{"n": i}',
        "yield_every": args.yield_every,
        "repeat": args.repeat,
        "quick": args.quick,
        "metric": f"{METRIC} = subscribers x messages / best wall time (first publish to last"
        " delivery)",
        "targets": TARGETS,
        **environment(),
    }
    print_table(
        f"{NAME}: {subscribers} subscribers x {messages} messages, publisher yields every "
        f"{args.yield_every or 'never'}, loop {params['loop']}, best of {args.repeat}",
        results,
        ratios,
        metrics=[METRIC, "median_deliveries_per_s", "best_s", "median_s"],
        targets=TARGETS,
    )
    path = write_results(NAME, params, results, ratios, directory=args.results_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    arguments = parse_args(__doc__ or NAME, add_arguments=add_arguments)
    run(lambda: main(arguments))
