"""Parse Server's auth adapter interface, in Python: what every ``authData`` provider implements.

An adapter is told, per request, which step it is in (Parse Server 9's ``authDataValidator``):

- ``validate_set_up``: the provider is new for this user (a sign-up, or linking a new provider);
- ``validate_login``: nobody is signed in, and the user already has this provider;
- ``validate_update``: the user (or the master key) changes data of a provider already linked.

An adapter written the legacy way overrides ``validate_auth_data`` only: the three steps call it.
Each step may return an ``AuthResult``: ``save`` replaces what is stored for the provider,
``response`` goes to the client under ``authDataResponse.<provider>``, ``do_not_save`` keeps what
is stored. ``before_find`` runs before the server looks the user up (a code exchanged for the
account id), ``after_find`` rewrites the provider's entry in every answer (secrets out),
``challenge`` answers ``POST /challenge``, ``validate_unlink`` may refuse an unlink, and
``policy`` says whether the provider signs in alone (``default``, ``solo``) or only beside another
one (``additional``, such as MFA).

Adapters raise ``ParseError`` to refuse; any other exception is answered as Parse Server answers
a thrown value, 141 with its message ("Auth failed. Unknown error." without one), and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from bastion.domain.auth_providers.base import string_id
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

Policy = Literal["default", "additional", "solo"]
POLICIES: tuple[Policy, ...] = ("default", "additional", "solo")
SET_UP, LOG_IN, UPDATE = "validateSetUp", "validateLogin", "validateUpdate"

NOT_CONFIGURED = ("Adapter is not configured. Implement either validate_auth_data or all of the following: "
                  "validate_set_up, validate_login and validate_update")


# Access tokens this request's own server code obtained from a provider's token endpoint (the web
# sign-in flow, which exchanged the code itself, with PKCE): a code adapter may accept one without a
# code. Only server code can set it; nothing a client sends reaches it.
_SERVER_OBTAINED: ContextVar[frozenset[str]] = ContextVar("server_obtained_tokens", default=frozenset())


@contextmanager
def server_obtained(token: str) -> Iterator[None]:
    """Within the block, ``token`` counts as obtained by the server from the provider."""
    reset = _SERVER_OBTAINED.set(_SERVER_OBTAINED.get() | {token})
    try:
        yield
    finally:
        _SERVER_OBTAINED.reset(reset)


def is_server_obtained(token: object) -> bool:
    return isinstance(token, str) and bool(token) and token in _SERVER_OBTAINED.get()


@dataclass(slots=True)
class AuthResult:
    """What a validation step asks of the server (Parse's ``{save, response, doNotSave}``)."""

    save: dict[str, Any] | None = None
    response: Any = None
    do_not_save: bool = False
    remove: bool = False  # unlink the provider (Bastion's: how MFA is turned off with a valid code)
    # Bastion's, for a sign-up (no user signed in, none linked to the id): fields the new user gets
    # from the server (such as a proven ``email`` with ``emailVerified``), or the existing user the
    # provider proved the caller to be, who then logs in and gets the provider linked.
    user_fields: dict[str, Any] | None = None
    sign_in_as: str | None = None


@dataclass(slots=True)
class AuthRequest:
    """Parse's request object as adapters see it.

    ``original`` is the stored user the data is checked against (None for a sign-up), with its
    full ``authData``; ``user_id`` is the signed-in caller. ``save_auth_data`` stores provider
    entries for ``original`` at once (what Parse's MFA adapter does with ``req.object.save``).
    """

    master: bool = False
    user_id: str | None = None
    installation_id: str | None = None
    ip: str | None = None
    original: dict[str, Any] | None = None
    trigger_name: str = ""
    is_challenge: bool = False
    save_auth_data: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    def stored(self, provider: str) -> dict[str, Any]:
        """The provider's entry stored on ``original`` ({} when there is none)."""
        auth_data = (self.original or {}).get("authData")
        entry = auth_data.get(provider) if isinstance(auth_data, dict) else None
        return dict(entry) if isinstance(entry, dict) else {}


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the server hands an adapter when it starts (``setup``)."""

    name: str  # the provider's key in authData
    options: Mapping[str, Any]
    http: httpx.AsyncClient  # shared; bounded timeouts and no redirects
    enable_insecure_auth_adapters: bool = False
    now: Callable[[], float] = time.time
    services: Mapping[str, Any] = field(default_factory=dict)  # e.g. the mailer, for adapters that mail


class AuthAdapter:
    """The base of every provider, with Parse Server's defaults.

    Subclasses override what their provider needs. ``validate_options`` checks the configuration
    when the server starts: raise ``ValueError("<key> ...")`` naming the option at fault.
    """

    policy: Policy = "default"

    def __init__(self) -> None:
        self.name = ""
        self.options: Mapping[str, Any] = {}
        self.app_ids: Any = None
        self.insecure_allowed = False
        self._context: AdapterContext | None = None

    # --- start-up ------------------------------------------------------------------------------------

    def setup(self, context: AdapterContext) -> None:
        """Called once when the server starts, before any request."""
        self._context = context
        self.name = context.name
        self.options = context.options
        self.app_ids = context.options.get("appIds")
        self.insecure_allowed = context.enable_insecure_auth_adapters
        self.validate_options(context.options)

    def validate_options(self, options: Mapping[str, Any]) -> None:
        """Check the provider's options (Parse's ``validateOptions``); raise ValueError naming the key."""

    @staticmethod
    def refuse_unknown_options(options: Mapping[str, Any], known: Iterable[str]) -> None:
        """A misspelt key (an endpoint override above all) must stop the start, not be ignored."""
        unknown = set(options) - set(known)
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")

    def insecure_option(self, options: Mapping[str, Any]) -> bool:
        """The provider's deprecated ``enableInsecureAuth``, honoured only with the server's
        --enable-insecure-auth-adapters (Parse 9 honours the provider's switch alone)."""
        flag = options.get("enableInsecureAuth", False)
        if not isinstance(flag, bool):
            raise ValueError("enableInsecureAuth must be true or false")
        if flag and not self.insecure_allowed:
            log.warning("auth provider %s: enableInsecureAuth is ignored without --enable-insecure-auth-adapters",
                        self.name)
        return flag and self.insecure_allowed

    @property
    def http(self) -> httpx.AsyncClient:
        if self._context is None:
            raise RuntimeError(f"auth adapter {type(self).__name__} used before setup()")
        return self._context.http

    @property
    def context(self) -> AdapterContext:
        if self._context is None:
            raise RuntimeError(f"auth adapter {type(self).__name__} used before setup()")
        return self._context

    def now(self) -> float:
        return self._context.now() if self._context is not None else time.time()

    async def aclose(self) -> None:
        """Release what the adapter holds (the shared HTTP client is the registry's)."""

    # --- the steps -----------------------------------------------------------------------------------

    async def before_find(self, auth_data: dict[str, Any]) -> None:
        """Runs before the user is looked up by ``auth_data['id']``; may fill ``id`` in (a code
        exchanged for the account) or refuse missing credentials."""

    async def validate_app_id(self, app_ids: Any, auth_data: dict[str, Any], request: AuthRequest) -> None:
        """Runs first when the provider's options have ``appIds``."""

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        """The legacy single check, used for every step unless the steps are overridden."""
        raise ParseError(Code.OTHER_CAUSE, NOT_CONFIGURED)

    async def validate_set_up(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        return await self.validate_auth_data(auth_data, request)

    async def validate_login(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        return await self.validate_auth_data(auth_data, request)

    async def validate_update(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        return await self.validate_auth_data(auth_data, request)

    async def validate_unlink(self, request: AuthRequest) -> None:
        """A client (not the master key) unlinks the provider with ``null``; raise to refuse
        (Bastion's: MFA refuses, it is turned off only with a valid code)."""

    async def challenge(self, challenge_data: Any, auth_data: dict[str, Any] | None,
                        request: AuthRequest) -> Any:
        """``POST /challenge``: what goes back under ``challengeData.<provider>`` (None: nothing)."""
        return None

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        """The entry as answers show it (None: unchanged)."""
        return None

    def policy_for(self, auth_data: dict[str, Any] | None, request: AuthRequest) -> Policy:
        """The policy for this user's stored entry (Parse allows ``policy`` to be a function)."""
        return self.policy

    def id_of(self, auth_data: dict[str, Any]) -> str:
        """The account id within the provider (``authData.<name>.id``)."""
        return string_id(self.name, auth_data)
