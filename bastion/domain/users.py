"""Users (``_User``): sign-up, log-in, log-out, the current user, and the rules of user writes.

Passwords never leave this module: the hash lives in the hidden ``_hashed_password`` column, which
no read selects. Every answer about a user goes through ``UserView`` (``auth_steps.py``): no password,
no session token of someone else, ``authData`` only for the user and the master key (as each
provider's ``after_find`` shows it), and ``email`` hidden from other
users (Parse Server's default ``protectedFields``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.core.auth import Auth, CallInfo
from bastion.core.query import ir
from bastion.core.query.regex_parse import escape_regex_literal
from bastion.core.schema import HIDDEN_COLUMNS, ClassSchema
from bastion.core.system_classes import SESSION, USER
from bastion.core.types import encode_date, now_ms
from bastion.domain.account_emails import AccountEmails
from bastion.domain.account_policy import CHANGED_AT, AccountPolicy
from bastion.domain.auth_steps import UserView, clean_auth_data
from bastion.domain.passwords import PasswordHasher
from bastion.domain.read import Reader
from bastion.domain.roles import Roles
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.sessions import Session, Sessions
from bastion.domain.triggers import NO_TRIGGERS, Triggers
from bastion.domain.user_auth_data import UserAuthData, as_user
from bastion.domain.write import TakeSecrets, Writer, new_object_id
from bastion.errors import Code, ParseError
from bastion.ports.storage import MASTER, FindQuery, Set, StorageAdapter

if TYPE_CHECKING:
    from bastion.domain.auth_providers import ProviderRegistry

EMAIL = re.compile(r"^.+@.+\Z", re.DOTALL)
_USERNAME = ir.Field("username", "String")
_EMAIL = ir.Field("email", "String")
_HASH = "_hashed_password"
INVALID_LOGIN = "Invalid username/password."


# Parse Server 9 answers these refusals with a generic message (enableSanitizedErrorResponse).
DENIED = "Permission denied"


@dataclass(slots=True)
class UserOptions:
    # Parse Server's revokeSessionOnPasswordReset: a new password ends every session of the user.
    revoke_sessions_on_password_change: bool = True
    # Parse Server's enforcePrivateUsers (true since 6): new users are readable by themselves only.
    enforce_private_users: bool = True


class Users:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, reader: Reader, writer: Writer,
                 sessions: Sessions, roles: Roles, hasher: PasswordHasher | None = None,
                 options: UserOptions | None = None, *, providers: ProviderRegistry | None = None,
                 emails: AccountEmails | None = None, policy: AccountPolicy | None = None,
                 triggers: Triggers = NO_TRIGGERS, view: UserView | None = None) -> None:
        self.storage = storage
        self.schemas = schemas
        self.reader = reader
        self.writer = writer
        self.sessions = sessions
        self.roles = roles
        self.hasher = hasher or PasswordHasher()
        self.options = options or UserOptions()
        # Email verification and reset-token hooks (account_emails.py).
        self.emails = emails
        # Account lockout and password policy (account_policy.py), when configured.
        self.policy = policy
        # Cloud code's login and logout triggers.
        self.triggers = triggers
        # authData (sign-up and log-in with providers, linking: user_auth_data.py), when providers are given.
        self.auth_data = UserAuthData(self, providers) if providers is not None else None
        # What a caller may see of a user (each provider's after_find: MFA secrets never leave).
        self.view = view or UserView(providers)

    # --- who a request acts as ------------------------------------------------------------------

    async def authenticate(self, auth: Auth, token: str) -> Auth:
        """``auth`` acting as the user of ``token``; 209 when the token is not a live session."""
        session = await self.sessions.resolve(token)
        if session is None:
            raise ParseError(Code.INVALID_SESSION_TOKEN, "Invalid session token")
        auth.user = {"objectId": session.user_id}
        auth.session_token = token
        auth.roles = await self.roles.names_for(session.user_id)
        return auth

    # --- sign-up --------------------------------------------------------------------------------

    async def sign_up(self, body: Any, auth: Auth, *, auth_data: dict[str, Any] | None = None,
                      created_with: dict[str, Any] | None = None, session: bool = True,
                      info: CallInfo | None = None,
                      server_fields: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
        """Create a user and a session: the answer (objectId, createdAt, sessionToken) and the id.

        A sign-up with a provider (``user_auth_data.py``) passes the validated ``auth_data`` and the
        session's ``created_with``; it needs no password, and no session when ``session`` is False.
        ``info`` is what cloud code's triggers see of the request. ``server_fields`` are set by
        the server over the client's (a provider's proven ``email`` and ``emailVerified``)."""
        if not isinstance(body, dict):
            raise ParseError(Code.INVALID_JSON, "This object must be a JSON object.")
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not username:
            raise ParseError(Code.USERNAME_MISSING, "bad or missing username")
        if (created_with is None or password not in (None, "")) and (not isinstance(password, str) or not password):
            raise ParseError(Code.PASSWORD_MISSING, "password is required")
        self._check_client_fields(body, auth)
        if server_fields:
            body = {**body, **server_fields}
        # As Parse Server 9: the create CLP is checked before uniqueness, so a closed sign-up tells nothing.
        self.writer.permissions.require(self.schemas.get(USER), auth, "create")
        policy_columns = await self._policy_columns(password or None, username, None)
        await self._check_unique(body, None)
        data = {k: v for k, v in body.items() if k != "password"}
        if auth_data:
            data["authData"] = auth_data
        hidden: dict[str, Any] = dict(policy_columns)
        if self.policy is not None and self.policy.passwords and self.policy.passwords.max_password_age:
            hidden.setdefault(CHANGED_AT, now_ms())  # every new user, as Parse Server stamps them
        take_password = None
        if self._trigger_sees_password():
            # A before_save trigger on _User sees the password, as in Parse Server; it is hashed
            # (and taken out of the body) once the trigger is done.
            if password:
                data["password"] = password
            take_password = self._password_taker(hidden, None)
        elif password:
            hidden[_HASH] = await self.hasher.hash(password)
        verify = self.emails.prepare_write(body, data, hidden, creating=True) if self.emails else False
        object_id = new_object_id()
        await self._ensure_class()
        try:
            result = await self.writer.create(
                USER, data, auth, trusted=True, object_id=object_id, hidden=hidden, info=info,
                take_secrets=self._owner_acl_taker(take_password, object_id, creating=True, auth=auth))
        except ParseError as exc:
            if exc.code == Code.DUPLICATE_VALUE:  # lost a race with another sign-up
                await self._check_unique(body, None)
            raise
        response = dict(result.response)
        if verify and self.emails:
            self.emails.send_verification(object_id)
        if self.emails is not None and created_with is None and self.emails.withholds_signup_session():
            self.emails.check_signup()  # 205 when sign-ups must wait for the verification
            session = False  # the user logs in once the email is verified
        if session:
            created = created_with or {"action": "signup", "authProvider": "password"}
            response["sessionToken"] = (await self.sessions.create(object_id, created, auth.installation_id)).token
        return response, object_id

    # --- log-in and sessions --------------------------------------------------------------------

    async def log_in(self, payload: dict[str, Any], auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        """As Parse Server: the credentials, then cloud code's before_login (which may refuse), then
        the session, then after_login."""
        user = await self._check_credentials(payload, auth, check_age=True)
        if self.auth_data is not None:
            # A user with MFA must give it; extra providers are validated, then before_login runs,
            # then they are stored.
            checked = user

            async def before_store() -> None:
                await self.before_login(checked, auth, info)
            user = await self.auth_data.after_password_login(user, payload.get("authData"), auth, info, before_store)
        else:
            await self.before_login(user, auth, info)
        session = await self.sessions.create(user["objectId"], {"action": "login", "authProvider": "password"},
                                             auth.installation_id)
        user["sessionToken"] = session.token  # after_login sees it, as in Parse Server
        await self.after_login(user, auth, info)
        response = self._as_self(user, auth)
        response["sessionToken"] = session.token
        return response

    def _as_self(self, user: dict[str, Any], auth: Auth) -> dict[str, Any]:
        """The user as it sees itself (the master key sees everything)."""
        answer = dict(user)
        extra = answer.pop("authDataResponse", None)
        answer = self.view(answer, auth if auth.is_master else as_user(user["objectId"], auth.installation_id))
        if extra is not None:
            answer["authDataResponse"] = extra
        return answer

    async def verify_password(self, payload: dict[str, Any], auth: Auth) -> dict[str, Any]:
        return self._as_self(await self._check_credentials(payload, auth), auth)

    async def log_in_as(self, user_id: Any, auth: Auth) -> dict[str, Any]:
        if not auth.is_master or auth.is_maintenance:
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)  # "master key is required"
        if auth.is_read_only:
            # Sanitized, as Parse Server 9: "read-only masterKey isn't allowed to login as another user."
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        if not user_id:
            raise ParseError(Code.INVALID_VALUE, "userId must not be empty, null, or undefined")
        if not isinstance(user_id, str):
            raise ParseError(Code.OBJECT_NOT_FOUND, "user not found")
        user = await self._user_by_id(user_id)
        if user is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "user not found")
        session = await self.sessions.create(user_id, {"action": "login", "authProvider": "masterkey"},
                                             auth.installation_id)
        user["sessionToken"] = session.token
        return user

    async def log_out(self, token: str | None, auth: Auth | None = None,
                      info: CallInfo | None = None) -> dict[str, Any] | None:
        """Revoke the session of ``token`` (nothing when there is none); the revoked session.
        Cloud code's after_logout then gets that session, as in Parse Server."""
        if not token:
            return None
        record = await self.sessions.revoke(token)
        if record is not None and self.triggers.has("afterLogout", SESSION):
            await self.triggers.after_logout(record, auth or Auth(), info)
        return record

    # --- cloud code's login triggers ------------------------------------------------------------

    async def before_login(self, user: dict[str, Any], auth: Auth, info: CallInfo | None) -> None:
        """Cloud code's before_login with the user who proved who they are; an error it raises
        refuses the log-in."""
        if self.triggers.has("beforeLogin", USER):
            await self.triggers.login_trigger("beforeLogin", user, auth, info)

    async def after_login(self, user: dict[str, Any], auth: Auth, info: CallInfo | None) -> None:
        if self.triggers.has("afterLogin", USER):
            await self.triggers.login_trigger("afterLogin", user, auth, info)

    async def _policy_columns(self, password: str | None, username: Any, user_id: str | None) -> dict[str, Any]:
        """A new password checked against the password policy (its history and age columns to
        store), as Parse Server does it: before the uniqueness of names. With a before_save trigger
        on _User the check waits for the password the trigger leaves (see _password_taker)."""
        if password is None or self.policy is None or self._trigger_sees_password():
            return {}
        return await self.policy.check_new_password(password, username=username, user_id=user_id)

    def _trigger_sees_password(self) -> bool:
        return self.triggers.has("beforeSave", USER)

    def _password_taker(self, hidden: dict[str, Any], user_id: str | None) -> Any:
        """The Writer's ``take_secrets``: the password the trigger left is checked against the
        password policy and hashed into ``hidden``."""
        async def take(body: dict[str, Any]) -> dict[str, Any]:
            if "password" not in body:
                return body
            password = body["password"]
            rest = {k: v for k, v in body.items() if k != "password"}
            if password is None or (isinstance(password, dict) and password.get("__op") == "Delete"):
                return rest  # the trigger removed it: no new password
            if not isinstance(password, str):
                raise ParseError(Code.PASSWORD_MISSING, "password is required")
            if self.policy is not None:
                hidden.update(await self.policy.check_new_password(password, username=body.get("username"),
                                                                   user_id=user_id))
            hidden[_HASH] = await self.hasher.hash(password)
            return rest
        return take

    def _owner_acl_taker(self, take_password: TakeSecrets | None, object_id: str, *, creating: bool,
                         auth: Auth) -> TakeSecrets:
        """The Writer's ``take_secrets`` for user writes: after the before_save trigger (and the
        password's ``take_password``), the ACL keeps the user able to read and write themself, as
        Parse Server's RestWrite does: on sign-up always (a missing ACL gets the default, public
        read unless users are private), on an update that sets an ACL unless the master key does."""
        async def take(body: dict[str, Any]) -> dict[str, Any]:
            if take_password is not None:
                body = await take_password(body)
            acl = body.get("ACL")
            if creating and acl is None:
                acl = {} if self.options.enforce_private_users else {"*": {"read": True}}
            elif not isinstance(acl, dict) or "__op" in acl or (not creating and auth.is_master):
                return body
            return {**body, "ACL": {**acl, object_id: {"read": True, "write": True}}}
        return take

    async def me(self, token: str | None) -> dict[str, Any]:
        session = await self.sessions.resolve(token) if token else None
        user = await self._user_by_id(session.user_id) if session else None
        if session is None or user is None:
            raise ParseError(Code.INVALID_SESSION_TOKEN, DENIED)  # "Invalid session token"
        user = self.view(user, as_user(session.user_id))
        user["sessionToken"] = token
        return user

    async def upgrade_session(self, auth: Auth) -> dict[str, Any]:
        """Every Bastion session is revocable already; the upgrade hands out a fresh one, as Parse does."""
        if not auth.user_id:
            raise ParseError(Code.OBJECT_NOT_FOUND, "invalid session")
        session = await self.sessions.create(auth.user_id, {"action": "upgrade"}, auth.installation_id)
        return session_json(session, {"action": "upgrade"})

    async def _check_credentials(self, payload: dict[str, Any], auth: Auth, check_age: bool = False) -> dict[str, Any]:
        username, email, password = payload.get("username"), payload.get("email"), payload.get("password")
        if not username and not email:
            raise ParseError(Code.USERNAME_MISSING, "username/email is required.")
        if not password:
            raise ParseError(Code.PASSWORD_MISSING, "password is required.")
        if (not isinstance(password, str) or (email and not isinstance(email, str))
                or (username and not isinstance(username, str))):
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID_LOGIN)
        record = await self._find_login(username or None, email or None)
        ok, rehash = await self.hasher.verify(password, record.get(_HASH) if record else None)
        if record is not None and self.policy is not None:
            await self.policy.login_attempt(record, ok)  # a locked account is refused either way
        if record is None or not ok:
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID_LOGIN)
        if not auth.is_master and record.get("_rperm") == [] and record.get("_wperm") == []:
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID_LOGIN)  # an empty ACL locks the user out
        schema = self._schema()
        if rehash:
            await self.storage.update(schema, record["objectId"], [Set(_HASH, await self.hasher.hash(password))],
                                      MASTER)
        hidden = HIDDEN_COLUMNS[USER]
        user = self.reader.encode(schema, {k: v for k, v in record.items() if k not in hidden})
        if self.emails is not None:
            self.emails.check_login(user, auth, payload)  # 205 while the email is unverified
        if check_age and self.policy is not None:
            await self.policy.check_password_age(record)  # 101 once the password is too old
        return strip_secrets(user)

    async def _find_login(self, username: str | None, email: str | None) -> dict[str, Any] | None:
        schema = self.schemas.get(USER)
        if schema is None:
            return None
        if username and email:
            node: ir.Node = ir.conjoin([ir.Compare(_USERNAME, ir.EQ, username), ir.Compare(_EMAIL, ir.EQ, email)])
        elif email:
            node = ir.Compare(_EMAIL, ir.EQ, email)
        else:
            node = ir.disjoin([ir.Compare(_USERNAME, ir.EQ, username), ir.Compare(_EMAIL, ir.EQ, username)])
        columns = (*self._columns(schema), _HASH)
        if self.policy is not None:
            columns += self.policy.login_columns  # read here, stripped before anything answers
        records = await self.storage.find(schema, FindQuery(node, limit=2, columns=columns), MASTER)
        if len(records) > 1:  # one user's email is another's username: the username wins, as in Parse
            records = [r for r in records if r.get("username") == username] or records[:1]
        return records[0] if records else None

    # --- writes ---------------------------------------------------------------------------------

    async def update(self, object_id: str, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ParseError(Code.INVALID_JSON, "This object must be a JSON object.")
        if not auth.is_master and auth.user_id != object_id:
            # "Cannot modify user X." without a session, "Insufficient auth." with another's.
            raise ParseError(Code.SESSION_MISSING, DENIED)
        self._check_client_fields(body, auth)
        if "username" in body and not (isinstance(body["username"], str) and body["username"]):
            raise ParseError(Code.USERNAME_MISSING, "bad or missing username")
        password = body.get("password")
        if "password" in body and not isinstance(password, str):
            raise ParseError(Code.PASSWORD_MISSING, "password is required")
        policy_columns = await self._policy_columns(password if "password" in body else None,
                                                    body.get("username"), object_id)
        await self._check_unique(body, object_id)
        auth_data_response = None
        if self.auth_data is not None:
            body, auth_data_response = await self.auth_data.before_update(object_id, body, auth, info)
        data = {k: v for k, v in body.items() if k != "password"}
        hidden: dict[str, Any] = dict(policy_columns)
        take_password = None
        if self._trigger_sees_password():
            # The before_save trigger sees the new password; it is hashed once the trigger is done.
            if "password" in body:
                data["password"] = password
            take_password = self._password_taker(hidden, object_id)
        elif "password" in body:
            assert isinstance(password, str)  # checked above, before the auth data step
            hidden[_HASH] = await self.hasher.hash(password)
        verify = self.emails.prepare_write(body, data, hidden, creating=False) if self.emails else False
        result = await self.writer.update(
            USER, object_id, data, auth, trusted=True, hidden=hidden, info=info,
            take_secrets=self._owner_acl_taker(take_password, object_id, creating=False, auth=auth))
        response = dict(result.response)
        if verify and self.emails:
            self.emails.send_verification(object_id)
        if _HASH in hidden:
            if self.options.revoke_sessions_on_password_change:
                await self.sessions.revoke_for_user(object_id)
            if not auth.is_master:
                # The user who changed their password gets a new session in the answer (the SDK
                # takes it over), as Parse Server does.
                session = await self.sessions.create(object_id, None, auth.installation_id)
                response["sessionToken"] = session.token
        if auth_data_response is not None:
            response["authDataResponse"] = auth_data_response
        return response

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None:
        if not auth.is_master and not auth.user_id:
            raise ParseError(Code.SESSION_MISSING, "Insufficient auth to delete user")
        if not auth.is_master and auth.user_id != object_id:
            raise ParseError(Code.SESSION_MISSING, DENIED)  # "Insufficient auth."
        await self.writer.delete(USER, object_id, auth, trusted=True, info=info)
        await self.sessions.revoke_for_user(object_id)

    def _check_client_fields(self, body: dict[str, Any], auth: Auth) -> None:
        if not auth.is_master and "emailVerified" in body:
            # "Clients aren't allowed to manually update email verification."
            raise ParseError(Code.OPERATION_FORBIDDEN, DENIED)
        email = body.get("email")
        if isinstance(email, str) and not EMAIL.match(email):
            raise ParseError(Code.INVALID_EMAIL_ADDRESS, "Email address format is invalid.")
        for key in body:
            if key.startswith("_") and key not in ("_method",):
                raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {key[:120]}.")
        if "sessionToken" in body:
            raise ParseError(Code.INVALID_KEY_NAME, "Invalid field name: sessionToken.")

    async def _check_unique(self, body: dict[str, Any], object_id: str | None) -> None:
        """Usernames and emails are unique compared case-insensitively (202, 203), as in Parse."""
        schema = self.schemas.get(USER)
        if schema is None:
            return
        for key, field, code, message in (
                ("username", _USERNAME, Code.USERNAME_TAKEN, "Account already exists for this username."),
                ("email", _EMAIL, Code.EMAIL_TAKEN, "Account already exists for this email address.")):
            value = body.get(key)
            if not isinstance(value, str) or not value:
                continue
            node: ir.Node = ir.Regex(field, "^" + escape_regex_literal(value) + "$", ignore_case=True)
            if object_id:
                node = ir.conjoin([node, ir.Compare(ir.Field("objectId", "String"), ir.NE, object_id)])
            found = await self.storage.find(schema, FindQuery(node, columns=("objectId", key)), MASTER)
            if any(isinstance(r.get(key), str) and r[key].lower() == value.lower() for r in found):
                raise ParseError(code, message)

    async def with_email(self, email: str, provider: str | None = None) -> list[dict[str, Any]]:
        """Users (at most 10) whose email is ``email``, compared case-insensitively (or, with
        ``provider``, linked to it with that id), with their ``emailVerified`` and ``authData``;
        users locked out by an empty ACL left out."""
        schema = self.schemas.get(USER)
        if schema is None or not email:
            return []
        node: ir.Node = ir.Regex(_EMAIL, "^" + escape_regex_literal(email) + "$", ignore_case=True)
        if provider is not None:
            node = ir.disjoin([node, ir.Compare(ir.Field("authData", "Object", (provider, "id")), ir.EQ, email)])
        columns = tuple(c for c in ("objectId", "email", "emailVerified", "authData", "_rperm", "_wperm")
                        if c in schema.fields or c.startswith("_") or c == "objectId")
        found = await self.storage.find(schema, FindQuery(node, limit=10, columns=columns), MASTER)
        return [r for r in found if not (r.get("_rperm") == [] and r.get("_wperm") == [])]

    # --- helpers --------------------------------------------------------------------------------

    def _schema(self) -> ClassSchema:
        schema = self.schemas.get(USER)
        if schema is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID_LOGIN)
        return schema

    @staticmethod
    def _columns(schema: ClassSchema) -> tuple[str, ...]:
        return tuple(name for name, ft in schema.fields.items() if ft.type not in ("Relation", "ACL")
                     and name != "password") + ("_rperm", "_wperm")

    async def _user_by_id(self, user_id: str) -> dict[str, Any] | None:
        schema = self.schemas.get(USER)
        if schema is None:
            return None
        node = ir.Compare(ir.Field("objectId", "String"), ir.EQ, user_id)
        records = await self.storage.find(schema, FindQuery(node, limit=1, columns=self._columns(schema)), MASTER)
        if not records:
            return None
        return strip_secrets(self.reader.encode(schema, records[0]))

    async def _ensure_class(self) -> None:
        if self.schemas.get(USER) is None:
            await self.schemas.ensure_fields(USER, {}, may_create_class=True)


def strip_secrets(user: dict[str, Any]) -> dict[str, Any]:
    """A ``_User`` object without what nobody is shown (the whole ``authData`` stays, for the
    server's own use: answers go through ``UserView``)."""
    user.pop("password", None)
    user.pop("sessionToken", None)
    return clean_auth_data(user)


def session_json(session: Session, created_with: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sessionToken": session.token,
        "user": {"__type": "Pointer", "className": USER, "objectId": session.user_id},
        "createdWith": created_with,
        "restricted": False,
    }
    if session.expires_at is not None:
        out["expiresAt"] = encode_date(session.expires_at)
    if session.installation_id:
        out["installationId"] = session.installation_id
    return out
