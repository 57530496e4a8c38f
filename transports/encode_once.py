"""Each message encoded once per wire format, whichever connection writes it first."""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Generic, TypeVar

from broker import Message

T = TypeVar("T", bound=Sized)  # bytes or str: len() bounds the cache

ENTRIES = 16_384
BYTES = 64 * 1024 * 1024


class EncodeOnce(Generic[T]):
    """`cache(message)`: the message's encoding, shared by every connection that writes
    it. Bounded: when full it starts over, and later readers of older messages encode
    them again."""

    def __init__(
        self, encode: Callable[[Message], T], *, entries: int = ENTRIES, size: int = BYTES
    ) -> None:
        self._encode = encode
        self._entries = entries
        self._size = size
        self._cache: dict[int, tuple[Message, T]] = {}
        self._bytes = 0

    def __call__(self, message: Message) -> T:
        entry = self._cache.get(id(message))
        if entry is not None:
            return entry[1]
        data = self._encode(message)
        if len(self._cache) >= self._entries or self._bytes > self._size:
            self._cache.clear()
            self._bytes = 0
        # The entry holds the message, so its id() cannot be reused while cached.
        self._cache[id(message)] = (message, data)
        self._bytes += len(data)
        return data
