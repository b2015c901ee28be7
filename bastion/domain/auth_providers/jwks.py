"""An issuer's signing keys (JWKS), cached for a while and fetched again once for a key id not seen yet.

Only keys usable for RS256 (RSA of at least 2048 bits) and ES256 (EC P-256) are kept, so the
algorithm a token may use follows from the key, never from the token's own header.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bastion.domain.auth_providers.fetch import FetchError

log = logging.getLogger("bastion.auth")

ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048

JsonFetcher = Callable[[str], Awaitable[dict[str, Any]]]


class KeysUnavailable(Exception):
    """The key set could not be fetched and none is cached."""


class JwksCache:
    def __init__(
        self,
        jwks_uri: Callable[[], Awaitable[str]],
        fetch: JsonFetcher,
        *,
        max_age: float = 3600.0,
        min_refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``jwks_uri`` resolves the key set's address (configured, or from discovery);
        ``min_refetch_interval`` bounds how often tokens with unknown key ids can make us fetch."""
        self._jwks_uri = jwks_uri
        self._fetch = fetch
        self._max_age = max_age
        self._min_refetch_interval = min_refetch_interval
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # for tests and diagnostics

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for ``kid`` (None: the set's only key), or None if the issuer has no such key."""
        refreshed = False
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age:
            await self._refresh(since=self._fetched_at)
            refreshed = True
        found = self._find(kid)
        # Perhaps the issuer rotated its keys: fetch once more, but not for every bad token.
        if (
            found is None
            and not refreshed
            and self._fetched_at is not None
            and self._clock() - self._fetched_at >= self._min_refetch_interval
        ):
            await self._refresh(since=self._fetched_at)
            found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            # As jwks-rsa: a token without a key id is accepted only when the set holds one key.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, since: float | None) -> None:
        async with self._lock:
            if self._fetched_at != since:
                return  # another request refreshed while this one waited
            try:
                uri = await self._jwks_uri()
                document = await self._fetch(uri)
            except FetchError as error:
                if self._fetched_at is None:
                    raise KeysUnavailable(str(error)) from error
                log.warning("could not refresh the key set, keeping the cached keys: %s", error)
                self._fetched_at = self._clock()  # try again after max_age / the refetch interval
                return
            self.fetch_count += 1
            self._keys = _usable_keys(document)
            self._fetched_at = self._clock()


def _usable_keys(document: dict[str, Any]) -> dict[str | None, jwt.PyJWK]:
    keys: dict[str | None, jwt.PyJWK] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        log.warning("the key set has no keys list")
        return keys
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if "d" in entry:
            continue  # a private key published by mistake: refuse rather than trust it
        kid = entry.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # symmetric ("oct"), unknown curves, malformed: never usable
        if key.algorithm_name not in ALGORITHMS:
            continue
        if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
            continue
        keys[kid] = key
    return keys
