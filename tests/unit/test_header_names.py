"""Header names go out spelled as Parse Server (Express) spells them, written so by Bastion's
uvicorn protocol; answers themselves carry lowercase names, as ASGI has them."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from bastion.http.server import CoalescingHttpToolsProtocol, spelled


def test_names_are_spelled_as_express_sends_them() -> None:
    assert spelled(b"x-parse-job-status-id") == b"X-Parse-Job-Status-Id"
    assert spelled(b"location") == b"Location"
    assert spelled(b"etag") == b"ETag"
    assert spelled(b"Content-Type") == b"Content-Type"


class _Transport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1337), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _answer(headers: list[tuple[bytes, bytes]], body: bytes,
                  request_headers: bytes = b"") -> tuple[bytes, bool]:
    """What the protocol writes for an app's answer, and whether it closed the connection."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = Config(app, lifespan="off", log_config=None, access_log=False, server_header=False,
                    date_header=False, proxy_headers=False)
    loop = asyncio.get_running_loop()
    protocol = CoalescingHttpToolsProtocol(config, ServerState(), {}, _loop=loop)
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"GET /x HTTP/1.1\r\nhost: a\r\n" + request_headers + b"\r\n")
    for _ in range(1000):  # until the app is done (a step later, what the transport held is written)
        await asyncio.sleep(0.001)
        if not protocol.tasks:
            break
    closed = transport.closed
    protocol.connection_lost(None)
    return bytes(transport.written), closed


async def test_the_protocol_writes_each_name_spelled() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2"), (b"x-parse-job-status-id", b"j1"),
               (b"etag", b"e"), (b"Location", b"/a")]
    answer, closed = await _answer(headers, b"OK")
    assert not closed
    assert answer == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                      b"X-Parse-Job-Status-Id: j1\r\nETag: e\r\nLocation: /a\r\n\r\nOK")


async def test_the_protocol_keeps_uvicorns_framing() -> None:
    # No length: chunked, as uvicorn answers; a client closing the connection is told so.
    answer, closed = await _answer([(b"content-type", b"text/plain")], b"OK", b"connection: close\r\n")
    assert closed
    assert answer == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nconnection: close\r\n"
                      b"transfer-encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n")


async def test_the_protocol_refuses_what_uvicorn_refuses() -> None:
    # A value that could split the head: nothing is written, the connection is closed (uvicorn's way).
    assert await _answer([(b"location", b"/a\r\nset-cookie: x=1")], b"") == (b"", True)
