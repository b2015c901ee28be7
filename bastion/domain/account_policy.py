"""Account lockout and password policy, as Parse Server 9's AccountLockout and RestWrite do them.

State lives in ``_User``'s hidden columns, shared with Parse Server's layout: ``_failed_login_count``
and ``_account_lockout_expires_at`` (lockout), ``_password_changed_at`` (maxPasswordAge) and
``_password_history`` (earlier password hashes, oldest first). No read selects them, so clients
never see them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from bastion.core.js import js_string
from bastion.core.query import ir
from bastion.core.system_classes import USER
from bastion.core.types import now_ms
from bastion.domain.passwords import PasswordHasher
from bastion.domain.schema_registry import SchemaRegistry
from bastion.errors import Code, ParseError
from bastion.ports.storage import MASTER, FindQuery, Set, StorageAdapter

FAILED_COUNT = "_failed_login_count"
LOCKOUT_EXPIRES = "_account_lockout_expires_at"
CHANGED_AT = "_password_changed_at"
HISTORY = "_password_history"
_HASH = "_hashed_password"
_OBJECT_ID = ir.Field("objectId", "String")

POLICY_ERROR = "Password does not meet the Password Policy requirements."
CONTAINS_USERNAME = "Password cannot contain your username."
PASSWORD_EXPIRED = "Your password has expired. Please reset your password."


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class LockoutOptions:
    """Parse Server's ``accountLockout``: ``duration`` minutes after ``threshold`` failed log-ins."""

    duration: float
    threshold: int
    unlock_on_password_reset: bool = False

    @classmethod
    def from_json(cls, value: Any) -> LockoutOptions | None:
        """The option as Parse Server's Config.validateAccountLockoutPolicy checks it (ValueError)."""
        if not value:
            return None
        if not isinstance(value, dict):
            raise ValueError("accountLockout must be a JSON object")
        duration, threshold = value.get("duration"), value.get("threshold")
        if not _is_number(duration) or not 0 < duration <= 99999:
            raise ValueError("Account lockout duration should be greater than 0 and less than 100000")
        if not (isinstance(threshold, int) or (isinstance(threshold, float) and threshold.is_integer())) \
                or isinstance(threshold, bool) or not 1 <= threshold <= 999:
            raise ValueError("Account lockout threshold should be an integer greater than 0 and less than 1000")
        unlock = value.get("unlockOnPasswordReset", False)
        if not isinstance(unlock, bool):
            raise ValueError("Parse Server option accountLockout.unlockOnPasswordReset must be a boolean.")
        return cls(duration=duration, threshold=int(threshold), unlock_on_password_reset=unlock)

    @property
    def locked_message(self) -> str:
        return ("Your account is locked due to multiple failed login attempts. Please try again after "
                f"{js_string(self.duration)} minute(s)")


