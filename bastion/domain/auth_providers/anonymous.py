"""The ``anonymous`` provider: the client picks a random id (the SDKs use a UUID); nothing to check."""

from __future__ import annotations

from typing import Any

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult


class AnonymousProvider(AuthAdapter):
    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        # Parse Server's anonymous adapter resolves for any authData: whoever knows the id is the user.
        return None

    def id_of(self, auth_data: dict[str, Any]) -> str:
        return super().id_of(auth_data)
