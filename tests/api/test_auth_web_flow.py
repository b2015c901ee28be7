"""The web sign-in flow over the wire: ``/auth/<provider>/start`` → the provider → ``/callback`` → the
app's URL with a one-time code → ``POST /auth/session``, against a local OAuth/OIDC stand-in
(``tests/auth_standins/oauth_server.py``) that checks the client secret, the redirect URI and PKCE,
and signs ID tokens with the flow's nonce. Redirects are never followed: each step is checked.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.auth_standins.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthStandIn, running_standin
from tests.conftest import Server, free_port, running_server

APP = "https://app.example/signed-in"
OTHER_APP = "https://app.example/other"
PROVIDER = "webidp"


@pytest.fixture(scope="module")
def standin() -> Iterator[OAuthStandIn]:
    with running_standin() as running:
        yield running


def _web(standin: OAuthStandIn, **overrides: Any) -> dict[str, Any]:
    return {"authorizationUrl": standin.url + "/authorize", "tokenUrl": standin.url + "/token",
            "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "scope": "openid email",
            "redirectUris": [APP, OTHER_APP], **overrides}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, standin: OAuthStandIn) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with a web sign-in provider")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    auth = {
        PROVIDER: {"oidc": True, "issuer": standin.url, "clientId": CLIENT_ID, "web": _web(standin)},
        # The same provider through HTTP Basic client authentication.
        "webbasic": {"oidc": True, "issuer": standin.url, "clientId": CLIENT_ID,
                     "web": _web(standin, tokenAuth="basic")},
        "webwrong": {"oidc": True, "issuer": standin.url, "clientId": CLIENT_ID,
                     "web": _web(standin, clientSecret="not-the-secret")},
        "webdead": {"oidc": True, "issuer": standin.url, "clientId": CLIENT_ID,
                    "web": _web(standin, tokenUrl=dead + "/token")},
        # Without openid: the access token names the account at userInfoUrl; a custom adapter checks it.
        "webplain": {"module": "tests.auth_standins.oauth_server:UserInfoAdapter",
                     "userInfoUrl": standin.url + "/userinfo",
                     "web": _web(standin, scope="profile", userInfoUrl=standin.url + "/userinfo")},
        # A code provider Parse ships: the flow's access token, checked at the provider's user API.
        "microsoft": {"clientId": CLIENT_ID, "clientSecret": "unused-here", "tokenUrl": standin.url + "/token",
                      "userUrl": standin.url + "/me",
                      "web": _web(standin, scope="User.Read", userInfoUrl=standin.url + "/me")},
    }
    with running_server(request.param, ["--auth", json.dumps(auth)]) as srv:
        yield srv


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """A browser: no keys, no redirects followed, cookies handled by the test."""
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = {k: v for k, v in parse_qsl(parts.query)}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return parts._replace(query=urlencode(params)).geturl()


class Walk:
    """One flow's steps: the start's answer, the provider's, the callback's."""

    def __init__(self, start: httpx.Response, provider: httpx.Response | None, landing: httpx.Response | None,
                 cookie: str, callback: str | None) -> None:
        self.start, self.provider, self.landing = start, provider, landing
        self.cookie, self.callback = cookie, callback

    @property
    def app_url(self) -> str:
        assert self.landing is not None and self.landing.status_code == 302, self.landing
        return self.landing.headers["location"]

    @property
    def app_query(self) -> dict[str, str]:
        return query_of(self.app_url)


def walk(server: Server, browser: httpx.Client, sub: str, provider: str = PROVIDER, redirect: str | None = APP,
         tamper: Callable[[str], str] | None = None, start_url: str | None = None) -> Walk:
    url = start_url or f"{server.url}/auth/{provider}/start" + (
        "?" + urlencode({"redirect": redirect}) if redirect is not None else "")
    start = browser.get(url)
    assert start.status_code == 302, start.text
    cookie = start.headers["set-cookie"].split(";", 1)[0]
    authorize = with_query(start.headers["location"], login_hint=sub)
    if tamper is not None:
        authorize = tamper(authorize)
    at_provider = browser.get(authorize)
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["location"]
    assert callback.startswith(f"{server.url}/auth/{provider}/callback?")
    landing = browser.get(callback, headers={"Cookie": cookie})
    return Walk(start, at_provider, landing, cookie, callback)


def redeem(api: httpx.Client, code: str) -> httpx.Response:
    return api.post("/auth/session", json={"code": code})


def signed_in(server: Server, browser: httpx.Client, api: httpx.Client, sub: str, **kwargs: Any) -> dict[str, Any]:
    done = walk(server, browser, sub, **kwargs)
    assert done.app_url.startswith(APP + "?"), done.app_url
    answer = redeem(api, done.app_query["code"])
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def me(api: httpx.Client, token: str) -> dict[str, Any]:
    response = api.get("/users/me", headers={"X-Parse-Session-Token": token})
    assert response.status_code == 200, response.text
    return dict(response.json())


def new_sub() -> str:
    return "web-" + secrets.token_hex(6)


# --- signing in ---------------------------------------------------------------------------------------


def test_start_redirects_to_the_provider_with_pkce_state_and_nonce(server: Server, browser: httpx.Client,
                                                                    standin: OAuthStandIn) -> None:
    start = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": APP})
    assert start.status_code == 302
    location = start.headers["location"]
    assert location.startswith(standin.url + "/authorize?")
    params = query_of(location)
    assert params["response_type"] == "code" and params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == f"{server.url}/auth/{PROVIDER}/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 40 and len(params["nonce"]) >= 30
    assert params["scope"] == "openid email"
    assert start.headers["cache-control"] == "no-store"
    cookie = start.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and f"Path=/parse/auth/{PROVIDER}/callback" in cookie


def test_sign_up_then_sign_in_again_is_the_same_user(server: Server, browser: httpx.Client,
                                                      api: httpx.Client) -> None:
    sub = new_sub()
    first = signed_in(server, browser, api, sub)
    assert {"objectId", "sessionToken", "username"} <= set(first)
    user = me(api, first["sessionToken"])
    assert user["objectId"] == first["objectId"]
    assert user["authData"][PROVIDER]["id"] == sub
    session = api.get("/sessions/me", headers={"X-Parse-Session-Token": first["sessionToken"]}).json()
    assert session["createdWith"] == {"action": "login", "authProvider": PROVIDER}

    again = signed_in(server, browser, api, sub)
    assert again["objectId"] == first["objectId"]
    assert again["sessionToken"] != first["sessionToken"]
    assert me(api, again["sessionToken"])["objectId"] == first["objectId"]


def test_http_basic_client_authentication(server: Server, browser: httpx.Client, api: httpx.Client) -> None:
    answer = signed_in(server, browser, api, new_sub(), provider="webbasic")
    assert me(api, answer["sessionToken"])["objectId"] == answer["objectId"]


def test_access_token_mode_through_user_info(server: Server, browser: httpx.Client, api: httpx.Client) -> None:
    sub = new_sub()
    start = browser.get(f"{server.url}/auth/webplain/start", params={"redirect": APP})
    assert "nonce" not in query_of(start.headers["location"])  # no ID token asked for
    answer = signed_in(server, browser, api, sub, provider="webplain")
    assert me(api, answer["sessionToken"])["authData"]["webplain"]["id"] == sub


def test_a_code_provider_takes_the_flows_access_token(server: Server, browser: httpx.Client,
                                                      api: httpx.Client) -> None:
    # Parse's code adapters refuse {id, access_token} from clients (the insecure form); from the
    # flow, which got the token from the provider itself, the adapter asks the provider whose it is.
    sub = new_sub()
    answer = signed_in(server, browser, api, sub, provider="microsoft")
    assert me(api, answer["sessionToken"])["authData"] == {"microsoft": {"id": sub}}
    again = signed_in(server, browser, api, sub, provider="microsoft")
    assert again["objectId"] == answer["objectId"]
    forged = api.post("/users", json={"authData": {"microsoft": {"id": sub, "access_token": "made-up"}}})
    assert forged.status_code == 400 and forged.json() == {"code": 142, "error": "Microsoft code is required."}


def test_the_only_redirect_is_the_default(server: Server, browser: httpx.Client) -> None:
    # Two are allowed here: naming none is refused rather than guessed.
    start = browser.get(f"{server.url}/auth/{PROVIDER}/start")
    assert_error(start, 400, 142)


# --- linking ------------------------------------------------------------------------------------------


def test_linking_to_the_signed_in_user(server: Server, browser: httpx.Client, api: httpx.Client) -> None:
    made = api.post("/users", json={"username": "u" + secrets.token_hex(6), "password": "pw"})
    assert made.status_code == 201, made.text
    user_id, token = made.json()["objectId"], made.json()["sessionToken"]
    # The app's fetch, with its session: a single-use start URL for the browser.
    asked = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": OTHER_APP},
                        headers={"X-Parse-Session-Token": token})
    assert asked.status_code == 200, asked.text
    start_url = asked.json()["url"]
    assert start_url.startswith(f"{server.url}/auth/{PROVIDER}/start?ticket=")
    sub = new_sub()
    done = walk(server, browser, sub, start_url=start_url)
    assert done.app_url.startswith(OTHER_APP + "?"), done.app_url
    linked = redeem(api, done.app_query["code"])
    assert linked.status_code == 200, linked.text
    assert linked.json()["objectId"] == user_id and linked.json()["linked"] is True
    assert "sessionToken" not in linked.json()
    assert me(api, token)["authData"][PROVIDER]["id"] == sub
    # Signing in with the provider now is that user.
    assert signed_in(server, browser, api, sub)["objectId"] == user_id
    # The ticket was single-use.
    assert_error(browser.get(start_url), 404, 101)


def test_linking_needs_a_live_session(server: Server, browser: httpx.Client) -> None:
    asked = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": APP},
                        headers={"X-Parse-Session-Token": "r:not-a-session"})
    assert_error(asked, 400, 209)


def test_linking_an_id_of_another_user_is_refused(server: Server, browser: httpx.Client,
                                                  api: httpx.Client) -> None:
    sub = new_sub()
    signed_in(server, browser, api, sub)  # someone else has it
    made = api.post("/users", json={"username": "u" + secrets.token_hex(6), "password": "pw"}).json()
    asked = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": APP},
                        headers={"X-Parse-Session-Token": made["sessionToken"]})
    done = walk(server, browser, sub, start_url=asked.json()["url"])
    assert done.app_query["error"] == "access_denied"
    assert done.app_query["parse_error"] == "208"


# --- refusals -----------------------------------------------------------------------------------------


def test_redirect_not_in_the_allowed_list_is_refused(server: Server, browser: httpx.Client) -> None:
    for target in ("https://evil.example/", APP + "/", APP + "?x=1", "https://app.example/signed-in.evil"):
        start = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": target})
        assert_error(start, 400, 142)
        assert "location" not in start.headers


def test_unknown_or_unconfigured_provider(server: Server, browser: httpx.Client) -> None:
    assert_error(browser.get(f"{server.url}/auth/nosuch/start", params={"redirect": APP}), 400, 252)
    assert_error(browser.get(f"{server.url}/auth/anonymous/start", params={"redirect": APP}), 400, 252)


def test_state_is_single_use(server: Server, browser: httpx.Client, api: httpx.Client) -> None:
    done = walk(server, browser, new_sub())
    assert "code" in done.app_query
    assert done.callback is not None
    replay = browser.get(done.callback, headers={"Cookie": done.cookie})
    assert_error(replay, 400, 142)
    assert "location" not in replay.headers


def test_missing_or_unknown_state(server: Server, browser: httpx.Client) -> None:
    assert_error(browser.get(f"{server.url}/auth/{PROVIDER}/callback", params={"code": "x"}), 400, 142)
    assert_error(browser.get(f"{server.url}/auth/{PROVIDER}/callback",
                             params={"code": "x", "state": "forged"}), 400, 142)


def test_callback_from_another_browser_is_refused(server: Server, browser: httpx.Client) -> None:
    start = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": APP})
    at_provider = browser.get(with_query(start.headers["location"], login_hint=new_sub()))
    # The victim's browser opens the attacker's callback link: it has no binding cookie.
    with httpx.Client(timeout=30, follow_redirects=False) as victim:
        landing = victim.get(at_provider.headers["location"])
    assert landing.status_code == 302
    assert query_of(landing.headers["location"])["error"] == "invalid_request"


def test_handoff_code_is_single_use(server: Server, browser: httpx.Client, api: httpx.Client) -> None:
    done = walk(server, browser, new_sub())
    code = done.app_query["code"]
    assert redeem(api, code).status_code == 200
    assert_error(redeem(api, code), 404, 101)
    assert_error(redeem(api, "made-up"), 404, 101)
    assert_error(api.post("/auth/session", json={}), 404, 101)
    # The app's own request: it needs the app's keys.
    assert browser.post(f"{server.url}/auth/session", json={"code": code}).status_code == 403


def test_wrong_pkce_challenge_is_refused_by_the_provider(server: Server, browser: httpx.Client,
                                                         standin: OAuthStandIn) -> None:
    # An attacker swapping the challenge: Bastion's verifier no longer matches at the token endpoint.
    done = walk(server, browser, new_sub(), tamper=lambda url: with_query(url, code_challenge="A" * 43))
    assert done.app_url.startswith(APP + "?")
    assert done.app_query["error"] == "invalid_grant"
    assert "code" not in done.app_query


def test_missing_pkce_is_refused_by_the_provider(server: Server, browser: httpx.Client) -> None:
    done = walk(server, browser, new_sub(), tamper=lambda url: with_query(url, code_challenge=None))
    assert done.app_query["error"] == "invalid_request"
    assert "code" not in done.app_query


def test_the_stand_in_refuses_a_code_without_its_verifier(server: Server, browser: httpx.Client,
                                                          standin: OAuthStandIn) -> None:
    # A stolen code is useless without the verifier, which never leaves the server.
    start = browser.get(f"{server.url}/auth/{PROVIDER}/start", params={"redirect": APP})
    at_provider = browser.get(with_query(start.headers["location"], login_hint=new_sub()))
    stolen = query_of(at_provider.headers["location"])["code"]
    form = {"grant_type": "authorization_code", "code": stolen, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "redirect_uri": f"{server.url}/auth/{PROVIDER}/callback"}
    refused = httpx.post(standin.url + "/token", data=form)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_answered_cleanly(server: Server, browser: httpx.Client) -> None:
    done = walk(server, browser, new_sub(), provider="webwrong")
    assert done.app_query["error"] == "invalid_client"


def test_nonce_mismatch_is_refused(server: Server, browser: httpx.Client) -> None:
    done = walk(server, browser, new_sub(), tamper=lambda url: with_query(url, nonce="someone-elses"))
    assert done.app_query["error"] == "access_denied"
    assert "nonce" in done.app_query["error_description"]
    assert "code" not in done.app_query


def test_provider_error_goes_back_to_the_app(server: Server, browser: httpx.Client) -> None:
    done = walk(server, browser, new_sub(), redirect=OTHER_APP, tamper=lambda url: with_query(url, deny="1"))
    assert done.app_url.startswith(OTHER_APP + "?")
    assert done.app_query["error"] == "access_denied"


def test_provider_unreachable_is_answered_cleanly_and_quickly(server: Server, browser: httpx.Client) -> None:
    began = time.monotonic()
    done = walk(server, browser, new_sub(), provider="webdead")
    assert time.monotonic() - began < 10
    assert done.app_query["error"] == "temporarily_unavailable"


def test_the_session_token_is_never_in_a_url(server: Server, browser: httpx.Client, api: httpx.Client) -> None:
    done = walk(server, browser, new_sub())
    token = redeem(api, done.app_query["code"]).json()["sessionToken"]
    for response in (done.start, done.provider, done.landing):
        assert response is not None
        assert token not in response.headers.get("location", "")
    assert set(parse_qs(urlsplit(done.app_url).query)) == {"code"}
