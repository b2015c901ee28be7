"""VK (VKontakte), as Parse Server 9 keeps it: deprecated and insecure only.

The client sends ``{id, access_token}``; the server checks its own app credentials with a
``client_credentials`` grant at ``oauth.vk.com``, then asks ``users.get`` with the user's token
and wants the same id. It works only with the provider's ``enableInsecureAuth: true`` and the
server's ``--enable-insecure-auth-adapters``; otherwise every request is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult
from bastion.domain.auth_providers.remote import Answer, Unreachable, call, request_timeout, url_option
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

INVALID = "Vk auth is invalid for this user."
_OPTIONS = frozenset({"enabled", "module", "appIds", "appSecret", "apiVersion", "enableInsecureAuth",
                      "requestTimeout", "oauthUrl", "usersUrl"})


def _refused(message: str = INVALID) -> ParseError:
    return ParseError(Code.OBJECT_NOT_FOUND, message)


class VkontakteAdapter(AuthAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.insecure = False
        self.app_id = ""
        self.app_secret = ""
        self.api_version = "5.124"
        self.oauth_url = ""
        self.users_url = ""
        self.timeout = 10.0

    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, _OPTIONS)
        flag = options.get("enableInsecureAuth", False)
        if not isinstance(flag, bool):
            raise ValueError("enableInsecureAuth must be true or false")
        self.insecure = flag and self.insecure_allowed
        if not self.insecure:
            log.warning("auth provider %s: VK works only with enableInsecureAuth: true and "
                        "--enable-insecure-auth-adapters; its requests are refused", self.name)
        app_ids = options.get("appIds")
        if isinstance(app_ids, list):
            app_ids = app_ids[0] if app_ids else None
        secret = options.get("appSecret")
        if self.insecure and (not isinstance(app_ids, str | int) or not app_ids or not isinstance(secret, str)
                              or not secret):
            raise ValueError("appIds and appSecret are required (Vk auth is not configured).")
        self.app_id, self.app_secret = str(app_ids or ""), str(secret or "")
        version = options.get("apiVersion", "5.124")
        if not isinstance(version, str) or not version:
            raise ValueError("apiVersion must be a string such as '5.124'")
        self.api_version = version
        self.oauth_url = url_option(options, "oauthUrl", "https://oauth.vk.com/access_token")
        self.users_url = url_option(options, "usersUrl", "https://api.vk.com/method/users.get")
        self.timeout = request_timeout(options)

    async def _get(self, url: str, params: dict[str, str]) -> Answer:
        try:
            return await call(self.http, "GET", url, self.timeout, params=params)
        except Unreachable as error:
            log.warning("auth provider %s: VK did not answer: %s", self.name, error)
            raise _refused() from None

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        if not self.insecure:
            raise _refused("Vk only works with enableInsecureAuth: true")
        token = auth_data.get("access_token")
        if not isinstance(token, str) or not token:
            raise _refused()
        app = await self._get(self.oauth_url, {"client_id": self.app_id, "client_secret": self.app_secret,
                                               "v": self.api_version, "grant_type": "client_credentials"})
        granted = app.json() if app.ok else None
        if not isinstance(granted, dict) or not granted.get("access_token"):
            raise _refused("Vk appIds or appSecret is incorrect.")
        answer = await self._get(self.users_url, {"access_token": token, "v": self.api_version})
        data = answer.json() if answer.ok else None
        users = data.get("response") if isinstance(data, dict) else None
        first = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
        account = first.get("id")
        if isinstance(account, bool) or not isinstance(account, int | str) or str(account) != auth_data.get("id"):
            raise _refused()
        return None

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        return {"id": auth_data.get("id")}