@dataclass(frozen=True, slots=True)
class PasswordPolicyOptions:
    """Parse Server's ``passwordPolicy`` (validatorCallback, a JavaScript function, has no equivalent)."""

    validator_pattern: re.Pattern[str] | None = None
    validation_error: str | None = None
    do_not_allow_username: bool = False
    max_password_age: float | None = None  # days
    max_password_history: int = 0
    reset_token_validity_duration: int | None = None  # seconds
    reset_token_reuse_if_valid: bool = False
    reset_password_success_on_invalid_email: bool | None = None

    @classmethod
    def from_json(cls, value: Any) -> PasswordPolicyOptions | None:
        """The option as Parse Server's Config.validatePasswordPolicy checks it (ValueError)."""
        if not value:
            return None
        if not isinstance(value, dict):
            raise ValueError("passwordPolicy must be a JSON object")
        age = value.get("maxPasswordAge")
        if age is not None and (not _is_number(age) or age < 0):
            raise ValueError("passwordPolicy.maxPasswordAge must be a positive number")
        validity = value.get("resetTokenValidityDuration")
        if validity is not None and (not _is_number(validity) or validity <= 0):
            raise ValueError("passwordPolicy.resetTokenValidityDuration must be a positive number")
        pattern = None
        if value.get("validatorPattern"):
            if not isinstance(value["validatorPattern"], str):
                raise ValueError("passwordPolicy.validatorPattern must be a regex string or RegExp object.")
            try:
                pattern = re.compile(value["validatorPattern"])
            except re.error as error:
                raise ValueError(f"passwordPolicy.validatorPattern is not a valid regular expression: {error}") \
                    from None
        if value.get("validatorCallback"):
            raise ValueError("passwordPolicy.validatorCallback must be a function.")  # none in JSON
        not_username = value.get("doNotAllowUsername", False)
        if not_username and not isinstance(not_username, bool):
            raise ValueError("passwordPolicy.doNotAllowUsername must be a boolean value.")
        history = value.get("maxPasswordHistory")
        if history and (not isinstance(history, int) or isinstance(history, bool) or not 0 < history <= 20):
            raise ValueError("passwordPolicy.maxPasswordHistory must be an integer ranging 0 - 20")
        reuse = value.get("resetTokenReuseIfValid", False)
        if reuse and not isinstance(reuse, bool):
            raise ValueError("resetTokenReuseIfValid must be a boolean value")
        if reuse and not validity:
            raise ValueError("You cannot use resetTokenReuseIfValid without resetTokenValidityDuration")
        quiet = value.get("resetPasswordSuccessOnInvalidEmail")
        if quiet is not None and not isinstance(quiet, bool):
            raise ValueError("resetPasswordSuccessOnInvalidEmail must be a boolean value")
        error_text = value.get("validationError")
        if error_text is not None and not isinstance(error_text, str):
            raise ValueError("passwordPolicy.validationError must be a string")
        return cls(validator_pattern=pattern, validation_error=error_text or None,
                   do_not_allow_username=bool(not_username), max_password_age=age or None,
                   max_password_history=history or 0,
                   reset_token_validity_duration=int(validity) if validity else None,
                   reset_token_reuse_if_valid=bool(reuse), reset_password_success_on_invalid_email=quiet)


