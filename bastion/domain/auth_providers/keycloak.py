"""Keycloak, as Parse Server 9's ``keycloak`` adapter: ``authData.keycloak`` is ``{id, access_token}``
(optionally ``roles`` and ``groups``). The access token must be signed (RS256) by a key of the realm
(``<auth-server-url>/realms/<realm>/protocol/openid-connect/certs``, or ``jwksUri``), be current,
be issued by ``<auth-server-url>/realms/<realm>`` to ``client-id`` (``azp``), name ``id`` as ``sub``,
and carry exactly the ``roles`` and ``groups`` the client sent (both absent, or the same sets).

Options: ``config``, the keycloak.json of the client (``auth-server-url``, ``realm``, ``client-id``),
as Parse takes it. Parse 9.10's code checks the token locally, as here (its comment mentions userinfo).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bastion.domain.auth_providers.adapter import AuthRequest, AuthResult
from bastion.domain.auth_providers.idtoken import JwksAdapter, check_issuer, check_subject, refused


class KeycloakAdapter(JwksAdapter):
    OPTIONS = JwksAdapter.OPTIONS | {"config"}

    def validate_options(self, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        config = options.get("config")
        if not isinstance(config, Mapping):
            raise ValueError("config must be the keycloak.json object (auth-server-url, realm, client-id)")
        server, realm, client = (config.get(k) for k in ("auth-server-url", "realm", "client-id"))
        if not isinstance(server, str) or not server or not isinstance(realm, str) or not realm:
            raise ValueError("config needs auth-server-url and realm")
        if not isinstance(client, str) or not client:
            raise ValueError("config needs client-id")
        self.issuer = f"{server}/realms/{realm}"
        self.client_id = client

    def default_jwks_uri(self, options: Mapping[str, Any]) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        token, user_id = auth_data.get("access_token"), auth_data.get("id")
        if not token or not user_id:
            raise refused("Missing access token and/or User id")
        claims = await self.verifier.verify(token, None)  # an access token: no audience check, as Parse
        check_issuer(claims, (self.issuer,), f"access token not issued by correct provider - expected: {self.issuer}")
        if claims.get("azp") != self.client_id:
            raise refused(f"access token is not authorized for this client - expected: {self.client_id} "
                          f"| from: {claims.get('azp', 'undefined')}")
        check_subject(claims, user_id)
        if not _same(claims.get("roles"), auth_data.get("roles")) or not _same(
                claims.get("groups"), auth_data.get("groups")):
            raise refused("Invalid authentication")
        return None


def _same(claimed: Any, sent: Any) -> bool:
    """Parse's match: both absent or equal values, or two lists with the same elements in any order."""
    if isinstance(claimed, list) and isinstance(sent, list):
        return sorted(map(_key, claimed)) == sorted(map(_key, sent))
    if isinstance(claimed, list | dict) or isinstance(sent, list | dict):
        return False
    return bool(claimed == sent and type(claimed) is type(sent))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
