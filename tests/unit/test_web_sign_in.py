"""The web sign-in flow's options (checked at start-up, one line naming the key) and its PKCE."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bastion.domain.auth_providers import AuthConfigError, ProviderRegistry
from bastion.domain.web_sign_in import pkce_challenge, with_params

ROOT = Path(__file__).resolve().parents[2]


def _web(**overrides: Any) -> dict[str, Any]:
    web = {"authorizationUrl": "https://idp.example/authorize", "tokenUrl": "https://idp.example/token",
           "clientId": "web-client", "clientSecret": "s", "scope": "openid email",
           "redirectUris": ["https://app.example/done"]}
    web.update(overrides)
    return {k: v for k, v in web.items() if v is not None}


def _registry(web: Any, provider: str = "idp") -> ProviderRegistry:
    options = {"oidc": True, "issuer": "https://idp.example", "clientId": "web-client", "web": web}
    return ProviderRegistry.from_options({provider: options})


def test_options_are_parsed_and_kept_from_the_adapter() -> None:
    registry = _registry(_web())
    config = registry.web["idp"]
    assert config.sign_in_with == "id_token" and config.id_token_key == "id_token"
    assert config.redirect_uris == ("https://app.example/done",)
    adapter = registry.get("idp")
    assert "web" not in adapter.options  # the OIDC adapter refuses keys it does not know


def test_access_token_mode_needs_user_info() -> None:
    with pytest.raises(AuthConfigError, match=r"web\.userInfoUrl is required"):
        _registry(_web(scope="profile"))
    config = _registry(_web(scope="profile", userInfoUrl="https://idp.example/me")).web["idp"]
    assert config.sign_in_with == "access_token"


@pytest.mark.parametrize(("change", "message"), [
    ({"tokenUrl": "http://idp.example/token"}, r"web\.tokenUrl must be an https:// URL"),
    ({"authorizationUrl": None}, r"web\.authorizationUrl must be a non-empty string"),
    ({"clientId": ""}, r"web\.clientId must be a non-empty string"),
    ({"redirectUris": []}, r"web\.redirectUris must be a non-empty list"),
    ({"redirectUris": ["http://app.example/"]}, r"web\.redirectUris must be an https:// URL"),
    ({"redirectUris": ["https://app.example/#x"]}, r"web\.redirectUris must be an ASCII URL without a #fragment"),
    ({"scope": None}, r"web\.scope must be a non-empty string"),
    ({"signInWith": "magic"}, r"web\.signInWith must be"),
    ({"tokenAuth": "jwt"}, r"web\.tokenAuth must be"),
    ({"timeout": 0}, r"web\.timeout must be"),
    ({"authorizationParams": {"state": "x"}}, r"web\.authorizationParams may not set state"),
    ({"authorizationParams": {"prompt": 1}}, r"web\.authorizationParams must be an object of strings"),
    ({"colour": "blue"}, r"web has unknown key\(s\): colour"),
])
def test_bad_options_stop_the_start(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthConfigError, match=r"^auth provider 'idp': " + message):
        _registry(_web(**change))


def test_web_must_be_an_object() -> None:
    with pytest.raises(AuthConfigError, match="web must be an object"):
        _registry("yes")


def test_loopback_urls_are_allowed_for_development() -> None:
    config = _registry(_web(tokenUrl="http://127.0.0.1:9/token", redirectUris=["http://localhost:3000/cb"])).web
    assert config["idp"].token_url == "http://127.0.0.1:9/token"


def test_pkce_s256_matches_rfc_7636() -> None:
    # RFC 7636, appendix B.
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_with_params_keeps_the_query() -> None:
    assert with_params("https://a.example/x", {"a": "1 2"}) == "https://a.example/x?a=1+2"
    assert with_params("https://a.example/x?k=v", {"a": "&"}) == "https://a.example/x?k=v&a=%26"


def test_the_server_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    auth = '{"idp": {"oidc": true, "issuer": "https://idp.example", "clientId": "c", "web": {"scope": "openid"}}}'
    done = subprocess.run([sys.executable, "-m", "bastion", "serve", "--data-dir", str(tmp_path), "--auth", auth],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: auth provider 'idp': web.redirectUris must be a non-empty list of the app's URLs")
