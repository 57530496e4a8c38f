"""uvicorn's websocket protocol, plus one ASGI extension: writing frames the app built.

ASGI sends one websocket message per `send`, and uvicorn writes each to the
socket on its own: a dict, a coroutine, the `websockets` frame machinery and
a write per message. Engine.IO allows one packet per frame, so a socket.io
delivery is a frame, and that per-frame cost was most of the endpoint's
(docs/realtime.md). With the extension `tidings.websocket.write` in the scope,
the app sends `{"type": "tidings.websocket.write", "bytes": <frames>}`: server
text frames it framed itself (`ws_frames.text_frame_header`), written as they
are in one transport write. The extension's `writable` is uvicorn's own
event, set while the transport takes writes, so the app waits (and times a
slow client) only when it is not. Without the extension (another ASGI server,
another uvicorn) the app sends frame by frame.
"""

from __future__ import annotations

from typing import Any

WRITE = "tidings.websocket.write"

try:
    from uvicorn.protocols.utils import ClientDisconnected
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover -- an uvicorn without it: frame by frame
    PROTOCOL: Any = "websockets-sansio"
else:

    class _FramesProtocol(WebSocketsSansIOProtocol):
        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            scope = getattr(self, "scope", None)
            if scope is not None:  # None: the handshake was refused
                scope["extensions"][WRITE] = {"writable": self.writable}

        async def send(self, message: Any) -> None:
            if message["type"] != WRITE:
                await super().send(message)
                return
            if self.disconnected or self.close_sent:
                raise ClientDisconnected()
            self.transport.write(message["bytes"])

    PROTOCOL = _FramesProtocol
