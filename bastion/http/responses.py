"""Encoding answers: JSON through orjson, Parse errors, and the CORS headers Parse Server sends."""

from __future__ import annotations

from typing import Any

import orjson

from bastion.errors import ParseError

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
    __slots__ = ("status", "body", "headers")

    def __init__(self, body: Any = None, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None,
                 raw: bytes | None = None) -> None:
        self.status = status
        self.body = raw if raw is not None else orjson.dumps(body)
        self.headers = headers or []


def error_response(error: ParseError) -> Response:
    return Response(error.to_dict(), status=error.status)


def unauthorized(message: str = "unauthorized") -> Response:
    return Response({"error": message}, status=403)


async def send(send_fn: Any, response: Response, origin_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [JSON_TYPE, (b"content-length", str(len(response.body)).encode()), *CORS_HEADERS,
               *response.headers]
    await send_fn({"type": "http.response.start", "status": response.status, "headers": headers})
    await send_fn({"type": "http.response.body", "body": response.body})
