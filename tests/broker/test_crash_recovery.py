"""kill -9 and restart on a SqliteStore, with real processes (scheduled_process.py).

The guarantee: a due time recorded never fires again; one not yet recorded
fires once after a restart; messages in the in-memory queues of a killed
process are lost with it. Every wait is on a line of a child's output, bounded
by a deadline; children are killed whatever happens.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("scheduled_process.py")
COUNT = 10_000
SCHEDULE_TIMEOUT = 20.0  # seconds for a child to start and schedule COUNT messages
RECEIVE_TIMEOUT = 20.0  # seconds past the last due time for a restarted child to finish


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Received:
    message_id: str
    due: int  # from the "due" header
    recv: int  # the receiving process's clock when it read the message, epoch ms
    timestamp: int  # the broker's delivery timestamp, epoch ms


@dataclass
class Output:
    """What a child printed, parsed (see scheduled_process.py)."""

    scheduled: dict[str, int] = field(default_factory=dict)  # id -> due ms
    received: list[Received] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # every other line

    def add(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "S":
            message_id, due = rest.split()
            assert message_id not in self.scheduled, f"{message_id} scheduled twice"
            self.scheduled[message_id] = int(due)
        elif kind == "R":
            message_id, due, recv, timestamp = rest.split()
            self.received.append(Received(message_id, int(due), int(recv), int(timestamp)))
        else:
            self.events.append(line)

    def has(self, prefix: str) -> bool:
        return any(event.startswith(prefix) for event in self.events)


class Child:
    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.output = Output()
        self.eof = False

    async def read_until(self, done: Callable[[Output], bool], deadline: float) -> None:
        """Read lines until `done(output)`; fails at EOF or at `deadline` (time.monotonic)."""
        stream = self.process.stdout
        assert stream is not None
        while not done(self.output):
            remaining = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(stream.readline(), max(remaining, 0.0))
            except TimeoutError:
                raise AssertionError(
                    f"timed out waiting for the child\n{self.describe()}"
                ) from None
            if not line:
                self.eof = True
                await asyncio.wait_for(self.process.wait(), 5)
                raise AssertionError(f"the child ended early\n{self.describe()}")
            self.output.add(line.decode().rstrip("\n"))

    async def kill(self) -> None:
        """SIGKILL, reap, then read what it printed before dying."""
        self.process.kill()
        stream = self.process.stdout
        assert stream is not None
        # Read to EOF before waiting: asyncio reports the exit only once the pipe is closed,
        # and it stops reading a pipe whose unread output passed the StreamReader's limit.
        for line in (await asyncio.wait_for(stream.read(), 10)).decode().splitlines():
            self.output.add(line)
        await asyncio.wait_for(self.process.wait(), 10)
        self.eof = True

    def describe(self) -> str:
        return (
            f"returncode={self.process.returncode} events={self.output.events} "
            f"received={len(self.output.received)} scheduled={len(self.output.scheduled)}\n"
            f"stderr:\n{self.stderr.read_text()[-4000:]}"
        )


@asynccontextmanager
async def child(tmp_path: Path, name: str, *args: object) -> AsyncIterator[Child]:
    stderr = tmp_path / f"{name}.stderr"
    with stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            *map(str, args),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    try:
        yield Child(process, stderr)
    finally:
        if process.returncode is None:
            process.kill()
            if process.stdout is not None:  # drained first: see Child.kill
                await asyncio.wait_for(process.stdout.read(), 10)
            await asyncio.wait_for(process.wait(), 10)


@dataclass
class StoreState:
    published: dict[str, float]  # message id -> when its due time was recorded (epoch s)
    pending: set[str]
    other_statuses: list[tuple[str, str]]


def read_store(path: Path) -> StoreState:
    """The SQLite file as a killed process left it, read directly (read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pending = [row[0] for row in con.execute("SELECT message_id FROM scheduled")]
        statuses = con.execute("SELECT message_id, status, at FROM statuses").fetchall()
    finally:
        con.close()
    assert len(set(pending)) == len(pending)
    published = {m: at for m, status, at in statuses if status == "published"}
    other = [(m, status) for m, status, _ in statuses if status != "published"]
    return StoreState(published, set(pending), other)


def check_store_after_kill(state: StoreState, scheduled: dict[str, int], killed_at: int) -> None:
    recorded, pending = set(state.published), state.pending
    assert not state.other_statuses
    both, lost = recorded & pending, set(scheduled) - recorded - pending
    extra = (recorded | pending) - set(scheduled)
    assert not both, f"{len(both)} messages both recorded published and still pending"
    assert not lost, f"{len(lost)} scheduled messages vanished from the store"
    assert not extra, f"{len(extra)} messages in the store were never scheduled"
    for message_id, at in state.published.items():
        due = scheduled[message_id]
        # Never recorded (so never released) before its due time, nor after the kill.
        assert due <= at * 1000 <= killed_at + 1, (message_id, due, at, killed_at)


def check_received(
    received: list[Received], scheduled: dict[str, int], expected: set[str], who: str
) -> None:
    counts = Counter(r.message_id for r in received)
    twice = {m: n for m, n in counts.items() if n > 1}
    assert not twice, f"{who} received {len(twice)} messages more than once, e.g. {twice}"
    assert not set(counts) - expected, f"{who} received {len(set(counts) - expected)} unexpected"
    assert not expected - set(counts), f"{who} missed {len(expected - set(counts))} messages"
    early = [r for r in received if r.due != scheduled[r.message_id] or r.recv < r.due]
    assert not early, f"{who} received {len(early)} messages early (or mislabelled): {early[:3]}"
    stamped_early = [r for r in received if r.timestamp < r.due]
    assert not stamped_early, f"{len(stamped_early)} timestamped before due: {stamped_early[:3]}"


async def restart_and_receive(tmp_path: Path, db: Path, last_due: int) -> Output:
    """A second process on the store: everything it releases, until nothing is pending."""
    async with child(tmp_path, "restarted", "receive", db) as second:
        deadline = time.monotonic() + max(0, last_due - now_ms()) / 1000 + RECEIVE_TIMEOUT
        await second.read_until(lambda out: out.has("done"), deadline)
        assert await asyncio.wait_for(second.process.wait(), 10) == 0, second.describe()
        return second.output


async def test_killed_before_due_fires_everything_once_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "broker.sqlite"
    # Due a few seconds ahead, so the kill and restart normally come first; a slower run
    # (messages overdue at restart) must pass the same checks.
    start, window = now_ms() + 3000, 1000
    async with child(tmp_path, "scheduler", "schedule", db, COUNT, start, window) as first:
        deadline = time.monotonic() + SCHEDULE_TIMEOUT
        await first.read_until(lambda out: out.has("scheduled "), deadline)
        await first.kill()
        killed_at = now_ms()
        assert first.process.returncode == -signal.SIGKILL
    scheduled = first.output.scheduled
    assert len(scheduled) == COUNT

    state = read_store(db)
    check_store_after_kill(state, scheduled, killed_at)
    if killed_at < start:
        assert state.pending == set(scheduled)  # nothing was due yet

    second = await restart_and_receive(tmp_path, db, start + window)
    assert second.events[0] == f"ready {len(state.pending)}"
    check_received(second.received, scheduled, state.pending, "the restarted process")


async def test_killed_while_firing_fires_each_due_time_once(tmp_path: Path) -> None:
    db = tmp_path / "broker.sqlite"
    # Due in 10 bursts of 1000 (one store transaction each), 100 ms apart. Killed on the
    # first line of the fourth: the rest of that burst is recorded but, normally, still in
    # the first process's queue (it prints as fast as this test reads). The next bursts are
    # normally overdue when the second process starts, the last ones not yet.
    start, window, step = now_ms() + 2500, 1000, 100
    kill_after = COUNT * 3 // 10 + 1

    def scheduled_and_some_received(out: Output) -> bool:
        return out.has("scheduled ") and len(out.received) >= kill_after

    args = ("schedule-receive", db, COUNT, start, window, step)
    async with child(tmp_path, "firing", *args) as first:
        deadline = time.monotonic() + SCHEDULE_TIMEOUT + (start + window - now_ms()) / 1000
        await first.read_until(scheduled_and_some_received, deadline)
        await first.kill()
        killed_at = now_ms()
        assert first.process.returncode == -signal.SIGKILL
    scheduled = first.output.scheduled
    received1 = first.output.received
    assert len(scheduled) == COUNT

    state = read_store(db)
    check_store_after_kill(state, scheduled, killed_at)
    recorded, pending = set(state.published), state.pending
    assert pending, "every message fired before the kill: nothing was tested after it"
    # Everything the killed process received had its due time recorded first.
    check_received(received1, scheduled, {r.message_id for r in received1}, "the killed process")
    assert {r.message_id for r in received1} <= recorded

    second = await restart_and_receive(tmp_path, db, start + window)
    assert second.events[0] == f"ready {len(pending)}"
    check_received(second.received, scheduled, pending, "the restarted process")
    assert not {r.message_id for r in second.received} & recorded
