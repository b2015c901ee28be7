"""The OAuth "code" providers (github, microsoft, linkedin, instagram, line, spotify, qq, wechat,
weibo, gpgames), twitter (OAuth 1.0a) and vkontakte over the wire, on sqlite and postgres, against
the local stand-ins of ``tests/auth_standins/code.py``.

Two Bastions per backend: ``code_server`` has every provider with ``enableInsecureAuth: true`` but
runs without ``--enable-insecure-auth-adapters`` (so only the code flow works); ``insecure_server``
runs with the flag (the deprecated ``{id, access_token}`` form is checked against the user API) and
has ``githubplain``, GitHub without ``enableInsecureAuth``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.auth_standins.code import REDIRECT, CodeStandins, options, serve_code_standins
from tests.conftest import Server, running_server

CODE = ("github", "microsoft", "linkedin", "instagram", "line", "spotify", "qq", "wechat", "weibo", "gpgames")
ALL = (*CODE, "twitter")
DISPLAY = {"github": "GitHub", "microsoft": "Microsoft", "linkedin": "LinkedIn", "instagram": "Instagram",
           "line": "Line", "spotify": "spotify", "qq": "qq", "wechat": "WeChat", "weibo": "Weibo",
           "gpgames": "gpgames", "twitter": "Twitter"}
NUMERIC = {"github", "weibo", "twitter", "vkontakte"}  # providers whose account ids are numbers
TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def standins() -> Iterator[CodeStandins]:
    with serve_code_standins() as running:
        yield running


def _start(backend: str, auth: dict[str, Any], *flags: str) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with the code providers")
    with running_server(backend, ["--auth", json.dumps(auth), *flags]) as server:
        yield server


def _auth(standins: CodeStandins) -> dict[str, Any]:
    return {p: options(standins, p, enableInsecureAuth=True, requestTimeout=TIMEOUT_MS) for p in (*ALL, "vkontakte")}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def code_server(request: pytest.FixtureRequest, standins: CodeStandins) -> Iterator[Server]:
    yield from _start(request.param, _auth(standins))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def insecure_server(request: pytest.FixtureRequest, standins: CodeStandins) -> Iterator[Server]:
    auth = _auth(standins)
    auth["githubplain"] = {"module": "bastion.domain.auth_providers.code_providers:GitHubAdapter",
                           **options(standins, "github")}
    yield from _start(request.param, auth, "--enable-insecure-auth-adapters")


@pytest.fixture
def api(code_server: Server) -> Iterator[httpx.Client]:
    with code_server.client() as client:
        yield client


@pytest.fixture
def insecure_api(insecure_server: Server) -> Iterator[httpx.Client]:
    with insecure_server.client() as client:
        yield client


def account(provider: str) -> str:
    return str(secrets.randbelow(10**9) + 10**8) if provider in NUMERIC else f"{provider}-{secrets.token_hex(5)}"


def secure(standins: CodeStandins, provider: str, who: str, **extra: Any) -> dict[str, Any]:
    """What a client sends after the provider's consent screen."""
    if provider == "twitter":
        token, secret, verifier = standins.twitter_request_token(who)
        return {"oauth_token": token, "oauth_token_secret": secret, "oauth_verifier": verifier, **extra}
    if provider == "spotify":
        verifier = secrets.token_urlsafe(32)
        code = standins.code(provider, who, verifier=verifier)
        return {"code": code, "redirect_uri": REDIRECT, "code_verifier": verifier, **extra}
    if provider == "gpgames":  # Parse's gpgames reads redirectUri
        return {"code": standins.code(provider, who), "redirectUri": REDIRECT, **extra}
    return {"code": standins.code(provider, who), "redirect_uri": REDIRECT, **extra}


def insecure(standins: CodeStandins, provider: str, who: str) -> dict[str, Any]:
    if provider == "twitter":
        token, secret = standins.twitter_access_token(who)
        return {"id": who, "auth_token": token, "auth_token_secret": secret}
    return {"id": who, "access_token": standins.token(provider, who)}


def invalid(provider: str) -> str:
    return f"{DISPLAY[provider]} auth is invalid for this user."


def sign_in(client: httpx.Client, provider: str, data: dict[str, Any]) -> httpx.Response:
    return client.post("/users", json={"authData": {provider: data}})


