"""Which authData providers this server accepts, built from Parse Server's ``auth`` option.

Each entry of ``auth`` names a provider and its options, as Parse Server takes them:

- a provider Parse Server ships (``{"google": {"clientId": …}}``): the built-in adapter;
- ``{"oauth2": true, …}``: Parse's generic token-introspection adapter under that name;
- ``{"oidc": true, "issuer": …}``: Bastion's generic OpenID Connect adapter;
- ``{"module": "name"}``: an adapter cloud code registered (``cloud.auth_adapter``), or
  ``"package.module:Attribute"`` (a class or an instance);
- ``{"enabled": false}``: the provider is refused (252).

``anonymous`` is on unless turned off. A configuration that cannot work raises ``AuthConfigError``
with one line naming the provider and the key, which stops start-up.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bastion.domain.auth_providers.adapter import POLICIES, AdapterContext, AuthAdapter
from bastion.domain.auth_providers.base import PROVIDER_NAME, string_id, unsupported
from bastion.domain.auth_providers.web_config import WebConfig, web_config

log = logging.getLogger("bastion.auth")

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # an adapter's call to its provider never hangs a request

# The providers Parse Server 9 ships, by their authData key: module (in this package) and class.
# Imported when configured, so that an unused provider costs nothing.
BUILT_IN: dict[str, str] = {
    "anonymous": "anonymous:AnonymousProvider",
    "apple": "apple:AppleAdapter",
    "facebook": "facebook:FacebookAdapter",
    "gcenter": "gcenter:GameCenterAdapter",
    "github": "code_providers:GitHubAdapter",
    "google": "google:GoogleAdapter",
    "gpgames": "code_providers:GooglePlayGamesAdapter",
    "instagram": "code_providers:InstagramAdapter",
    "keycloak": "keycloak:KeycloakAdapter",
    "ldap": "ldap:LdapAdapter",
    "line": "code_providers:LineAdapter",
    "linkedin": "code_providers:LinkedInAdapter",
    "mfa": "mfa:MfaAdapter",
    "microsoft": "code_providers:MicrosoftAdapter",
    "qq": "code_providers:QqAdapter",
    "spotify": "code_providers:SpotifyAdapter",
    "twitter": "twitter:TwitterAdapter",
    "vkontakte": "vkontakte:VkontakteAdapter",
    "wechat": "code_providers:WeChatAdapter",
    "weibo": "code_providers:WeiboAdapter",
    "webauthn": "passkeys:PasskeyAdapter",
    "email": "email_codes:EmailCodeAdapter",
}
OAUTH2 = "oauth2:OAuth2Adapter"
# Options every entry may have, whatever the adapter.
COMMON_OPTIONS = frozenset({"enabled", "module", "oauth2", "oidc", "appIds"})

AdapterFactory = Callable[[], AuthAdapter]


class AuthConfigError(ValueError):
    """The ``auth`` option cannot work: one line naming the provider and the key."""


def _load(spec: str) -> AdapterFactory:
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(f"bastion.domain.auth_providers.{module_name}")
    return getattr(module, attribute)  # type: ignore[no-any-return]


def _import_module_option(provider: str, spec: str) -> AdapterFactory:
    """``"package.module:Attribute"``: a class (made with no arguments) or an adapter instance."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AuthConfigError(f"auth provider {provider!r}: module must be a cloud-registered adapter name "
                              f"or 'package.module:Attribute', not {spec!r}")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise AuthConfigError(f"auth provider {provider!r}: module {spec!r} cannot be loaded: {error}") from None
    return _as_factory(provider, target)


def _as_factory(provider: str, target: Any) -> AdapterFactory:
    if isinstance(target, AuthAdapter):
        return lambda: target
    if isinstance(target, type) and issubclass(target, AuthAdapter):
        return target
    raise AuthConfigError(f"auth provider {provider!r}: module must name an AuthAdapter class or instance")


