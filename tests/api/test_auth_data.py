"""authData over the wire: sign-up and log-in with providers, linking, unlinking, anonymous users.

A Bastion per backend is started with an OpenID Connect provider ``myoidc`` that trusts a local
issuer (``tests/oidc_issuer.py``). The answers are Parse Server 9.10's on PostgreSQL (checked against
it with an equivalent custom adapter): the sign-up's 201 and the log-in's 200, ``authDataResponse``,
the session's ``createdWith``, 208 for an id linked to someone else (only once the provider accepted
the data), 206 "Permission denied" for any refused link, 252 for unknown providers.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.conftest import (
    Server,
    running_server,
)
from tests.oidc_issuer import CLIENT, Issuer, claims, rsa_key, serve, sign

PROVIDER = "myoidc"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    box: list[Issuer] = []
    http = serve(box)
    box.append(Issuer(f"http://127.0.0.1:{http.server_address[1]}", [rsa_key("k1")]))
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        http.shutdown()
        http.server_close()


def _start(backend: str, args: list[str]) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with an OpenID Connect provider")
    with running_server(backend, args) as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def auth_server(request: pytest.FixtureRequest, issuer: Issuer) -> Iterator[Server]:
    auth = {PROVIDER: {"oidc": True, "issuer": issuer.url, "clientId": CLIENT}}
    yield from _start(request.param, ["--auth", json.dumps(auth)])


@pytest.fixture
def api(auth_server: Server) -> Iterator[httpx.Client]:
    with auth_server.client() as client:
        yield client


@pytest.fixture
def master(auth_server: Server) -> Iterator[httpx.Client]:
    with auth_server.client(master=True) as client:
        yield client


def token_for(issuer: Issuer, sub: str, **overrides: Any) -> str:
    return sign(issuer.keys[0], claims(issuer, sub=sub, **overrides))


def oidc(issuer: Issuer, sub: str | None = None) -> dict[str, Any]:
    """A valid ``authData.myoidc`` for a new random subject (or ``sub``)."""
    sub = sub or "sub-" + secrets.token_hex(6)
    return {"id": sub, "id_token": token_for(issuer, sub)}


def as_user(token: str) -> dict[str, str]:
    return {"X-Parse-Session-Token": token}


def sign_up(api: httpx.Client) -> tuple[str, str]:
    response = api.post("/users", json={"username": "u" + secrets.token_hex(6), "password": "pw"})
    assert response.status_code == 201, response.text
    return response.json()["objectId"], response.json()["sessionToken"]


def me(api: httpx.Client, token: str) -> dict[str, Any]:
    response = api.get("/users/me", headers=as_user(token))
    assert response.status_code == 200, response.text
    return response.json()


def created_with(api: httpx.Client, token: str) -> dict[str, Any]:
    response = api.get("/sessions/me", headers=as_user(token))
    assert response.status_code == 200, response.text
    return response.json()["createdWith"]


# --- sign-up and log-in with a provider --------------------------------------------------------------


def test_anonymous_sign_up_then_log_in(api: httpx.Client) -> None:
    auth_data = {"anonymous": {"id": secrets.token_hex(8)}}
    first = api.post("/users", json={"authData": auth_data})
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"objectId", "createdAt", "username", "sessionToken", "authDataResponse"}
    assert len(body["username"]) == 25 and body["username"].isalnum()
    assert body["authDataResponse"] == {}
    assert first.headers["location"].endswith("/users/" + body["objectId"])
    # Parse Server 9.10 records a sign-up with authData as a log-in with that provider.
    assert created_with(api, body["sessionToken"]) == {"action": "login", "authProvider": "anonymous"}

    again = api.post("/users", json={"authData": auth_data})
    assert again.status_code == 200, again.text
    user = again.json()
    assert user["objectId"] == body["objectId"]
    assert user["username"] == body["username"]
    assert user["authData"] == auth_data
    assert user["sessionToken"] != body["sessionToken"]
    assert user["authDataResponse"] == {}
    assert "password" not in user
    assert created_with(api, user["sessionToken"]) == {"action": "login", "authProvider": "anonymous"}
    assert me(api, user["sessionToken"])["authData"] == auth_data


def test_oidc_sign_up_and_log_in_need_a_valid_token(api: httpx.Client, issuer: Issuer) -> None:
    data = oidc(issuer)
    created = api.post("/users", json={"authData": {PROVIDER: data}, "email": "oidc@example.com"})
    assert created.status_code == 201, created.text
    user_id = created.json()["objectId"]
    assert me(api, created.json()["sessionToken"])["email"] == "oidc@example.com"

    fresh = {"id": data["id"], "id_token": token_for(issuer, data["id"], iat=int(time.time()) + 1)}
    login = api.post("/users", json={"authData": {PROVIDER: fresh}})
    assert login.status_code == 200, login.text
    assert login.json()["objectId"] == user_id
    assert login.json()["authData"][PROVIDER] == fresh  # the new token is stored and answered
    assert created_with(api, login.json()["sessionToken"]) == {"action": "login", "authProvider": PROVIDER}

    # Knowing someone's provider id is not enough to become them.
    for refused, message in (
        ({"id": data["id"]}, "id token is invalid for this user."),
        ({"id": data["id"], "id_token": "not.a.jwt"}, "provided token does not decode as JWT"),
        ({"id": data["id"], "id_token": token_for(issuer, "someone-else")}, "auth data is invalid for this user."),
        ({"id": data["id"], "id_token": token_for(issuer, data["id"], exp=int(time.time()) - 3600)}, "jwt expired"),
        ({"id": data["id"], "id_token": token_for(issuer, data["id"], aud="other-app")},
         f"jwt audience invalid. expected: {CLIENT}"),
    ):
        assert_error(api.post("/users", json={"authData": {PROVIDER: refused}}), 404, 101, message)
    # A token for an id nobody uses is refused the same way: the answer tells nothing about ids.
    assert_error(api.post("/users", json={"authData": {PROVIDER: {"id": "nobody-" + secrets.token_hex(4)}}}),
                 404, 101, "id token is invalid for this user.")


def test_log_in_validates_every_provider_given(api: httpx.Client, issuer: Issuer) -> None:
    data = oidc(issuer)
    anonymous = {"id": secrets.token_hex(8)}
    created = api.post("/users", json={"authData": {PROVIDER: data, "anonymous": anonymous}})
    assert created.status_code == 201, created.text
    # The anonymous id finds the user, but the OpenID entry sent along must still be valid.
    partial = {"anonymous": anonymous, PROVIDER: {"id": data["id"]}}
    assert_error(api.post("/users", json={"authData": partial}), 404, 101, "id token is invalid for this user.")
    login = api.post("/users", json={"authData": {"anonymous": anonymous}})
    assert login.status_code == 200 and login.json()["objectId"] == created.json()["objectId"]


def test_sign_up_with_username_password_and_provider(api: httpx.Client, issuer: Issuer) -> None:
    name = "p" + secrets.token_hex(6)
    created = api.post("/users", json={"username": name, "password": "pw", "authData": {PROVIDER: oidc(issuer)}})
    assert created.status_code == 201, created.text
    assert "username" not in created.json()  # not generated: not answered
    login = api.post("/login", json={"username": name, "password": "pw"})
    assert login.status_code == 200, login.text
    assert login.json()["authData"][PROVIDER]["id"]


def test_refused_auth_data(api: httpx.Client) -> None:
    unsupported = (400, 252, "This authentication method is unsupported.")
    assert_error(api.post("/users", json={"authData": {"nope": {"id": "x"}}}), *unsupported)
    assert_error(api.post("/users", json={"authData": {"nope": {"id": "x"}}, "username": "n1", "password": "p"}),
                 *unsupported)
    # Without an object to go by, username and password are needed first, as for any sign-up.
    assert_error(api.post("/users", json={"authData": None}), 400, 200, "bad or missing username")
    assert_error(api.post("/users", json={"authData": {PROVIDER: "abc"}}), 400, 200, "bad or missing username")
    assert_error(api.post("/users", json={"authData": {"anonymous": {}}}), 400, 200, "bad or missing username")
    assert_error(api.post("/users", json={"authData": None, "username": "n2", "password": "p"}), *unsupported)
    assert_error(api.post("/users", json={"authData": {"bad name": {"id": "x"}}}), *unsupported)
    assert_error(api.post("/users", json={"authData": {"anonymous": {"id": 5}}}), 400, 162,
                 "Invalid authData id for provider 'anonymous'.")
    assert_error(api.post("/users", json={"authData": {"anonymous": {"id": "p1", "__proto__": {"x": 1}}}}),
                 400, 105, 'Prohibited keyword in request data: {"key":"__proto__"}.')
    raw = b'{"authData": {"__proto__": {"id": "z"}}}'
    response = api.post("/users", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] in (105, 252), response.text
    # An empty authData is a plain sign-up.
    plain = api.post("/users", json={"authData": {}, "username": "n" + secrets.token_hex(5), "password": "p"})
    assert plain.status_code == 201, plain.text
    assert created_with(api, plain.json()["sessionToken"]) == {"action": "signup", "authProvider": "password"}


@pytest.mark.differs_from_parse_server("Parse Server hands a non-object entry to the adapter (anonymous "
                                       "stores it as is); Bastion refuses it")
def test_a_provider_entry_must_be_an_object(api: httpx.Client) -> None:
    response = api.post("/users", json={"authData": {"anonymous": "abc"}, "username": "s" + secrets.token_hex(5),
                                        "password": "p"})
    assert_error(response, 400, 252, "This authentication method is unsupported.")


# --- linking and unlinking ---------------------------------------------------------------------------


@pytest.mark.differs_from_parse_server("Parse Server stores an echoed or partial authData entry as sent")
def test_link_echo_and_unlink(api: httpx.Client, issuer: Issuer) -> None:
    user_id, token = sign_up(api)
    data = oidc(issuer)
    linked = api.put(f"/users/{user_id}", json={"authData": {PROVIDER: data}}, headers=as_user(token))
    assert linked.status_code == 200, linked.text
    assert set(linked.json()) == {"updatedAt", "authDataResponse"}
    assert me(api, token)["authData"] == {PROVIDER: data}

    # The SDK sends back what it got: unchanged data (or a subset of it) is not validated again.
    for echo in (data, {"id": data["id"]}):
        again = api.put(f"/users/{user_id}", json={"authData": {PROVIDER: echo}}, headers=as_user(token))
        assert again.status_code == 200, again.text
        assert set(again.json()) == {"updatedAt"}
    # ... and not stored either: Parse Server stores the echo as sent (here the id alone), which would
    # let partial data wipe an entry (an MFA secret) without proving anything.
    assert me(api, token)["authData"] == {PROVIDER: data}
    # An entry without its id names no linked account: it is validated as a new link, and refused.
    partial = api.put(f"/users/{user_id}", json={"authData": {PROVIDER: {}}}, headers=as_user(token))
    assert partial.status_code == 400 and partial.json()["code"] == 206, partial.text
    assert me(api, token)["authData"] == {PROVIDER: data}

    # The linked provider logs the user in.
    login = api.post("/users", json={"authData": {PROVIDER: oidc(issuer, data["id"])}})
    assert login.status_code == 200 and login.json()["objectId"] == user_id

    empty = api.put(f"/users/{user_id}", json={"authData": {}}, headers=as_user(token))
    assert empty.status_code == 200 and set(empty.json()) == {"updatedAt"}
    unlinked = api.put(f"/users/{user_id}", json={"authData": {PROVIDER: None}}, headers=as_user(token))
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["authDataResponse"] == {}
    assert "authData" not in me(api, token)
    # Once unlinked, the same provider id signs up a new user.
    fresh = api.post("/users", json={"authData": {PROVIDER: oidc(issuer, data["id"])}})
    assert fresh.status_code == 201 and fresh.json()["objectId"] != user_id
    # Unlinking a provider the server does not know is accepted (nothing to validate).
    other = api.put(f"/users/{user_id}", json={"authData": {"nope": None}}, headers=as_user(token))
    assert other.status_code == 200, other.text


def test_linking_cannot_probe_or_steal_ids(api: httpx.Client, issuer: Issuer) -> None:
    alice_id, alice = sign_up(api)
    bob_id, bob = sign_up(api)
    data = oidc(issuer)
    assert api.put(f"/users/{alice_id}", json={"authData": {PROVIDER: data}},
                   headers=as_user(alice)).status_code == 200
    # Without a valid token, a linked id and a free one get the same answer.
    for attempt in ({"id": data["id"]}, {"id": data["id"], "id_token": "x.y.z"},
                    {"id": "free-" + secrets.token_hex(4)},
                    {"id": data["id"], "id_token": token_for(issuer, "mallory")}):
        response = api.put(f"/users/{bob_id}", json={"authData": {PROVIDER: attempt}}, headers=as_user(bob))
        assert_error(response, 400, 206, "Permission denied")
    # With a valid token for an id linked to someone else: 208.
    taken = api.put(f"/users/{bob_id}", json={"authData": {PROVIDER: oidc(issuer, data["id"])}},
                    headers=as_user(bob))
    assert_error(taken, 400, 208, "this auth is already used")
    assert_error(api.post("/users", json={"authData": {PROVIDER: oidc(issuer, data["id"])}},
                          headers=as_user(bob)), 400, 208, "this auth is already used")
    assert "authData" not in me(api, bob)
    assert me(api, alice)["authData"] == {PROVIDER: data}
    # Nobody links for someone else, and dotted keys cannot write authData around validation.
    assert_error(api.put(f"/users/{alice_id}", json={"authData": {"anonymous": {"id": "x"}}},
                         headers=as_user(bob)), 400, 206, "Permission denied")
    assert_error(api.put(f"/users/{bob_id}", json={f"authData.{PROVIDER}": {"id": data["id"]}},
                         headers=as_user(bob)), 400, 105, f"Invalid field name for update: authData.{PROVIDER}")
    assert_error(api.put(f"/users/{bob_id}", json={"authData": {"nope": {"id": "x"}}}, headers=as_user(bob)),
                 400, 252, "This authentication method is unsupported.")
    assert_error(api.put(f"/users/{bob_id}", json={"authData": None}, headers=as_user(bob)),
                 400, 252, "This authentication method is unsupported.")


def test_auth_data_is_shown_to_the_user_and_the_master_key_only(api: httpx.Client, master: httpx.Client,
                                                                issuer: Issuer) -> None:
    data = oidc(issuer)
    created = api.post("/users", json={"authData": {PROVIDER: data}, "email": "seen@example.com"})
    user_id = created.json()["objectId"]
    assert master.put(f"/users/{user_id}", json={"ACL": {"*": {"read": True}}}).status_code == 200
    _, other = sign_up(api)
    for headers in ({}, as_user(other)):
        seen = api.get(f"/users/{user_id}", headers=headers)
        assert seen.status_code == 200, seen.text
        assert "authData" not in seen.json() and "email" not in seen.json()
        found = api.get("/users", params={"where": json.dumps({"objectId": user_id})}, headers=headers).json()
        assert found["results"] and "authData" not in found["results"][0]
    assert master.get(f"/users/{user_id}").json()["authData"] == {PROVIDER: data}
    # The master key naming known data gets the user, without validation and without a session.
    as_master = master.post("/users", json={"authData": {PROVIDER: {"id": data["id"]}}})
    assert as_master.status_code == 200, as_master.text
    assert as_master.json()["objectId"] == user_id and "sessionToken" not in as_master.json()


def test_concurrent_sign_ups_with_one_id_make_one_user(auth_server: Server, master: httpx.Client) -> None:
    auth_data = {"anonymous": {"id": secrets.token_hex(8)}}
    answers: list[httpx.Response] = []

    def post() -> None:
        with auth_server.client() as client:
            answers.append(client.post("/users", json={"authData": auth_data}))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted({a.status_code for a in answers}) in ([200, 201], [201], [201, 400], [200, 201, 400])
    assert all(a.json().get("code") == 208 for a in answers if a.status_code == 400), [a.text for a in answers]
    found = master.get("/users", params={"where": json.dumps({"authData.anonymous.id": auth_data["anonymous"]["id"]}),
                                         "count": 1}).json()
    assert found["count"] == 1, found
    assert {a.json()["objectId"] for a in answers if a.status_code < 400} == {found["results"][0]["objectId"]}


def test_an_id_of_a_locked_out_user_stays_taken(api: httpx.Client, master: httpx.Client) -> None:
    auth_data = {"anonymous": {"id": secrets.token_hex(8)}}
    user_id = api.post("/users", json={"authData": auth_data}).json()["objectId"]
    assert master.put(f"/users/{user_id}", json={"ACL": {}}).status_code == 200
    # The locked-out user cannot log in, and nobody else gets its id.
    assert_error(api.post("/users", json={"authData": auth_data}), 400, 208, "this auth is already used")
    other_id, other = sign_up(api)
    assert_error(api.put(f"/users/{other_id}", json={"authData": auth_data}, headers=as_user(other)),
                 400, 208, "this auth is already used")
    assert master.post("/users", json={"authData": auth_data}).json()["objectId"] == user_id


def test_master_key_links_for_a_user(master: httpx.Client, api: httpx.Client, issuer: Issuer) -> None:
    user_id, token = sign_up(api)
    data = oidc(issuer)
    response = master.put(f"/users/{user_id}", json={"authData": {PROVIDER: data}})
    assert response.status_code == 200 and set(response.json()) == {"updatedAt", "authDataResponse"}
    assert me(api, token)["authData"] == {PROVIDER: data}
    # Invalid data is refused with the provider's own error for the master key.
    assert_error(master.put(f"/users/{user_id}", json={"authData": {PROVIDER: {"id": "other"}}}),
                 404, 101, "id token is invalid for this user.")


# --- anonymous users -----------------------------------------------------------------------------------


def test_converting_an_anonymous_user(api: httpx.Client) -> None:
    anonymous = {"id": secrets.token_hex(8)}
    created = api.post("/users", json={"authData": {"anonymous": anonymous}}).json()
    user_id, token = created["objectId"], created["sessionToken"]
    name = "c" + secrets.token_hex(6)
    # What the JS SDK sends after setUsername/setPassword: the anonymous entry unlinked.
    converted = api.put(f"/users/{user_id}", json={"authData": {"anonymous": None}, "username": name,
                                                    "password": "pw"}, headers=as_user(token))
    assert converted.status_code == 200, converted.text
    assert set(converted.json()) == {"updatedAt", "sessionToken", "authDataResponse"}
    new_token = converted.json()["sessionToken"]
    assert new_token != token
    user = me(api, new_token)
    assert user["username"] == name and "authData" not in user
    login = api.post("/login", json={"username": name, "password": "pw"})
    assert login.status_code == 200 and login.json()["objectId"] == user_id
    # The anonymous id no longer leads to the user: it makes a new one.
    again = api.post("/users", json={"authData": {"anonymous": anonymous}})
    assert again.status_code == 201 and again.json()["objectId"] != user_id


def test_converting_without_unlinking_keeps_the_anonymous_entry(api: httpx.Client) -> None:
    anonymous = {"id": secrets.token_hex(8)}
    created = api.post("/users", json={"authData": {"anonymous": anonymous}}).json()
    name = "k" + secrets.token_hex(6)
    response = api.put(f"/users/{created['objectId']}", json={"username": name, "password": "pw"},
                       headers=as_user(created["sessionToken"]))
    assert response.status_code == 200, response.text
    assert me(api, response.json()["sessionToken"])["authData"] == {"anonymous": anonymous}


# --- POST /login with a password and authData -----------------------------------------------------------


def test_password_log_in_with_additional_auth_data(api: httpx.Client, issuer: Issuer) -> None:
    name = "l" + secrets.token_hex(6)
    assert api.post("/users", json={"username": name, "password": "pw"}).status_code == 201
    data = oidc(issuer)
    login = api.post("/login", json={"username": name, "password": "pw", "authData": {PROVIDER: data}})
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["authData"] == {PROVIDER: data} and body["authDataResponse"] == {}
    assert created_with(api, body["sessionToken"]) == {"action": "login", "authProvider": "password"}
    assert me(api, body["sessionToken"])["authData"] == {PROVIDER: data}
    assert_error(api.post("/login", json={"username": name, "password": "pw", "authData": {PROVIDER: {"id": "x"}}}),
                 404, 101, "id token is invalid for this user.")
    assert_error(api.post("/login", json={"username": name, "password": "pw", "authData": {"nope": {"id": "x"}}}),
                 400, 252, "This authentication method is unsupported.")
    assert_error(api.post("/login", json={"username": name, "password": "bad", "authData": {PROVIDER: data}}),
                 404, 101, "Invalid username/password.")
    # authData alone does not log in through /login (POST /users does).
    assert_error(api.post("/login", json={"authData": {PROVIDER: data}}), 400, 200, "username/email is required.")


# --- configuration -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_anonymous_server() -> Iterator[Server]:
    yield from _start("sqlite", ["--no-enable-anonymous-users"])


def test_anonymous_users_can_be_disabled(no_anonymous_server: Server) -> None:
    with no_anonymous_server.client() as client:
        assert_error(client.post("/users", json={"authData": {"anonymous": {"id": "x1"}}}),
                     400, 252, "This authentication method is unsupported.")
        # No provider is configured at all: OpenID Connect names are unknown too.
        assert_error(client.post("/users", json={"authData": {PROVIDER: {"id": "x1", "id_token": "t"}}}),
                     400, 252, "This authentication method is unsupported.")