# --- the code flow ------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ALL)
def test_code_signs_up_then_logs_in_with_a_new_code(api: httpx.Client, standins: CodeStandins,
                                                    provider: str) -> None:
    who = account(provider)
    first = sign_in(api, provider, secure(standins, provider, who))
    assert first.status_code == 201, first.text
    user_id, token = first.json()["objectId"], first.json()["sessionToken"]
    again = sign_in(api, provider, secure(standins, provider, who))
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == user_id
    # Answers show only the account id: no access token, code or token secret.
    assert again.json()["authData"][provider] == {"id": who}
    me = api.get("/users/me", headers={"X-Parse-Session-Token": token})
    assert me.status_code == 200, me.text
    assert me.json()["authData"] == {provider: {"id": who}}


@pytest.mark.parametrize("provider", ALL)
def test_a_code_is_used_once(api: httpx.Client, standins: CodeStandins, provider: str) -> None:
    data = secure(standins, provider, account(provider))
    assert sign_in(api, provider, dict(data)).status_code == 201
    assert_error(sign_in(api, provider, dict(data)), 404, 101)


@pytest.mark.parametrize("provider", ALL)
def test_an_unknown_code_is_refused(api: httpx.Client, standins: CodeStandins, provider: str) -> None:
    data = secure(standins, provider, account(provider))
    key = "oauth_verifier" if provider == "twitter" else "code"
    data[key] = "forged-" + secrets.token_hex(6)
    assert_error(sign_in(api, provider, data), 404, 101)


@pytest.mark.parametrize("provider", ALL)
def test_a_wrong_client_secret_is_refused(api: httpx.Client, standins: CodeStandins, provider: str) -> None:
    kept = standins.secrets[provider]
    standins.secrets[provider] = "rotated-" + secrets.token_hex(4)  # the provider no longer knows ours
    try:
        response = sign_in(api, provider, secure(standins, provider, account(provider)))
    finally:
        standins.secrets[provider] = kept
    if provider == "spotify":  # PKCE: no client secret is sent, the code verifier proves the client
        assert response.status_code == 201, response.text
    else:
        assert_error(response, 404, 101)


def test_spotify_wants_the_code_verifier(api: httpx.Client, standins: CodeStandins) -> None:
    data = secure(standins, "spotify", account("spotify"))
    assert_error(sign_in(api, "spotify", {**data, "code_verifier": "another"}), 404, 101,
                 "Spotify API request failed.")
    data = secure(standins, "spotify", account("spotify"))
    del data["code_verifier"]
    assert_error(sign_in(api, "spotify", data), 404, 101, "Spotify auth configuration authData.code and/or "
                 "authData.redirect_uri and/or authData.code_verifier.")


@pytest.mark.parametrize("provider", [p for p in CODE if p not in ("github", "wechat")])
def test_the_redirect_uri_must_be_the_one_of_the_code(api: httpx.Client, standins: CodeStandins,
                                                      provider: str) -> None:
    data = secure(standins, provider, account(provider))
    data["redirectUri" if provider == "gpgames" else "redirect_uri"] = "https://evil.example.com/cb"
    assert_error(sign_in(api, provider, data), 404, 101)


@pytest.mark.parametrize("provider", ALL)
def test_a_code_of_another_account_with_an_id_is_refused(api: httpx.Client, standins: CodeStandins,
                                                         provider: str) -> None:
    victim = account(provider)
    assert sign_in(api, provider, secure(standins, provider, victim)).status_code == 201
    response = sign_in(api, provider, secure(standins, provider, account(provider), id=victim))
    if provider == "gpgames":
        assert_error(response, 400, 142, "Invalid Google Play Games Services user data received.")
    else:
        assert_error(response, 404, 101, invalid(provider))


@pytest.mark.parametrize("provider", ALL)
def test_the_insecure_form_is_refused_without_the_server_flag(api: httpx.Client, standins: CodeStandins,
                                                              provider: str) -> None:
    message = ("Twitter oauth_token and oauth_verifier are required." if provider == "twitter"
               else f"{DISPLAY[provider]} code is required.")
    assert_error(sign_in(api, provider, insecure(standins, provider, account(provider))), 400, 142, message)
    assert_error(sign_in(api, provider, {"id": account(provider)}), 400, 142, message)


@pytest.mark.parametrize("mode", ["slow", "hangup"])
@pytest.mark.parametrize("provider", ALL)
def test_a_provider_down_or_slow_is_a_parse_error_soon(api: httpx.Client, standins: CodeStandins,
                                                       provider: str, mode: str) -> None:
    data = secure(standins, provider, account(provider))
    standins.mode = mode
    started = time.monotonic()
    try:
        response = sign_in(api, provider, data)
    finally:
        standins.mode = "ok"
    assert time.monotonic() - started < TIMEOUT_MS / 1000 + 1.5
    assert_error(response, 404, 101, invalid(provider))


