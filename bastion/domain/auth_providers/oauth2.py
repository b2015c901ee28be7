"""Parse Server 9's generic OAuth 2.0 token-introspection adapter (RFC 7662), for any provider name
configured with ``oauth2: true``.

``authData.<name>`` is ``{id, access_token}``. The token is POSTed (form ``token=…``) to
``tokenIntrospectionEndpointUrl`` (with ``authorizationHeader`` as the Authorization header when
set); the answer must say ``active: true`` and carry ``id`` in ``useridField`` (default ``sub``).
With ``appidField``, that field (a string or a list) must name one of ``appIds``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AdapterContext, AuthAdapter, AuthRequest, AuthResult
from bastion.domain.auth_providers.fetch import FetchError, check_url
from bastion.domain.auth_providers.idtoken import refused, string_list
from bastion.domain.auth_providers.remote import request_json, request_timeout

log = logging.getLogger("bastion.auth")

OPTIONS = frozenset({"tokenIntrospectionEndpointUrl", "useridField", "appidField", "appIds",
                     "authorizationHeader", "requestTimeout", "oauth2", "enabled", "module"})
FAILED = "OAuth2 token introspection request failed."
INVALID = "OAuth2 access token is invalid for this user."


class OAuth2Adapter(AuthAdapter):
    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, OPTIONS)
        url = options.get("tokenIntrospectionEndpointUrl")
        if not isinstance(url, str) or not url:
            raise ValueError("tokenIntrospectionEndpointUrl is required (OAuth2 token introspection endpoint URL)")
        check_url(url, "tokenIntrospectionEndpointUrl")
        self.url = url
        self.userid_field = _field(options, "useridField") or "sub"
        self.appid_field = _field(options, "appidField")
        self.app_ids: tuple[str, ...] | None = None
        if self.appid_field is not None:
            # A string is one app id, compared whole (never as a substring).
            self.app_ids = string_list(options.get("appIds"), "appIds (required with appidField)")
        elif options.get("appIds") is not None:
            string_list(options.get("appIds"), "appIds")
        header = options.get("authorizationHeader")
        if header is not None and not isinstance(header, str):
            raise ValueError("authorizationHeader must be a string")
        self.authorization = header

    def setup(self, context: AdapterContext) -> None:
        super().setup(context)
        self.timeout = request_timeout(context.options)

    async def validate_app_id(self, app_ids: Any, auth_data: dict[str, Any], request: AuthRequest) -> None:
        if self.appid_field is None or self.app_ids is None:
            return
        info = await self._introspect(auth_data.get("access_token"))
        value = info.get(self.appid_field)
        values = value if isinstance(value, list) else [value]
        if not any(isinstance(v, str) and v in self.app_ids for v in values):
            raise refused("OAuth2: Invalid app ID.")

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        info = await self._introspect(auth_data.get("access_token"))
        user_id = auth_data.get("id")
        if info.get("active") is not True or not isinstance(user_id, str) or info.get(self.userid_field) != user_id:
            raise refused(INVALID)
        return None

    async def _introspect(self, token: Any) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise refused(INVALID)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        try:
            status, info = await request_json(self.http, "POST", self.url, self.timeout,
                                              data={"token": token}, headers=headers)
        except FetchError as error:
            log.warning("provider %s: the introspection endpoint did not answer: %s", self.name, error)
            raise refused(FAILED) from None
        if not 200 <= status < 300 or not isinstance(info, dict):
            raise refused(FAILED)
        return info


def _field(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{key} must be a field name")
    return value
