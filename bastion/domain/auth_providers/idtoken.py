"""Signed-token checks shared by the ID-token providers (OpenID Connect, Apple, Google, Facebook
Limited Login, Keycloak): ``IdTokenVerifier`` checks a JWT against a JWKS, ``JwksAdapter`` is the base
of Parse's built-in token adapters (``jwksUri``, ``cacheMaxAge``, ``clockTolerance``, ``requestTimeout``).

Refusals are Parse's 101 with the messages Parse Server 9's adapters give (jsonwebtoken's for the
signature and claim failures). The key decides the algorithm, never the token's own header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

import jwt
from jwt.types import Options

from bastion.domain.auth_providers.adapter import AdapterContext, AuthAdapter
from bastion.domain.auth_providers.fetch import check_url
from bastion.domain.auth_providers.jwks import ALGORITHMS, JwksCache, KeysUnavailable
from bastion.domain.auth_providers.remote import bounded_fetch_json, request_timeout
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

MAX_TOKEN_LENGTH = 16 * 1024
ONE_HOUR_MS = 3_600_000
_CLAIM_CHECKS_OFF: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


def refused(message: str) -> ParseError:
    return ParseError(Code.OBJECT_NOT_FOUND, message)


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def string_list(value: Any, key: str) -> tuple[str, ...]:
    """A string or a list of strings as a tuple; a lone string is one element, never matched as a
    substring (Parse's advisory: ``"123".includes("12")``)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"{key} must be a non-empty string or a list of them")
    return tuple(items)


class IdTokenVerifier:
    """Checks a JWT's signature with a key from ``keys`` and its time and audience claims."""

    def __init__(self, keys: JwksCache, *, algorithms: Iterable[str] = ALGORITHMS,
                 clock_tolerance: float = 0.0, now: Callable[[], float] = time.time,
                 name: str = "") -> None:
        self.keys = keys
        self.algorithms = tuple(algorithms)
        self.clock_tolerance = clock_tolerance
        self.now = now
        self.name = name

    async def verify(self, token: Any, audiences: tuple[str, ...] | None) -> dict[str, Any]:
        """The token's claims once its signature, ``nbf``, ``exp`` and ``aud`` (one of ``audiences``;
        None: not checked) pass, in jsonwebtoken's order."""
        if not isinstance(token, str) or not token:
            raise refused("id token is invalid for this user.")
        if len(token) > MAX_TOKEN_LENGTH:
            raise refused("provided token does not decode as JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refused("provided token does not decode as JWT") from None
        key = await self._key(header.get("kid"))
        if token.endswith("."):
            raise refused("jwt signature is required")  # alg "none" and other unsigned tokens
        if header.get("alg") != key.algorithm_name or key.algorithm_name not in self.algorithms:
            # No HS256 "signed" with the public key, no algorithm swaps.
            raise refused("invalid algorithm")
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], options=_CLAIM_CHECKS_OFF)
        except jwt.InvalidSignatureError:
            raise refused("invalid signature") from None
        except jwt.PyJWTError:
            raise refused("jwt malformed") from None
        self._check_times(claims)
        if audiences is not None:
            found = claims.get("aud")
            found = found if isinstance(found, list) else [found]
            if not any(isinstance(a, str) and a in audiences for a in found):
                raise refused("jwt audience invalid. expected: " + " or ".join(audiences))
        return claims

    async def _key(self, kid: Any) -> jwt.PyJWK:
        shown = "undefined" if kid is None else kid  # as Parse Server prints a missing kid
        if kid is not None and not isinstance(kid, str):
            raise refused(f"Unable to find matching key for Key ID: {shown}")
        try:
            key = await self.keys.key(kid)
        except KeysUnavailable as error:
            log.warning("provider %s: no signing keys: %s", self.name, error)
            key = None
        if key is None:
            raise refused(f"Unable to find matching key for Key ID: {shown}")
        return key

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self.now()
        if "nbf" in claims:
            if not is_number(claims["nbf"]):
                raise refused("invalid nbf value")
            if claims["nbf"] > now + self.clock_tolerance:
                raise refused("jwt not active")
        # Parse accepts tokens without exp; ID and access tokens always have one, so we require it.
        if not is_number(claims.get("exp")):
            raise refused("invalid exp value")
        if now >= claims["exp"] + self.clock_tolerance:
            raise refused("jwt expired")


def check_issuer(claims: dict[str, Any], issuers: tuple[str, ...], message: str) -> None:
    """``message`` gets `` | from: <iss>`` appended, as Parse's adapters word it."""
    if claims.get("iss") not in issuers:
        raise refused(f"{message} | from: {claims.get('iss', 'undefined')}")


def check_subject(claims: dict[str, Any], user_id: Any) -> None:
    if not isinstance(user_id, str) or claims.get("sub") != user_id:
        raise refused("auth data is invalid for this user.")


def milliseconds(options: Mapping[str, Any], key: str, default: float) -> float:
    """An option in milliseconds (as Parse's ``cacheMaxAge``), in seconds."""
    value = options.get(key, default)
    if not is_number(value) or not 0 <= value < 10**10:
        raise ValueError(f"{key} must be a number of milliseconds")
    return float(value) / 1000


class JwksAdapter(AuthAdapter):
    """A Parse adapter whose tokens are JWTs signed by keys from one key set.

    Options every such adapter takes: ``jwksUri`` (the key set; defaults to the provider's),
    ``cacheMaxAge`` (ms, default one hour), ``clockTolerance`` (seconds of clock skew on
    ``exp``/``nbf``, default 0 as Parse), ``requestTimeout`` (ms, for the key-set fetch).
    """

    DEFAULT_JWKS_URI = ""
    ALGORITHMS: tuple[str, ...] = ("RS256",)  # Parse's adapters pin RS256
    OPTIONS: frozenset[str] = frozenset({"jwksUri", "cacheMaxAge", "cacheMaxEntries", "clockTolerance",
                                         "requestTimeout", "enabled", "appIds"})

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock

    def setup(self, context: AdapterContext) -> None:
        super().setup(context)  # validate_options runs there
        options = context.options
        jwks_uri = options.get("jwksUri", self.default_jwks_uri(options))
        if not isinstance(jwks_uri, str):
            raise ValueError("jwksUri must be a URL")
        check_url(jwks_uri, "jwksUri")
        tolerance = options.get("clockTolerance", 0)
        if not is_number(tolerance) or not 0 <= tolerance <= 600:
            raise ValueError("clockTolerance must be a number of seconds (0 to 600)")
        timeout = request_timeout(options)

        async def uri() -> str:
            return jwks_uri

        keys = JwksCache(uri, lambda url: bounded_fetch_json(self.http, url, timeout),
                         max_age=milliseconds(options, "cacheMaxAge", ONE_HOUR_MS), clock=self._clock)
        self.verifier = IdTokenVerifier(keys, algorithms=self.ALGORITHMS, clock_tolerance=float(tolerance),
                                        now=self.now, name=context.name)

    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, self.OPTIONS | {"module", "oauth2", "oidc"})

    def default_jwks_uri(self, options: Mapping[str, Any]) -> str:
        return self.DEFAULT_JWKS_URI
