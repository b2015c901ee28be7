"""Passkeys (WebAuthn), Bastion's ``webauthn`` provider: beyond Parse Server, on its ``authData``
and ``POST /challenge`` machinery.

Both ceremonies start with ``POST /challenge`` and ``challengeData.webauthn.action``:

- ``register``: the options for ``navigator.credentials.create`` (for the signed-in caller, else
  for a sign-up), then ``PUT /users/:id`` (or ``POST /users`` for a sign-up) with
  ``authData.webauthn = {challengeId, registration: <RegistrationResponseJSON>}``;
- ``login``: the options for ``navigator.credentials.get`` (no allowCredentials: discoverable
  credentials), then ``POST /users`` with ``authData.webauthn = {challengeId, assertion:
  <AuthenticationResponseJSON>}``.

The stored entry is ``{id, credentials: [{id, publicKey, signCount, transports, createdAt, ...}]}``
where ``id`` is the account's WebAuthn user handle (random, made at its first passkey). Parse finds
users by ``authData.<provider>.id``: at sign-in ``before_find`` takes that id from the assertion's
``userHandle``, which the authenticator gives back, so one user may hold several passkeys. Each
challenge is kept in the ChallengeStore (single-use, expiring after ``timeout`` ms) and bound to its
action and, for a registration, to the account it was made for.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidRegistrationResponse,
    WebAuthnException,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from bastion.domain.auth_challenges import digest, new_handle
from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult, Policy
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

OPTIONS = frozenset({"rpId", "rpName", "origins", "userVerification", "timeout", "attestation",
                     "maxChallengesPerMinute", "maxCredentials"})
USER_VERIFICATION = ("preferred", "required", "discouraged")
ATTESTATION = ("none", "indirect", "direct")
DEFAULT_TIMEOUT_MS = 300_000
DEFAULT_RATE = 30  # challenges per minute and client address
DEFAULT_MAX_CREDENTIALS = 20
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
SWEEP_EVERY = 100  # challenges made by this process between two sweeps of expired ones

INVALID = "Passkey auth is invalid for this user."
BAD_CHALLENGE = "Passkey challenge is invalid or expired."
SHAPE = "authData.webauthn needs challengeId and registration or assertion"


def _refuse(message: str = INVALID) -> ParseError:
    return ParseError(Code.OBJECT_NOT_FOUND, message)


def _canonical_b64url(value: Any, limit: int = 1024) -> str | None:
    """``value`` as unpadded base64url, or None when it is not base64url."""
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return bytes_to_base64url(raw) if raw else None


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_origin(origin: Any, rp_id: str) -> None:
    if not isinstance(origin, str):
        raise ValueError("origins must be a list of origins such as 'https://example.com'")
    parts = urlsplit(origin)
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.netloc.rsplit(":", 1)[0] in LOOPBACK)
    if not secure or not host or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"origins: {origin!r} is not an https origin (http only for localhost)")
    if origin.endswith("/"):
        raise ValueError(f"origins: {origin!r} must not end with '/' (browsers send origins without it)")
    if host != rp_id and not host.endswith("." + rp_id):
        raise ValueError(f"origins: the host of {origin!r} is not rpId {rp_id!r} or one of its subdomains")


class PasskeyAdapter(AuthAdapter):
    # A passkey signs in alone, even for a user with an additional provider (MFA).
    policy: Policy = "solo"

    def validate_options(self, options: Mapping[str, Any]) -> None:
        from bastion.domain.auth_providers.registry import COMMON_OPTIONS

        unknown = sorted(set(options) - OPTIONS - COMMON_OPTIONS)
        if unknown:
            raise ValueError(f"{unknown[0]} is not an option of passkeys (known: {', '.join(sorted(OPTIONS))})")
        rp_id = options.get("rpId")
        if not isinstance(rp_id, str) or not rp_id or "/" in rp_id or ":" in rp_id or rp_id != rp_id.lower():
            raise ValueError("rpId is required: the site's domain in lower case, such as 'example.com'")
        origins = options.get("origins")
        if not isinstance(origins, list) or not origins:
            raise ValueError("origins is required: a list of the origins pages sign in from")
        for origin in origins:
            _check_origin(origin, rp_id)
        rp_name = options.get("rpName", rp_id)
        if not isinstance(rp_name, str) or not rp_name:
            raise ValueError("rpName must be a non-empty string")
        if options.get("userVerification", "preferred") not in USER_VERIFICATION:
            raise ValueError(f"userVerification must be one of {', '.join(USER_VERIFICATION)}")
        if options.get("attestation", "none") not in ATTESTATION:
            raise ValueError(f"attestation must be one of {', '.join(ATTESTATION)}")
        for key, default, low, high in (("timeout", DEFAULT_TIMEOUT_MS, 1000, 3_600_000),
                                        ("maxChallengesPerMinute", DEFAULT_RATE, 1, 100_000),
                                        ("maxCredentials", DEFAULT_MAX_CREDENTIALS, 1, 100)):
            value = options.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{key} must be a whole number from {low} to {high}")
        self.rp_id: str = rp_id
        self.rp_name: str = rp_name
        self.origins: list[str] = list(origins)
        self.user_verification = UserVerificationRequirement(options.get("userVerification", "preferred"))
        self.attestation = AttestationConveyancePreference(options.get("attestation", "none"))
        self.timeout_ms: int = options.get("timeout", DEFAULT_TIMEOUT_MS)
        self.rate: int = options.get("maxChallengesPerMinute", DEFAULT_RATE)
        self.max_credentials: int = options.get("maxCredentials", DEFAULT_MAX_CREDENTIALS)
        self._made = 0

    @property
    def purpose(self) -> str:
        return f"passkey:{self.name}"

    def _challenges(self) -> Any:
        store = self.context.services.get("challenges")
        if store is None:
            raise ParseError(Code.INTERNAL_SERVER_ERROR, "Passkeys need the challenge store.")
        return store

    # --- POST /challenge -------------------------------------------------------------------------------

    async def challenge(self, challenge_data: Any, auth_data: dict[str, Any] | None,
                        request: AuthRequest) -> Any:
        action = challenge_data.get("action") if isinstance(challenge_data, dict) else None
        if action not in ("register", "login"):
            raise ParseError(Code.VALIDATION_ERROR, 'challengeData.webauthn.action must be "register" or "login"')
        store = self._challenges()
        subject = digest(f"{self.name}|{request.ip}") if request.ip else None
        if subject is not None and await store.count(self.purpose, subject, 60) >= self.rate:
            raise ParseError(Code.CONNECTION_FAILED, "Too many requests.", status=429)
        challenge = new_handle().encode("ascii")  # 32 random bytes, as base64url text
        if action == "register":
            data, options = self._registration(challenge_data, challenge, request)
        else:
            data = {}
            options = generate_authentication_options(
                rp_id=self.rp_id, challenge=challenge, timeout=self.timeout_ms, allow_credentials=[],
                user_verification=self.user_verification)
        data.update(action=action, challenge=bytes_to_base64url(challenge))
        key = await store.put(self.purpose, data, self.timeout_ms / 1000, subject=subject)
        await self._sweep(store)
        answer: dict[str, Any] = json.loads(options_to_json(options))
        answer["challengeId"] = key
        return answer

    def _registration(self, challenge_data: dict[str, Any], challenge: bytes,
                      request: AuthRequest) -> tuple[dict[str, Any], Any]:
        user = request.original
        stored = request.stored(self.name) if user is not None else {}
        handle = _canonical_b64url(stored.get("id"), 128) or new_handle()
        if user is not None:
            name = user.get("username") or user.get("email") or "user"
        else:
            name = challenge_data.get("username") or "user"
        if not isinstance(name, str):
            raise ParseError(Code.VALIDATION_ERROR, "challengeData.webauthn.username must be a string")
        exclude = [PublicKeyCredentialDescriptor(id=_b64decode(c["id"])) for c in self._credentials(stored)
                   if isinstance(c.get("id"), str)]
        options = generate_registration_options(
            rp_id=self.rp_id, rp_name=self.rp_name, user_name=name[:64], user_id=_b64decode(handle),
            challenge=challenge, timeout=self.timeout_ms, attestation=self.attestation,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED, user_verification=self.user_verification),
            exclude_credentials=exclude)
        data = {"handle": handle, "userId": user.get("objectId") if user is not None else None}
        return data, options

    async def _sweep(self, store: Any) -> None:
        self._made += 1
        if self._made % SWEEP_EVERY == 0:
            try:
                await store.sweep()
            except Exception:  # housekeeping only: the challenge was made
                log.exception("passkey challenges: sweep failed")

    async def _take(self, auth_data: dict[str, Any], action: str) -> dict[str, Any]:
        challenge = await self._challenges().take(self.purpose, auth_data.get("challengeId"))
        if challenge is None or challenge.data.get("action") != action:
            raise _refuse(BAD_CHALLENGE)
        return dict(challenge.data)

    # --- the steps ---------------------------------------------------------------------------------------

    async def before_find(self, auth_data: dict[str, Any]) -> None:
        if "assertion" in auth_data:
            # The user is found by the handle the authenticator gives back (discoverable credentials).
            assertion = auth_data["assertion"]
            response = assertion.get("response") if isinstance(assertion, dict) else None
            handle = _canonical_b64url(response.get("userHandle"), 128) if isinstance(response, dict) else None
            if handle is None:
                raise _refuse()
            auth_data["id"] = handle
        elif "registration" in auth_data:
            auth_data.pop("id", None)  # the handle comes from the challenge, never from the client

    async def validate_set_up(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        if "assertion" in auth_data:
            raise _refuse()  # a passkey no user holds (or a handle of no user)
        if "registration" not in auth_data:
            raise ParseError(Code.VALIDATION_ERROR, SHAPE)
        data = await self._take(auth_data, "register")
        self._check_account(data, request)
        credential = self._verify_registration(auth_data["registration"], data)
        return AuthResult(save={"id": data["handle"], "credentials": [credential]},
                          response={"credentialId": credential["id"]})

    async def validate_update(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        stored = request.stored(self.name)
        if "registration" in auth_data:
            data = await self._take(auth_data, "register")
            self._check_account(data, request)
            if data.get("handle") != stored.get("id"):
                raise _refuse(BAD_CHALLENGE)
            credentials = self._credentials(stored)
            if len(credentials) >= self.max_credentials:
                raise ParseError(Code.VALIDATION_ERROR, f"A user may have at most {self.max_credentials} passkeys.")
            credential = self._verify_registration(auth_data["registration"], data)
            if any(c.get("id") == credential["id"] for c in credentials):
                raise ParseError(Code.ACCOUNT_ALREADY_LINKED, "this auth is already used")
            return AuthResult(save={**stored, "credentials": [*credentials, credential]},
                              response={"credentialId": credential["id"]})
        if "remove" in auth_data:
            # One passkey out; the last one out unlinks the provider.
            kept = [c for c in self._credentials(stored) if c.get("id") != auth_data["remove"]]
            if len(kept) == len(self._credentials(stored)):
                raise _refuse()
            return AuthResult(remove=True) if not kept else AuthResult(save={**stored, "credentials": kept})
        if "assertion" in auth_data:
            return await self.validate_login(auth_data, request)
        # What answers show of the entry, sent back (an SDK saving its user): nothing to store.
        return AuthResult(do_not_save=True)

    async def validate_login(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        assertion = auth_data.get("assertion")
        if not isinstance(assertion, dict):
            raise ParseError(Code.VALIDATION_ERROR, SHAPE)
        data = await self._take(auth_data, "login")
        stored = request.stored(self.name)
        if not stored.get("id") or stored.get("id") != auth_data.get("id"):
            raise _refuse()
        credentials = self._credentials(stored)
        credential_id = _canonical_b64url(assertion.get("id"))
        found = next((c for c in credentials if c.get("id") == credential_id), None)
        if found is None:
            raise _refuse()
        try:
            verified = verify_authentication_response(
                credential=assertion, expected_challenge=_b64decode(data["challenge"]),
                expected_rp_id=self.rp_id, expected_origin=self.origins,
                credential_public_key=_b64decode(found["publicKey"]),
                credential_current_sign_count=int(found.get("signCount", 0)),
                require_user_verification=self.user_verification == UserVerificationRequirement.REQUIRED)
        except (InvalidAuthenticationResponse, WebAuthnException, ValueError, KeyError, TypeError) as error:
            log.info("passkey sign-in refused: %s", error)
            raise _refuse() from None
        updated = {**found, "signCount": verified.new_sign_count, "lastUsedAt": _now_iso(),
                   "backedUp": verified.credential_backed_up}
        return AuthResult(save={**stored, "credentials": [updated if c is found else c for c in credentials]})

    # --- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def _credentials(stored: dict[str, Any]) -> list[dict[str, Any]]:
        credentials = stored.get("credentials")
        return [c for c in credentials if isinstance(c, dict)] if isinstance(credentials, list) else []

    @staticmethod
    def _check_account(data: dict[str, Any], request: AuthRequest) -> None:
        """A registration challenge made for an account is used on that account only, and one made
        for a sign-up only for a sign-up."""
        user_id = (request.original or {}).get("objectId")
        if data.get("userId") != user_id:
            raise _refuse(BAD_CHALLENGE)

    def _verify_registration(self, registration: Any, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(registration, dict):
            raise ParseError(Code.VALIDATION_ERROR, SHAPE)
        try:
            verified = verify_registration_response(
                credential=registration, expected_challenge=_b64decode(data["challenge"]),
                expected_rp_id=self.rp_id, expected_origin=self.origins,
                require_user_verification=self.user_verification == UserVerificationRequirement.REQUIRED)
        except (InvalidRegistrationResponse, WebAuthnException, ValueError, KeyError, TypeError) as error:
            log.info("passkey registration refused: %s", error)
            raise _refuse() from None
        response = registration.get("response")
        transports = response.get("transports") if isinstance(response, dict) else None
        credential: dict[str, Any] = {
            "id": bytes_to_base64url(verified.credential_id),
            "publicKey": bytes_to_base64url(verified.credential_public_key),
            "signCount": verified.sign_count,
            "createdAt": _now_iso(),
            "aaguid": verified.aaguid,
            "backedUp": verified.credential_backed_up,
        }
        if isinstance(transports, list) and all(isinstance(t, str) and len(t) < 32 for t in transports[:8]):
            credential["transports"] = transports[:8]
        return credential

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        """The handle and, per passkey, what helps a user tell them apart: never keys or counters."""
        shown = [{key: c[key] for key in ("id", "createdAt", "lastUsedAt", "transports", "backedUp") if key in c}
                 for c in self._credentials(auth_data)]
        return {"id": auth_data.get("id"), "credentials": shown}
