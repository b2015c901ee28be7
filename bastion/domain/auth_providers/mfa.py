"""Parse Server 9.10's ``mfa`` auth adapter: one-time codes by an authenticator app (TOTP) or by SMS,
asked for at log-in beside the password (policy ``additional``).

The wire protocol is Parse's, so that its SDKs and apps work unchanged:

- TOTP enrolment (a signed-in user): ``authData.mfa = {secret, token}`` (a base32 secret of at least
  20 characters and a current code); the answer's ``authDataResponse.mfa.recovery`` holds two
  recovery codes joined by ", ". A new secret needs ``old``, a current code.
- SMS enrolment: ``{mobile}`` sends a code through the ``sendSMS`` cloud function and keeps it
  pending; ``{mobile, token}`` confirms the number.
- Log-in: ``authData.mfa = {token}``: a TOTP code, a recovery code (consumed), or for SMS
  ``"request"`` (a code is sent; answered 141 "Please enter the token") and then the code.
- Clients see ``{status: "enabled" | "disabled"}``; the master key sees the stored entry.

Bastion adds what the issue asked for beyond Parse:

- every code is single-use: the TOTP time step last used is stored (``last``) and a code of that
  step or an earlier one is refused; the log-in's update is conditioned on the stored values it
  consumes (``auth_steps.lock_conditions``), so of many concurrent log-ins with one code, one wins;
- a client turns MFA off only with a valid code, ``{token: <code>, disable: true}`` (or ``old``);
  ``authData.mfa = null`` is refused unless the master key sends it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any

import pyotp

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult, Policy
from bastion.errors import Code, ParseError

ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
METHODS = ("SMS", "TOTP")
# Parse's check of a mobile number, kept so that the same numbers are accepted.
MOBILE = re.compile(r"[+]*[(]?[0-9]{1,3}[)]?[-\s./0-9]*")
_ALPHANUMERIC = string.ascii_uppercase + string.ascii_lowercase + string.digits
RECOVERY_LENGTH = 30  # Parse's randomString(30)
WINDOW = 1  # codes of the previous and next time step pass too (Parse's otpauth default)
REQUEST = "request"
SMS_TIMEOUT = 10.0  # seconds the sendSMS cloud function may take


def refused(message: str) -> ParseError:
    """What Parse's adapter ``throw``s as a string: 141 with the message."""
    return ParseError(Code.SCRIPT_FAILED, message)


def random_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def same(given: Any, expected: Any) -> bool:
    return isinstance(given, str) and isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode())


def enabled(entry: Mapping[str, Any] | None) -> bool:
    """A factor is set up: a TOTP secret or a confirmed mobile number (a pending number is not)."""
    return bool(entry) and bool(entry.get("secret") or entry.get("mobile"))  # type: ignore[union-attr]


