"""A FIFO lock that costs nothing when free.

anyio.Lock (even with fast_acquire) checks for cancellation and records its
owning task on every acquire and release: about 2 µs, a third of a cancel.
The scheduler's lock is almost never contended (only a cancel racing the
driver's firing), so a free acquire here is a flag; waiters queue on events.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio


class Mutex:
    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[anyio.Event] = deque()

    @property
    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        if not self._held:
            self._held = True
            return
        handed = anyio.Event()
        self._waiters.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():  # cancelled just as the lock was handed over: pass it on
                self._release()
            else:
                self._waiters.remove(handed)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # ownership passes on; still held
        else:
            self._held = False
