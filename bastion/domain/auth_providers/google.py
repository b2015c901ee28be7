"""Google Sign-In, as Parse Server 9's ``google`` adapter: ``authData.google`` is ``{id, id_token}``
(``token`` is accepted too), an ID token signed by Google (RS256, Google's key set) for the configured
``clientId`` (a string or a list), issued by accounts.google.com or https://accounts.google.com,
whose ``sub`` is ``authData.google.id``.

Parse Server 9 no longer takes Google access tokens (the tokeninfo endpoint): neither does Bastion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AuthRequest, AuthResult
from bastion.domain.auth_providers.idtoken import JwksAdapter, check_issuer, check_subject, string_list

TOKEN_ISSUER = "accounts.google.com"
HTTPS_TOKEN_ISSUER = "https://accounts.google.com"


class GoogleAdapter(JwksAdapter):
    DEFAULT_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"
    OPTIONS = JwksAdapter.OPTIONS | {"clientId"}

    def validate_options(self, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        self.client_ids = string_list(options.get("clientId"), "clientId")

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        token = auth_data.get("id_token") or auth_data.get("token")
        claims = await self.verifier.verify(token, self.client_ids)
        check_issuer(claims, (TOKEN_ISSUER, HTTPS_TOKEN_ISSUER),
                     f"id token not issued by correct provider - expected: {TOKEN_ISSUER} or {HTTPS_TOKEN_ISSUER}")
        check_subject(claims, auth_data.get("id"))
        return None
