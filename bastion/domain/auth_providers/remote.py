"""Calls from an adapter to its provider, bounded in time as a whole (not only per read), so a slow
provider is answered as a Parse error instead of holding the request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from bastion.domain.auth_providers.fetch import MAX_DOCUMENT_BYTES, FetchError, fetch_json

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
    Raises FetchError when the provider cannot be reached in time (the message leaves the query out:
    it may hold a token)."""
    shown = urlsplit(url)._replace(query="").geturl()
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(method, url, timeout=timeout, **kwargs) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise FetchError(f"{shown} sent more than {MAX_DOCUMENT_BYTES} bytes")
                status = response.status_code
    except TimeoutError:
        raise FetchError(f"{shown} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise FetchError(f"{shown}: {type(error).__name__}") from None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None
