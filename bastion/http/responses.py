"""Encoding answers: JSON through orjson, Parse errors, and the CORS headers Parse Server sends."""

from __future__ import annotations

import html
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
    __slots__ = ("status", "body", "headers", "content_type")

    def __init__(self, body: Any = None, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None,
                 raw: bytes | None = None, content_type: tuple[bytes, bytes] = JSON_TYPE) -> None:
        self.status = status
        self.body = raw if raw is not None else orjson.dumps(body)
        self.headers = headers or []
        self.content_type = content_type


def not_found(method: str, path: str) -> Response:
    """What Parse Server (Express, really) answers for a path or method nothing serves."""
    page = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
            f'</head>\n<body>\n<pre>Cannot {html.escape(method)} {html.escape(path)}</pre>\n</body>\n</html>\n')
    return Response(raw=page.encode(), status=404, content_type=(b"content-type", b"text/html; charset=utf-8"))


def error_response(error: ParseError) -> Response:
    return Response(error.to_dict(), status=error.status)


def unauthorized(message: str = "unauthorized") -> Response:
    return Response({"error": message}, status=403)


async def send(send_fn: Any, response: Response, origin_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [response.content_type, (b"content-length", str(len(response.body)).encode()), *CORS_HEADERS,
               *response.headers]
    await send_fn({"type": "http.response.start", "status": response.status, "headers": headers})
    await send_fn({"type": "http.response.body", "body": response.body})
