"""Direct WebSocket text frames for LiveQuery's fan-out: the one place that looks inside uvicorn.

An event fanned out to 10,000 sockets used to cost, per socket, a task wake-up (the connection's
write loop), an ASGI ``send`` call, uvicorn's protocol and the websockets library's frame builder.
When a socket is idle (nothing queued, nothing being sent) and its transport takes bytes now, the
message goes straight to the transport as one unmasked text frame instead: the same bytes those
layers would write, in one call.

Only uvicorn's default WebSocket implementation (``websockets_sansio_impl``, which ``ws="auto"``
picks when websockets is installed) is recognised; anything else (another implementation, an ASGI
``send`` wrapped by middleware, a test client, a negotiated extension such as compression) gets no
writer, and every message takes the ASGI path. The writer checks the protocol's state before every
write and says no (the caller then queues the message for the ASGI path) once the socket closes,
is closing, or its write buffer holds more than ``BUFFER_LIMIT`` bytes (back-pressure stays with
the write loop, which waits for uvicorn's ``writable``).
"""

from __future__ import annotations

import struct
from typing import Any

try:  # pragma: no branch - both are dependencies; without them every socket takes the ASGI path
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.protocol import State
    from websockets.server import ServerProtocol
except ImportError:  # pragma: no cover
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

# Above this many bytes waiting in the transport, messages queue for the write loop instead.
BUFFER_LIMIT = 64 * 1024

# Server-to-client frames are unmasked (RFC 6455 5.1): FIN + text opcode, then the length in 7
# bits, or 126 and 16 bits, or 127 and 64 bits.
_SHORT = [bytes((0x81, n)) for n in range(126)]
_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame of ``payload`` (UTF-8)."""
    n = len(payload)
    if n < 126:
        return _SHORT[n] + payload
    if n < 65536:
        return _MEDIUM(0x81, 126, n) + payload
    return _LONG(0x81, 127, n) + payload


class DirectWriter:
    """Writes text frames to one uvicorn WebSocket connection's transport, while that is safe."""

    __slots__ = ("_proto", "_ws", "_transport")

    def __init__(self, proto: Any, ws: Any, transport: Any) -> None:
        self._proto = proto
        self._ws = ws
        self._transport = transport

    def write(self, payload: bytes) -> bool:
        """Send ``payload`` (UTF-8 text) now; False (nothing written) when the ASGI path must."""
        proto = self._proto
        transport = self._transport
        # The same conditions under which uvicorn's send() would write a frame at once: handshake
        # done, no close sent or received, not disconnected, writes not paused; plus nothing
        # pending in websockets' own output buffer and room in the transport's.
        if (proto.close_sent or proto.disconnected or self._ws.state is not State.OPEN or self._ws.writes
                or not proto.writable.is_set() or transport.is_closing()
                or transport.get_write_buffer_size() > BUFFER_LIMIT):
            return False
        try:
            transport.write(text_frame(payload))
        except (OSError, RuntimeError):  # pragma: no cover - a transport failing under us: ASGI path
            return False
        return True


def direct_writer(send: Any) -> DirectWriter | None:
    """A writer for the ASGI ``send`` of an accepted WebSocket, or None when it is not exactly
    uvicorn's sans-I/O websockets protocol in the expected state (then use ``send``)."""
    if WebSocketsSansIOProtocol is None:
        return None
    proto = getattr(send, "__self__", None)
    if type(proto) is not WebSocketsSansIOProtocol or getattr(send, "__func__", None) is not \
            WebSocketsSansIOProtocol.send:
        return None
    ws = getattr(proto, "conn", None)
    transport = getattr(proto, "transport", None)
    if (type(ws) is not ServerProtocol or ws.extensions or ws.expect_continuation_frame
            or not isinstance(getattr(ws, "writes", None), list) or ws.state is not State.OPEN):
        return None  # a negotiated extension (compression) changes the frames
    if (transport is None or not hasattr(transport, "get_write_buffer_size")
            or not getattr(proto, "handshake_complete", False) or getattr(proto, "initial_response", None) is not None
            or getattr(proto, "close_sent", True) or getattr(proto, "disconnected", True)
            or not hasattr(getattr(proto, "writable", None), "is_set")):
        return None
    return DirectWriter(proto, ws, transport)
