"""The HTTP protocol Bastion runs under uvicorn: httptools, with one send per answer.

uvicorn writes an answer's status line and headers as soon as the application sends
``http.response.start``, then the body on ``http.response.body``: two socket writes (two
system calls, two TCP segments) for every small JSON answer. Here the connection's transport
holds what is written during one step of the event loop and sends it at the end of that step,
so headers and body leave together. The bytes on the wire are the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from bastion.errors import Code


class CoalescingTransport:
    """A transport whose writes of one event-loop step go out as one write (everything else is the
    wrapped transport's). Closing, half-closing and upgrades send what is held first."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(bytes(chunk))

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_write_buffer_size(self) -> int:
        held = sum(len(chunk) for chunk in self._held) if self._held else 0
        return held + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse gets a Parse error body (uvicorn's own is plain text)."""
        body = orjson.dumps({"code": Code.INVALID_JSON, "error": msg})
        head = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"Content-Type: application/json; charset=utf-8\r\n",
                 b"Content-Length: ", str(len(body)).encode(), b"\r\n", b"Connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()
