"""The ``web`` entry of a provider's auth options: the server-side authorization-code flow for web apps
(``bastion/domain/web_sign_in.py``). Checked when the server starts; a bad key stops it with one line.

    "google": {"clientId": "…", "web": {
        "authorizationUrl": "https://accounts.google.com/o/oauth2/v2/auth",
        "tokenUrl": "https://oauth2.googleapis.com/token",
        "clientId": "…", "clientSecret": "…", "scope": "openid email",
        "redirectUris": ["https://app.example.com/signed-in"]}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from bastion.domain.auth_providers.fetch import check_url

SignInWith = Literal["id_token", "access_token"]
TokenAuth = Literal["post", "basic"]

_KEYS = {"authorizationUrl", "tokenUrl", "userInfoUrl", "clientId", "clientSecret", "scope", "redirectUris",
         "callbackUrl", "signInWith", "idTokenKey", "userIdField", "tokenAuth", "authorizationParams", "timeout"}
# Parameters the flow sets itself: a configured value must not replace them.
_RESERVED_PARAMS = {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                    "code_challenge_method"}
# Apple's adapter reads the ID token from ``token``; the others from ``id_token``.
_ID_TOKEN_KEYS = {"apple": "token"}


@dataclass(frozen=True, slots=True)
class WebConfig:
    authorization_url: str
    token_url: str
    client_id: str
    scope: str
    redirect_uris: tuple[str, ...]  # the app URLs the flow may end at (exact match)
    client_secret: str | None = None
    user_info_url: str | None = None
    callback_url: str | None = None  # None: <publicServerURL>/auth/<provider>/callback
    sign_in_with: SignInWith = "id_token"
    id_token_key: str = "id_token"
    user_id_field: str | None = None  # None: "sub", else "id", of the user-info answer
    token_auth: TokenAuth = "post"  # client_secret_post or client_secret_basic
    authorization_params: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0  # seconds for each call to the provider


def _string(options: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = options.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"web.{key} must be a non-empty string")
    return value


def _url(options: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    value = _string(options, key, required)
    if value is not None:
        check_url(value, f"web.{key}")
        if not value.isascii() or urlsplit(value).fragment:
            raise ValueError(f"web.{key} must be an ASCII URL without a #fragment")
    return value


def web_config(provider: str, options: Any) -> WebConfig:
    """The ``web`` options of ``provider``; ValueError("web.<key> …") for a bad one."""
    if not isinstance(options, Mapping):
        raise ValueError("web must be an object")
    unknown = set(options) - _KEYS
    if unknown:
        raise ValueError(f"web has unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    redirects = options.get("redirectUris")
    if not isinstance(redirects, list) or not redirects:
        raise ValueError("web.redirectUris must be a non-empty list of the app's URLs")
    for uri in redirects:
        if not isinstance(uri, str):
            raise ValueError("web.redirectUris must be a list of URLs")
        _url({"redirectUris": uri}, "redirectUris")
    scope = _string(options, "scope")
    assert scope is not None
    default_mode: SignInWith = "id_token" if "openid" in scope.split() else "access_token"
    sign_in_with = options.get("signInWith", default_mode)
    if sign_in_with not in ("id_token", "access_token"):
        raise ValueError("web.signInWith must be 'id_token' or 'access_token'")
    user_info_url = _url(options, "userInfoUrl", required=False)
    if sign_in_with == "access_token" and user_info_url is None:
        raise ValueError("web.userInfoUrl is required to sign in with an access token (scope without openid)")
    token_auth = options.get("tokenAuth", "post")
    if token_auth not in ("post", "basic"):
        raise ValueError("web.tokenAuth must be 'post' or 'basic'")
    params = options.get("authorizationParams", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in params.items()):
        raise ValueError("web.authorizationParams must be an object of strings")
    reserved = _RESERVED_PARAMS & set(params)
    if reserved:
        raise ValueError(f"web.authorizationParams may not set {', '.join(sorted(reserved))}")
    timeout = options.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise ValueError("web.timeout must be a number of seconds (at most 60)")
    return WebConfig(
        authorization_url=_url(options, "authorizationUrl") or "",
        token_url=_url(options, "tokenUrl") or "",
        client_id=_string(options, "clientId") or "",
        client_secret=_string(options, "clientSecret", required=False),
        scope=scope,
        redirect_uris=tuple(redirects),
        user_info_url=user_info_url,
        callback_url=_url(options, "callbackUrl", required=False),
        sign_in_with=sign_in_with,
        id_token_key=_string(options, "idTokenKey", required=False) or _ID_TOKEN_KEYS.get(provider, "id_token"),
        user_id_field=_string(options, "userIdField", required=False),
        token_auth=token_auth,
        authorization_params=dict(params),
        timeout=float(timeout),
    )
