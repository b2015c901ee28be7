"""Sign-in for web apps through the server: OAuth 2.0's authorization-code flow with PKCE, ``state``
and (for OpenID Connect) ``nonce``, for providers whose auth entry has ``web`` (``web_config.py``).

1. ``start``: the browser opens ``/auth/<provider>/start?redirect=<app URL>`` (the URL must be one of
   ``web.redirectUris``, exactly). A random ``state`` keeps the PKCE verifier, the nonce, the app URL
   and, when linking, the user in the ChallengeStore (single-use, 10 minutes); a cookie binds the
   flow to the browser that started it (a link sent to someone else cannot complete it). The answer
   redirects to the provider. To link a provider, the app (signed in) first asks ``start`` with its
   session token: it gets a single-use URL of ``start`` to send the browser to.
2. ``callback``: the provider sends the browser back with ``code`` and ``state``; the state is taken
   (once), the code exchanged at ``web.tokenUrl`` with the verifier and the client secret. With an
   ID token (``openid`` scope), its nonce is checked and the user signs in through the provider's
   own adapter with ``{id: sub, id_token}``, validated exactly as a token a client sends; otherwise
   the access token names the account at ``web.userInfoUrl`` and the adapter validates it.
3. The browser lands on the app's URL with a one-time ``code`` (never the session token itself),
   which the app exchanges once at ``POST /auth/session`` for the session. Failures land there with
   ``error`` and ``error_description`` (and ``parse_error`` for a Parse refusal).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from bastion.core.auth import Auth, CallInfo
from bastion.domain.auth_challenges import ChallengeStore, digest
from bastion.domain.auth_providers.adapter import server_obtained
from bastion.domain.auth_providers.base import unsupported
from bastion.domain.auth_providers.web_config import WebConfig
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.domain.auth_providers import ProviderRegistry
    from bastion.domain.users import Users

log = logging.getLogger("bastion.auth")

STATE = "web_sign_in_state"
TICKET = "web_sign_in_ticket"
HANDOFF = "web_sign_in_handoff"
STATE_TTL = 600.0
TICKET_TTL = 120.0
HANDOFF_TTL = 120.0
COOKIE_PREFIX = "bastion_web_"
SWEEP_EVERY = 100
MAX_ANSWER_BYTES = 256 * 1024
MAX_TOKEN_LENGTH = 16 * 1024
_ERROR_SLUG = re.compile(r"[a-z_]{1,40}")


class FlowError(Exception):
    """A failure after the state was taken: the browser goes back to the app with ``error``."""

    def __init__(self, error: str, description: str, parse_code: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.parse_code = parse_code


@dataclass(frozen=True, slots=True)
class Started:
    url: str  # the provider's authorization URL
    cookie_name: str
    cookie_value: str  # binds the flow to this browser
    callback_url: str  # where the cookie goes back to


@dataclass(frozen=True, slots=True)
class Finished:
    location: str  # the app's URL with ``code`` or ``error``
    cookie_name: str  # the binding cookie to clear
    callback_url: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636's S256: base64url(sha256(verifier))."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def cookie_name(state: str) -> str:
    """One cookie per flow, so that two flows started in one browser do not undo each other."""
    return COOKIE_PREFIX + digest("cookie:" + state)[:16]


def with_params(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _refused(message: str) -> ParseError:
    return ParseError(Code.OBJECT_NOT_FOUND, message)


class WebSignIn:
    def __init__(self, providers: ProviderRegistry, users: Users, challenges: ChallengeStore,
                 public_url: str) -> None:
        self.providers = providers
        self.users = users
        self.challenges = challenges
        self.public_url = public_url.rstrip("/")
        self._starts = 0

    def config(self, provider: str) -> WebConfig:
        """The provider's web options; 252 when it has none (or is not enabled)."""
        config = self.providers.web.get(provider)
        if config is None or provider not in self.providers:
            raise unsupported()
        return config

    def callback_url(self, provider: str, config: WebConfig) -> str:
        return config.callback_url or f"{self.public_url}/auth/{provider}/callback"

    @staticmethod
    def _redirect(config: WebConfig, redirect: str | None) -> str:
        """The app URL to end at: one of ``redirectUris`` exactly (the only one when not given)."""
        if redirect is None and len(config.redirect_uris) == 1:
            return config.redirect_uris[0]
        if not isinstance(redirect, str) or redirect not in config.redirect_uris:
            raise ParseError(Code.VALIDATION_ERROR, "redirect is not one of the app's allowed redirect URLs.")
        return redirect

    # --- 1. start ------------------------------------------------------------------------------------

    async def link_ticket(self, provider: str, redirect: str | None, session_token: str) -> str:
        """For an app signed in as a user: a single-use URL of ``start`` that links the provider."""
        config = self.config(provider)
        target = self._redirect(config, redirect)
        auth = await self.users.authenticate(Auth(), session_token)  # 209 for a dead session
        ticket = secrets.token_urlsafe(32)
        await self.challenges.put(TICKET, {"provider": provider, "redirect": target, "userId": auth.user_id,
                                           "session": session_token}, TICKET_TTL, key=digest(ticket))
        return with_params(f"{self.public_url}/auth/{provider}/start", {"ticket": ticket})

    async def start(self, provider: str, redirect: str | None, ticket: str | None = None) -> Started:
        config = self.config(provider)
        link: dict[str, Any] = {}
        if ticket is not None:
            taken = await self.challenges.take(TICKET, digest(ticket))
            if taken is None or taken.data.get("provider") != provider:
                raise _refused("The link ticket is invalid or expired.")
            link = {"userId": taken.data["userId"], "session": taken.data["session"]}
            target = str(taken.data["redirect"])
        else:
            target = self._redirect(config, redirect)
        self._starts += 1
        if self._starts % SWEEP_EVERY == 0:
            await self.challenges.sweep()  # expired flows nobody finished
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43 to 128)
        nonce = secrets.token_urlsafe(24)
        binding = secrets.token_urlsafe(24)
        await self.challenges.put(STATE, {"provider": provider, "verifier": verifier, "nonce": nonce,
                                          "redirect": target, "binding": digest(binding), **link},
                                  STATE_TTL, key=digest(state))
        params = {**config.authorization_params, "response_type": "code", "client_id": config.client_id,
                  "redirect_uri": self.callback_url(provider, config), "scope": config.scope, "state": state,
                  "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
        if config.sign_in_with == "id_token":
            params["nonce"] = nonce
        return Started(with_params(config.authorization_url, params), cookie_name(state), binding,
                       params["redirect_uri"])

    # --- 2. callback ---------------------------------------------------------------------------------

    async def callback(self, provider: str, query: Mapping[str, str], cookies: Mapping[str, str],
                       info: CallInfo | None = None) -> Finished:
        """Where the provider sends the browser back. ParseError only while no app URL is known
        (a missing, unknown, expired or reused state); every later failure goes to the app."""
        config = self.config(provider)
        state = query.get("state")
        if not state:
            raise ParseError(Code.VALIDATION_ERROR, "The sign-in state is missing.")
        taken = await self.challenges.take(STATE, digest(state))
        if taken is None or taken.data.get("provider") != provider:
            raise ParseError(Code.VALIDATION_ERROR, "The sign-in state is invalid, expired or already used.")
        data = taken.data
        target = str(data["redirect"])
        name = cookie_name(state)
        back = self.callback_url(provider, config)
        try:
            binding = cookies.get(name)
            if not binding or not hmac.compare_digest(digest(binding), str(data.get("binding"))):
                raise FlowError("invalid_request", "The sign-in was not started in this browser.")
            answer = await self._finish(provider, config, query, data, info)
        except FlowError as error:
            log.info("web sign-in with %s refused: %s %s", provider, error.error, error.description)
            return Finished(self._error_location(target, error), name, back)
        except ParseError as error:
            log.info("web sign-in with %s refused: %s %s", provider, error.code, error.message)
            return Finished(self._error_location(target, FlowError("access_denied", error.message, error.code)), name, back)
        except Exception:  # noqa: BLE001 - the app gets an error, the log the traceback, never a 500
            log.exception("web sign-in with %s failed", provider)
            return Finished(self._error_location(target, FlowError("server_error", "The sign-in failed.")), name, back)
        code = secrets.token_urlsafe(32)
        await self.challenges.put(HANDOFF, answer, HANDOFF_TTL, key=digest(code))
        return Finished(with_params(target, {"code": code}), name, back)

    @staticmethod
    def _error_location(target: str, error: FlowError) -> str:
        params = {"error": error.error, "error_description": error.description[:300]}
        if error.parse_code is not None:
            params["parse_error"] = str(error.parse_code)
        return with_params(target, params)

    async def _finish(self, provider: str, config: WebConfig, query: Mapping[str, str], data: dict[str, Any],
                      info: CallInfo | None) -> dict[str, Any]:
        returned = query.get("error")
        if returned:
            # The provider's refusal (the user declined...): its OAuth error name only, never its text.
            slug = returned if _ERROR_SLUG.fullmatch(returned) else "access_denied"
            raise FlowError(slug, "The provider did not authorize the sign-in.")
        code = query.get("code")
        if not code or len(code) > 4096:
            raise FlowError("invalid_request", "The provider sent no authorization code.")
        tokens = await self._exchange(provider, config, code, str(data["verifier"]))
        if config.sign_in_with == "id_token":
            entry = self._id_token_entry(config, tokens, str(data["nonce"]))
        else:
            entry = await self._access_token_entry(config, tokens)
        auth_data = {provider: entry}
        user_id = data.get("userId")
        # Code adapters accept this access token without a code: this server just got it from the provider.
        with server_obtained(str(tokens.get("access_token") or "")):
            if isinstance(user_id, str):
                return await self._link(user_id, str(data.get("session")), auth_data, info)
            if self.users.auth_data is None:
                raise unsupported()
            signed_in = await self.users.auth_data.sign_up({"authData": auth_data}, Auth(), info)
            return signed_in.response

    async def _link(self, user_id: str, session_token: str, auth_data: dict[str, Any],
                    info: CallInfo | None) -> dict[str, Any]:
        """Links the provider to the user who asked, if that user's session is still live."""
        auth = await self.users.authenticate(Auth(), session_token)  # 209 once logged out
        if auth.user_id != user_id:
            raise ParseError(Code.INVALID_SESSION_TOKEN, "Invalid session token")
        answer = await self.users.update(user_id, {"authData": auth_data}, auth, info)
        result: dict[str, Any] = {"objectId": user_id, "linked": True}
        if "authDataResponse" in answer:
            result["authDataResponse"] = answer["authDataResponse"]
        return result

    # --- the provider's endpoints --------------------------------------------------------------------

    async def _exchange(self, provider: str, config: WebConfig, code: str, verifier: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": self.callback_url(provider, config), "client_id": config.client_id}
        auth: tuple[str, str] | None = None
        if config.client_secret is not None:
            if config.token_auth == "basic":
                auth = (config.client_id, config.client_secret)
            else:
                form["client_secret"] = config.client_secret
        status, answer = await self._call("POST", config.token_url, config, data=form, auth=auth)
        if status != 200:
            refused = answer.get("error") if isinstance(answer, dict) else None
            slug = refused if isinstance(refused, str) and _ERROR_SLUG.fullmatch(refused) else "invalid_grant"
            raise FlowError(slug, f"The provider refused the authorization code ({status}).")
        if not isinstance(answer, dict):
            raise FlowError("server_error", "The provider's token answer is not a JSON object.")
        return answer

    async def _call(self, method: str, url: str, config: WebConfig, headers: dict[str, str] | None = None,
                    **kwargs: Any) -> tuple[int, Any]:
        """One bounded call to the provider: status and JSON (None when the body is not JSON)."""
        try:
            async with self.providers.http.stream(method, url, headers={"Accept": "application/json", **(headers or {})},
                                                  timeout=config.timeout, **kwargs) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise FlowError("server_error", "The provider's answer is too large.")
                status = response.status_code
        except httpx.HTTPError as error:
            log.warning("web sign-in: %s %s failed: %r", method, url, error)
            raise FlowError("temporarily_unavailable", "The provider could not be reached.") from None
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def _id_token_entry(self, config: WebConfig, tokens: dict[str, Any], nonce: str) -> dict[str, Any]:
        """``{id: sub, <idTokenKey>: token}`` once the token carries this flow's nonce; the
        signature, issuer, audience and expiry are the adapter's to check, as for any client."""
        token = tokens.get("id_token")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise FlowError("server_error", "The provider sent no ID token.")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise FlowError("access_denied", "The provider's ID token does not decode.") from None
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise FlowError("access_denied", "The ID token's nonce does not match this sign-in.",
                            Code.OBJECT_NOT_FOUND)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise FlowError("access_denied", "The ID token names no subject.", Code.OBJECT_NOT_FOUND)
        entry = {"id": sub, config.id_token_key: token}
        access = tokens.get("access_token")
        if isinstance(access, str) and access and len(access) <= MAX_TOKEN_LENGTH:
            # Keycloak's adapter (as Parse's) checks the access token, a JWT of the realm, not the ID token.
            entry["access_token"] = access
        return entry

    async def _access_token_entry(self, config: WebConfig, tokens: dict[str, Any]) -> dict[str, Any]:
        """``{id, access_token}``: the id as the provider's user-info endpoint gives it; the adapter
        then checks the access token against the provider as for any client."""
        access = tokens.get("access_token")
        if not isinstance(access, str) or not access or len(access) > MAX_TOKEN_LENGTH:
            raise FlowError("server_error", "The provider sent no access token.")
        assert config.user_info_url is not None  # required for this mode (web_config)
        status, info = await self._call("GET", config.user_info_url, config,
                                        headers={"Authorization": f"Bearer {access}"})
        if status != 200 or not isinstance(info, dict):
            raise FlowError("access_denied", f"The provider's user info was refused ({status}).")
        fields = (config.user_id_field,) if config.user_id_field else ("sub", "id")
        account = next((info[f] for f in fields if info.get(f) not in (None, "")), None)
        if isinstance(account, int) and not isinstance(account, bool):
            account = str(account)  # GitHub's ids are numbers; authData ids are strings
        if not isinstance(account, str):
            raise FlowError("access_denied", "The provider's user info names no account id.")
        return {"id": account, "access_token": access}

    # --- 3. the handoff ------------------------------------------------------------------------------

    async def redeem(self, code: Any) -> dict[str, Any]:
        """The app's one-time ``code`` for what the flow ended with (the session), once."""
        if not isinstance(code, str) or not code:
            raise ParseError(Code.OBJECT_NOT_FOUND, "The sign-in code is invalid or expired.")
        taken = await self.challenges.take(HANDOFF, digest(code))
        if taken is None:
            raise ParseError(Code.OBJECT_NOT_FOUND, "The sign-in code is invalid or expired.")
        return taken.data
