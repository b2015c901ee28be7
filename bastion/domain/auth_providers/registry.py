"""Which authData providers this server accepts, and the checks Parse Server 9 makes before any of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bastion.domain.auth_providers.anonymous import AnonymousProvider
from bastion.domain.auth_providers.base import PROVIDER_NAME, AuthProvider, string_id, unsupported
from bastion.domain.auth_providers.oidc import OidcConfig, OidcProvider


class ProviderRegistry:
    def __init__(self, providers: Mapping[str, AuthProvider] | None = None) -> None:
        self._providers: dict[str, AuthProvider] = {}
        for name, provider in (providers or {}).items():
            self.register(name, provider)

    @classmethod
    def from_options(
        cls,
        auth: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        enable_anonymous_users: bool = True,
        http: httpx.AsyncClient | None = None,
    ) -> ProviderRegistry:
        """Parse Server's ``auth`` option: ``{"<name>": {"oidc": true, "issuer": …, "clientId": …}}``
        for OpenID Connect providers, ``{"anonymous": {"enabled": false}}`` to refuse anonymous users.
        Raises ValueError for a configuration it cannot use."""
        registry = cls()
        auth = auth or {}
        for name, options in auth.items():
            if not isinstance(options, Mapping):
                raise ValueError(f"auth provider {name!r}: options must be an object")
        anonymous = auth.get("anonymous", {})
        if set(anonymous) - {"enabled"}:
            raise ValueError("the anonymous provider takes no options but enabled")
        if enable_anonymous_users and anonymous.get("enabled", True) is not False:
            registry.register("anonymous", AnonymousProvider())
        for name, options in auth.items():
            if name == "anonymous":
                continue
            if options.get("oidc") is not True:
                raise ValueError(
                    f"auth provider {name!r}: only OpenID Connect providers (oidc: true) are built in"
                )
            if options.get("enabled", True) is False:
                continue
            registry.register(name, OidcProvider(name, OidcConfig.from_options(options), http=http))
        return registry

    def register(self, name: str, provider: AuthProvider) -> None:
        if not PROVIDER_NAME.fullmatch(name):
            raise ValueError(f"auth provider name {name!r} must be letters, digits and _")
        self._providers[name] = provider

    def names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def get(self, name: str) -> AuthProvider:
        """The provider, or 252 "This authentication method is unsupported." (unknown or disabled)."""
        provider = self._providers.get(name)
        if provider is None:
            raise unsupported()
        return provider

    async def validate(self, name: str, auth_data: Any) -> None:
        """Check one ``authData.<name>`` entry (an unlink, ``null``, is not the registry's business)."""
        provider = self.get(name)
        if not isinstance(auth_data, dict):
            raise unsupported()
        await provider.validate(auth_data)

    def lookup_id(self, name: str, auth_data: Any) -> str | None:
        """The id to find an existing user by (``authData.<name>.id``), as Parse Server 9 computes it:
        None for an unknown provider or a missing/empty id, 162 for an id that is not a string."""
        provider = self._providers.get(name)
        if provider is None or not isinstance(auth_data, dict) or not auth_data.get("id"):
            return None
        string_id(name, auth_data)  # 162 before the provider sees it
        return provider.id_of(auth_data)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
