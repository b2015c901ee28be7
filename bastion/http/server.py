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

Connections are bounded here too (uvicorn times out only idle keep-alive connections, after a first
answer): a request head must arrive whole within ``--header-timeout`` (a new connection's first one
too), else the connection is closed (408 if a head had begun: slowloris); and past
``--max-connections`` open connections the longest idle one is closed so that a new client is served
(uvicorn's own ``limit_concurrency`` would answer every new request 503 instead).
"""

from __future__ import annotations

import asyncio
import logging
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

from bastion.config import settings_from_env
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


log = logging.getLogger("bastion")
# Descriptors kept for what is not a client connection (database, listening sockets, files, logs).
_RESERVED_FILES = 64


def raise_open_file_limit() -> None:
    """The soft limit of open files raised to the hard one, as Node does at start: with Linux's
    default soft 1024, about a thousand idle connections would lock every new client out."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft >= hard:
        return
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        log.warning("could not raise the open-file limit from %s to %s: %s", soft, target, error)
        return
    log.info("open-file limit raised from %s to %s", soft, target)


class _Limits:
    """The connection settings, read once per process from the BASTION_* variables the command set."""

    loaded = False
    header_timeout = 20.0
    max_connections = 10_000

    @classmethod
    def load(cls) -> None:
        settings = settings_from_env()
        cls.header_timeout = settings.header_timeout / 1000
        cls.max_connections = settings.max_connections
        try:
            import resource

            files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if files != resource.RLIM_INFINITY:  # the cap must bite before descriptors run out
                cls.max_connections = max(1, min(cls.max_connections, files - _RESERVED_FILES))
        except ImportError:
            pass
        cls.loaded = True


# This process's idle HTTP connections, the longest idle first (a dict keeps insertion order).
_IDLE: dict[CoalescingHttpToolsProtocol, None] = {}
_HEAD_TIMEOUT_BODY = orjson.dumps({"code": Code.TIMEOUT, "error": "Request head not received in time."})


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, the answers' heads written
    by :func:`send_spelled`; heads bounded in time, connections in number."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not _Limits.loaded:
            _Limits.load()
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if len(self.connections) > _Limits.max_connections and not self._shed_idle():
            log.warning("connection refused: %d connections open, none idle", len(self.connections) - 1)
            self._answer_and_close(503, orjson.dumps({"code": Code.INTERNAL_SERVER_ERROR,
                                                      "error": "Too many connections, retry later."}))
            return
        _IDLE[self] = None
        self._head_timer = self.loop.call_later(_Limits.header_timeout, self._head_timed_out)

    def _shed_idle(self) -> bool:
        """Closes the longest idle connection (not this one); False when none is idle."""
        for oldest in _IDLE:
            if oldest is not self:
                del _IDLE[oldest]
                oldest.transport.close()
                return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        _IDLE.pop(self, None)
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        _IDLE.pop(self, None)
        self._head_begun = True
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(_Limits.header_timeout, self._head_timed_out)
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            _IDLE[self] = None

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        _IDLE.pop(self, None)
        if self.transport.is_closing():
            return
        if self._head_begun:  # as Node: a head begun and not finished in time answers 408
            self._answer_and_close(408, _HEAD_TIMEOUT_BODY)
        else:
            self.transport.close()

    def _answer_and_close(self, status: int, body: bytes) -> None:
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"Content-Type: application/json; charset=utf-8\r\n",
                 b"Content-Length: ", str(len(body)).encode(), b"\r\n", b"Connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn makes a cycle for each request (pipelined ones too) and starts each here; its
        # run_asgi hands the app ``cycle.send``, which the instance's own attribute replaces by one
        # that spells the names. (Not a subclass of the cycle: uvicorn makes the cycle, and changing
        # an instance's class makes every attribute read of it slower.)
        cycle.send = MethodType(send_spelled, cycle)  # type: ignore[method-assign]
        super()._start_asgi_task(cycle, app)

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse gets a Parse error body (uvicorn's own is plain text)."""
        self._answer_and_close(400, orjson.dumps({"code": Code.INVALID_JSON, "error": msg}))
