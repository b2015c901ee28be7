"""Sign in with Apple, as Parse Server 9's ``apple`` adapter: ``authData.apple`` is ``{id, token}``
(``id_token`` is accepted too), an ID token signed by Apple (RS256, Apple's key set) for one of the
configured ``clientId`` values (bundle ids or services ids), issued by https://appleid.apple.com,
whose ``sub`` is ``authData.apple.id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AuthRequest, AuthResult
from bastion.domain.auth_providers.idtoken import JwksAdapter, check_issuer, check_subject, string_list

TOKEN_ISSUER = "https://appleid.apple.com"


class AppleAdapter(JwksAdapter):
    DEFAULT_JWKS_URI = TOKEN_ISSUER + "/auth/keys"
    OPTIONS = JwksAdapter.OPTIONS | {"clientId"}

    def validate_options(self, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        # Parse starts without one and then refuses every sign-in ("Apple auth is not configured.").
        self.client_ids = string_list(options.get("clientId"), "clientId")

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        token = auth_data.get("token") or auth_data.get("id_token")
        claims = await self.verifier.verify(token, self.client_ids)
        check_issuer(claims, (TOKEN_ISSUER,),
                     f"id token not issued by correct OpenID provider - expected: {TOKEN_ISSUER}")
        check_subject(claims, auth_data.get("id"))
        return None
