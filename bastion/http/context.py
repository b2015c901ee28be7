"""Who is asking and what they sent: keys from headers or from the JS SDK's JSON body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import orjson

from bastion.core.auth import Auth, CallInfo
from bastion.core.names import check_no_denylisted_keys
from bastion.errors import Code, ParseError
from bastion.keys import Keys

if TYPE_CHECKING:
    from bastion.http.api import RestApi
    from bastion.services import Services

# Keys the JS SDK puts in a text/plain JSON body instead of headers (it avoids CORS preflights).
BODY_KEYS = {
    "_ApplicationId": "app_id",
    "_JavaScriptKey": "javascript_key",
    "_MasterKey": "master_key",
    "_SessionToken": "session_token",
    "_InstallationId": "installation_id",
    "_ClientVersion": "client_version",
    "_ClientKey": "client_key",
    "_RESTAPIKey": "rest_key",
}


@dataclass(slots=True)
class RequestContext:
    services: Services
    api: RestApi  # a batch dispatches its sub-requests through it
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    path_params: dict[str, str] = field(default_factory=dict)
    auth: Auth = field(default_factory=Auth)
    keys: Keys = field(default_factory=Keys)
    context: dict[str, Any] = field(default_factory=dict)
    client_ip: str | None = None
    receive: Any = None  # the ASGI receive of a route that streams its body (Route.streams_body)

    @property
    def data(self) -> dict[str, Any]:
        """The body as a JSON object ({} when empty)."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ParseError(Code.INVALID_JSON, "This request body must be a JSON object.")
        return self.body

    def call_info(self) -> CallInfo:
        """Headers, address and cloud context, for cloud code's ``request``."""
        return CallInfo(self.headers, self.client_ip, self.context)

    def param(self, name: str) -> Any:
        """A query option, from the URL or, for the SDK's POST-as-GET, from the body."""
        if isinstance(self.body, dict) and name in self.body:
            return self.body[name]
        return self.query.get(name)


def decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


def decode_query(raw: bytes) -> dict[str, str]:
    """The URL's query parameters, last value winning: what ``dict(parse_qsl(..., keep_blank_values=
    True))`` gives, without its per-part cost for parts that have nothing to unescape."""
    out: dict[str, str] = {}
    if raw:
        for part in raw.decode("latin-1").split("&"):
            if part:
                name, _, value = part.partition("=")
                out[_unescape(name)] = _unescape(value)
    return out


def _unescape(text: str) -> str:
    return unquote_plus(text) if "%" in text or "+" in text else text


async def read_body(receive: Any, limit: int) -> bytes:
    """The whole request body from ASGI ``receive``; 413 past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ParseError(Code.OBJECT_TOO_LARGE, "The request body is too large.", status=413)
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ParseError(Code.INVALID_JSON, "Invalid JSON") from None
    # At the boundary, for every route: no __proto__-style key at any depth, no absurd nesting.
    check_no_denylisted_keys(body)
    return body


def extract_keys(headers: dict[str, str], body: Any) -> tuple[Keys, dict[str, Any]]:
    """Keys and cloud context from headers, or from the body when it names the application."""
    keys = Keys(
        app_id=headers.get("x-parse-application-id"),
        master_key=headers.get("x-parse-master-key"),
        maintenance_key=headers.get("x-parse-maintenance-key"),
        javascript_key=headers.get("x-parse-javascript-key"),
        rest_key=headers.get("x-parse-rest-api-key"),
        client_key=headers.get("x-parse-client-key"),
        session_token=headers.get("x-parse-session-token"),
        installation_id=headers.get("x-parse-installation-id"),
        client_version=headers.get("x-parse-client-version"),
    )
    context: dict[str, Any] = {}
    raw_context = headers.get("x-parse-cloud-context")
    if raw_context is not None:
        context = _context(raw_context)
    if isinstance(body, dict):
        body.pop("_RevocableSession", None)
        body.pop("_noBody", None)
        if "_ApplicationId" in body:
            for body_key, attr in BODY_KEYS.items():
                if body_key in body:
                    value = body.pop(body_key)
                    if value is not None and not isinstance(value, str):
                        value = str(value)
                    if attr == "app_id" or value:
                        setattr(keys, attr, value)
            if "_context" in body:
                context = _context(body.pop("_context"))
            body.pop("_ContentType", None)
    return keys, context


def _context(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raw = None
    if not isinstance(raw, dict):
        raise ParseError(Code.INVALID_JSON, "Invalid object for context.")
    return raw
