"""A generic OpenID Connect provider: ``authData.<name>.id_token`` is an ID token from a configured issuer.

The token (``id_token``, or ``token`` as Parse's Apple adapter names it) must be signed with RS256 or
ES256 by a key in the issuer's JWKS, be current (``nbf``/``exp`` with a small clock tolerance), name
one of the configured client ids in ``aud``, come from the issuer (``iss``), and its ``sub`` must be
``authData.<name>.id``. Refusals are Parse's 101 with the messages Parse Server 9's Apple and Google
adapters give (jsonwebtoken's for signature and claim failures).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bastion.domain.auth_providers.adapter import AdapterContext, AuthAdapter, AuthRequest, AuthResult
from bastion.domain.auth_providers.base import string_id
from bastion.domain.auth_providers.fetch import FetchError, check_url, fetch_json
from bastion.domain.auth_providers.idtoken import IdTokenVerifier, check_issuer, check_subject
from bastion.domain.auth_providers.jwks import JwksCache

_OPTION_KEYS = {"issuer", "clientId", "jwksUri", "clockTolerance", "cacheMaxAge", "oidc", "enabled"}


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_ids: tuple[str, ...]  # accepted audiences
    jwks_uri: str | None = None  # None: read from <issuer>/.well-known/openid-configuration
    clock_tolerance: float = 30.0  # seconds of clock skew allowed on exp and nbf
    cache_max_age: float = 3600.0  # seconds a fetched key set is trusted
    min_refetch_interval: float = 30.0  # seconds between fetches caused by unknown key ids
    http_timeout: float = 5.0

    def __post_init__(self) -> None:
        check_url(self.issuer, "issuer")
        if self.jwks_uri is not None:
            check_url(self.jwks_uri, "jwksUri")
        if not self.client_ids or not all(isinstance(c, str) and c for c in self.client_ids):
            raise ValueError("clientId must be a non-empty string or a list of them")
        for name in ("clock_tolerance", "cache_max_age", "min_refetch_interval", "http_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10**7:
                raise ValueError(f"{name} must be a number of seconds")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> OidcConfig:
        """Parse-style options: ``issuer``, ``clientId`` (string or list), ``jwksUri``,
        ``clockTolerance`` (seconds), ``cacheMaxAge`` (milliseconds, as Parse's Apple/Google options)."""
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise ValueError(f"unknown OpenID Connect option(s): {', '.join(sorted(unknown))}")
        issuer = options.get("issuer")
        if not isinstance(issuer, str):
            raise ValueError("issuer is required")
        client_id = options.get("clientId")
        client_ids = (client_id,) if isinstance(client_id, str) else tuple(client_id or ())
        extra: dict[str, Any] = {}
        if "clockTolerance" in options:
            extra["clock_tolerance"] = options["clockTolerance"]
        if "cacheMaxAge" in options:
            max_age = options["cacheMaxAge"]
            if isinstance(max_age, bool) or not isinstance(max_age, int | float):
                raise ValueError("cacheMaxAge must be a number of milliseconds")
            extra["cache_max_age"] = max_age / 1000
        return cls(issuer=issuer, client_ids=client_ids, jwks_uri=options.get("jwksUri"), **extra)


class OidcProvider(AuthAdapter):
    """Made by the registry for ``{"oidc": true, …}`` (then ``setup`` reads the options), or directly
    with a name and a config."""

    def __init__(
        self,
        name: str = "",
        config: OidcConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.name = name
        self._clock = clock
        self._now = now
        self._owns_http = False
        self._discovered_jwks_uri: str | None = None
        if config is not None:
            self._start(config, http)

    def setup(self, context: AdapterContext) -> None:
        self.name = context.name
        self.options = context.options
        self._now = context.now
        try:
            config = OidcConfig.from_options(context.options)
        except (TypeError, ValueError) as error:
            raise ValueError(str(error)) from None
        self._start(config, context.http)

    def _start(self, config: OidcConfig, http: httpx.AsyncClient | None) -> None:
        self.config = config
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=config.http_timeout, follow_redirects=False)
        self.keys = JwksCache(
            self._jwks_uri,
            lambda url: fetch_json(self._http, url),
            max_age=config.cache_max_age,
            min_refetch_interval=config.min_refetch_interval,
            clock=self._clock,
        )
        self.verifier = IdTokenVerifier(self.keys, clock_tolerance=config.clock_tolerance, now=lambda: self._now(),
                                        name=self.name)

    def id_of(self, auth_data: dict[str, Any]) -> str:
        return string_id(self.name, auth_data)

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        await self.validate(auth_data)
        return None

    async def validate(self, auth_data: dict[str, Any]) -> None:
        token = auth_data.get("id_token") or auth_data.get("token")
        claims = await self.verifier.verify(token, self.config.client_ids)
        issuer = self.config.issuer
        check_issuer(claims, (issuer,), f"id token not issued by correct OpenID provider - expected: {issuer}")
        check_subject(claims, auth_data.get("id"))

    async def _jwks_uri(self) -> str:
        if self.config.jwks_uri:
            return self.config.jwks_uri
        if self._discovered_jwks_uri is None:
            self._discovered_jwks_uri = await self._discover()
        return self._discovered_jwks_uri

    async def _discover(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await fetch_json(self._http, url)
        if document.get("issuer") != self.config.issuer:
            # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
            raise FetchError(f"{url} names issuer {document.get('issuer')!r}, not {self.config.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise FetchError(f"{url} has no jwks_uri")
        try:
            check_url(jwks_uri, "jwks_uri")
        except ValueError as error:
            raise FetchError(str(error)) from None
        return jwks_uri

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

