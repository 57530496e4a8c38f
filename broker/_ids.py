"""Message ids: "message:<uuid4>", made without uuid.UUID's per-call object overhead."""

from __future__ import annotations

import os

_VERSION_MASK = ~((0xF << 76) | (0x3 << 62))
_VERSION_BITS = (0x4 << 76) | (0x2 << 62)  # version 4, RFC 4122 variant


def new_message_id() -> str:
    value = (int.from_bytes(os.urandom(16), "big") & _VERSION_MASK) | _VERSION_BITS
    h = f"{value:032x}"
    return f"message:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
