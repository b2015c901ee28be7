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

import logging
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
from bastion.domain.auth_steps import (
    AuthSteps,
    Validated,
    clean_auth_data,
    guarded,
    lock_conditions,
    stored_auth_data,
)
from bastion.errors import Code, ParseError
from bastion.ports.storage import MASTER, DuplicateValue, FindQuery, SetPath, UpdateOp

if TYPE_CHECKING:
    from bastion.domain.users import Users

log = logging.getLogger("bastion.auth")

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


def as_user(object_id: str, installation_id: str | None = None) -> Auth:
    """The identity of a user signing in: what the answer to that user may show."""
    return Auth(user={"objectId": object_id}, installation_id=installation_id)


class UserAuthData:
    def __init__(self, users: Users, providers: ProviderRegistry) -> None:
        self.users = users
        self.providers = providers
        self.steps = AuthSteps(providers)
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

    async def find_users(self, auth_data: dict[str, Any], auth: Auth, *, before_find: bool = False,
                         stored: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Users (at most 2) linked to any given provider id; users locked out by an empty ACL are
        invisible to everyone but the master key. With ``before_find``, adapters first see the
        entries that do not merely echo ``stored`` (a code becomes an account id there)."""
        if before_find:
            await self.steps.run_before_find(auth_data, stored)
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

    async def record(self, object_id: str) -> dict[str, Any] | None:
        """The stored user with its whole ``authData`` (what adapters check against)."""
        schema = self.users.schemas.get(USER)
        if schema is None:
            return None
        node = ir.Compare(ir.Field("objectId", "String"), ir.EQ, object_id)
        found = await self.users.storage.find(
            schema, FindQuery(node, limit=1, columns=self.users._columns(schema)), MASTER)
        return found[0] if found else None

    async def validate(self, auth_data: dict[str, Any], auth: Auth, user: dict[str, Any] | None,
                       info: CallInfo | None = None) -> Validated:
        """Each provider in name order through its step, checked against ``user`` (None: a sign-up)."""
        save = None
        if user is not None:
            object_id = user["objectId"]

            async def save(entries: dict[str, Any]) -> None:
                await self._store(object_id, entries)
        return await self.steps.validate(auth_data, auth, user, info.ip if info else None, save)

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
        found = await self.find_users(auth_data, auth, before_find=True)
        if len(found) > 1 or (user_id and found and found[0]["objectId"] != user_id):
            # Validate first, so that a stranger learns nothing about which ids are linked.
            await self.validate(auth_data, auth, found[0], info)
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED)
        if found:
            return await self._log_in(found[0], auth_data, auth, info)
        current = await self.record(user_id) if user_id else None
        validated = await self.validate(auth_data, auth, current, info)
        if validated.sign_in_as and user_id is None:
            return await self._adopt(validated, auth_data, auth, info)
        await self._check_unique(validated.auth_data, user_id)
        stored = {name: value for name, value in validated.auth_data.items() if value is not None}
        if "username" not in rest or rest.get("username") in (None, ""):
            rest["username"] = random_username()
            generated = True
        else:
            generated = False
        created_with = {"action": "login", "authProvider": ",".join(auth_data)}
        try:
            response, object_id = await self.users.sign_up(
                rest, auth, auth_data=stored or None, created_with=created_with, session=user_id is None,
                info=info, server_fields=validated.user_fields if user_id is None else None)
        except ParseError as exc:
            if exc.code == Code.DUPLICATE_VALUE:  # a concurrent sign-up took the id (unique index)
                await self._check_unique(validated.auth_data, None)
            raise
        if generated:
            response["username"] = rest["username"]
        response["authDataResponse"] = validated.response
        return AuthDataSignUp(response, object_id, True)

    async def _log_in(self, record: dict[str, Any], auth_data: dict[str, Any], auth: Auth,
                      info: CallInfo | None = None) -> AuthDataSignUp:
        object_id = record["objectId"]
        stored = stored_auth_data(record)
        changed = _mutated(auth_data, stored)
        user = await self.users._user_by_id(object_id)
        if user is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        is_self_or_master = auth.is_master or auth.user_id == object_id
        viewer = auth if auth.user_id else as_user(object_id, auth.installation_id)
        if not changed and is_self_or_master:
            # The master key (or the user itself) naming known data: the user, no validation.
            await self.users.before_login(user, auth, info)
            return AuthDataSignUp(self.users.view(user, viewer), object_id, False)
        # A log-in validates every provider given, not only changed ones: an id alone must never
        # be enough to become its user.
        validated = await self.validate(auth_data if not auth.user_id else changed, auth, record, info)
        # Cloud code's before_login, before anything is stored. Parse Server runs it before the
        # validation; here it runs only for a caller who proved the identity.
        await self.users.before_login(user, auth, info)
        # A user with MFA must give it too (unless a solo provider such as a passkey signed in).
        self.steps.check_login_policy(auth_data, record, auth)
        if validated.auth_data:
            await self._store(object_id, validated.auth_data, original=stored)
        return await self._logged_in(user, stored, validated, auth_data, auth, viewer)

    async def _adopt(self, validated: Validated, auth_data: dict[str, Any], auth: Auth,
                     info: CallInfo | None) -> AuthDataSignUp:
        """A provider proved the caller to be an existing user not yet linked to it (a mailed code
        to a user's verified email): that user logs in, as with a linked provider, and the
        provider is linked."""
        if len(validated.sign_in_as) != 1:
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED)
        object_id = next(iter(validated.sign_in_as))
        record = await self.record(object_id)
        user = await self.users._user_by_id(object_id)
        if record is None or user is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        await self._check_unique(validated.auth_data, object_id)
        await self.users.before_login(user, auth, info)
        self.steps.check_login_policy(auth_data, record, auth)
        stored = stored_auth_data(record)
        if validated.auth_data:
            await self._store(object_id, validated.auth_data, original=stored)
        return await self._logged_in(user, stored, validated, auth_data, auth,
                                     as_user(object_id, auth.installation_id))

    async def _logged_in(self, user: dict[str, Any], stored: dict[str, Any], validated: Validated,
                         auth_data: dict[str, Any], auth: Auth, viewer: Auth) -> AuthDataSignUp:
        """The answer to a log-in with providers: the user, a new session unless signed in already."""
        object_id = user["objectId"]
        merged = dict(stored)
        merged.update(validated.auth_data)
        user["authData"] = merged
        user = self.users.view(user, viewer)
        if not auth.user_id:
            session = await self.users.sessions.create(
                object_id, {"action": "login", "authProvider": ",".join(auth_data)}, auth.installation_id)
            user["sessionToken"] = session.token
        user["authDataResponse"] = validated.response
        return AuthDataSignUp(user, object_id, False)

    async def _store(self, object_id: str, auth_data: dict[str, Any],
                     original: dict[str, Any] | None = None) -> None:
        """Merge providers into the stored ``authData`` (null removes one), bypassing ACLs as Parse.
        With ``original``, the single-use values the new entries consume must still be stored: of
        two requests racing with one code, the second answers 141 "Invalid auth data"."""
        # Straight to storage, as Parse's database.update: a log-in does not change updatedAt.
        ops: list[UpdateOp] = [SetPath("authData", (name,), value, delete=value is None)
                               for name, value in auth_data.items()]
        where = lock_conditions(original, auth_data) if original else ir.TRUE
        try:
            updated = await self.users.storage.update(self.users._schema(), object_id, ops, MASTER, where)
        except DuplicateValue:
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED) from None
        if updated is None:
            raise ParseError(Code.SCRIPT_FAILED, "Invalid auth data")

    # --- PUT /users/:id ------------------------------------------------------------------------------

    async def before_update(self, object_id: str, body: dict[str, Any], auth: Auth,
                            info: CallInfo | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
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
            to_store, response = await self._link(object_id, auth_data, auth, info)
        except ParseError as exc:
            if exc.code == Code.OBJECT_NOT_FOUND and not auth.is_master:
                # Parse Server answers any 101 of a user update so ("Insufficient auth."), which
                # also hides whether an id is linked when its token is refused.
                raise ParseError(Code.SESSION_MISSING, DENIED) from None
            raise
        for name, value in to_store.items():
            rest[f"authData.{name}"] = {"__op": "Delete"} if value is None else value
        return rest, response

    async def _link(self, object_id: str, auth_data: dict[str, Any], auth: Auth,
                    info: CallInfo | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        current = await self.record(object_id)
        stored = stored_auth_data(current)
        found = await self.find_users(auth_data, auth, before_find=True, stored=stored)
        if len(found) > 1 or (found and found[0]["objectId"] != object_id):
            await self.validate(auth_data, auth, found[0], info)
            raise ParseError(Code.ACCOUNT_ALREADY_LINKED, ALREADY_USED)
        owner = current if auth.is_master or auth.user_id == object_id else None
        if not found:
            validated = await self.validate(auth_data, auth, owner, info)
            await self._check_unique(validated.auth_data, object_id)
            return validated.auth_data, validated.response
        changed = _mutated(auth_data, stored)
        if not changed:
            # An echo of what is stored (or a part of it): not validated, and not stored either.
            # Parse Server stores it as sent, so {"mfa": {}} would wipe an entry without its code.
            return {}, None
        validated = await self.validate(changed, auth, owner or found[0], info)
        await self._check_unique(validated.auth_data, object_id)
        return validated.auth_data, validated.response

    # --- POST /login ---------------------------------------------------------------------------------

    async def after_password_login(self, user: dict[str, Any], auth_data: Any, auth: Auth,
                                   info: CallInfo | None = None,
                                   before_store: Callable[[], Awaitable[None]] | None = None) -> dict[str, Any]:
        """``POST /login`` with a password: a user with an ``additional`` provider (MFA) must give
        it in ``authData``; the providers given are validated, then ``before_store`` (cloud code's
        before_login) runs, then they are stored, as in Parse Server."""
        object_id = user["objectId"]
        record = await self.record(object_id) or {"objectId": object_id}
        if auth_data is not None and not isinstance(auth_data, dict):
            raise unsupported()
        self.steps.check_login_policy(auth_data, record, auth)
        validated = await self.validate(_check_shape(auth_data), auth, record, info) if auth_data else None
        if before_store is not None:
            await before_store()
        if validated is None:
            return user
        stored = stored_auth_data(record)
        if validated.auth_data:
            await self._store(object_id, validated.auth_data, original=stored)
        merged = dict(stored)
        merged.update(validated.auth_data)
        user["authData"] = merged
        clean_auth_data(user)
        user["authDataResponse"] = validated.response
        return user

    # --- POST /challenge -----------------------------------------------------------------------------

    async def challenge(self, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        """Parse's ``POST /challenge``: the user is named by username/email and password or by one
        provider's ``authData`` (validated, so an id alone is not enough), then each provider in
        ``challengeData`` answers (a passkey's options, an SMS sent...). Any failure to identify
        the user is 101 "User not found.", so that ids cannot be probed."""
        body = body if isinstance(body, dict) else {}
        username, email, password = body.get("username"), body.get("email"), body.get("password")
        auth_data, challenge_data = body.get("authData"), body.get("challengeData")
        user: dict[str, Any] | None = None
        if username or email:
            if not password:
                raise ParseError(Code.OTHER_CAUSE,
                                 "You provided username or email, you need to also provide password.")
            checked = await self.users._check_credentials(body, auth)
            user = await self.record(checked["objectId"])
        if not challenge_data:
            raise ParseError(Code.OTHER_CAUSE, "Nothing to challenge.")
        if not isinstance(challenge_data, dict):
            raise ParseError(Code.OTHER_CAUSE, "challengeData should be an object.")
        if auth_data is not None:
            user = await self._challenged_user(auth_data, user, auth, info)
        elif user is None and auth.user_id:
            # Bastion's: a signed-in caller who names nobody else is the user (a passkey being
            # added to one's own account needs the account's stored passkeys).
            user = await self.record(auth.user_id)
        request = self.steps.request(auth, user, info.ip if info else None)
        request.is_challenge = True
        answers: dict[str, Any] = {}
        for name in sorted(challenge_data):
            adapter = self.providers.find(name)
            if adapter is None:
                continue
            entry = auth_data.get(name) if isinstance(auth_data, dict) else None
            answer = await guarded(name, "challenge", adapter.challenge(challenge_data[name], entry, request),
                                   "Challenge failed. Unknown error.")
            answers[name] = answer if answer is not None else True
        return {"challengeData": answers}

    async def _challenged_user(self, auth_data: Any, user: dict[str, Any] | None, auth: Auth,
                               info: CallInfo | None) -> dict[str, Any]:
        if not isinstance(auth_data, dict):
            raise ParseError(Code.OTHER_CAUSE, "authData should be an object.")
        if user is not None:
            raise ParseError(Code.OTHER_CAUSE,
                             "You cannot provide username/email and authData, only use one identification method.")
        for key, value in auth_data.items():
            if value is not None and not isinstance(value, dict):
                raise ParseError(Code.OTHER_CAUSE, f"authData.{str(key)[:64]} should be an object.")
        with_id = [name for name, value in auth_data.items() if isinstance(value, dict) and value.get("id")]
        if len(with_id) > 1:
            raise ParseError(Code.OTHER_CAUSE, "You cannot provide more than one authData provider with an id.")
        try:
            _check_shape(auth_data)
            found = await self.find_users(auth_data, auth)
            if len(found) != 1 or not with_id:
                raise ParseError(Code.OBJECT_NOT_FOUND, "User not found.")
            provider = with_id[0]
            # The data that names the user must also prove it, or ids could be probed.
            await self.steps.validate({provider: auth_data[provider]}, auth, found[0], info.ip if info else None)
            return found[0]
        except ParseError as error:
            log.info("challenge: user not identified (%s %s)", error.code, error.message)
            raise ParseError(Code.OBJECT_NOT_FOUND, "User not found.") from None
