"""Email verification and password reset, as Parse Server 9's UserController and UsersRouter do them.

Tokens live in ``_User``'s hidden columns (``_email_verify_token``, ``_perishable_token`` and their
``*_expires_at``), shared with Parse Server's layout. A token is 25 random letters and digits, used
once: consuming it is one UPDATE guarded by the token itself, so two clicks cannot both win.
Mails go out in the background (Parse Server does not wait for them either); a failed delivery is
logged, never shown to the caller, so answers do not tell which emails belong to accounts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bastion.core.auth import Auth
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import USER
from bastion.core.types import now_ms
from bastion.domain.passwords import PasswordHasher
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.sessions import Sessions
from bastion.errors import Code, ParseError
from bastion.ports.mail import Mailer, MailError, MailMessage
from bastion.ports.storage import MASTER, FindQuery, Set, StorageAdapter, UpdateOp

if TYPE_CHECKING:
    from bastion.domain.account_policy import AccountPolicy

log = logging.getLogger("bastion.mail")

VERIFY_TOKEN = "_email_verify_token"
VERIFY_EXPIRES = "_email_verify_token_expires_at"
RESET_TOKEN = "_perishable_token"
RESET_EXPIRES = "_perishable_token_expires_at"
_HASH = "_hashed_password"
_ALPHABET = string.ascii_letters + string.digits
_EMAIL = ir.Field("email", "String")
_USERNAME = ir.Field("username", "String")
_OBJECT_ID = ir.Field("objectId", "String")
_VERIFIED = ir.Field("emailVerified", "Boolean")

NOT_VERIFIED = "User email is not verified."
INVALID_RESET = "Failed to reset password: username / email / token is invalid"
EXPIRED_RESET = "The password reset link has expired"


@dataclass(slots=True)
class AccountEmailOptions:
    """Parse Server 9's options of the same names (durations in seconds, None: never expires)."""

    app_name: str = "Bastion"
    app_id: str = ""
    public_url: str = ""
    pages_endpoint: str = "apps"
    verify_user_emails: bool = False
    prevent_login_with_unverified_email: bool = False
    prevent_signup_with_unverified_email: bool = False
    email_verify_token_validity: int | None = None
    email_verify_token_reuse_if_valid: bool = False
    email_verify_success_on_invalid_email: bool = True
    reset_token_validity: int | None = None
    reset_token_reuse_if_valid: bool = False
    reset_password_success_on_invalid_email: bool = True
    revoke_session_on_password_reset: bool = True

    def __post_init__(self) -> None:
        """ValueError for the values Parse Server refuses at start-up too."""
        for name in ("email_verify_token_validity", "reset_token_validity"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name.replace('_', ' ')} must be a number of seconds greater than 0")
        if self.email_verify_token_reuse_if_valid and not self.email_verify_token_validity:
            raise ValueError("reusing valid email verification tokens needs a token validity")
        if self.reset_token_reuse_if_valid and not self.reset_token_validity:
            raise ValueError("reusing valid password reset tokens needs a token validity")

    @property
    def verify_email_url(self) -> str:
        return f"{self.public_url}/{self.pages_endpoint}/{quote(self.app_id, safe='')}/verify_email"

    @property
    def reset_password_url(self) -> str:
        return f"{self.public_url}/{self.pages_endpoint}/{quote(self.app_id, safe='')}/request_password_reset"


def new_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(25))


def _expired(value: Any, now: datetime) -> bool:
    return isinstance(value, datetime) and value < now


