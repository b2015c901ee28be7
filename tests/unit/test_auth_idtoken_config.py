"""Start-up checks of the ID-token and introspection providers' options: one line naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.domain.auth_providers import AuthConfigError, ProviderRegistry

KC = {"auth-server-url": "https://kc.example.com", "realm": "r", "client-id": "c"}


@pytest.mark.parametrize(("auth", "words"), [
    ({"apple": {}}, "'apple': clientId must be"),
    ({"apple": {"clientId": ["ok", 3]}}, "clientId must be"),
    ({"google": {"clientId": "x", "jwksUri": "http://keys.example.com/certs"}}, "jwksUri must be an https://"),
    ({"google": {"clientId": "x", "jwksUrl": "https://x"}}, "unknown option(s): jwksUrl"),
    ({"google": {"clientId": "x", "cacheMaxAge": "1h"}}, "cacheMaxAge must be a number of milliseconds"),
    ({"facebook": {}}, "'facebook': appIds must be"),
    ({"facebook": {"appIds": []}}, "appIds must be"),
    ({"facebook": {"appIds": ["1"], "graphApiUrl": "http://graph.example.com/"}}, "graphApiUrl must be an https://"),
    ({"facebook": {"appIds": ["1"], "requestTimeout": 0}}, "requestTimeout must be"),
    ({"keycloak": {}}, "'keycloak': config must be"),
    ({"keycloak": {"config": {"realm": "r"}}}, "config needs auth-server-url and realm"),
    ({"keycloak": {"config": {**KC, "client-id": ""}}}, "config needs client-id"),
    ({"corp": {"oauth2": True}}, "'corp': tokenIntrospectionEndpointUrl is required"),
    ({"corp": {"oauth2": True, "tokenIntrospectionEndpointUrl": "https://x/i", "appidField": "aud"}},
     "appIds (required with appidField)"),
])
def test_unusable_options_stop_start_up(auth: dict[str, Any], words: str) -> None:
    with pytest.raises(AuthConfigError) as caught:
        ProviderRegistry.from_options(auth)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_app_ids_given_as_a_string_are_one_app_id() -> None:
    registry = ProviderRegistry.from_options({
        "facebook": {"appIds": "123456"},
        "corp": {"oauth2": True, "tokenIntrospectionEndpointUrl": "https://x/i", "appidField": "aud",
                 "appIds": "app-1"},
        "keycloak": {"config": KC},
    })
    assert registry.get("facebook").app_ids == ("123456",)
    assert registry.get("corp").app_ids == ("app-1",)
