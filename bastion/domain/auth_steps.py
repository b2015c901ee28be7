"""The steps Parse Server 9 runs around auth adapters (``Auth.js``), shared by sign-up, log-in,
linking and ``/challenge``:

- ``run_before_find``: adapters fill in or check an entry before the user is looked up;
- ``validate``: each provider in name order, through the step that fits (set-up, log-in,
  update), collecting what to store and what to answer (``handleAuthDataValidation``);
- ``check_login_policy``: a user with an ``additional`` provider (MFA) must give it to log in,
  unless a ``solo`` provider (a passkey) signed in (``checkIfUserHasProvidedConfiguredProvidersForLogin``);
- ``lock_conditions``: the stored single-use values a log-in consumes, as update conditions, so that
  two requests racing with one code cannot both succeed (``applyAuthDataOptimisticLock``);
- ``UserView``: a ``_User`` as a caller may see it, with each adapter's ``after_find`` applied.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bastion.core.auth import Auth
from bastion.core.query import ir
from bastion.domain.auth_providers import AuthAdapter, AuthRequest, AuthResult, ProviderRegistry
from bastion.domain.auth_providers.adapter import LOG_IN, SET_UP, UPDATE
from bastion.domain.auth_providers.base import unsupported
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

UNKNOWN_FAILURE = "Auth failed. Unknown error."


@dataclass(slots=True)
class Validated:
    """What a validation decided: the entries to store (None unlinks) and ``authDataResponse``."""

    auth_data: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)
    user_fields: dict[str, Any] = field(default_factory=dict)  # for a new user (AuthResult.user_fields)
    sign_in_as: set[str] = field(default_factory=set)  # existing users a provider proved (AuthResult.sign_in_as)


def stored_auth_data(user: dict[str, Any] | None) -> dict[str, Any]:
    auth_data = (user or {}).get("authData")
    return auth_data if isinstance(auth_data, dict) else {}


def unchanged(entry: dict[str, Any], stored: Any) -> bool:
    """The entry only echoes what is stored (every key present with an equal value of one type)."""
    return bool(entry) and isinstance(stored, dict) and all(
        key in stored and stored[key] == value and type(stored[key]) is type(value) for key, value in entry.items())


async def guarded(provider: str, step: str, call: Awaitable[Any], failure: str = UNKNOWN_FAILURE) -> Any:
    """An adapter call: ParseError passes; any other exception is 141 with its message, as Parse
    Server answers ``throw "…"`` from an adapter (``failure`` when it has none). A network error
    that escaped the adapter says no more than ``failure``: its text names internal addresses."""
    try:
        return await call
    except ParseError:
        raise
    except Exception as error:
        log.exception("auth step %s of provider %s failed", step or "validation", provider)
        message = "" if isinstance(error, httpx.HTTPError | OSError) else str(error)
        raise ParseError(Code.SCRIPT_FAILED, message[:500] or failure) from None


class AuthSteps:
    def __init__(self, providers: ProviderRegistry) -> None:
        self.providers = providers

    async def run_before_find(self, auth_data: dict[str, Any], stored: dict[str, Any] | None) -> None:
        """Each configured provider's ``before_find``, unless its entry only echoes ``stored``."""
        for name, entry in auth_data.items():
            adapter = self.providers.find(name)
            if adapter is None or not isinstance(entry, dict):
                continue
            if stored is not None and unchanged(entry, stored.get(name)):
                continue
            await guarded(name, "beforeFind", adapter.before_find(entry))

    def request(self, auth: Auth, user: dict[str, Any] | None, ip: str | None = None,
                save: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> AuthRequest:
        return AuthRequest(master=auth.is_master, user_id=auth.user_id, installation_id=auth.installation_id, ip=ip,
                           original=user, save_auth_data=save)

    async def validate(self, auth_data: dict[str, Any], auth: Auth, user: dict[str, Any] | None,
                       ip: str | None = None,
                       save: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> Validated:
        """Parse's ``handleAuthDataValidation``: providers in name order, each through one step;
        the first refusal stops the others (no SMS is sent when another provider failed)."""
        result = Validated()
        stored = stored_auth_data(user)
        logged_in = user is not None and (auth.is_master or auth.user_id == user.get("objectId"))
        for name in sorted(auth_data):
            entry = auth_data[name]
            request = self.request(auth, user, ip, save)
            if entry is None:  # an unlink: any name, known or not, as Parse Server
                known = self.providers.find(name)
                if known is not None and stored.get(name) is not None and not auth.is_master:
                    await guarded(name, "unlink", known.validate_unlink(request))
                result.auth_data[name] = None
                continue
            adapter = self.providers.get(name)  # 252 for an unknown or disabled provider
            if not isinstance(entry, dict):
                raise unsupported()
            configured = isinstance(stored.get(name), dict) and bool(stored.get(name))
            step = (UPDATE if configured else SET_UP) if logged_in else (LOG_IN if configured else SET_UP)
            request.trigger_name = step
            outcome = await guarded(name, step, self._run(adapter, step, entry, request))
            self._collect(result, name, entry, outcome)
        return result

    async def _run(self, adapter: AuthAdapter, step: str, entry: dict[str, Any],
                   request: AuthRequest) -> AuthResult | None:
        if adapter.app_ids is not None:
            await adapter.validate_app_id(adapter.app_ids, entry, request)
        if step == UPDATE:
            return await adapter.validate_update(entry, request)
        if step == LOG_IN:
            return await adapter.validate_login(entry, request)
        return await adapter.validate_set_up(entry, request)

    @staticmethod
    def _collect(result: Validated, name: str, entry: dict[str, Any], outcome: Any) -> None:
        if outcome is None:
            result.auth_data[name] = entry
            return
        if not isinstance(outcome, AuthResult):
            raise ParseError(Code.SCRIPT_FAILED, UNKNOWN_FAILURE)
        if outcome.response is not None:
            result.response[name] = outcome.response
        if outcome.user_fields:
            result.user_fields.update(outcome.user_fields)
        if outcome.sign_in_as:
            result.sign_in_as.add(outcome.sign_in_as)
        if outcome.remove:
            result.auth_data[name] = None
        elif not outcome.do_not_save:
            result.auth_data[name] = outcome.save if outcome.save is not None else entry

    def check_login_policy(self, auth_data: dict[str, Any] | None, user: dict[str, Any], auth: Auth) -> None:
        """A log-in must name one of the user's ``additional`` providers (MFA) unless a ``solo``
        provider of the user was given: Parse's -1 "Missing additional authData <names>"."""
        given = auth_data or {}
        saved = [(name, adapter) for name in stored_auth_data(user)
                 if (adapter := self.providers.find(name)) is not None]
        if any(adapter.policy == "solo" and given.get(name) for name, adapter in saved):
            return
        missing: list[str] = []
        request = self.request(auth, user)
        for name, adapter in saved:
            entry = stored_auth_data(user).get(name)
            if adapter.policy_for(entry if isinstance(entry, dict) else None, request) != "additional":
                continue
            if given.get(name):
                return
            missing.append(name)
        if missing:
            raise ParseError(Code.OTHER_CAUSE, f"Missing additional authData {','.join(missing)}")


def _lockable(value: Any) -> bool:
    return value is not None and isinstance(value, str | int | float | bool | list)


def lock_conditions(original: dict[str, Any], new: dict[str, Any]) -> ir.Node:
    """For each provider being stored, its stored strings, numbers, booleans and lists that the new
    entry changes must still be stored when the update runs: a single-use code is consumed once.
    Such a value the new entry adds must still be missing (MFA's first ``last`` time step, on an
    entry made before Bastion kept it: two log-ins racing with one TOTP code must not both pass)."""
    terms: list[ir.Node] = []
    for name in new:
        entry = original.get(name)
        if not isinstance(entry, dict):
            continue
        replacement = new[name] if isinstance(new[name], dict) else {}
        for key, value in entry.items():
            if not _lockable(value):
                continue
            if replacement.get(key) != value or type(replacement.get(key)) is not type(value):
                terms.append(ir.Compare(ir.Field("authData", "Object", (name, key)), ir.EQ, value))
        for key, value in replacement.items():
            if key not in entry and _lockable(value):
                terms.append(ir.Not(ir.Exists(ir.Field("authData", "Object", (name, key)))))
    return ir.conjoin(terms) if terms else ir.TRUE


class UserView:
    """A ``_User`` object as ``auth`` may see it: no password or token; ``authData`` for the user
    and the master key only, each provider's entry as its adapter's ``after_find`` shows it."""

    def __init__(self, providers: ProviderRegistry | None = None) -> None:
        self.providers = providers

    def __call__(self, user: dict[str, Any], auth: Auth) -> dict[str, Any]:
        user.pop("password", None)
        user.pop("sessionToken", None)
        clean_auth_data(user)
        if not (auth.is_master or auth.user_id == user.get("objectId")):
            user.pop("authData", None)  # email: Parse Server's default protectedFields (core/permissions.py)
            return user
        auth_data = user.get("authData")
        if self.providers is not None and isinstance(auth_data, dict):
            user["authData"] = self.after_find(auth_data, auth)
        return user

    def after_find(self, auth_data: dict[str, Any], auth: Auth) -> dict[str, Any]:
        shown = dict(auth_data)
        request = AuthRequest(master=auth.is_master, user_id=auth.user_id, installation_id=auth.installation_id)
        for name, entry in auth_data.items():
            adapter = self.providers.find(name) if self.providers is not None else None
            if adapter is None or not isinstance(entry, dict):
                continue
            try:
                replaced = adapter.after_find(dict(entry), request)
            except Exception:
                # Never show an entry an adapter could not vouch for: it may hold secrets.
                log.exception("after_find of provider %s failed", name)
                replaced = {"id": entry["id"]} if isinstance(entry.get("id"), str) else {}
            if replaced is not None:
                shown[name] = replaced
        return shown


def clean_auth_data(user: dict[str, Any]) -> dict[str, Any]:
    """Drop unlinked (null) providers and an empty ``authData``, as Parse Server answers users."""
    auth_data = user.get("authData")
    if isinstance(auth_data, dict):
        kept = {name: value for name, value in auth_data.items() if value is not None}
        if kept:
            user["authData"] = kept
        else:
            user.pop("authData")
    elif "authData" in user and auth_data is None:
        user.pop("authData")
    return user
