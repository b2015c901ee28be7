"""The OAuth 2 "code" providers Parse Server 9 ships (its ``BaseCodeAuthAdapter`` subclasses).

Each calls a token endpoint and a user API whose URLs are options (defaults: the real provider).
Where Parse Server 9.10's adapter cannot work against the real provider (Line's ``userId``, QQ's
``openid`` and its GET with a body, WeChat's ``openid``, Spotify's token answer, GitHub's and
Weibo's numeric ids), this follows the provider's documented API and says so below.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from bastion.domain.auth_providers.code_base import CodeAuthAdapter, id_text, oauth_error, token_of
from bastion.errors import Code, ParseError

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

__all__ = ["CodeAuthAdapter", "GitHubAdapter", "GooglePlayGamesAdapter", "InstagramAdapter", "LineAdapter",
           "LinkedInAdapter", "MicrosoftAdapter", "QqAdapter", "SpotifyAdapter", "WeChatAdapter", "WeiboAdapter"]


def _form(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


class GitHubAdapter(CodeAuthAdapter):
    display = "GitHub"
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://github.com/login/oauth/access_token",
                                      "userUrl": "https://api.github.com/user"}

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("POST", "tokenUrl", headers={"Accept": "application/json"}, json={
            "client_id": self.client_id, "client_secret": self.client_secret, "code": auth_data["code"]})
        if not answer.ok:
            raise ParseError(Code.VALIDATION_ERROR, f"Failed to exchange code for token: {answer.reason}")
        error = oauth_error(answer.json())
        if error:  # GitHub answers 200 with an error for a wrong code or client secret
            raise self.refused(error)
        return token_of(answer, self.refused())

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "userUrl", headers={
            "Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        if not answer.ok:
            raise ParseError(Code.VALIDATION_ERROR, f"Failed to fetch GitHub user: {answer.reason}")
        user = answer.json()
        account = id_text(user.get("id")) if isinstance(user, dict) else None
        if account is None or not user.get("login"):
            raise ParseError(Code.VALIDATION_ERROR, "Invalid GitHub user data received.")
        return account  # GitHub's ids are numbers; authData ids are strings


class _BearerProfileAdapter(CodeAuthAdapter):
    """A form-encoded ``authorization_code`` grant, then a profile API with a bearer token; every
    failure answered as ``failure``."""

    failure: ClassVar[str] = ""

    def token_form(self, auth_data: dict[str, Any]) -> dict[str, str]:
        return _form(grant_type="authorization_code", code=auth_data["code"],
                     redirect_uri=self.text(auth_data, "redirect_uri"), client_id=self.client_id,
                     client_secret=self.client_secret)

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("POST", "tokenUrl", headers=FORM, data=self.token_form(auth_data))
        if not answer.ok:
            raise self.refused(self.failure)
        return token_of(answer, self.refused(self.failure))

    def profile_headers(self, access_token: str, auth_data: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {access_token}"}

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "userUrl", headers=self.profile_headers(access_token, auth_data))
        user = answer.json() if answer.ok else None
        account = id_text(user.get("id")) if isinstance(user, dict) else None
        if account is None:
            raise self.refused(self.failure)
        return account


class MicrosoftAdapter(_BearerProfileAdapter):
    display = "Microsoft"
    failure = "Microsoft API request failed."
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                                      "userUrl": "https://graph.microsoft.com/v1.0/me"}


class LinkedInAdapter(_BearerProfileAdapter):
    display = "LinkedIn"
    failure = "LinkedIn API request failed."
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://www.linkedin.com/oauth/v2/accessToken",
                                      "userUrl": "https://api.linkedin.com/v2/me"}

    def profile_headers(self, access_token: str, auth_data: dict[str, Any]) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {access_token}", "x-li-format": "json"}
        if auth_data.get("is_mobile_sdk"):
            headers["x-li-src"] = "msdk"
        return headers


class SpotifyAdapter(_BearerProfileAdapter):
    """Authorization code with PKCE, as Parse's: the client's ``code_verifier`` proves the code is
    its own, and no client secret is sent (so ``clientSecret`` is optional here)."""

    display = "spotify"
    failure = "Spotify API request failed."
    NEEDS_SECRET = False
    DROPPED = ("code", "redirect_uri", "code_verifier")
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://accounts.spotify.com/api/token",
                                      "userUrl": "https://api.spotify.com/v1/me"}

    def token_form(self, auth_data: dict[str, Any]) -> dict[str, str]:
        code, redirect, verifier = (self.text(auth_data, key) for key in ("code", "redirect_uri", "code_verifier"))
        if not code or not redirect or not verifier:
            raise self.refused("Spotify auth configuration authData.code and/or authData.redirect_uri and/or "
                               "authData.code_verifier.")
        return _form(grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier=verifier,
                     client_id=self.client_id)


class InstagramAdapter(CodeAuthAdapter):
    """The redirect URI is the client's ``redirect_uri`` or the ``redirectUri`` option (Parse 9.10
    sends an unset option). The token goes in the query, as Instagram's Graph API takes it."""

    display = "Instagram"
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://api.instagram.com/oauth/access_token",
                                      "userUrl": "https://graph.instagram.com/me"}
    EXTRA_OPTIONS = frozenset({"redirectUri"})
    failure = "Instagram API request failed."

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        redirect = self.text(auth_data, "redirect_uri") or self.text(self.options, "redirectUri")
        answer = await self.fetch("POST", "tokenUrl", headers=FORM, data=_form(
            client_id=self.client_id, client_secret=self.client_secret, grant_type="authorization_code",
            redirect_uri=redirect, code=auth_data["code"]))
        error = oauth_error(answer.json())
        if error:
            raise self.refused(error)
        if not answer.ok:
            raise self.refused(self.failure)
        return token_of(answer, self.refused(self.failure))

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "userUrl", params={"fields": "id", "access_token": access_token})
        user = answer.json() if answer.ok else None
        account = id_text(user.get("id")) if isinstance(user, dict) else None
        if account is None:
            raise self.refused(self.failure)
        return account


