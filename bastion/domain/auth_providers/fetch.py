"""Small, bounded JSON fetches for OpenID discovery documents and key sets."""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_DOCUMENT_BYTES = 512 * 1024  # real key sets are a few kilobytes


class FetchError(Exception):
    """The document could not be fetched or is not a JSON object."""


def check_url(url: str, what: str) -> None:
    """HTTPS only, except for loopback hosts (local development and tests): keys must not travel in clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ValueError(f"{what} must be an https:// URL (http:// only for loopback hosts): {url!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def fetch_json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise FetchError(f"{url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as error:
        raise FetchError(f"{url}: {error!r}") from error
    try:
        document = json.loads(body)
    except ValueError as error:
        raise FetchError(f"{url} did not send JSON") from error
    if not isinstance(document, dict):
        raise FetchError(f"{url} did not send a JSON object")
    return document
