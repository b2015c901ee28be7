"""Start-up checks of the code providers' options (one line naming the key), and the answer
formats QQ and Twitter use. The flows themselves are tested over the wire in
tests/api/test_auth_code_providers.py."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.domain.auth_providers.code_base import CodeAuthAdapter
from bastion.domain.auth_providers.code_providers import _callback_json
from bastion.domain.auth_providers.registry import BUILT_IN, AuthConfigError, ProviderRegistry
from bastion.domain.auth_providers.remote import Answer

CODE = ("github", "microsoft", "linkedin", "instagram", "line", "spotify", "qq", "wechat", "weibo", "gpgames")
CLIENT = {"clientId": "id", "clientSecret": "secret"}


def _registry(auth: dict[str, Any], insecure: bool = False) -> ProviderRegistry:
    return ProviderRegistry.from_options(auth, enable_insecure_auth_adapters=insecure)


@pytest.mark.parametrize("provider", CODE)
def test_each_code_provider_loads_with_a_client(provider: str) -> None:
    adapter = _registry({provider: CLIENT}).get(provider)
    assert isinstance(adapter, CodeAuthAdapter)
    assert all(url.startswith("https://") for url in adapter.urls.values())
    assert set(adapter.urls) == {"tokenUrl", "userUrl"}


@pytest.mark.parametrize("provider", ["twitter", "vkontakte"])
def test_twitter_and_vkontakte_are_built_in(provider: str) -> None:
    assert BUILT_IN[provider].split(":")[0] == provider
    options = {"consumer_key": "k", "consumer_secret": "s"} if provider == "twitter" else {}
    assert _registry({provider: options}).get(provider).name == provider


@pytest.mark.parametrize(("options", "message"), [
    ({}, "'github': GitHub clientId is required."),
    ({"clientId": "id"}, "'github': GitHub clientSecret is required."),
    ({**CLIENT, "tokenUrl": "http://github.example.com/token"}, "tokenUrl must be an https:// URL"),
    ({**CLIENT, "userUrl": 5}, "userUrl must be a URL"),
    ({**CLIENT, "tokenURL": "https://x"}, "unknown option(s): tokenURL"),
    ({**CLIENT, "requestTimeout": 0}, "requestTimeout must be a number of milliseconds"),
    ({**CLIENT, "enableInsecureAuth": "yes"}, "enableInsecureAuth must be true or false"),
    # Without --enable-insecure-auth-adapters the switch counts for nothing: a client is still needed.
    ({"enableInsecureAuth": True}, "GitHub clientId is required."),
])
def test_github_options_are_checked_at_start(options: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthConfigError) as raised:
        _registry({"github": options})
    assert message in str(raised.value)


def test_the_insecure_form_alone_needs_no_client_with_both_flags() -> None:
    adapter = _registry({"github": {"enableInsecureAuth": True}}, insecure=True).get("github")
    assert isinstance(adapter, CodeAuthAdapter) and adapter.insecure


def test_spotify_needs_no_client_secret() -> None:
    assert _registry({"spotify": {"clientId": "id"}}).get("spotify").name == "spotify"


def test_twitter_options() -> None:
    with pytest.raises(AuthConfigError, match="consumer_key and consumer_secret are required"):
        _registry({"twitter": {"enableInsecureAuth": True}}, insecure=True)
    assert _registry({"twitter": {"consumerKey": "k", "consumerSecret": "s"}}).get("twitter")
    with pytest.raises(AuthConfigError, match="accessTokenUrl must be an https"):
        _registry({"twitter": {"consumer_key": "k", "consumer_secret": "s", "accessTokenUrl": "http://x.example"}})


def test_vkontakte_options() -> None:
    with pytest.raises(AuthConfigError, match="appIds and appSecret are required"):
        _registry({"vkontakte": {"enableInsecureAuth": True}}, insecure=True)
    # Without both flags it starts (as Parse) and refuses every request.
    assert _registry({"vkontakte": {"enableInsecureAuth": True}}).get("vkontakte")


def test_qq_answers() -> None:
    assert _callback_json('callback( {"client_id":"1","openid":"A"} );\n') == {"client_id": "1", "openid": "A"}
    assert _callback_json('{"access_token": "t"}') == {"access_token": "t"}
    assert _callback_json("access_token=t&expires_in=1") is None
    assert Answer(200, "access_token=t&expires_in=1\n").form() == {"access_token": "t", "expires_in": "1"}
    assert Answer(401, "").reason == "Unauthorized"