class LineAdapter(CodeAuthAdapter):
    """LINE's profile API names the account ``userId`` (Parse 9.10 reads ``id``, which it lacks)."""

    display = "Line"
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://api.line.me/oauth2/v2.1/token",
                                      "userUrl": "https://api.line.me/v2/profile"}

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("POST", "tokenUrl", headers=FORM, data=_form(
            client_id=self.client_id, client_secret=self.client_secret, grant_type="authorization_code",
            redirect_uri=self.text(auth_data, "redirect_uri"), code=auth_data["code"]))
        if not answer.ok:
            raise self.refused(f"Failed to exchange code for token: {answer.reason}")
        error = oauth_error(answer.json())
        if error:
            raise self.refused(error)
        return token_of(answer, self.refused())

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "userUrl", headers={"Authorization": f"Bearer {access_token}"})
        if not answer.ok:
            raise self.refused(f"Failed to fetch Line user: {answer.reason}")
        user = answer.json()
        account = id_text(user.get("userId")) if isinstance(user, dict) else None
        if account is None:
            raise ParseError(Code.VALIDATION_ERROR, "Invalid Line user data received.")
        return account


def _callback_json(text: str) -> Any:
    """QQ's ``callback( {...} );`` answers (plain JSON too); None when neither."""
    start, end = text.find("("), text.rfind(")")
    body = text[start + 1:end] if start != -1 and end > start else text
    try:
        return json.loads(body)
    except ValueError:
        return None


class QqAdapter(CodeAuthAdapter):
    """QQ Connect: the token endpoint takes a GET with query parameters and answers a form (or
    ``callback(…)`` on errors); ``/oauth2.0/me`` answers ``callback({"client_id", "openid"})``.
    The account id is the ``openid``, and a token issued to another app (``client_id``) is refused.
    (Parse 9.10 sends the GET with a body and reads an ``id`` QQ does not give.)"""

    display = "qq"
    failure = "qq API request failed."
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://graph.qq.com/oauth2.0/token",
                                      "userUrl": "https://graph.qq.com/oauth2.0/me"}

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "tokenUrl", params=_form(
            grant_type="authorization_code", client_id=self.client_id, client_secret=self.client_secret,
            redirect_uri=self.text(auth_data, "redirect_uri"), code=auth_data["code"], fmt="json"))
        if not answer.ok:
            raise self.refused(self.failure)
        data = _callback_json(answer.text)
        if not isinstance(data, dict):
            data = answer.form()
        if data.get("error") or data.get("code"):
            raise self.refused()
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise self.refused()
        return token

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "userUrl", params={"access_token": access_token},
                                  headers={"Authorization": f"Bearer {access_token}"})
        if not answer.ok:
            raise self.refused(self.failure)
        data = _callback_json(answer.text)
        if not isinstance(data, dict) or data.get("error"):
            raise self.refused()
        if self.client_id and str(data.get("client_id", "")) != self.client_id:
            raise self.refused()
        account = id_text(data.get("openid"))
        if account is None:
            raise self.refused()
        return account


