"""The HTTP protocol Bastion runs under uvicorn: httptools, with one send per answer, and header
names spelled as Parse Server spells them.

uvicorn writes an answer's status line and headers as soon as the application sends
``http.response.start``, then the body on ``http.response.body``: two socket writes (two
system calls, two TCP segments) for every small JSON answer. Here the connection's transport
holds what is written during one step of the event loop and sends it at the end of that step,
so headers and body leave together. The bytes on the wire are the same.

Answers carry lowercase header names, as ASGI has them; Parse Server (Express) sends
``Content-Type``, ``Location``, ``X-Parse-Job-Status-Id``, and some SDKs look headers up
case-sensitively. The head of an answer is written here with each name so spelled (uvicorn would
write it lowercased).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from types import MethodType
from typing import Any

import orjson
from uvicorn._types import ASGI3Application, ASGISendEvent, HTTPResponseStartEvent
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from bastion.errors import Code
from bastion.http.responses import CORS_HEADERS, JSON_TYPE


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


# Names whose spelling is not each word capitalised.
_IRREGULAR = {b"etag": b"ETag", b"www-authenticate": b"WWW-Authenticate"}
# name as given -> (lowercase, as spelled on the wire), for names already checked (a small fixed set).
_NAMES: dict[bytes, tuple[bytes, bytes]] = {}
# Values every JSON answer has, known to be valid: not searched again for characters a header cannot
# hold (the CORS values are long: that search was about 4% of the CPU of a get).
_VALID_VALUES = frozenset(value for _name, value in [*CORS_HEADERS, JSON_TYPE])


def spelled(name: bytes) -> bytes:
    """``name`` spelled as Parse Server (Express) sends it: ``X-Parse-Job-Status-Id``, ``ETag``."""
    lower = name.lower()
    return _IRREGULAR.get(lower) or b"-".join(word.capitalize() for word in lower.split(b"-"))


def _checked_name(name: bytes) -> tuple[bytes, bytes]:
    """``name`` lowercased and spelled, once it is known to be a valid header name."""
    if HEADER_RE.search(name):
        raise RuntimeError("Invalid HTTP header name.")
    found = (name.lower(), spelled(name))
    if len(_NAMES) < 1000:
        _NAMES[name] = found
    return found


class _Done:
    """An awaitable that is already done: awaiting it costs no coroutine frame."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        return iter(())  # type: ignore[return-value]  # any iterator will do, and this one has no frame


_DONE = _Done()
_CYCLE_SEND = RequestResponseCycle.send


def send_spelled(cycle: RequestResponseCycle, message: ASGISendEvent) -> Awaitable[None]:
    """``cycle.send(message)``, except that the answer's head is written here, as uvicorn writes it
    (checking what it checks, with its errors) but with each header name spelled.

    Not a coroutine function: the body goes straight to the cycle's own ``send`` coroutine, and a head
    written at once returns a done awaitable, so a request pays no extra coroutine frame for this."""
    if cycle.response_started or message["type"] != "http.response.start":
        return _CYCLE_SEND(cycle, message)
    if cycle.flow.write_paused and not cycle.disconnected:
        return _send_head_after_drain(cycle, message)
    _write_head(cycle, message)
    return _DONE


async def _send_head_after_drain(cycle: RequestResponseCycle, message: HTTPResponseStartEvent) -> None:
    await cycle.flow.drain()
    _write_head(cycle, message)


def _write_head(cycle: RequestResponseCycle, message: HTTPResponseStartEvent) -> None:
    if cycle.disconnected:
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    status_code = message["status"]
    if cycle.access_log:
        scope = cycle.scope
        cycle.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                                 get_path_with_query_string(scope), scope["http_version"], status_code)
    content = [STATUS_LINE[status_code]]
    has_connection_close = False
    for name, value in [*cycle.default_headers, *message.get("headers", ())]:
        try:
            lower, wire = _NAMES[name]
        except KeyError:
            lower, wire = _checked_name(name)
        if value not in _VALID_VALUES and HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
        if lower == b"content-length" and cycle.chunked_encoding is None:
            cycle.expected_content_length = int(value.decode())
            cycle.chunked_encoding = False
        elif lower == b"transfer-encoding" and value.lower() == b"chunked":
            cycle.expected_content_length = 0
            cycle.chunked_encoding = True
        elif lower == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
            cycle.keep_alive = False
            has_connection_close = True
        content += (wire, b": ", value, b"\r\n")
    if not cycle.keep_alive and not has_connection_close:
        content.append(b"connection: close\r\n")
    if cycle.chunked_encoding is None and cycle.scope["method"] != "HEAD" and status_code not in (204, 304):
        cycle.chunked_encoding = True  # neither content-length nor transfer-encoding given
        content.append(b"transfer-encoding: chunked\r\n")
    content.append(b"\r\n")
    cycle.transport.write(b"".join(content))


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, the answers' heads written
    by :func:`send_spelled`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn makes a cycle for each request (pipelined ones too) and starts each here; its
        # run_asgi hands the app ``cycle.send``, which the instance's own attribute replaces by one
        # that spells the names. (Not a subclass of the cycle: uvicorn makes the cycle, and changing
        # an instance's class makes every attribute read of it slower.)
        cycle.send = MethodType(send_spelled, cycle)  # type: ignore[method-assign]
        super()._start_asgi_task(cycle, app)

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
