"""Facebook Login, as Parse Server 9's ``facebook`` adapter.

- Standard Login: ``authData.facebook`` is ``{id, access_token}``. The Graph API's ``/me`` must name
  ``id`` for the token, and ``/app`` must name one of ``appIds`` (the token was issued to your app).
  With ``appSecret``, each call carries ``appsecret_proof`` (HMAC-SHA256 of the token).
- Limited Login: ``{id, token}``, an ID token signed by Facebook (RS256, Facebook's key set) with
  ``aud`` among ``appIds``, issued by https://www.facebook.com, whose ``sub`` is ``id``.

``appIds`` given as a string is one app id, compared whole: a string once made Parse's ``includes``
match any substring of it (a security advisory), so ``"123456"`` must not accept app ``"123"``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AdapterContext, AuthRequest, AuthResult
from bastion.domain.auth_providers.fetch import FetchError, check_url
from bastion.domain.auth_providers.idtoken import (
    JwksAdapter,
    check_issuer,
    check_subject,
    refused,
    string_list,
)
from bastion.domain.auth_providers.remote import request_json, request_timeout

log = logging.getLogger("bastion.auth")

TOKEN_ISSUER = "https://www.facebook.com"
GRAPH_API_URL = "https://graph.facebook.com/"
INVALID = "Facebook auth is invalid for this user."


class FacebookAdapter(JwksAdapter):
    DEFAULT_JWKS_URI = TOKEN_ISSUER + "/.well-known/oauth/openid/jwks/"
    OPTIONS = JwksAdapter.OPTIONS | {"appSecret", "graphApiUrl"}

    def validate_options(self, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        self.app_ids: tuple[str, ...] = string_list(options.get("appIds"), "appIds")
        secret = options.get("appSecret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise ValueError("appSecret must be a non-empty string")
        self.app_secret: str | None = secret
        graph = options.get("graphApiUrl", GRAPH_API_URL)
        if not isinstance(graph, str):
            raise ValueError("graphApiUrl must be a URL")
        check_url(graph, "graphApiUrl")
        self.graph_api_url = graph.rstrip("/") + "/"

    def setup(self, context: AdapterContext) -> None:
        super().setup(context)
        self.timeout = request_timeout(context.options)

    async def validate_app_id(self, app_ids: Any, auth_data: dict[str, Any], request: AuthRequest) -> None:
        if auth_data.get("token"):
            return  # Limited Login: the ID token's audience is checked instead
        data = await self._graph("app", auth_data.get("access_token"))
        # The normalized list, never the raw option (a string would match substrings).
        if not isinstance(data, dict) or data.get("id") not in self.app_ids:
            raise refused(INVALID)

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        if auth_data.get("token"):
            claims = await self.verifier.verify(auth_data["token"], self.app_ids)
            check_issuer(claims, (TOKEN_ISSUER,),
                         f"id token not issued by correct OpenID provider - expected: {TOKEN_ISSUER}")
            check_subject(claims, auth_data.get("id"))
            return None
        data = await self._graph("me", auth_data.get("access_token"), fields="id")
        user_id = auth_data.get("id")
        if not isinstance(data, dict) or not isinstance(user_id, str) or str(data.get("id")) != user_id:
            raise refused(INVALID)
        return None

    async def _graph(self, path: str, access_token: Any, **params: str) -> Any:
        if not isinstance(access_token, str) or not access_token:
            raise refused(INVALID)
        params["access_token"] = access_token
        if self.app_secret:
            params["appsecret_proof"] = hmac.new(self.app_secret.encode(), access_token.encode(),
                                                 hashlib.sha256).hexdigest()
        try:
            status, data = await request_json(self.http, "GET", self.graph_api_url + path, self.timeout,
                                              params=params)
        except FetchError as error:
            log.warning("provider %s: the Graph API did not answer: %s", self.name, error)
            raise refused(INVALID) from None
        if status != 200:
            return None  # Graph errors ({"error": …}) name no id: refused by the caller
        return data
