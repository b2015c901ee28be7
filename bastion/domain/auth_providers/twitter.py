"""Twitter (X) sign-in with OAuth 1.0a, as Parse Server 9's ``twitter`` adapter intends it.

The client runs the 3-legged flow (request token, user authorization) and sends the request token
and the verifier: ``{oauth_token, oauth_verifier}`` (and ``oauth_token_secret``, the request token's
secret, when it has it). Before the user is looked up, the server exchanges them at
``oauth/access_token`` with its consumer key; Twitter answers the access token and the ``user_id``,
which becomes ``authData.twitter.id`` (a different ``id`` sent along is refused). The access token
and its secret are stored as ``auth_token`` / ``auth_token_secret``; answers show only ``{id}``.

The deprecated form ``{id, auth_token, auth_token_secret}`` (also spelled ``oauth_token`` /
``oauth_token_secret``) is checked with a signed ``account/verify_credentials`` call, only with the
provider's ``enableInsecureAuth: true`` and the server's ``--enable-insecure-auth-adapters``.

Requests are signed (HMAC-SHA1) by ``oauthlib``. Parse 9.10's adapter reads Twitter's form answer
as JSON and calls an undefined method in its code flow; this follows Twitter's documented API.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from oauthlib.oauth1 import Client

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult
from bastion.domain.auth_providers.remote import Answer, Unreachable, call, request_timeout, url_option
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

INVALID = "Twitter auth is invalid for this user."
_OPTIONS = frozenset({"enabled", "module", "appIds", "consumer_key", "consumer_secret", "consumerKey",
                      "consumerSecret", "enableInsecureAuth", "requestTimeout", "accessTokenUrl",
                      "verifyCredentialsUrl"})
_DROPPED = ("oauth_token", "oauth_token_secret", "oauth_verifier", "code", "redirect_uri")


def _refused(message: str = INVALID) -> ParseError:
    return ParseError(Code.OBJECT_NOT_FOUND, message)


def _text(auth_data: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = auth_data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class TwitterAdapter(AuthAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.insecure = False
        self.consumer_key = ""
        self.consumer_secret = ""
        self.access_token_url = ""
        self.verify_url = ""
        self.timeout = 10.0

    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, _OPTIONS)
        self.insecure = self.insecure_option(options)
        key = options.get("consumer_key", options.get("consumerKey"))
        secret = options.get("consumer_secret", options.get("consumerSecret"))
        # Both flows sign their requests with the consumer's key.
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ValueError("consumer_key and consumer_secret are required.")
        self.consumer_key, self.consumer_secret = key, secret
        self.access_token_url = url_option(options, "accessTokenUrl", "https://api.twitter.com/oauth/access_token")
        self.verify_url = url_option(options, "verifyCredentialsUrl",
                                     "https://api.twitter.com/1.1/account/verify_credentials.json")
        self.timeout = request_timeout(options)

    async def _signed(self, method: str, url: str, token: str, token_secret: str,
                      verifier: str | None = None) -> Answer:
        client = Client(self.consumer_key, client_secret=self.consumer_secret, resource_owner_key=token,
                        resource_owner_secret=token_secret, verifier=verifier)
        # No body: the verifier travels in the signed Authorization header (RFC 5849 section 3.5.1).
        signed_url, signed_headers, _ = client.sign(url, http_method=method)
        try:
            return await call(self.http, method, signed_url, self.timeout, headers=signed_headers)
        except Unreachable as error:
            log.warning("auth provider %s: Twitter did not answer: %s", self.name, error)
            raise _refused() from None

    async def before_find(self, auth_data: dict[str, Any]) -> None:
        verifier = _text(auth_data, "oauth_verifier")
        if verifier is None and self.insecure:
            await self._check_insecure(auth_data)
            return
        token = _text(auth_data, "oauth_token")
        if verifier is None or token is None:
            raise ParseError(Code.VALIDATION_ERROR, "Twitter oauth_token and oauth_verifier are required.")
        answer = await self._signed("POST", self.access_token_url, token,
                                    _text(auth_data, "oauth_token_secret") or "", verifier)
        granted = answer.form() if answer.ok else {}
        user_id, access, secret = (granted.get(k) for k in ("user_id", "oauth_token", "oauth_token_secret"))
        if not user_id or not access or not secret:
            raise _refused()
        if auth_data.get("id") and auth_data["id"] != user_id:
            raise _refused()
        for key in _DROPPED:
            auth_data.pop(key, None)
        auth_data.update(id=user_id, auth_token=access, auth_token_secret=secret)
        if granted.get("screen_name"):
            auth_data["screen_name"] = granted["screen_name"]

    async def _check_insecure(self, auth_data: dict[str, Any]) -> None:
        token = _text(auth_data, "auth_token", "oauth_token")
        secret = _text(auth_data, "auth_token_secret", "oauth_token_secret")
        if token is None or secret is None:
            raise _refused("Twitter insecure auth requires oauth_token and oauth_token_secret.")
        answer = await self._signed("GET", self.verify_url, token, secret)
        user = answer.json() if answer.ok else None
        account = user.get("id_str") if isinstance(user, dict) else None
        if not isinstance(account, str) or account != auth_data.get("id"):
            raise _refused()

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        # before_find has checked the entry; one still holding a verifier never went through it.
        if "oauth_verifier" in auth_data or not auth_data.get("id"):
            raise _refused()
        return None

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        return {"id": auth_data.get("id")}
