"""Calls from an adapter to its provider, bounded in time as a whole (not only per read) and in size,
so a slow provider is answered as a Parse error instead of holding the request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from bastion.domain.auth_providers.fetch import MAX_DOCUMENT_BYTES, FetchError, check_url, fetch_json

DEFAULT_TIMEOUT_MS = 10_000


def request_timeout(options: Mapping[str, Any]) -> float:
    """The ``requestTimeout`` option (milliseconds, default 10 s) in seconds."""
    value = options.get("requestTimeout", DEFAULT_TIMEOUT_MS)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 120_000:
        raise ValueError("requestTimeout must be a number of milliseconds (at most 120000)")
    return float(value) / 1000


async def bounded_fetch_json(http: httpx.AsyncClient, url: str, timeout: float) -> dict[str, Any]:
    """``fetch_json`` that gives up after ``timeout`` seconds in all."""
    try:
        async with asyncio.timeout(timeout):
            return await fetch_json(http, url)
    except TimeoutError:
        raise FetchError(f"{url} did not answer within {timeout:g} s") from None


async def request_json(http: httpx.AsyncClient, method: str, url: str, timeout: float,
                       **kwargs: Any) -> tuple[int, Any]:
    """The status and JSON body (None when the body is not JSON) of one request.
    Raises FetchError when the provider cannot be reached in time."""
    try:
        answer = await call(http, method, url, timeout, **kwargs)
    except Unreachable as error:
        raise FetchError(str(error)) from None
    return answer.status, answer.json()


class Unreachable(Exception):
    """The provider did not answer in time, or the connection failed (the text leaves queries out)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's answer, the body kept as text: some answer JSON, some ``callback( … )``, some a form."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The status text, as ``fetch``'s ``statusText`` gives it."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return str(self.status)

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        """The body as ``a=1&b=2`` (OAuth 1.0a and some OAuth 2 token endpoints answer so)."""
        return dict(parse_qsl(self.text.strip(), keep_blank_values=True))


def url_option(options: Mapping[str, Any], key: str, default: str) -> str:
    """An endpoint the adapter calls, overridable by ``key`` (https, or http for loopback hosts)."""
    value = options.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a URL")
    check_url(value, key)
    return value


async def call(http: httpx.AsyncClient, method: str, url: str, timeout: float, **kwargs: Any) -> Answer:
    """One request, bounded in time as a whole and in size; Unreachable when it fails."""
    shown = urlsplit(url)._replace(query="").geturl()  # the query may hold a token: never logged
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(method, url, timeout=timeout, **kwargs) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise Unreachable(f"{shown} sent more than {MAX_DOCUMENT_BYTES} bytes")
                status = response.status_code
    except TimeoutError:
        raise Unreachable(f"{shown} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise Unreachable(f"{shown}: {type(error).__name__}") from None
    return Answer(status, body.decode("utf-8", "replace"))