class ProviderRegistry:
    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self._providers: dict[str, AuthAdapter] = {}
        # Providers whose entry has ``web``: the server-side sign-in flow for web apps (web_sign_in.py).
        self.web: dict[str, WebConfig] = {}
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)

    @classmethod
    def from_options(
        cls,
        auth: Mapping[str, Any] | None = None,
        *,
        enable_anonymous_users: bool = True,
        enable_insecure_auth_adapters: bool = False,
        custom: Mapping[str, Any] | None = None,
        services: Mapping[str, Any] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> ProviderRegistry:
        """The providers of Parse Server's ``auth`` option; ``custom`` holds the adapters cloud code
        registered by name (classes or instances). Raises AuthConfigError for an unusable entry."""
        registry = cls(http)
        auth = dict(auth or {})
        custom = dict(custom or {})
        for name, options in auth.items():
            if not isinstance(name, str) or not PROVIDER_NAME.fullmatch(name):
                raise AuthConfigError(f"auth provider {name!r}: the name must be letters, digits and _")
            if not isinstance(options, Mapping):
                raise AuthConfigError(f"auth provider {name!r}: options must be an object")
            enabled = options.get("enabled", True)
            if not isinstance(enabled, bool):
                raise AuthConfigError(f"auth provider {name!r}: enabled must be true or false")
        anonymous = auth.pop("anonymous", {})
        if set(anonymous) - {"enabled"}:
            raise AuthConfigError("auth provider 'anonymous': takes no options but enabled")
        if enable_anonymous_users and anonymous.get("enabled", True):
            registry._add("anonymous", _load(BUILT_IN["anonymous"]), {}, enable_insecure_auth_adapters, services)
        for name in custom:
            if name not in auth:  # registered by cloud code and not configured: on, with no options
                auth[name] = {"module": name}
        for name, options in auth.items():
            if options.get("enabled", True) is False:
                continue
            factory = registry._factory(name, options, custom)
            registry._add(name, factory, options, enable_insecure_auth_adapters, services)
        return registry

    def _factory(self, name: str, options: Mapping[str, Any], custom: Mapping[str, Any]) -> AdapterFactory:
        module = options.get("module")
        if module is not None:
            if not isinstance(module, str) or not module:
                raise AuthConfigError(f"auth provider {name!r}: module must be a string")
            if module in custom:
                return _as_factory(name, custom[module])
            return _import_module_option(name, module)
        if options.get("oidc") is True:
            return _load("oidc:OidcProvider")
        if options.get("oauth2") is True:
            return _load(OAUTH2)
        spec = BUILT_IN.get(name)
        if spec is None:
            raise AuthConfigError(
                f"auth provider {name!r}: not a provider Parse Server ships; give it module, oauth2: true "
                "or oidc: true")
        try:
            return _load(spec)
        except (ImportError, AttributeError):
            raise AuthConfigError(f"auth provider {name!r}: not available in this version of Bastion") from None

    def _add(self, name: str, factory: AdapterFactory, options: Mapping[str, Any], insecure: bool,
             services: Mapping[str, Any] | None) -> None:
        web = options.get("web")
        if web is not None:
            # The web flow's options are the server's, not the adapter's (which may refuse unknown keys).
            options = {key: value for key, value in options.items() if key != "web"}
            try:
                self.web[name] = web_config(name, web)
            except ValueError as error:
                raise AuthConfigError(f"auth provider {name!r}: {error}") from None
        try:
            adapter = factory()
        except Exception as error:
            raise AuthConfigError(f"auth provider {name!r}: the adapter could not be made: {error}") from None
        if not isinstance(adapter, AuthAdapter):
            raise AuthConfigError(f"auth provider {name!r}: module must name an AuthAdapter class or instance")
        context = AdapterContext(name=name, options=dict(options), http=self.http,
                                 enable_insecure_auth_adapters=insecure, services=dict(services or {}))
        try:
            adapter.setup(context)
        except (ValueError, TypeError) as error:
            raise AuthConfigError(f"auth provider {name!r}: {error}") from None
        if adapter.policy not in POLICIES:
            raise AuthConfigError(f"auth provider {name!r}: policy must be one of {', '.join(POLICIES)}")
        self.register(name, adapter)

    def register(self, name: str, provider: AuthAdapter) -> None:
        if not PROVIDER_NAME.fullmatch(name):
            raise AuthConfigError(f"auth provider name {name!r} must be letters, digits and _")
        self._providers[name] = provider

    def names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def find(self, name: str) -> AuthAdapter | None:
        return self._providers.get(name)

    def get(self, name: str) -> AuthAdapter:
        """The provider, or 252 "This authentication method is unsupported." (unknown or disabled)."""
        provider = self._providers.get(name)
        if provider is None:
            raise unsupported()
        return provider

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
            try:
                await provider.aclose()
            except Exception:  # one adapter's failure to close must not keep the others open
                log.exception("auth provider %s did not close", provider.name)
        if self._owns_http:
            await self.http.aclose()
