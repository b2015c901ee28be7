"""Parse Server 9's ``BaseCodeAuthAdapter``: the client sends an OAuth 2 authorization ``code``
(with the ``redirect_uri`` it used); before the user is looked up, the server exchanges it for an
access token with its client id and secret, asks the provider's user API who the token belongs to,
and stores ``{id, access_token}``. Answers show only ``{id}``.

The deprecated form ``{id, access_token}`` sent by the client (checked against the user API) is
accepted only when the provider has ``enableInsecureAuth: true`` and the server runs with
``--enable-insecure-auth-adapters``; otherwise such an entry is refused as having no code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult, is_server_obtained
from bastion.domain.auth_providers.remote import Answer, Unreachable, call, request_timeout, url_option
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

COMMON_KEYS = frozenset({"enabled", "module", "oauth2", "oidc", "appIds", "clientId", "clientSecret",
                         "enableInsecureAuth", "requestTimeout"})


class CodeAuthAdapter(AuthAdapter):
    """Subclasses name the provider (``display``, as Parse's messages spell it), their endpoints
    (``URLS``: option key -> default) and implement ``exchange`` and ``account``."""

    display: ClassVar[str] = "Provider"
    URLS: ClassVar[dict[str, str]] = {}
    EXTRA_OPTIONS: ClassVar[frozenset[str]] = frozenset()
    NEEDS_SECRET: ClassVar[bool] = True
    # What the code flow drops from the entry once exchanged (never stored).
    DROPPED: ClassVar[tuple[str, ...]] = ("code", "redirect_uri")

    def __init__(self) -> None:
        super().__init__()
        self.insecure = False
        self.client_id = ""
        self.client_secret = ""
        self.urls: dict[str, str] = {}
        self.timeout = 10.0

    # --- options ------------------------------------------------------------------------------------

    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, COMMON_KEYS | set(self.URLS) | self.EXTRA_OPTIONS)
        self.insecure = self.insecure_option(options)
        for key in ("clientId", "clientSecret"):
            value = options.get(key)
            if value is not None and (not isinstance(value, str | int) or isinstance(value, bool)):
                raise ValueError(f"{key} must be a string")
        self.client_id = str(options.get("clientId") or "")
        self.client_secret = str(options.get("clientSecret") or "")
        if not self.insecure:
            if not self.client_id:
                raise ValueError(f"{self.display} clientId is required.")
            if self.NEEDS_SECRET and not self.client_secret:
                raise ValueError(f"{self.display} clientSecret is required.")
        self.urls = {key: url_option(options, key, default) for key, default in self.URLS.items()}
        self.timeout = request_timeout(options)

    # --- helpers ------------------------------------------------------------------------------------

    def refused(self, message: str | None = None) -> ParseError:
        return ParseError(Code.OBJECT_NOT_FOUND, message or f"{self.display} auth is invalid for this user.")

    async def fetch(self, method: str, key: str, *, url: str | None = None, **kwargs: Any) -> Answer:
        """One call to the endpoint of option ``key`` (or ``url``, built from it); a provider that is
        down or slow is refused as invalid auth, quickly."""
        try:
            return await call(self.http, method, url or self.urls[key], self.timeout, **kwargs)
        except Unreachable as error:
            log.warning("auth provider %s: %s did not answer: %s", self.name, key, error)
            raise self.refused() from None

    @staticmethod
    def text(auth_data: Mapping[str, Any], key: str) -> str | None:
        """A string value of the entry (None when missing or of another type)."""
        value = auth_data.get(key)
        return value if isinstance(value, str) and value else None

    # --- what each provider implements --------------------------------------------------------------

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        """The access token for ``auth_data['code']``."""
        raise NotImplementedError

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        """The provider's account id the token belongs to."""
        raise NotImplementedError

    # --- the steps ----------------------------------------------------------------------------------

    async def before_find(self, auth_data: dict[str, Any]) -> None:
        code = auth_data.get("code")
        if self.insecure and not code:
            token = self.text(auth_data, "access_token")
            if token is None:
                raise self.refused()
            if await self.account(token, auth_data) != auth_data.get("id"):
                raise self.refused()
            return
        if not code and is_server_obtained(auth_data.get("access_token")):
            # The web sign-in flow exchanged the code itself (with PKCE): the token is the
            # provider's own answer, and the provider's user API says whose it is.
            account = await self.account(auth_data["access_token"], auth_data)
            if auth_data.get("id") and account != auth_data["id"]:
                raise self.refused()
            auth_data["id"] = account
            return
        if not code:
            raise ParseError(Code.VALIDATION_ERROR, f"{self.display} code is required.")
        if not isinstance(code, str) or not self.client_id:
            raise self.refused()
        token = await self.exchange(auth_data)
        account = await self.account(token, auth_data)
        if auth_data.get("id") and account != auth_data["id"]:
            raise self.refused()
        auth_data["access_token"] = token
        auth_data["id"] = account
        for key in self.DROPPED:
            auth_data.pop(key, None)

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        # before_find has checked the entry; one still holding a code never went through it.
        if "code" in auth_data or not auth_data.get("id"):
            raise self.refused()
        return None

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        return {"id": auth_data.get("id")}


def token_of(answer: Answer, refused: ParseError) -> str:
    """``access_token`` of a JSON token answer (``refused`` without one)."""
    data = answer.json()
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise refused
    return token


def oauth_error(data: Any) -> str | None:
    """An OAuth 2 error answer's description (``error_description`` or ``error``), else None."""
    if isinstance(data, dict) and data.get("error"):
        described = data.get("error_description") or data["error"]
        return described if isinstance(described, str) else str(described)
    return None


def id_text(value: Any) -> str | None:
    """An account id as a string (GitHub and Weibo give numbers); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None