def test_github_links_to_a_signed_in_user(api: httpx.Client, standins: CodeStandins) -> None:
    name = "u" + secrets.token_hex(5)
    created = api.post("/users", json={"username": name, "password": "pw"})
    assert created.status_code == 201, created.text
    user_id, token = created.json()["objectId"], created.json()["sessionToken"]
    who = account("github")
    linked = api.put(f"/users/{user_id}", headers={"X-Parse-Session-Token": token},
                     json={"authData": {"github": secure(standins, "github", who)}})
    assert linked.status_code == 200, linked.text
    again = sign_in(api, "github", secure(standins, "github", who))
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == user_id
    assert again.json()["username"] == name


# --- the deprecated insecure form, with both flags -------------------------------------------------


@pytest.mark.parametrize("provider", ALL)
def test_the_insecure_form_with_both_flags(insecure_api: httpx.Client, standins: CodeStandins,
                                           provider: str) -> None:
    who = account(provider)
    first = sign_in(insecure_api, provider, insecure(standins, provider, who))
    assert first.status_code == 201, first.text
    again = sign_in(insecure_api, provider, insecure(standins, provider, who))
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == first.json()["objectId"]
    assert again.json()["authData"][provider] == {"id": who}
    # The code flow still works beside it.
    coded = sign_in(insecure_api, provider, secure(standins, provider, who))
    assert coded.status_code == 200, coded.text
    assert coded.json()["objectId"] == first.json()["objectId"]


@pytest.mark.parametrize("provider", ALL)
def test_the_insecure_form_with_a_bad_token_is_refused(insecure_api: httpx.Client, standins: CodeStandins,
                                                       provider: str) -> None:
    who = account(provider)
    forged = insecure(standins, provider, who)
    if provider == "twitter":
        forged["auth_token_secret"] = "forged"
    else:
        forged["access_token"] = "forged-" + secrets.token_hex(6)
    # GitHub and gpgames answer a user API refusal with 142, as Parse's adapters.
    refused = (400, 142) if provider in ("github", "gpgames") else (404, 101)
    assert_error(sign_in(insecure_api, provider, forged), *refused)
    # A real token of another account does not sign in as ``who``.
    stolen = insecure(standins, provider, account(provider))
    stolen["id"] = who
    assert_error(sign_in(insecure_api, provider, stolen), *((400, 142) if provider == "gpgames" else (404, 101)))
    missing = {"id": who}
    assert_error(sign_in(insecure_api, provider, missing), 404, 101)


def test_the_insecure_form_needs_the_provider_option(insecure_api: httpx.Client, standins: CodeStandins) -> None:
    assert_error(sign_in(insecure_api, "githubplain", insecure(standins, "github", account("github"))),
                 400, 142, "GitHub code is required.")


# --- VK: insecure only ------------------------------------------------------------------------------


def test_vkontakte_needs_both_flags(api: httpx.Client, standins: CodeStandins) -> None:
    assert_error(sign_in(api, "vkontakte", insecure(standins, "vkontakte", account("vkontakte"))), 404, 101,
                 "Vk only works with enableInsecureAuth: true")


def test_vkontakte_with_both_flags(insecure_api: httpx.Client, standins: CodeStandins) -> None:
    who = account("vkontakte")
    first = sign_in(insecure_api, "vkontakte", insecure(standins, "vkontakte", who))
    assert first.status_code == 201, first.text
    again = sign_in(insecure_api, "vkontakte", insecure(standins, "vkontakte", who))
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == first.json()["objectId"]
    assert again.json()["authData"]["vkontakte"] == {"id": who}
    assert_error(sign_in(insecure_api, "vkontakte", {"id": who, "access_token": "forged"}), 404, 101,
                 "Vk auth is invalid for this user.")
    stolen = insecure(standins, "vkontakte", account("vkontakte"))
    assert_error(sign_in(insecure_api, "vkontakte", {**stolen, "id": who}), 404, 101)
    kept = standins.secrets["vkontakte"]
    standins.secrets["vkontakte"] = "rotated"
    try:
        assert_error(sign_in(insecure_api, "vkontakte", insecure(standins, "vkontakte", who)), 404, 101,
                     "Vk appIds or appSecret is incorrect.")
    finally:
        standins.secrets["vkontakte"] = kept
