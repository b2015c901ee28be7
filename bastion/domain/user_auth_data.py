"""``authData`` on users: sign-up and log-in with a provider, linking, unlinking, as Parse Server 9.10.

Parse Server's ``RestWrite.validateAuthData``/``handleAuthData``/``ensureUniqueAuthDataId`` and
``Auth.findUsersWithAuthData``/``handleAuthDataValidation`` in one place:

- ``POST /users`` with ``authData``: the user already linked to one of the given provider ids logs
  in (200, a new session) after every given provider validated; otherwise a new user is created
  (201, a random username when none is given) with the validated ``authData``;
- ``PUT /users/:id`` with ``authData``: providers whose data changed are validated and merged into
  the stored ``authData`` one provider at a time; ``null`` unlinks a provider;
- an id linked to another user answers 208 "this auth is already used", but only after the
  provider accepted the data, so ids cannot be probed without a valid token;
- ``POST /login`` with a password and ``authData``: the extra providers are validated and stored.

On PostgreSQL the data lives in the ``authData`` jsonb column (Parse's ``_auth_data_<provider>`` is
only the name its controller gives one provider's entry on the way there); both databases keep a
unique index on each provider's ``id`` (``_User_unique_authData_<provider>_id``), as Parse Server does.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.core.auth import MASTER_AUTH, Auth, CallInfo
from bastion.core.names import check_no_denylisted_keys
from bastion.core.query import ir
from bastion.core.system_classes import USER
from bastion.domain.auth_providers import ProviderRegistry
from bastion.domain.auth_providers.base import PROVIDER_NAME, unsupported
from bastion.errors import Code, ParseError
from bastion.ports.storage import MASTER, DuplicateValue, FindQuery, SetPath, UpdateOp

if TYPE_CHECKING:
    from bastion.domain.users import Users

ALREADY_USED = "this auth is already used"
DENIED = "Permission denied"
_USERNAME_ALPHABET = string.ascii_letters + string.digits


@dataclass(slots=True)
class AuthDataSignUp:
    response: dict[str, Any]
    object_id: str
    created: bool  # 201 for a new user, 200 for a log-in


def random_username() -> str:
    """25 random letters and digits, as Parse Server's ``cryptoUtils.randomString(25)``."""
    return "".join(secrets.choice(_USERNAME_ALPHABET) for _ in range(25))


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


def _has_provider_data(auth_data: dict[str, Any]) -> bool:
    """Parse's ``hasAuthData``: some provider entry is a non-empty object."""
    return any(isinstance(value, dict) and value for value in auth_data.values())


def _check_shape(auth_data: Any) -> dict[str, Any]:
    """``authData`` must be an object of provider names to objects (or null to unlink)."""
    if not isinstance(auth_data, dict):
        raise unsupported()
    check_no_denylisted_keys(auth_data)
    for name, value in auth_data.items():
        # The name becomes a JSON key in SQL and an index name: letters, digits and _ only. Parse
        # Server has no provider by any other name, so it answers 252 for them too.
        if not PROVIDER_NAME.fullmatch(name):
            raise unsupported()
        if value is not None and not isinstance(value, dict):
            raise unsupported()
    return auth_data