class MfaAdapter(AuthAdapter):
    """Options (Parse's): ``options`` (["TOTP"], ["SMS"] or both), ``digits`` (4-10, default 6),
    ``period`` (seconds, at least 10, default 30), ``algorithm`` (SHA1, SHA256 or SHA512), and for
    SMS ``sendSMS``: the name of a cloud function called with ``{token, mobile}`` (Parse takes a
    JavaScript function there; a JSON configuration can only name one)."""

    policy: Policy = "additional"

    def __init__(self) -> None:
        super().__init__()
        self.sms = False
        self.totp = False
        self.digits = 6
        self.period = 30
        self.algorithm = "SHA1"
        self.send_sms_function = ""

    def validate_options(self, options: Mapping[str, Any]) -> None:
        methods = options.get("options")
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ValueError("options must be an array of \"SMS\" and/or \"TOTP\"")
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"options may only hold \"SMS\" and \"TOTP\", not {unknown[0][:40]!r}")
        self.sms, self.totp = "SMS" in methods, "TOTP" in methods
        if not (self.sms or self.totp):
            raise ValueError("options must include SMS or TOTP")
        digits, period = options.get("digits", 6), options.get("period", 30)
        if not isinstance(digits, int) or isinstance(digits, bool) or not 4 <= digits <= 10:
            raise ValueError("digits must be a whole number between 4 and 10")
        if not isinstance(period, int) or isinstance(period, bool) or period < 10:
            raise ValueError("period must be a whole number of seconds, at least 10")
        algorithm = options.get("algorithm", "SHA1")
        if algorithm not in ALGORITHMS:
            raise ValueError("algorithm must be SHA1, SHA256 or SHA512")
        send_sms = options.get("sendSMS")
        if self.sms and (not isinstance(send_sms, str) or not send_sms):
            raise ValueError("sendSMS must name the cloud function that sends the SMS when options include SMS")
        self.digits, self.period, self.algorithm = digits, period, algorithm
        self.send_sms_function = send_sms if isinstance(send_sms, str) else ""

    # --- the steps -----------------------------------------------------------------------------------

    async def validate_set_up(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        mobile = auth_data.get("mobile")
        if mobile and self.sms:
            return await self._set_up_mobile(mobile)
        if self.totp:
            return self._set_up_totp(auth_data)
        raise refused("Invalid MFA data")

    async def validate_login(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        stored = request.stored(self.name)
        if not enabled(stored):
            # Nothing set up (a number still pending): nothing to check, nothing to store (Parse).
            return AuthResult(do_not_save=True)
        return await self._consume(auth_data.get("token"), stored, request)

    async def validate_update(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        if set(auth_data) == {"status"}:
            # What after_find showed, sent back (the JS SDK's linkWith sends the user's whole
            # authData): no change.
            return AuthResult(do_not_save=True)
        if request.master:
            # The master key changes the entry as it likes (Parse), and may turn MFA off.
            return AuthResult(remove=True) if auth_data.get("disable") is True else None
        stored = request.stored(self.name)
        if auth_data.get("disable") is True:
            if not enabled(stored):
                return AuthResult(remove=True)
            await self._consume(auth_data.get("token") or auth_data.get("old"), stored, request)
            return AuthResult(remove=True)
        mobile = auth_data.get("mobile")
        if mobile and self.sms and auth_data.get("token"):
            return self._confirm_mobile(auth_data, stored)
        if not enabled(stored):
            # Only a pending number (or nothing usable): enrolling again needs no old code.
            return await self.validate_set_up(auth_data, request)
        if mobile and self.sms:
            raise refused("MFA is already set up on this account")
        if self.totp:
            # A new secret (or TOTP instead of SMS) needs a code of the factor set up now.
            await self._consume(auth_data.get("old"), stored, request)
            return self._set_up_totp(auth_data)
        raise refused("Invalid MFA data")

    async def validate_unlink(self, request: AuthRequest) -> None:
        if enabled(request.stored(self.name)):
            raise refused("MFA is turned off with a valid code: authData.mfa = {token: <code>, disable: true}")

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        if request.master:
            return None
        return {"status": "enabled" if enabled(auth_data) else "disabled"}

    def policy_for(self, auth_data: dict[str, Any] | None, request: AuthRequest) -> Policy:
        # Parse: a pending number alone does not make the code mandatory.
        return "additional" if enabled(auth_data) else "default"

    # --- codes ---------------------------------------------------------------------------------------

    async def _consume(self, token: Any, stored: dict[str, Any], request: AuthRequest) -> AuthResult:
        """Check ``token`` against the factor set up; what to store once it is used up."""
        if stored.get("mobile"):
            return await self._consume_sms(token, stored, request)
        if not isinstance(token, str) or not token:
            raise refused("Invalid MFA token")
        recovery = stored.get("recovery")
        if isinstance(recovery, list):
            for index, code in enumerate(recovery):
                if same(token, code):
                    return AuthResult(save={**stored, "recovery": recovery[:index] + recovery[index + 1:]})
        step = self._totp_step(stored.get("secret"), token)
        last = stored.get("last")
        if step is None or (isinstance(last, int) and step <= last):
            raise refused("Invalid MFA token")
        # The step is remembered: the same code (or an older one) cannot be used again.
        return AuthResult(save={**stored, "last": step})

    async def _consume_sms(self, token: Any, stored: dict[str, Any], request: AuthRequest) -> AuthResult:
        if token == REQUEST:
            if request.save_auth_data is None:
                raise refused("Invalid MFA data")
            code, sent_expiry = await self._send_sms(stored["mobile"])
            # Stored now (Parse's req.object.save): the next request gives the code.
            await request.save_auth_data({self.name: {**stored, "token": code, "expiry": sent_expiry}})
            raise refused("Please enter the token")
        saved, expiry = stored.get("token"), stored.get("expiry")
        if not same(token, saved):
            raise refused("Invalid MFA token 1")
        if not isinstance(expiry, int | float) or self.now() * 1000 > expiry:
            raise refused("Invalid MFA token 2")
        return AuthResult(save={k: v for k, v in stored.items() if k not in ("token", "expiry")})

    def _totp(self, secret: str) -> pyotp.TOTP:
        return _Totp(secret, digits=self.digits, digest=ALGORITHMS[self.algorithm], interval=self.period)

    def _totp_step(self, secret: Any, token: str) -> int | None:
        """The time step whose code ``token`` is (within the window), or None."""
        if not isinstance(secret, str) or not secret:
            return None
        try:
            totp = self._totp(secret)
            now = totp.timecode(self.now())
            for step in range(now - WINDOW, now + WINDOW + 1):
                if hmac.compare_digest(totp.generate_otp(step).encode(), token.encode()):
                    return step
        except (ValueError, TypeError):  # not base32: no code can match
            return None
        return None

    def _set_up_totp(self, auth_data: dict[str, Any]) -> AuthResult:
        secret, token = auth_data.get("secret"), auth_data.get("token")
        if not isinstance(secret, str) or not isinstance(token, str) or not token or len(secret) < 20:
            raise refused("Invalid MFA data")
        if not _is_base32(secret):
            raise refused("Invalid MFA data")
        step = self._totp_step(secret, token)
        if step is None:
            raise refused("Invalid MFA token")
        recovery = [random_string(RECOVERY_LENGTH), random_string(RECOVERY_LENGTH)]
        # ``last``: the enrolment's code is used up too.
        return AuthResult(save={"secret": secret, "recovery": recovery, "last": step},
                          response={"recovery": ", ".join(recovery)})

    async def _set_up_mobile(self, mobile: Any) -> AuthResult:
        code, expiry = await self._send_sms(mobile)
        return AuthResult(save={"pending": {mobile: {"token": code, "expiry": expiry}}})

    def _confirm_mobile(self, auth_data: dict[str, Any], stored: dict[str, Any]) -> AuthResult:
        mobile, token = auth_data["mobile"], auth_data.get("token")
        pending = stored.get("pending")
        entry = pending.get(mobile) if isinstance(pending, dict) and isinstance(mobile, str) else None
        if not isinstance(entry, dict):
            raise refused("This number is not pending")
        expiry = entry.get("expiry")
        if not same(token, entry.get("token")) or not isinstance(expiry, int | float) or self.now() * 1000 > expiry:
            raise refused("Invalid MFA token")
        rest = {number: value for number, value in pending.items() if number != mobile}  # type: ignore[union-attr]
        return AuthResult(save={**stored, "pending": rest, "mobile": mobile})

    async def _send_sms(self, mobile: Any) -> tuple[str, int]:
        """A new code sent to ``mobile`` by the ``sendSMS`` cloud function; the code and its expiry
        (epoch milliseconds)."""
        if not isinstance(mobile, str) or not MOBILE.fullmatch(mobile):
            raise refused("Invalid mobile number.")
        if not self.send_sms_function:
            raise refused("Invalid MFA data")
        code = str(secrets.randbelow(10 ** self.digits)).zfill(self.digits)
        run = self.context.services["run_cloud_function"]
        try:
            async with asyncio.timeout(SMS_TIMEOUT):  # a stuck SMS gateway must not hang the log-in
                await run(self.send_sms_function, {"token": code, "mobile": mobile})
        except TimeoutError:
            raise refused("The SMS could not be sent.") from None
        return code, int((self.now() + self.period) * 1000)


def _decode(secret: str) -> bytes:
    """A base32 secret as bytes (any case, padding optional), as Parse's otpauth reads it."""
    secret = secret.rstrip("=")
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def _is_base32(secret: str) -> bool:
    try:
        _decode(secret)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return False
    return True


class _Totp(pyotp.TOTP):
    """pyotp's TOTP, without its 112-bit minimum: Parse takes secrets of 20 base32 characters (100
    bits), and users moved from Parse Server must keep theirs."""

    def byte_secret(self) -> bytes:
        return _decode(self.secret)