class AccountPolicy:
    """The hooks users.py and account_emails.py call on log-in, sign-up and password changes."""

    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, hasher: PasswordHasher,
                 lockout: LockoutOptions | None = None, passwords: PasswordPolicyOptions | None = None) -> None:
        self.storage = storage
        self.schemas = schemas
        self.hasher = hasher
        self.lockout = lockout
        self.passwords = passwords

    @property
    def login_columns(self) -> tuple[str, ...]:
        """Hidden columns the log-in lookup must read (and strip before answering)."""
        return (FAILED_COUNT, LOCKOUT_EXPIRES, CHANGED_AT)

    # --- lockout ----------------------------------------------------------------------------------

    async def login_attempt(self, record: dict[str, Any], ok: bool) -> None:
        """As AccountLockout.handleLoginAttempt: a locked account is refused whatever the password;
        a success clears the count; a failure counts, and locks the account once the count reaches
        the threshold (answered as locked only past it, as Parse Server does)."""
        lockout = self.lockout
        schema = self.schemas.get(USER)
        if lockout is None or schema is None:
            return
        now = now_ms()
        count, expires = record.get(FAILED_COUNT), record.get(LOCKOUT_EXPIRES)
        if isinstance(count, (int, float)) and count >= lockout.threshold and isinstance(expires, datetime) \
                and expires > now:
            raise ParseError(Code.OBJECT_NOT_FOUND, lockout.locked_message)
        user_id = record["objectId"]
        if ok:
            if count:
                await self.storage.update(schema, user_id, [Set(FAILED_COUNT, 0)], MASTER)
            return
        count = await self._count_failure(user_id, count)
        if count >= lockout.threshold:
            await self.storage.update(
                schema, user_id, [Set(LOCKOUT_EXPIRES, now + timedelta(minutes=lockout.duration))], MASTER)
            if count > lockout.threshold:
                raise ParseError(Code.OBJECT_NOT_FOUND, lockout.locked_message)

    async def _count_failure(self, user_id: str, seen: Any) -> int:
        """Adds one to the failed count and returns the count after it, as Parse Server's atomic
        increment does: a compare-and-set on the value read, so concurrent failures all count (an
        Increment would not tell the count after it for a column outside the schema)."""
        schema = self.schemas.get(USER)
        assert schema is not None
        field = ir.Field(FAILED_COUNT, "Number")
        for _ in range(20):
            old = int(seen) if isinstance(seen, (int, float)) else None
            new = (old or 0) + 1
            guard = ir.Compare(field, ir.EQ, old) if old is not None else ir.negate(ir.Exists(field))
            if await self.storage.update(schema, user_id, [Set(FAILED_COUNT, new)], MASTER, where=guard) is not None:
                return new
            record = await self._read(user_id, (FAILED_COUNT,))
            if record is None:
                return 0
            seen = record.get(FAILED_COUNT)
        raise ParseError(Code.INTERNAL_SERVER_ERROR, "Too many concurrent login attempts.")

    async def unlock_after_reset(self, user_id: str) -> None:
        """unlockOnPasswordReset: a reset password clears the count and the lock."""
        schema = self.schemas.get(USER)
        if self.lockout is None or not self.lockout.unlock_on_password_reset or schema is None:
            return
        await self.storage.update(schema, user_id, [Set(FAILED_COUNT, None), Set(LOCKOUT_EXPIRES, None)], MASTER)

    # --- password age -----------------------------------------------------------------------------

    async def check_password_age(self, record: dict[str, Any]) -> None:
        """maxPasswordAge on log-in: 101 once the password is older; a user whose password predates
        the policy starts being counted now, as in Parse Server."""
        policy = self.passwords
        schema = self.schemas.get(USER)
        if policy is None or not policy.max_password_age or schema is None:
            return
        changed = record.get(CHANGED_AT)
        if not isinstance(changed, datetime):
            await self.storage.update(schema, record["objectId"], [Set(CHANGED_AT, now_ms())], MASTER)
            return
        if changed + timedelta(days=policy.max_password_age) < now_ms():
            raise ParseError(Code.OBJECT_NOT_FOUND, PASSWORD_EXPIRED)

    # --- new passwords ----------------------------------------------------------------------------

    async def check_new_password(self, password: str, *, username: Any = None,
                                 user_id: str | None = None) -> dict[str, Any]:
        """Validates a new password (142 with Parse's messages) and returns the hidden columns to
        store with its hash: ``_password_changed_at`` and the new ``_password_history``.
        ``user_id`` None is a sign-up; ``username`` is the write's own, if it sets one."""
        policy = self.passwords
        if policy is None:
            return {}
        if policy.validator_pattern is not None and not policy.validator_pattern.search(password):
            raise ParseError(Code.VALIDATION_ERROR, policy.validation_error or POLICY_ERROR)
        record: dict[str, Any] | None = None
        if user_id is not None and (policy.max_password_history or (policy.do_not_allow_username and not username)):
            record = await self._read(user_id, ("username", _HASH, HISTORY))
            if record is None:
                raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        if policy.do_not_allow_username:
            name = username if isinstance(username, str) and username else (record or {}).get("username")
            if isinstance(name, str) and name and name in password:
                raise ParseError(Code.VALIDATION_ERROR, CONTAINS_USERNAME)
        hidden: dict[str, Any] = {}
        if policy.max_password_age:
            hidden[CHANGED_AT] = now_ms()
        if record is not None and policy.max_password_history:
            hidden[HISTORY] = await self._history(password, record, policy.max_password_history)
        return hidden

    async def _history(self, password: str, record: dict[str, Any], limit: int) -> list[str]:
        """Refuses a password among the current one and the last ``limit - 1`` before it; the history
        to store (Parse Server's arithmetic: the newest ``limit - 2`` kept, the current hash added)."""
        stored = record.get(HISTORY)
        history = [h for h in stored if isinstance(h, str)] if isinstance(stored, list) else []
        current = record.get(_HASH)
        candidates = history[:limit - 1] + ([current] if isinstance(current, str) and current else [])
        for old in candidates:
            ok, _ = await self.hasher.verify(password, old)
            if ok:
                raise ParseError(Code.VALIDATION_ERROR,
                                 f"New password should not be the same as last {limit} passwords.")
        kept = history[:limit]
        del kept[:max(0, len(kept) - max(0, limit - 2))]
        if isinstance(current, str) and current:
            kept.append(current)
        return kept

    async def _read(self, user_id: str, columns: tuple[str, ...]) -> dict[str, Any] | None:
        schema = self.schemas.get(USER)
        if schema is None:
            return None
        wanted = tuple(c for c in columns if c != "username" or "username" in schema.fields)
        records = await self.storage.find(
            schema, FindQuery(ir.Compare(_OBJECT_ID, ir.EQ, user_id), limit=1, columns=("objectId", *wanted)), MASTER)
        return records[0] if records else None
