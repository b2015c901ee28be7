"""The ``anonymous`` provider: the client picks a random id (the SDKs use a UUID); nothing to check."""

from __future__ import annotations

from typing import Any

from bastion.domain.auth_providers.base import string_id


class AnonymousProvider:
    async def validate(self, auth_data: dict[str, Any]) -> None:
        # Parse Server's anonymous adapter resolves for any authData: whoever knows the id is the user.
        return None

    def id_of(self, auth_data: dict[str, Any]) -> str:
        return string_id("anonymous", auth_data)