class WeChatAdapter(CodeAuthAdapter):
    """The code exchange answers the ``openid`` (the account id); ``/sns/auth`` then confirms the
    token belongs to it (Parse 9.10 compares with an ``id`` that answer lacks)."""

    display = "WeChat"
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://api.weixin.qq.com/sns/oauth2/access_token",
                                      "userUrl": "https://api.weixin.qq.com/sns/auth"}

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("GET", "tokenUrl", params={
            "appid": self.client_id, "secret": self.client_secret, "code": auth_data["code"],
            "grant_type": "authorization_code"})
        data = answer.json()
        if not answer.ok or not isinstance(data, dict) or data.get("errcode"):
            raise self.refused()
        openid, token = id_text(data.get("openid")), data.get("access_token")
        if openid is None or not isinstance(token, str) or not token:
            raise self.refused()
        if auth_data.get("id") and auth_data["id"] != openid:
            raise self.refused()
        auth_data["id"] = openid
        return token

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        openid = self.text(auth_data, "id")
        if openid is None:
            raise self.refused()
        answer = await self.fetch("GET", "userUrl", params={"access_token": access_token, "openid": openid})
        data = answer.json()
        if not answer.ok or not isinstance(data, dict) or data.get("errcode") != 0:
            raise self.refused()
        return openid


class WeiboAdapter(CodeAuthAdapter):
    """``get_token_info`` gives the account (``uid``, a number) and the app (``appkey``) the token
    was issued to: a token of another app is refused."""

    display = "Weibo"
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://api.weibo.com/oauth2/access_token",
                                      "userUrl": "https://api.weibo.com/oauth2/get_token_info"}

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        redirect = self.text(auth_data, "redirect_uri")
        if redirect is None:
            raise self.refused("Weibo auth requires code and redirect_uri to be sent.")
        answer = await self.fetch("POST", "tokenUrl", headers=FORM, data=_form(
            client_id=self.client_id, client_secret=self.client_secret, grant_type="authorization_code",
            code=auth_data["code"], redirect_uri=redirect))
        data = answer.json()
        if not answer.ok or not isinstance(data, dict) or data.get("errcode") or data.get("error"):
            raise self.refused()
        return token_of(answer, self.refused())

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        answer = await self.fetch("POST", "userUrl", headers=FORM, data={"access_token": access_token})
        data = answer.json()
        if not answer.ok or not isinstance(data, dict):
            raise self.refused()
        if self.client_id and str(data.get("appkey", "")) != self.client_id:
            raise self.refused()
        account = id_text(data.get("uid"))
        if account is None:
            raise self.refused()
        return account


class GooglePlayGamesAdapter(CodeAuthAdapter):
    """Google Play Games Services: the server auth code for an access token, then ``players/me``
    names the token's player. (Parse 9.10 asks ``players/{authData.id}``, which answers any player's
    public profile whatever the token: the id would not be checked against the token.)
    The redirect URI is ``redirectUri`` (as Parse reads it) or ``redirect_uri``."""

    display = "gpgames"
    DROPPED = ("code", "redirect_uri", "redirectUri")
    URLS: ClassVar[dict[str, str]] = {"tokenUrl": "https://oauth2.googleapis.com/token",
                                      "userUrl": "https://www.googleapis.com/games/v1/players"}

    async def exchange(self, auth_data: dict[str, Any]) -> str:
        redirect = self.text(auth_data, "redirectUri") or self.text(auth_data, "redirect_uri")
        answer = await self.fetch("POST", "tokenUrl", headers={**FORM, "Accept": "application/json"}, data=_form(
            client_id=self.client_id, client_secret=self.client_secret, code=auth_data["code"],
            redirect_uri=redirect, grant_type="authorization_code"))
        error = oauth_error(answer.json())
        if not answer.ok and error is None:
            raise ParseError(Code.VALIDATION_ERROR, f"Failed to exchange code for token: {answer.reason}")
        if error:
            raise self.refused(error)
        return token_of(answer, self.refused())

    async def account(self, access_token: str, auth_data: dict[str, Any]) -> str:
        wanted = self.text(auth_data, "id")
        url = self.urls["userUrl"].rstrip("/") + "/me"
        answer = await self.fetch("GET", "userUrl", url=url, headers={
            "Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        if not answer.ok:
            raise ParseError(Code.VALIDATION_ERROR,
                             f"Failed to fetch Google Play Games Services user: {answer.reason}")
        user = answer.json()
        player = id_text(user.get("playerId")) if isinstance(user, dict) else None
        if player is None or (wanted is not None and player != wanted):
            raise ParseError(Code.VALIDATION_ERROR, "Invalid Google Play Games Services user data received.")
        return player
