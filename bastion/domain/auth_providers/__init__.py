"""authData providers: Parse Server's adapter interface, a registry built from the ``auth`` option,
and the adapters themselves (one module per provider or family)."""

from bastion.domain.auth_providers.adapter import (
    AdapterContext,
    AuthAdapter,
    AuthRequest,
    AuthResult,
    Policy,
)
from bastion.domain.auth_providers.anonymous import AnonymousProvider
from bastion.domain.auth_providers.base import UNSUPPORTED_SERVICE
from bastion.domain.auth_providers.oidc import OidcConfig, OidcProvider
from bastion.domain.auth_providers.registry import AuthConfigError, ProviderRegistry

__all__ = [
    "UNSUPPORTED_SERVICE",
    "AdapterContext",
    "AnonymousProvider",
    "AuthAdapter",
    "AuthConfigError",
    "AuthRequest",
    "AuthResult",
    "OidcConfig",
    "OidcProvider",
    "Policy",
    "ProviderRegistry",
]
