"""Message ids: "message:<uuid4>", made without a system call and a UUID object per id."""

from __future__ import annotations

import os

_POOL_IDS = 256
# The variant nibble of an RFC 4122 UUID is 8, 9, a or b: keep a random one of those.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class MessageIds:
    """Random v4 UUIDs from the OS's CSPRNG, read 256 ids' worth at a time."""

    __slots__ = ("_at", "_pool")

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool = os.urandom(16 * _POOL_IDS)
            at = 0
        self._at = at + 16
        h = self._pool[at : at + 16].hex()
        return f"message:{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
