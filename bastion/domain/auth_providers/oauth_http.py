"""Calls from the code-exchange adapters to their provider: bounded in time as a whole and in size
(``requestTimeout``, as ``remote``), with the body kept as text: some providers answer JSON, some
``callback( … )``, some a form."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from bastion.domain.auth_providers.fetch import check_url
from bastion.domain.auth_providers.remote import request_timeout

__all__ = ["Answer", "Unreachable", "call", "request_timeout", "url_option"]

MAX_ANSWER_BYTES = 256 * 1024  # token and profile answers are a few hundred bytes


class Unreachable(Exception):
    """The provider did not answer in time, or the connection failed (the text leaves queries out)."""


@dataclass(frozen=True, slots=True)
class Answer:
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
    shown = urlsplit(url)._replace(query="").geturl()
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(method, url, timeout=timeout, **kwargs) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise Unreachable(f"{shown} sent more than {MAX_ANSWER_BYTES} bytes")
                status = response.status_code
    except TimeoutError:
        raise Unreachable(f"{shown} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise Unreachable(f"{shown}: {type(error).__name__}") from None
    return Answer(status, body.decode("utf-8", "replace"))
