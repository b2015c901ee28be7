"""Encoding answers: JSON through orjson, Parse errors, and the CORS headers Parse Server sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from bastion.errors import Code, ParseError


def spelled_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with lowercase names, as ASGI carries them. Bastion's protocol writes each name
    spelled as Parse Server spells it (bastion/http/server.py)."""
    return [(name.lower(), value) for name, value in headers]


# Exactly Parse Server 9's defaults (its allowHeaders list has no installation, client-key or
# cloud-context header: browsers send those in the JS SDK's text/plain body instead).
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET,PUT,POST,DELETE,OPTIONS"),
    (
        b"access-control-allow-headers",
        b"X-Parse-Master-Key, X-Parse-REST-API-Key, X-Parse-Javascript-Key, X-Parse-Application-Id, "
        b"X-Parse-Client-Version, X-Parse-Session-Token, X-Requested-With, X-Parse-Revocable-Session, "
        b"X-Parse-Request-Id, Content-Type, Pragma, Cache-Control",
    ),
    (b"access-control-expose-headers", b"X-Parse-Job-Status-Id, X-Parse-Push-Status-Id"),
]
JSON_TYPE = (b"content-type", b"application/json; charset=utf-8")


class Response:
    __slots__ = ("status", "body", "headers", "content_type")

    def __init__(self, body: Any = None, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None,
                 raw: bytes | None = None, content_type: tuple[bytes, bytes] | None = JSON_TYPE) -> None:
        self.status = status
        self.body = raw if raw is not None else orjson.dumps(body)
        self.headers = headers or []
        self.content_type = content_type


def not_found(method: str, path: str) -> Response:
    """A path or method nothing serves: 404 with Express's words (which Parse Server answers as an
    HTML page), as a Parse error. 107 is the code Parse SDKs report for that page today, and the one
    Parse Server's /batch gives a path it cannot route."""
    return Response({"code": Code.INVALID_JSON, "error": f"Cannot {method[:16]} {path[:200]}"}, status=404)


def error_response(error: ParseError) -> Response:
    # A 503 (database unavailable, deadline passed) is worth retrying: say when.
    headers = [(b"retry-after", b"1")] if error.status == 503 else None
    return Response(error.to_dict(), status=error.status, headers=headers)


def unauthorized(message: str = "unauthorized") -> Response:
    return Response({"error": message}, status=403)


class StreamResponse(Response):
    """An answer whose body is sent as it is read (files): ``chunks`` of ``length`` bytes in all,
    None for a HEAD request (headers only). With the request's ASGI ``receive``, sending stops
    (and the backend is read no further) as soon as the client goes away."""

    __slots__ = ("chunks", "length", "receive")

    def __init__(self, chunks: AsyncIterator[bytes] | None, length: int, status: int = 200,
                 headers: list[tuple[bytes, bytes]] | None = None,
                 content_type: tuple[bytes, bytes] | None = None, receive: Any = None) -> None:
        super().__init__(raw=b"", status=status, headers=headers, content_type=content_type)
        self.chunks = chunks
        self.length = length
        self.receive = receive

    async def send_body(self, send_fn: Any) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await self.receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch()) if self.receive is not None else None
        try:
            if self.chunks is not None:
                # One chunk at a time: the server's send waits while the client is slower.
                async for chunk in self.chunks:
                    if gone.is_set():
                        return
                    await send_fn({"type": "http.response.body", "body": chunk, "more_body": True})
            await send_fn({"type": "http.response.body", "body": b""})
        finally:
            if watcher is not None:
                watcher.cancel()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()


async def send(send_fn: Any, response: Response, origin_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    length = response.length if isinstance(response, StreamResponse) else len(response.body)
    # Names lowercase, as the routes give them; the protocol spells them on the wire.
    headers = [(b"content-length", str(length).encode()), *CORS_HEADERS, *response.headers]
    if response.content_type is not None:
        headers.insert(0, response.content_type)
    await send_fn({"type": "http.response.start", "status": response.status, "headers": headers})
    if isinstance(response, StreamResponse):
        await response.send_body(send_fn)
    else:
        await send_fn({"type": "http.response.body", "body": response.body})
