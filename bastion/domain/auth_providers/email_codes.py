"""The ``email`` provider (Bastion's, beyond Parse Server): one-time codes and magic links by mail.

``POST /challenge`` with ``challengeData: {email: {email}}`` mails a numeric code (and, when the
``link`` option is set, a link carrying a long random token) to that address; the answer is the
same whatever happens: unknown address, rate limit, mail failure. ``POST /users`` with
``authData: {email: {id: <address>, code}}`` (or ``token``) then signs in the user linked to the
address, or signs one up.

Codes and tokens are kept in the ChallengeStore as hashes, subject the address's hash: each is
used once and expires after ``ttl``. Every sign-in attempt is counted before the code is taken;
past ``maxAttempts`` within ``ttl`` the address's pending codes are void, so that a code cannot be
guessed faster than codes are mailed (``maxPerHour``).

A sign-up of an address that an existing user has as ``email`` (the user has no ``email``
provider yet): when that email is verified, the existing user signs in and gets the provider
linked; when it is not, the sign-up is refused (203), since whoever created that account may not
own the address (linking would hand a pre-registered account to its creator, or the other way
round).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from bastion.domain.auth_challenges import ChallengeStore, digest
from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult
from bastion.errors import Code, ParseError
from bastion.ports.mail import Mailer, MailMessage

log = logging.getLogger("bastion.auth")

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HOUR = 3600.0
_SWEEP_EVERY = 600.0
DEFAULTS: dict[str, Any] = {"codeLength": 6, "ttl": 600, "maxPerHour": 5, "maxPerHourPerIp": 50,
                            "maxAttempts": 5, "signUp": True}
_INTS = {"codeLength": (4, 12), "ttl": (1, 86_400), "maxPerHour": (1, 1000), "maxPerHourPerIp": (0, 100_000),
         "maxAttempts": (1, 100)}
_KNOWN = {*DEFAULTS, "link", "subject", "text", "enabled", "module", "appIds"}
SUBJECT = "Your sign-in code for {appName}"
TEXT = ("Your sign-in code for {appName} is {code}.\n{link}\n"
        "It expires in {minutes} minutes. If you did not ask for it, ignore this mail.\n")
INVALID = "Email auth is invalid for this user."
UNVERIFIED_OWNER = ("Account already exists for this email address. Sign in with its password and link "
                    "the email provider, or verify the email first.")


def normalize(value: Any) -> str | None:
    """The address as stored and compared: trimmed, lowercase; None when it is not one."""
    if not isinstance(value, str):
        return None
    address = value.strip().lower()
    return address if len(address) <= 254 and _ADDRESS.fullmatch(address) else None


def _fill(template: str, values: Mapping[str, str]) -> str:
    # Plain replacement, not str.format: templates come from configuration, values from clients.
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


class EmailCodeAdapter(AuthAdapter):
    def __init__(self) -> None:
        super().__init__()
        self._sending: set[asyncio.Task[None]] = set()
        self.settings: dict[str, Any] = dict(DEFAULTS)
        self._swept = 0.0

    # --- start-up ------------------------------------------------------------------------------------

    def validate_options(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - _KNOWN)
        if unknown:
            raise ValueError(f"{unknown[0]} is not an option of the email provider "
                             f"(known: {', '.join(sorted(_KNOWN - {'enabled', 'module', 'appIds'}))})")
        settings = dict(DEFAULTS)
        for key, (low, high) in _INTS.items():
            value = options.get(key, DEFAULTS[key])
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{key} must be a whole number from {low} to {high}")
            settings[key] = value
        if not isinstance(options.get("signUp", True), bool):
            raise ValueError("signUp must be true or false")
        settings["signUp"] = options.get("signUp", True)
        link = options.get("link")
        if link is not None:
            parts = urlsplit(link) if isinstance(link, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or "{token}" not in link:
                raise ValueError("link must be an http(s) URL template containing {token} (and maybe {email})")
        settings["link"] = link
        for key, default in (("subject", SUBJECT), ("text", TEXT)):
            value = options.get(key, default)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key} must be a non-empty string")
            if key == "text" and "{code}" not in value:
                raise ValueError("text must contain {code}")
            settings[key] = value
        self.settings = settings

    @property
    def _store(self) -> ChallengeStore:
        store: ChallengeStore = self.context.services["challenges"]
        return store

    def _purpose(self, what: str) -> str:
        # Per provider name: two providers of this class keep separate codes and counters.
        return f"{self.name}.{what}"

    # --- POST /challenge -----------------------------------------------------------------------------

    async def challenge(self, challenge_data: Any, auth_data: dict[str, Any] | None,
                        request: AuthRequest) -> Any:
        raw = challenge_data.get("email") if isinstance(challenge_data, dict) else None
        address = normalize(raw)
        if address is None:
            raise ParseError(Code.INVALID_EMAIL_ADDRESS, "Email address format is invalid.")
        # The same work and the same answer whatever the address: nothing tells whether it has a user.
        await self._send_code(address, request.ip)
        if self.now() - self._swept > _SWEEP_EVERY:
            # Expired codes and markers are of no use: removed now and then, by whoever mails.
            self._swept = self.now()
            await self._store.sweep()
        return {"sent": True}

    async def _send_code(self, address: str, ip: str | None) -> None:
        store, subject = self._store, digest(address)
        ip_subject = digest(f"ip:{ip}") if ip else None
        limited = await store.count(self._purpose("sent"), subject, _HOUR) >= self.settings["maxPerHour"]
        per_ip = self.settings["maxPerHourPerIp"]
        if ip_subject and per_ip and await store.count(self._purpose("ip"), ip_subject, _HOUR) >= per_ip:
            limited = True
        known = await self._may_sign_in(address)
        if limited:
            log.info("email codes: rate limit reached, nothing mailed")
            return
        code = "".join(secrets.choice("0123456789") for _ in range(self.settings["codeLength"]))
        ttl = self.settings["ttl"]
        await store.put(self._purpose("code"), {"email": address}, ttl, key=digest(f"{address}:{code}"),
                        subject=subject)
        token = None
        if self.settings["link"]:
            token = secrets.token_urlsafe(32)
            await store.put(self._purpose("code"), {"email": address, "link": True}, ttl,
                            key=digest(f"token:{token}"), subject=subject)
        # Markers that outlive the codes, for the hourly limits.
        await store.put(self._purpose("sent"), {}, _HOUR, subject=subject)
        if ip_subject:
            await store.put(self._purpose("ip"), {}, _HOUR, subject=ip_subject)
        if not known:
            return  # signUp is false and nobody can sign in with it: no mail to strangers
        self._background(self._mail(address, code, token))

    async def _may_sign_in(self, address: str) -> bool:
        """Whether a code for the address can sign anyone in (always, when sign-ups are open)."""
        if self.settings["signUp"]:
            return True
        return bool(await self._users_with_email(address, self.name))

    async def _users_with_email(self, address: str, provider: str | None = None) -> list[dict[str, Any]]:
        """Users whose email is the address (or, with ``provider``, linked to it)."""
        finder: Callable[[str, str | None], Awaitable[list[dict[str, Any]]]] | None = \
            self.context.services.get("users_with_email")
        found = await finder(address, provider) if finder is not None else []
        if provider is None:
            found = [u for u in found if isinstance(u.get("email"), str) and u["email"].lower() == address]
        return found

    def _message(self, address: str, code: str, token: str | None) -> MailMessage:
        link = ""
        if token is not None:
            link = _fill(self.settings["link"], {"email": quote(address, safe="@"), "token": quote(token, safe="")})
        values = {"appName": str(self.context.services.get("app_name") or "Bastion"), "code": code,
                  "link": link, "minutes": str(max(1, round(self.settings["ttl"] / 60)))}
        text = _fill(self.settings["text"], values)
        if token is not None and "{link}" not in self.settings["text"]:
            text += "\n" + link + "\n"
        return MailMessage(to=address, subject=_fill(self.settings["subject"], values), text=text)

    async def _mail(self, address: str, code: str, token: str | None) -> None:
        mailer: Mailer = self.context.services["mailer"]
        await mailer.send(self._message(address, code, token))

    def _background(self, sending: Awaitable[None]) -> None:
        # Mailed after the answer: its delay or failure must not tell anything about the address.
        task = asyncio.get_running_loop().create_task(self._deliver(sending))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _deliver(sending: Awaitable[None]) -> None:
        try:
            await sending
        except Exception:
            log.exception("email codes: the mail could not be sent")

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=10)

    # --- sign-in -------------------------------------------------------------------------------------

    async def before_find(self, auth_data: dict[str, Any]) -> None:
        # The address is looked up as it is stored: trimmed and lowercase.
        address = normalize(auth_data.get("id"))
        if address is not None:
            auth_data["id"] = address

    async def _redeem(self, auth_data: dict[str, Any]) -> str:
        """The address whose code or token ``auth_data`` gives, consumed; 101 otherwise."""
        address = normalize(auth_data.get("id"))
        code, token = auth_data.get("code"), auth_data.get("token")
        if address is None or not (isinstance(code, str) and code) and not (isinstance(token, str) and token):
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)
        store, subject, ttl = self._store, digest(address), self.settings["ttl"]
        # Counted before the code is tried, so that parallel guesses are bounded too.
        await store.put(self._purpose("try"), {}, ttl, subject=subject)
        if await store.count(self._purpose("try"), subject, ttl) > self.settings["maxAttempts"]:
            await store.drop(self._purpose("code"), subject)  # void: a new code must be asked for
            await store.drop(self._purpose("try"), subject)
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)
        key = digest(f"{address}:{code}") if isinstance(code, str) and code else digest(f"token:{token}")
        taken = await store.take(self._purpose("code"), key)
        if taken is None or taken.data.get("email") != address:
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)
        # The mail is used: its other code or link, and earlier mails, go too.
        await store.drop(self._purpose("code"), subject)
        await store.drop(self._purpose("try"), subject)
        return address

    async def validate_login(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        address = await self._redeem(auth_data)
        return AuthResult(save={"id": address})

    async def validate_update(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        return await self.validate_login(auth_data, request)

    async def validate_set_up(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        try:
            address = await self._redeem(auth_data)
        except ParseError:
            # A refused log-in of a linked user read that user first: one read here too, so that
            # the time of a refusal tells less about whether the address has a user.
            await self._users_with_email(normalize(auth_data.get("id")) or "-")
            raise
        if request.original is not None:
            return AuthResult(save={"id": address})  # linked to the signed-in user
        owners = await self._users_with_email(address)
        if len(owners) == 1 and owners[0].get("emailVerified") is True:
            return AuthResult(save={"id": address}, sign_in_as=owners[0]["objectId"])
        if owners:
            raise ParseError(Code.EMAIL_TAKEN, UNVERIFIED_OWNER)
        if not self.settings["signUp"]:
            raise ParseError(Code.OBJECT_NOT_FOUND, INVALID)
        return AuthResult(save={"id": address}, user_fields={"email": address, "emailVerified": True})

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        return {"id": auth_data["id"]} if isinstance(auth_data.get("id"), str) else {}