def _mutated(auth_data: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """Parse's ``hasMutatedAuthData``: providers whose entry is new, unlinked, or differs from what
    is stored (an entry that only echoes stored keys is unchanged; ``anonymous`` never counts)."""
    if not stored:
        return dict(auth_data)
    changed: dict[str, Any] = {}
    for name, value in auth_data.items():
        if name == "anonymous":
            continue
        current = stored.get(name)
        if value is None or not isinstance(current, dict) or any(
                key not in current or current[key] != item or type(current[key]) is not type(item)
                for key, item in value.items()):
            changed[name] = value
    return changed


class UserAuthData:
    def __init__(self, users: Users, providers: ProviderRegistry) -> None:
        self.users = users
        self.providers = providers
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        """The _User class and a unique index per provider id, made once, before the first link."""
        if self._indexed:
            return
        await self.users._ensure_class()
        for name in self.providers.names():
            await self.users.storage.ensure_auth_data_uniqueness(name)
        self._indexed = True

    # --- Parse's findUsersWithAuthData and handleAuthDataValidation --------------------------------

    async def find_users(self, auth_data: dict[str, Any], auth: Auth) -> list[dict[str, Any]]:
        """Users (at most 2) linked to any given provider id; users locked out by an empty ACL are
        invisible to everyone but the master key."""
        terms: list[ir.Node] = []
        for name, value in auth_data.items():
            provider_id = self.providers.lookup_id(name, value)  # 162 for an id that is not a string
            if provider_id is not None:
                terms.append(ir.Compare(ir.Field("authData", "Object", (name, "id")), ir.EQ, provider_id))
        schema = self.users.schemas.get(USER)
        if not terms or schema is None:
            return []
        columns = self.users._columns(schema)
        found = await self.users.storage.find(schema, FindQuery(ir.disjoin(terms), limit=2, columns=columns),
                                              MASTER)
        if auth.is_master:
            return found
        return [r for r in found if not (r.get("_rperm") == [] and r.get("_wperm") == [])]

    async def validate(self, auth_data: dict[str, Any]) -> dict[str, Any]:
        """Each provider in name order (null passes: an unlink); 252 for an unknown or disabled one."""
        validated: dict[str, Any] = {}
        for name in sorted(auth_data):
            value = auth_data[name]
            if value is not None:
                await self.providers.validate(name, value)
            validated[name] = value
        return validated

    async def _check_unique(self, auth_data: dict[str, Any], user_id: str | None) -> None:
        """Parse's ``ensureUniqueAuthDataId``: no provider id may belong to another user, locked-out
        users included (Parse Server skips them here but then hits its unique index: 208 as well)."""
        if not any(isinstance(v, dict) and v.get("id") for v in auth_data.values()):
            return
        found = await self.find_users(auth_data, MASTER_AUTH)
        if len(found) > 1 or (found and found[0]["objectId"] != user_id):
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED)

    # --- POST /users ---------------------------------------------------------------------------------

    async def sign_up(self, body: dict[str, Any], auth: Auth, info: CallInfo | None = None) -> AuthDataSignUp:
        """``POST /users`` whose body has ``authData``: a sign-up or a log-in with a provider.
        A log-in runs cloud code's before_login (not after_login, as in Parse Server)."""
        auth_data = body["authData"]
        has_data = isinstance(auth_data, dict) and _has_provider_data(auth_data)
        if not has_data:
            username, password = body.get("username"), body.get("password")
            if not isinstance(username, str) or not username:
                raise ParseError(Code.USERNAME_MISSING, "bad or missing username")
            if not isinstance(password, str) or not password:
                raise ParseError(Code.PASSWORD_MISSING, "password is required")
        auth_data = _check_shape(auth_data)
        rest = {k: v for k, v in body.items() if k != "authData"}
        if not auth_data:
            # An empty authData is no authData: a plain sign-up.
            response, object_id = await self.users.sign_up(rest, auth, info=info)
            return AuthDataSignUp(response, object_id, True)
        await self._ensure_indexes()
        user_id = auth.user_id
        found = await self.find_users(auth_data, auth)
        if len(found) > 1 or (user_id and found and found[0]["objectId"] != user_id):
            # Validate first, so that a stranger learns nothing about which ids are linked.
            await self.validate(auth_data)
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED)
        if found:
            return await self._log_in(found[0], auth_data, auth, info)
        validated = await self.validate(auth_data)
        await self._check_unique(validated, user_id)
        stored = {name: value for name, value in validated.items() if value is not None}
        if "username" not in rest or rest.get("username") in (None, ""):
            rest["username"] = random_username()
            generated = True
        else:
            generated = False
        created_with = {"action": "login", "authProvider": ",".join(validated)}
        try:
            response, object_id = await self.users.sign_up(
                rest, auth, auth_data=stored or None, created_with=created_with, session=user_id is None,
                info=info)
        except ParseError as exc:
            if exc.code == Code.DUPLICATE_VALUE:  # a concurrent sign-up took the id (unique index)
                await self._check_unique(validated, None)
            raise
        if generated:
            response["username"] = rest["username"]
        response["authDataResponse"] = {}
        return AuthDataSignUp(response, object_id, True)

    async def _log_in(self, record: dict[str, Any], auth_data: dict[str, Any], auth: Auth,
                      info: CallInfo | None = None) -> AuthDataSignUp:
        object_id = record["objectId"]
        stored = record.get("authData") if isinstance(record.get("authData"), dict) else None
        changed = _mutated(auth_data, stored)
        user = await self.users._user_by_id(object_id)
        if user is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        is_self_or_master = auth.is_master or auth.user_id == object_id
        if not changed and is_self_or_master:
            # The master key (or the user itself) naming known data: the user, no validation.
            await self.users.before_login(user, auth, info)
            return AuthDataSignUp(clean_auth_data(user), object_id, False)
        # A log-in validates every provider given, not only changed ones: an id alone must never
        # be enough to become its user.
        validated = await self.validate(auth_data)
        # Cloud code's before_login, before anything is stored. Parse Server runs it before the
        # validation; here it runs only for a caller who proved the identity.
        await self.users.before_login(user, auth, info)
        if validated:
            await self._store(object_id, validated)
        merged = dict(user.get("authData") or {})
        merged.update(changed)
        user["authData"] = merged
        clean_auth_data(user)
        if not auth.user_id:
            session = await self.users.sessions.create(
                object_id, {"action": "login", "authProvider": ",".join(auth_data)}, auth.installation_id)
            user["sessionToken"] = session.token
        user["authDataResponse"] = {}
        return AuthDataSignUp(user, object_id, False)

    async def _store(self, object_id: str, auth_data: dict[str, Any]) -> None:
        """Merge providers into the stored ``authData`` (null removes one), bypassing ACLs as Parse."""
        # Straight to storage, as Parse's database.update: a log-in does not change updatedAt.
        ops: list[UpdateOp] = [SetPath("authData", (name,), value, delete=value is None)
                               for name, value in auth_data.items()]
        try:
            await self.users.storage.update(self.users._schema(), object_id, ops, MASTER)
        except DuplicateValue:
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED) from None

    # --- PUT /users/:id ------------------------------------------------------------------------------

    async def before_update(self, object_id: str, body: dict[str, Any],
                            auth: Auth) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The body as the generic update should apply it (``authData`` as per-provider keys), and
        the ``authDataResponse`` to answer (None when no provider was validated)."""
        for key in body:
            if key.startswith("authData."):
                # Only whole provider entries go through validation; dotted keys would bypass it.
                raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name for update: {key[:120]}")
        if "authData" not in body:
            return body, None
        rest = {k: v for k, v in body.items() if k != "authData"}
        auth_data = body["authData"]
        if not auth_data:
            if isinstance(auth_data, dict):
                return rest, None  # {}: nothing to link or unlink
            raise unsupported()
        auth_data = _check_shape(auth_data)
        await self._ensure_indexes()
        try:
            to_store, response = await self._link(object_id, auth_data, auth)
        except ParseError as exc:
            if exc.code == Code.OBJECT_NOT_FOUND and not auth.is_master:
                # Parse Server answers any 101 of a user update so ("Insufficient auth."), which
                # also hides whether an id is linked when its token is refused.
                raise ParseError(Code.SESSION_MISSING, DENIED) from None
            raise
        for name, value in to_store.items():
            rest[f"authData.{name}"] = {"__op": "Delete"} if value is None else value
        return rest, response

    async def _link(self, object_id: str, auth_data: dict[str, Any],
                    auth: Auth) -> tuple[dict[str, Any], dict[str, Any] | None]:
        found = await self.find_users(auth_data, auth)
        if len(found) > 1 or (found and found[0]["objectId"] != object_id):
            await self.validate(auth_data)
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED)
        if not found:
            validated = await self.validate(auth_data)
            await self._check_unique(validated, object_id)
            return validated, {}
        stored = found[0].get("authData") if isinstance(found[0].get("authData"), dict) else None
        changed = _mutated(auth_data, stored)
        if not changed:
            return auth_data, None  # an echo of what is stored
        validated = await self.validate(changed)
        await self._check_unique(validated, object_id)
        return validated, {}

    # --- POST /login ---------------------------------------------------------------------------------

    async def after_password_login(self, user: dict[str, Any], auth_data: Any,
                                   before_store: Callable[[], Awaitable[None]] | None = None) -> dict[str, Any]:
        """``POST /login`` with a password and ``authData``: the providers are validated and stored
        for the user who proved the password (Parse's additional providers, such as MFA).
        ``before_store`` (cloud code's before_login) runs between the two, as in Parse Server."""
        validated = await self.validate(_check_shape(auth_data)) if auth_data else {}
        if before_store is not None:
            await before_store()
        if not auth_data:
            return user
        if validated:
            await self._store(user["objectId"], validated)
            merged = dict(user.get("authData") or {})
            merged.update(validated)
            user["authData"] = merged
            clean_auth_data(user)
        user["authDataResponse"] = {}
        return user