class AccountEmails:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, sessions: Sessions, mailer: Mailer,
                 options: AccountEmailOptions, hasher: PasswordHasher | None = None,
                 policy: AccountPolicy | None = None) -> None:
        self.storage = storage
        self.schemas = schemas
        self.sessions = sessions
        self.mailer = mailer
        self.options = options
        self.hasher = hasher or PasswordHasher()
        # The password policy and lockout (account_policy.py), applied to reset passwords.
        self.policy = policy
        self._sending: set[asyncio.Task[None]] = set()

    # --- hooks for user writes and log-ins (called by domain/users.py) ---------------------------

    def prepare_write(self, body: dict[str, Any], data: dict[str, Any], hidden: dict[str, Any],
                      *, creating: bool) -> bool:
        """Adds the verification token (and ``emailVerified: false``) when the write sets an email,
        and drops a pending reset token when the email or password changes. True: send the mail
        once the write succeeded (``send_verification``)."""
        if not creating and ("password" in body or "email" in body):
            hidden[RESET_TOKEN] = None
            hidden[RESET_EXPIRES] = None
        email = body.get("email")
        if not isinstance(email, str) or not email or not self.options.verify_user_emails:
            return False
        auth_data = data.get("authData")
        if isinstance(auth_data, dict) and auth_data and set(auth_data) != {"anonymous"}:
            return False  # as Parse Server: users of a third-party provider are not asked
        self._new_verify_token(hidden)
        data["emailVerified"] = False
        return True

    def withholds_signup_session(self) -> bool:
        """A sign-up answers without a session token while the email is unverified."""
        return self.options.verify_user_emails and self.options.prevent_login_with_unverified_email

    def check_signup(self) -> None:
        """After the user was created: 205 when sign-ups must wait for the verification."""
        if self.withholds_signup_session() and self.options.prevent_signup_with_unverified_email:
            raise ParseError(Code.EMAIL_NOT_FOUND, NOT_VERIFIED)

    def check_login(self, user: dict[str, Any], auth: Auth, payload: dict[str, Any]) -> None:
        """205 for a user whose email is unverified, when log-ins must wait for the verification."""
        if auth.is_master and payload.get("ignoreEmailVerification"):
            return
        if self.withholds_signup_session() and not user.get("emailVerified"):
            raise ParseError(Code.EMAIL_NOT_FOUND, NOT_VERIFIED)

    def send_verification(self, user_id: str) -> None:
        self._background(self._send_verification(user_id))

    # --- verification ----------------------------------------------------------------------------

    async def verify_email(self, token: str) -> bool:
        """Mark the email of the token's user verified; False for an unknown, used or expired token."""
        schema = self.schemas.get(USER)
        if not self.options.verify_user_emails or schema is None or not token:
            return False
        token_node = ir.Compare(ir.Field(VERIFY_TOKEN, "String"), ir.EQ, token)
        record = await self._find_one(schema, token_node)
        if record is None:
            return False
        guard: ir.Node = token_node
        if self.options.email_verify_token_validity:
            # As Parse Server: with expiring tokens, only an unverified user with a live token.
            expires = record.get(VERIFY_EXPIRES)
            if record.get("emailVerified") is not False or not isinstance(expires, datetime) or expires <= now_ms():
                return False
            guard = ir.conjoin([token_node, ir.Compare(_VERIFIED, ir.EQ, False)])
        changes: list[UpdateOp] = [Set("emailVerified", True), Set(VERIFY_TOKEN, None), Set("updatedAt", now_ms())]
        if self.options.email_verify_token_validity:
            changes.append(Set(VERIFY_EXPIRES, None))
        return await self.storage.update(schema, record["objectId"], changes, MASTER, where=guard) is not None

    async def request_verification_email(self, body: dict[str, Any]) -> None:
        """``POST /verificationEmailRequest``: a new link for an unverified email."""
        email = body.get("email")
        if not email:
            raise ParseError(Code.EMAIL_MISSING, "you must provide an email")
        if not isinstance(email, str):
            raise ParseError(Code.INVALID_EMAIL_ADDRESS, "you must provide a valid email string")
        quiet = self.options.email_verify_success_on_invalid_email
        schema = self.schemas.get(USER)
        record = await self._find_one(schema, ir.Compare(_EMAIL, ir.EQ, email)) if schema else None
        if record is None:
            if quiet:
                return
            raise ParseError(Code.EMAIL_NOT_FOUND, f"No user found with email {email}")
        if record.get("emailVerified"):
            if quiet:
                return
            raise ParseError(Code.OTHER_CAUSE, f"Email {email} is already verified.")
        await self._resend(schema, record)  # type: ignore[arg-type]

    async def resend_from_page(self, username: str | None, token: str | None) -> bool:
        """The page's resend form: by username and/or an old token; False when nothing was sent."""
        schema = self.schemas.get(USER)
        if schema is None:
            return False
        nodes: list[ir.Node] = []
        if username:
            nodes.append(ir.Compare(_USERNAME, ir.EQ, username))
        if token:
            nodes.append(ir.Compare(ir.Field(VERIFY_TOKEN, "String"), ir.EQ, token))
        records = await self.storage.find(schema, FindQuery(ir.conjoin(nodes), limit=2,
                                                            columns=_columns(schema)), MASTER)
        if len(records) != 1 or records[0].get("emailVerified"):
            return False
        return await self._resend(schema, records[0])

    async def _resend(self, schema: ClassSchema, record: dict[str, Any]) -> bool:
        if not self.options.verify_user_emails:
            return False  # Parse Server answers {} and sends nothing
        expires = record.get(VERIFY_EXPIRES)
        reuse = (self.options.email_verify_token_reuse_if_valid and self.options.email_verify_token_validity
                 and record.get(VERIFY_TOKEN) and isinstance(expires, datetime) and now_ms() < expires)
        if not reuse:
            hidden: dict[str, Any] = {}
            self._new_verify_token(hidden)
            changes: list[UpdateOp] = [Set(column, value) for column, value in hidden.items()]
            changes.append(Set("emailVerified", False))
            await self.storage.update(schema, record["objectId"], changes, MASTER)
        self.send_verification(record["objectId"])
        return True

    def _new_verify_token(self, hidden: dict[str, Any]) -> None:
        hidden[VERIFY_TOKEN] = new_token()
        if self.options.email_verify_token_validity:
            hidden[VERIFY_EXPIRES] = now_ms() + timedelta(seconds=self.options.email_verify_token_validity)

    async def _send_verification(self, user_id: str) -> None:
        schema = self.schemas.get(USER)
        record = await self._find_one(schema, ir.Compare(_OBJECT_ID, ir.EQ, user_id)) if schema else None
        if record is None or not record.get(VERIFY_TOKEN) or not isinstance(record.get("email"), str):
            return
        link = f"{self.options.verify_email_url}?token={quote(record[VERIFY_TOKEN], safe='')}"
        app = self.options.app_name
        text = (f"Hi,\n\nYou are being asked to confirm the e-mail address {record['email']} with {app}\n\n"
                f"Click here to confirm it:\n{link}")
        await self.mailer.send(MailMessage(to=record["email"], subject=f"Please verify your e-mail for {app}",
                                           text=text))

    # --- password reset --------------------------------------------------------------------------

    async def request_password_reset(self, body: dict[str, Any]) -> None:
        """``POST /requestPasswordReset`` with ``email`` (or ``token``: a new link for an expired one)."""
        email, token = body.get("email"), body.get("token")
        if not email and not token:
            raise ParseError(Code.EMAIL_MISSING, "you must provide an email")
        if token and not isinstance(token, str):
            raise ParseError(Code.INVALID_VALUE, "token must be a string")
        schema = self.schemas.get(USER)
        if token:
            record = await self._find_one(schema, ir.Compare(ir.Field(RESET_TOKEN, "String"), ir.EQ, token)) \
                if schema else None
            # Only an expired token may ask again: a live one is a link that still works.
            if record is not None and _expired(record.get(RESET_EXPIRES), now_ms()) and record.get("email"):
                email = record["email"]
        if not isinstance(email, str):
            raise ParseError(Code.INVALID_EMAIL_ADDRESS, "you must provide a valid email string")
        record = await self._find_one(schema, _reset_target(email)) if schema else None
        if record is None:
            if self.options.reset_password_success_on_invalid_email:
                return  # no account enumeration: unknown emails answer as known ones do
            raise ParseError(Code.OBJECT_NOT_FOUND, "A user with that email does not exist.")
        now = now_ms()
        reuse = (self.options.reset_token_reuse_if_valid and self.options.reset_token_validity
                 and record.get(RESET_TOKEN) and isinstance(record.get(RESET_EXPIRES), datetime)
                 and record[RESET_EXPIRES] > now)
        reset_token = record.get(RESET_TOKEN) if reuse else new_token()
        if not reuse:
            changes = [Set(RESET_TOKEN, reset_token)]
            if self.options.reset_token_validity:
                changes.append(Set(RESET_EXPIRES, now + timedelta(seconds=self.options.reset_token_validity)))
            await self.storage.update(schema, record["objectId"], changes, MASTER)  # type: ignore[arg-type]
        self._background(self._send_reset(record, str(reset_token)))

    async def _send_reset(self, record: dict[str, Any], token: str) -> None:
        link = f"{self.options.reset_password_url}?token={quote(token, safe='')}"
        app = self.options.app_name
        username = record.get("username")
        named = f" (your username is '{username}')" if username else ""
        text = f"Hi,\n\nYou requested to reset your password for {app}{named}.\n\nClick here to reset it:\n{link}"
        to = record.get("email") or username
        await self.mailer.send(MailMessage(to=str(to), subject=f"Password Reset for {app}", text=text))

    async def check_reset_token(self, token: str) -> dict[str, Any]:
        """The user a reset token belongs to; raises ValueError with Parse's message otherwise."""
        schema = self.schemas.get(USER)
        record = await self._find_one(schema, ir.Compare(ir.Field(RESET_TOKEN, "String"), ir.EQ, token)) \
            if schema and token else None
        if record is None:
            raise ValueError(INVALID_RESET)
        if self.options.reset_token_validity and _expired(record.get(RESET_EXPIRES), now_ms()):
            raise ValueError(EXPIRED_RESET)
        return record

    async def reset_password(self, token: str, password: str) -> None:
        """Set the password of the token's user and consume the token (ValueError: Parse's message)."""
        record = await self.check_reset_token(token)
        schema = self.schemas.get(USER)
        assert schema is not None
        policy_columns: dict[str, Any] = {}
        if self.policy is not None:
            try:  # as Parse Server: the policy's refusal is shown as its message alone
                policy_columns = await self.policy.check_new_password(password, user_id=record["objectId"])
            except ParseError as error:
                raise ValueError(error.message) from None
        changes: list[UpdateOp] = [Set(_HASH, await self.hasher.hash(password)), Set(RESET_TOKEN, None), Set(RESET_EXPIRES, None),
                   Set("updatedAt", now_ms())]
        changes += [Set(column, value) for column, value in policy_columns.items()]
        guard = ir.Compare(ir.Field(RESET_TOKEN, "String"), ir.EQ, token)
        if await self.storage.update(schema, record["objectId"], changes, MASTER, where=guard) is None:
            raise ValueError(INVALID_RESET)  # another request used the token first
        if self.policy is not None:
            await self.policy.unlock_after_reset(record["objectId"])
        if self.options.revoke_session_on_password_reset:
            await self.sessions.revoke_for_user(record["objectId"])

    # --- helpers ---------------------------------------------------------------------------------

    async def _find_one(self, schema: ClassSchema | None, node: ir.Node) -> dict[str, Any] | None:
        if schema is None:
            return None
        records = await self.storage.find(schema, FindQuery(node, limit=1, columns=_columns(schema)), MASTER)
        return records[0] if records else None

    def _background(self, sending: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(sending))
        self._sending.add(task)  # a reference, so the task is not collected before it ran
        task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _deliver(sending: Any) -> None:
        try:
            await sending
        except MailError as error:
            log.warning("mail not sent: %s", error)
        except Exception:  # noqa: BLE001 - a background task: log, never crash the loop
            log.exception("mail not sent")

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (a while) for mails still being sent, at shut-down."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)


def _reset_target(email: str) -> ir.Node:
    """Parse Server's lookup: the user with this email, or with it as username and no email."""
    return ir.disjoin([ir.Compare(_EMAIL, ir.EQ, email),
                       ir.conjoin([ir.Compare(_USERNAME, ir.EQ, email), ir.negate(ir.Exists(_EMAIL))])])


def _columns(schema: ClassSchema) -> tuple[str, ...]:
    wanted = ("objectId", "username", "email", "emailVerified")
    return tuple(name for name in wanted if name == "objectId" or name in schema.fields) + (
        VERIFY_TOKEN, VERIFY_EXPIRES, RESET_TOKEN, RESET_EXPIRES)
