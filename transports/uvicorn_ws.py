"""uvicorn's websocket protocol, plus one ASGI extension: many text frames in one write.

ASGI sends one websocket message per `send`, and uvicorn writes each to the
socket on its own: a dict, a coroutine, the `websockets` frame machinery and
a write per message. Engine.IO allows one packet per frame, so a socket.io
delivery is a frame, and that per-frame cost was most of the endpoint's
(docs/realtime.md). With the extension `tidings.websocket.send_many` in the
scope, the app sends `{"type": "tidings.websocket.send_many", "frames": [bytes,
...]}` (UTF-8 text) and they go out as text frames in one transport write,
after the same wait for a writable transport as uvicorn's own send. Without
it (another ASGI server, another uvicorn) the app sends frame by frame.
"""

from __future__ import annotations

from typing import Any

from transports.ws_frames import text_frame_header

SEND_MANY = "tidings.websocket.send_many"

try:
    from uvicorn.protocols.utils import ClientDisconnected
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover -- an uvicorn without it: frame by frame
    PROTOCOL: Any = "websockets-sansio"
else:

    class _BatchingProtocol(WebSocketsSansIOProtocol):
        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)
            if scope is not None:  # None: the handshake was refused
                scope["extensions"][SEND_MANY] = {}

        async def send(self, message: Any) -> None:
            if message["type"] != SEND_MANY:
                await super().send(message)
                return
            await self.writable.wait()
            if self.disconnected or self.close_sent:
                raise ClientDisconnected()
            parts: list[bytes] = []
            for frame in message["frames"]:
                parts.append(text_frame_header(len(frame)))
                parts.append(frame)
            self.transport.write(b"".join(parts))

    PROTOCOL = _BatchingProtocol
