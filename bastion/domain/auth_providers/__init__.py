"""authData providers: a registry, ``anonymous``, and generic OpenID Connect."""

from bastion.domain.auth_providers.anonymous import AnonymousProvider
from bastion.domain.auth_providers.base import UNSUPPORTED_SERVICE, AuthProvider
from bastion.domain.auth_providers.oidc import OidcConfig, OidcProvider
from bastion.domain.auth_providers.registry import ProviderRegistry

__all__ = [
    "UNSUPPORTED_SERVICE",
    "AnonymousProvider",
    "AuthProvider",
    "OidcConfig",
    "OidcProvider",
    "ProviderRegistry",
]
