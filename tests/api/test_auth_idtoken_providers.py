"""Parse Server 9's ID-token and token-introspection providers over the wire: apple, google, facebook
(Graph API and Limited Login), keycloak and oauth2, against local stand-ins (tests/auth_standins/idtoken.py).

A Bastion per backend runs with every provider pointed at the stand-ins (the URL-override options),
plus copies of them (``module`` naming the same class, or ``oauth2: true``) whose provider is slow or
down, with ``requestTimeout`` 500 ms. Refusals are Parse's 101 with its adapters' messages.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.auth_standins.idtoken import INTROSPECTION_AUTH, JWKS_PATHS, KEYCLOAK_REALM, Standins, running
from tests.conftest import Server, free_port, running_server
from tests.oidc_issuer import rsa_key

APPLE_CLIENTS = ["com.example.app", "com.example.web"]
GOOGLE_CLIENT = "google-client.apps.googleusercontent.com"
FB_APP = "123456"  # configured as a string on purpose: it must not match "123" or "12345"
KC_CLIENT = "bastion-app"
MODULE = "bastion.domain.auth_providers.{}:{}Adapter"
BOUND = 3.0  # seconds: a slow provider is answered well before the stand-in's 4 s

TOKEN_FIELD = {"apple": "token", "google": "id_token", "facebook": "token", "keycloak": "access_token"}
JWT_PROVIDERS = list(TOKEN_FIELD)


@pytest.fixture(scope="module")
def standins() -> Iterator[Standins]:
    with running() as stand_ins:
        yield stand_ins


def auth_config(s: Standins) -> dict[str, Any]:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    slow = {"requestTimeout": 500}
    keycloak = {"auth-server-url": s.url + "/kc", "realm": KEYCLOAK_REALM, "client-id": KC_CLIENT}
    introspection = {"oauth2": True, "tokenIntrospectionEndpointUrl": s.url + "/introspect",
                     "authorizationHeader": INTROSPECTION_AUTH}
    return {
        "apple": {"clientId": APPLE_CLIENTS, "jwksUri": s.url + JWKS_PATHS["apple"]},
        "google": {"clientId": GOOGLE_CLIENT, "jwksUri": s.url + JWKS_PATHS["google"],
                   "tokenInfoUrl": s.url + "/google/tokeninfo"},
        "facebook": {"appIds": FB_APP, "appSecret": "fb-app-secret", "graphApiUrl": s.url + "/graph",
                     "jwksUri": s.url + JWKS_PATHS["facebook"]},
        "keycloak": {"config": keycloak},  # the key set's address follows from the config
        "corp": {**introspection, "appidField": "aud", "appIds": ["app-1"]},
        "corpstr": {**introspection, "appidField": "client_id", "appIds": "app-123", "useridField": "username"},
        "corpnoauth": {k: v for k, v in introspection.items() if k != "authorizationHeader"},
        # Slow or unreachable providers.
        "appleslow": {"module": MODULE.format("apple", "Apple"), "clientId": "x", "jwksUri": s.url + "/slow", **slow},
        "googledown": {"module": MODULE.format("google", "Google"), "clientId": "x", "jwksUri": down,
                       "tokenInfoUrl": down + "/tokeninfo", **slow},
        "fbslow": {"module": MODULE.format("facebook", "Facebook"), "appIds": [FB_APP],
                   "graphApiUrl": s.url + "/slow/", "jwksUri": s.url + "/slow", **slow},
        "fbdown": {"module": MODULE.format("facebook", "Facebook"), "appIds": [FB_APP], "graphApiUrl": down},
        "kcslow": {"module": MODULE.format("keycloak", "Keycloak"), "config": keycloak,
                   "jwksUri": s.url + "/slow", **slow},
        "corpslow": {**introspection, "tokenIntrospectionEndpointUrl": s.url + "/slow", **slow},
        "corpdown": {**introspection, "tokenIntrospectionEndpointUrl": down + "/introspect", **slow},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def idtoken_server(request: pytest.FixtureRequest, standins: Standins) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with providers pointed at local stand-ins")
    with running_server(request.param, ["--auth", json.dumps(auth_config(standins))]) as server:
        yield server


@pytest.fixture
def api(idtoken_server: Server) -> Iterator[httpx.Client]:
    with idtoken_server.client() as client:
        yield client


def new_id() -> str:
    return "u" + secrets.token_hex(8)


def claims(s: Standins, provider: str, sub: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "apple": {"iss": "https://appleid.apple.com", "aud": APPLE_CLIENTS[1]},
        "google": {"iss": "accounts.google.com", "aud": GOOGLE_CLIENT},
        "facebook": {"iss": "https://www.facebook.com", "aud": FB_APP},
        "keycloak": {"iss": f"{s.url}/kc/realms/{KEYCLOAK_REALM}", "azp": KC_CLIENT, "aud": "account"},
    }[provider]
    values = {**base, "sub": sub, "iat": now, "exp": now + 600, **overrides}
    return {k: v for k, v in values.items() if v is not None}


def auth_data(s: Standins, provider: str, sub: str, token: str | None = None, **overrides: Any) -> dict[str, Any]:
    token = token or s.token(provider, claims(s, provider, sub, **overrides))
    return {provider: {"id": sub, TOKEN_FIELD[provider]: token}}


def sign_in(api: httpx.Client, data: dict[str, Any]) -> httpx.Response:
    return api.post("/users", json={"authData": data})


def refused(api: httpx.Client, data: dict[str, Any], message: str) -> None:
    assert_error(sign_in(api, data), 404, 101, message)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], kid: str) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode()) + "."


# --- the ID-token providers: apple, google, facebook Limited Login, keycloak -------------------------


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_sign_up_then_log_in_again(api: httpx.Client, standins: Standins, provider: str) -> None:
    sub = new_id()
    first = sign_in(api, auth_data(standins, provider, sub))
    assert first.status_code == 201, first.text
    again = sign_in(api, auth_data(standins, provider, sub, iat=int(time.time()) - 5))
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == first.json()["objectId"]
    assert again.json()["authData"][provider]["id"] == sub


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_expired_token(api: httpx.Client, standins: Standins, provider: str) -> None:
    refused(api, auth_data(standins, provider, new_id(), exp=int(time.time()) - 5), "jwt expired")


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_signature_by_another_key_with_the_same_kid(api: httpx.Client, standins: Standins, provider: str) -> None:
    sub = new_id()
    forged = standins.token(provider, claims(standins, provider, sub), key=rsa_key(f"{provider}-1"))
    refused(api, auth_data(standins, provider, sub, token=forged), "invalid signature")


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_alg_none(api: httpx.Client, standins: Standins, provider: str) -> None:
    sub = new_id()
    token = unsigned(claims(standins, provider, sub), f"{provider}-1")
    refused(api, auth_data(standins, provider, sub, token=token), "jwt signature is required")


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_unknown_key_id(api: httpx.Client, standins: Standins, provider: str) -> None:
    sub = new_id()
    token = standins.token(provider, claims(standins, provider, sub), key=rsa_key("nope"))
    refused(api, auth_data(standins, provider, sub, token=token), "Unable to find matching key for Key ID: nope")


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_another_providers_key_is_unknown(api: httpx.Client, standins: Standins, provider: str) -> None:
    other = "google" if provider != "google" else "apple"
    sub = new_id()
    token = standins.token(provider, claims(standins, provider, sub), key=standins.keys[other])
    refused(api, auth_data(standins, provider, sub, token=token), f"Unable to find matching key for Key ID: {other}-1")


@pytest.mark.parametrize("provider", JWT_PROVIDERS)
def test_id_must_be_the_tokens_subject(api: httpx.Client, standins: Standins, provider: str) -> None:
    token = standins.token(provider, claims(standins, provider, new_id()))
    refused(api, auth_data(standins, provider, new_id(), token=token), "auth data is invalid for this user.")


@pytest.mark.parametrize(("provider", "audience", "message"), [
    ("apple", "com.example.other", "jwt audience invalid. expected: com.example.app or com.example.web"),
    ("google", "someone-else", f"jwt audience invalid. expected: {GOOGLE_CLIENT}"),
    # appIds is the string "123456": neither a prefix nor a substring passes.
    ("facebook", "12345", f"jwt audience invalid. expected: {FB_APP}"),
    ("facebook", "234", f"jwt audience invalid. expected: {FB_APP}"),
])
def test_wrong_audience(api: httpx.Client, standins: Standins, provider: str, audience: str, message: str) -> None:
    refused(api, auth_data(standins, provider, new_id(), aud=audience), message)


def test_keycloak_token_for_another_client(api: httpx.Client, standins: Standins) -> None:
    refused(api, auth_data(standins, "keycloak", new_id(), azp="other-client"),
            f"access token is not authorized for this client - expected: {KC_CLIENT} | from: other-client")


@pytest.mark.parametrize(("provider", "message"), [
    ("apple", "id token not issued by correct OpenID provider - expected: https://appleid.apple.com"),
    ("google", "id token not issued by correct provider - expected: accounts.google.com or https://accounts.google.com"),
    ("facebook", "id token not issued by correct OpenID provider - expected: https://www.facebook.com"),
])
def test_wrong_issuer(api: httpx.Client, standins: Standins, provider: str, message: str) -> None:
    refused(api, auth_data(standins, provider, new_id(), iss="https://evil.example.com"),
            message + " | from: https://evil.example.com")


def test_google_https_issuer_and_apple_id_token_field(api: httpx.Client, standins: Standins) -> None:
    response = sign_in(api, auth_data(standins, "google", new_id(), iss="https://accounts.google.com"))
    assert response.status_code == 201, response.text
    sub = new_id()
    token = standins.token("apple", claims(standins, "apple", sub, aud=APPLE_CLIENTS[0]))
    response = sign_in(api, {"apple": {"id": sub, "id_token": token}})
    assert response.status_code == 201, response.text


def test_keycloak_roles_and_groups_must_match(api: httpx.Client, standins: Standins) -> None:
    sub = new_id()
    token = standins.token("keycloak", claims(standins, "keycloak", sub, roles=["admin", "user"], groups=["g1"]))
    missing = {"keycloak": {"id": sub, "access_token": token}}
    refused(api, missing, "Invalid authentication")
    other = {"keycloak": {"id": sub, "access_token": token, "roles": ["admin"], "groups": ["g1"]}}
    refused(api, other, "Invalid authentication")
    same = {"keycloak": {"id": sub, "access_token": token, "roles": ["user", "admin"], "groups": ["g1"]}}
    response = sign_in(api, same)
    assert response.status_code == 201, response.text


def test_keycloak_needs_a_token_and_an_id(api: httpx.Client) -> None:
    refused(api, {"keycloak": {"id": "x"}}, "Missing access token and/or User id")


@pytest.mark.parametrize(("provider", "auth"), [
    ("appleslow", {"id": "x", "token": "{token}"}),
    ("googledown", {"id": "x", "id_token": "{token}"}),
    ("kcslow", {"id": "x", "access_token": "{token}"}),
])
def test_key_set_slow_or_down_is_a_parse_error_in_bounded_time(
    api: httpx.Client, standins: Standins, provider: str, auth: dict[str, str]
) -> None:
    token = standins.token("apple", claims(standins, "apple", "x"))
    entry = {k: v.replace("{token}", token) for k, v in auth.items()}
    started = time.monotonic()
    refused(api, {provider: entry}, "Unable to find matching key for Key ID: apple-1")
    assert time.monotonic() - started < BOUND


# --- google access tokens (tokeninfo) ---------------------------------------------------------------


def test_google_access_token_through_tokeninfo(api: httpx.Client, standins: Standins) -> None:
    user = new_id()
    token = standins.google_access_token(aud=GOOGLE_CLIENT, azp=GOOGLE_CLIENT, sub=user, expires_in="3599")
    first = sign_in(api, {"google": {"id": user, "access_token": token}})
    assert first.status_code == 201, first.text
    again = sign_in(api, {"google": {"id": user, "access_token": token}})
    assert again.status_code == 200 and again.json()["objectId"] == first.json()["objectId"], again.text


@pytest.mark.parametrize("info", [
    {"aud": "another-client.apps.googleusercontent.com"},  # issued to another app
    {"sub": "someone-else"},  # another account
    {"expires_in": "0"},  # expired
    None,  # a token Google does not know
])
def test_google_access_token_refused(api: httpx.Client, standins: Standins, info: dict[str, Any] | None) -> None:
    user = new_id()
    token = ("ya29.unknown" if info is None
             else standins.google_access_token(**{"aud": GOOGLE_CLIENT, "sub": user, "expires_in": "100", **info}))
    refused(api, {"google": {"id": user, "access_token": token}}, "Google auth is invalid for this user.")


def test_google_tokeninfo_down_is_a_parse_error_in_bounded_time(api: httpx.Client) -> None:
    started = time.monotonic()
    refused(api, {"googledown": {"id": "x", "access_token": "ya29.x"}}, "Google auth is invalid for this user.")
    assert time.monotonic() - started < BOUND


# --- facebook Standard Login (the Graph API) ---------------------------------------------------------


def test_facebook_graph_sign_up_then_log_in(api: httpx.Client, standins: Standins) -> None:
    user = new_id()
    first = sign_in(api, {"facebook": {"id": user, "access_token": standins.graph_token(user, FB_APP)}})
    assert first.status_code == 201, first.text
    again = sign_in(api, {"facebook": {"id": user, "access_token": standins.graph_token(user, FB_APP)}})
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == first.json()["objectId"]


@pytest.mark.parametrize("app", ["999", "12345", "123", "3456", ""])
def test_facebook_token_of_another_app(api: httpx.Client, standins: Standins, app: str) -> None:
    # appIds is the string "123456": Parse once let a substring of it pass (a security advisory).
    user = new_id()
    refused(api, {"facebook": {"id": user, "access_token": standins.graph_token(user, app)}},
            "Facebook auth is invalid for this user.")


def test_facebook_token_of_another_user_or_unknown(api: httpx.Client, standins: Standins) -> None:
    token = standins.graph_token(new_id(), FB_APP)
    refused(api, {"facebook": {"id": new_id(), "access_token": token}}, "Facebook auth is invalid for this user.")
    refused(api, {"facebook": {"id": new_id(), "access_token": "EAAGnot-issued"}},
            "Facebook auth is invalid for this user.")
    refused(api, {"facebook": {"id": new_id()}}, "Facebook auth is invalid for this user.")


def test_facebook_graph_calls_carry_the_app_secret_proof(standins: Standins, api: httpx.Client) -> None:
    before = len(standins.requests)
    user = new_id()
    response = sign_in(api, {"facebook": {"id": user, "access_token": standins.graph_token(user, FB_APP)}})
    assert response.status_code == 201, response.text
    # The stand-in answers only with a valid appsecret_proof; both calls were made.
    assert {"GET /graph/app", "GET /graph/me"} <= set(standins.requests[before:])


@pytest.mark.parametrize("provider", ["fbslow", "fbdown"])
def test_facebook_graph_slow_or_down(api: httpx.Client, standins: Standins, provider: str) -> None:
    started = time.monotonic()
    refused(api, {provider: {"id": "x", "access_token": standins.graph_token("x", FB_APP)}},
            "Facebook auth is invalid for this user.")
    assert time.monotonic() - started < BOUND


# --- oauth2: token introspection ----------------------------------------------------------------------


def test_introspection_sign_up_then_log_in(api: httpx.Client, standins: Standins) -> None:
    user = new_id()
    first = sign_in(api, {"corp": {"id": user, "access_token": standins.introspected(active=True, sub=user,
                                                                                     aud="app-1")}})
    assert first.status_code == 201, first.text
    token = standins.introspected(active=True, sub=user, aud=["other", "app-1"])
    again = sign_in(api, {"corp": {"id": user, "access_token": token}})
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == first.json()["objectId"]


def test_introspection_refusals(api: httpx.Client, standins: Standins) -> None:
    user = new_id()
    invalid = "OAuth2 access token is invalid for this user."
    refused(api, {"corp": {"id": user, "access_token": standins.introspected(active=False, sub=user,
                                                                             aud="app-1")}}, invalid)
    refused(api, {"corp": {"id": user, "access_token": "never-issued"}}, "OAuth2: Invalid app ID.")
    refused(api, {"corp": {"id": user, "access_token": standins.introspected(active=True, sub=new_id(),
                                                                             aud="app-1")}}, invalid)
    refused(api, {"corp": {"id": user, "access_token": standins.introspected(active=True, sub=user,
                                                                             aud="app-2")}},
            "OAuth2: Invalid app ID.")


@pytest.mark.parametrize("client_id", ["app-1", "app-12", "pp-123", "app-1234"])
def test_introspection_app_ids_as_a_string_match_whole(api: httpx.Client, standins: Standins, client_id: str) -> None:
    user = new_id()
    token = standins.introspected(active=True, username=user, client_id=client_id)
    refused(api, {"corpstr": {"id": user, "access_token": token}}, "OAuth2: Invalid app ID.")


def test_introspection_user_id_field_and_string_app_id(api: httpx.Client, standins: Standins) -> None:
    user = new_id()
    token = standins.introspected(active=True, username=user, sub="someone-else", client_id="app-123")
    response = sign_in(api, {"corpstr": {"id": user, "access_token": token}})
    assert response.status_code == 201, response.text


def test_introspection_endpoint_refusing_the_client(api: httpx.Client, standins: Standins) -> None:
    user = new_id()
    token = standins.introspected(active=True, sub=user)
    refused(api, {"corpnoauth": {"id": user, "access_token": token}}, "OAuth2 token introspection request failed.")


@pytest.mark.parametrize("provider", ["corpslow", "corpdown"])
def test_introspection_slow_or_down(api: httpx.Client, standins: Standins, provider: str) -> None:
    user = new_id()
    started = time.monotonic()
    refused(api, {provider: {"id": user, "access_token": standins.introspected(active=True, sub=user)}},
            "OAuth2 token introspection request failed.")
    assert time.monotonic() - started < BOUND
