"""Passkeys (the ``webauthn`` provider) over the wire, with a software authenticator
(``tests/auth_standins/authenticator.py``) that makes real attestations and assertions.

The server runs ``webauthn`` for rpId example.com, ``quickpass`` (the same adapter named by module,
with challenges that live one second) and ``tinyrate`` (two challenges a minute), plus the cloud
adapters of tests/auth_cloud for an ``additional`` provider (a second factor, as MFA).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.conftest import EXTERNAL
from tests.auth_standins.authenticator import Authenticator, b64url, unb64url
from tests.conftest import ROOT, Server, running_server

RP_ID = "example.com"
ORIGIN = "https://app.example.com"
PASSKEY = "bastion.domain.auth_providers.passkeys:PasskeyAdapter"
INVALID = {"code": 101, "error": "Passkey auth is invalid for this user."}
BAD_CHALLENGE = {"code": 101, "error": "Passkey challenge is invalid or expired."}
# A refused change of a user is answered so, whatever the provider said (as Parse Server does).
DENIED = {"code": 206, "error": "Permission denied"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with passkeys")
    common = {"rpId": RP_ID, "origins": ["https://example.com", ORIGIN]}
    auth = {
        "webauthn": {**common, "rpName": "Example", "maxChallengesPerMinute": 1000},
        "quickpass": {**common, "module": PASSKEY, "timeout": 1000, "maxChallengesPerMinute": 1000},
        "tinyrate": {**common, "module": PASSKEY, "maxChallengesPerMinute": 2},
        "stepper": {"module": "stepper", "secret": "s3"},
    }
    config = tmp_path_factory.mktemp("passkeys") / "auth.json"
    config.write_text(json.dumps(auth))
    with running_server(request.param, ["--cloud", str(ROOT / "tests" / "auth_cloud"),
                                        "--auth-config", str(config)]) as srv:
        yield srv


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def session(token: str) -> dict[str, str]:
    return {"X-Parse-Session-Token": token}


def challenge(api: httpx.Client, action: str, token: str | None = None, provider: str = "webauthn",
              **extra: Any) -> dict[str, Any]:
    answer = api.post("/challenge", json={"challengeData": {provider: {"action": action, **extra}}},
                      headers=session(token) if token else {})
    assert answer.status_code == 200, answer.text
    return answer.json()["challengeData"][provider]  # type: ignore[no-any-return]


def password_user(api: httpx.Client) -> tuple[str, str, str]:
    username = "u" + secrets.token_hex(6)
    created = api.post("/users", json={"username": username, "password": "pw"})
    assert created.status_code == 201, created.text
    return created.json()["objectId"], created.json()["sessionToken"], username


def register(api: httpx.Client, device: Authenticator, user_id: str, token: str,
             provider: str = "webauthn") -> httpx.Response:
    options = challenge(api, "register", token, provider)
    registration = device.create(options)
    return api.put(f"/users/{user_id}", headers=session(token),
                   json={"authData": {provider: {"challengeId": options["challengeId"],
                                                 "registration": registration}}})


def sign_in_body(api: httpx.Client, device: Authenticator, provider: str = "webauthn",
                 **bend: Any) -> dict[str, Any]:
    options = challenge(api, "login", provider=provider)
    assertion = device.get(options, **bend)
    return {"authData": {provider: {"id": assertion["id"], "challengeId": options["challengeId"],
                                    "assertion": assertion}}}


def sign_in(api: httpx.Client, device: Authenticator, provider: str = "webauthn", **bend: Any) -> httpx.Response:
    return api.post("/users", json=sign_in_body(api, device, provider, **bend))


def me(api: httpx.Client, token: str) -> dict[str, Any]:
    response = api.get("/users/me", headers=session(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_hidden(text: str) -> None:
    for secret in ("publicKey", "signCount", "challenge\"", "aaguid"):
        assert secret not in text, text


@pytest.mark.parametrize("fmt", ["none", "packed"])
def test_register_while_signed_in_then_sign_in(api: httpx.Client, fmt: str) -> None:
    user_id, token, username = password_user(api)
    options = challenge(api, "register", token)
    assert options["rp"] == {"name": "Example", "id": RP_ID}
    assert options["user"]["name"] == username
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["challengeId"] and options["challenge"] and options["timeout"] == 300000
    device = Authenticator(ORIGIN, fmt=fmt)
    registration = device.create(options)
    linked = api.put(f"/users/{user_id}", headers=session(token),
                     json={"authData": {"webauthn": {"challengeId": options["challengeId"],
                                                     "registration": registration}}})
    assert linked.status_code == 200, linked.text
    assert linked.json()["authDataResponse"] == {"webauthn": {"credentialId": registration["id"]}}
    shown = me(api, token)["authData"]["webauthn"]
    assert shown["id"] == options["user"]["id"]
    assert [c["id"] for c in shown["credentials"]] == [registration["id"]]
    assert set(shown["credentials"][0]) <= {"id", "createdAt", "lastUsedAt", "transports", "backedUp"}
    assert_hidden(json.dumps(me(api, token)))

    login_options = challenge(api, "login")
    assert login_options["rpId"] == RP_ID and login_options.get("allowCredentials", []) == []
    signed = sign_in(api, device)
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["objectId"] == user_id and body["username"] == username
    assert body["sessionToken"].startswith("r:")
    assert_hidden(signed.text)
    assert me(api, body["sessionToken"])["objectId"] == user_id
    # And again: the counter goes on.
    assert sign_in(api, device).status_code == 200


def test_several_passkeys_per_user(api: httpx.Client) -> None:
    user_id, token, _ = password_user(api)
    phone, laptop = Authenticator(ORIGIN), Authenticator(ORIGIN, fmt="packed", counting=False)
    assert register(api, phone, user_id, token).status_code == 200
    options = challenge(api, "register", token)
    # The same account handle, and the passkey it has is excluded.
    assert options["user"]["id"] == me(api, token)["authData"]["webauthn"]["id"]
    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(phone.credentials[0].id)]
    second = api.put(f"/users/{user_id}", headers=session(token),
                     json={"authData": {"webauthn": {"challengeId": options["challengeId"],
                                                     "registration": laptop.create(options)}}})
    assert second.status_code == 200, second.text
    assert len(me(api, token)["authData"]["webauthn"]["credentials"]) == 2
    for device in (phone, laptop, phone, laptop):  # a counter kept at 0 is accepted (0 stays 0)
        signed = sign_in(api, device)
        assert signed.status_code == 200, signed.text
        assert signed.json()["objectId"] == user_id
    # One passkey out: it no longer signs in, the other does.
    removed = api.put(f"/users/{user_id}", headers=session(token),
                      json={"authData": {"webauthn": {"remove": laptop.credentials[0].id.hex()}}})
    assert removed.status_code == 400 and removed.json() == DENIED  # not an id of the user's passkeys
    removed = api.put(f"/users/{user_id}", headers=session(token),
                      json={"authData": {"webauthn": {"remove": b64url(laptop.credentials[0].id)}}})
    assert removed.status_code == 200, removed.text
    refused = sign_in(api, laptop)
    assert refused.status_code == 404 and refused.json() == INVALID
    assert sign_in(api, phone).status_code == 200
    # What answers show, saved back (an SDK saving its user), changes nothing.
    shown = me(api, token)["authData"]["webauthn"]
    echoed = api.put(f"/users/{user_id}", headers=session(token), json={"authData": {"webauthn": shown}})
    assert echoed.status_code == 200, echoed.text
    assert sign_in(api, phone).status_code == 200


def test_sign_up_with_a_passkey(api: httpx.Client) -> None:
    options = challenge(api, "register", username="newbie@example.com")
    assert options["user"]["name"] == "newbie@example.com"
    device = Authenticator(ORIGIN, fmt="packed")
    username = "pk" + secrets.token_hex(5)
    created = api.post("/users", json={"username": username, "authData": {"webauthn": {
        "challengeId": options["challengeId"], "registration": device.create(options)}}})
    assert created.status_code == 201, created.text
    user_id = created.json()["objectId"]
    assert created.json()["sessionToken"].startswith("r:")
    assert me(api, created.json()["sessionToken"])["username"] == username
    signed = sign_in(api, device)
    assert signed.status_code == 200, signed.text
    assert signed.json()["objectId"] == user_id
    # A sign-up challenge is not a registration for a signed-in user, nor the reverse.
    other_id, other_token, _ = password_user(api)
    options = challenge(api, "register")
    misused = api.put(f"/users/{other_id}", headers=session(other_token), json={"authData": {"webauthn": {
        "challengeId": options["challengeId"], "registration": Authenticator(ORIGIN).create(options)}}})
    assert misused.status_code == 400 and misused.json() == DENIED
    options = challenge(api, "register", other_token)
    misused = api.post("/users", json={"authData": {"webauthn": {
        "challengeId": options["challengeId"], "registration": Authenticator(ORIGIN).create(options)}}})
    assert misused.status_code == 404 and misused.json() == BAD_CHALLENGE


def test_a_replayed_assertion_is_refused(api: httpx.Client) -> None:
    user_id, token, _ = password_user(api)
    device = Authenticator(ORIGIN)
    assert register(api, device, user_id, token).status_code == 200
    body = sign_in_body(api, device)
    assert api.post("/users", json=body).status_code == 200
    replayed = api.post("/users", json=body)
    assert replayed.status_code == 404 and replayed.json() == BAD_CHALLENGE
    # A new assertion on a used challenge: refused too.
    entry = body["authData"]["webauthn"]
    used = json.loads(unb64url(entry["assertion"]["response"]["clientDataJSON"]))["challenge"]
    fresh = device.get({"rpId": RP_ID, "challenge": used})
    again = api.post("/users", json={"authData": {"webauthn": {**entry, "assertion": fresh}}})
    assert again.status_code == 404 and again.json() == BAD_CHALLENGE
    # A registration challenge does not sign in.
    options = challenge(api, "register")
    misused = api.post("/users", json={"authData": {"webauthn": {
        "challengeId": options["challengeId"], "assertion": device.get({**options, "rpId": RP_ID})}}})
    assert misused.status_code == 404 and misused.json() == BAD_CHALLENGE


def test_an_expired_challenge_is_refused(api: httpx.Client) -> None:
    user_id, token, _ = password_user(api)
    device = Authenticator(ORIGIN)
    assert register(api, device, user_id, token, "quickpass").status_code == 200
    assert sign_in(api, device, "quickpass").status_code == 200
    options = challenge(api, "login", provider="quickpass")
    assert options["timeout"] == 1000
    time.sleep(1.5)
    late = api.post("/users", json={"authData": {"quickpass": {
        "challengeId": options["challengeId"], "assertion": device.get(options)}}})
    assert late.status_code == 404 and late.json() == BAD_CHALLENGE
    options = challenge(api, "register", token, "quickpass")
    time.sleep(1.5)
    late = api.put(f"/users/{user_id}", headers=session(token), json={"authData": {"quickpass": {
        "challengeId": options["challengeId"], "registration": Authenticator(ORIGIN).create(options)}}})
    assert late.status_code == 400 and late.json() == DENIED


def test_wrong_origin_or_rp_id_is_refused(api: httpx.Client) -> None:
    user_id, token, _ = password_user(api)
    device = Authenticator(ORIGIN)
    for bend in ({"origin": "https://evil.example.net"}, {"origin": "https://example.com.evil.net"},
                 {"rp_id": "evil.example.net"}):
        options = challenge(api, "register", token)
        refused = api.put(f"/users/{user_id}", headers=session(token), json={"authData": {"webauthn": {
            "challengeId": options["challengeId"], "registration": device.create(options, **bend)}}})
        assert refused.status_code == 400 and refused.json() == DENIED, bend
    assert "webauthn" not in me(api, token).get("authData", {})
    assert register(api, device, user_id, token).status_code == 200
    for bend in ({"origin": "https://evil.example.net"}, {"origin": "http://app.example.com"},
                 {"rp_id": "evil.example.net"}, {"rp_id": "app.example.com"}):
        refused = sign_in(api, device, **bend)
        assert refused.status_code == 404 and refused.json() == INVALID, bend
    assert sign_in(api, device, origin="https://example.com").status_code == 200


def test_a_signature_by_another_key_is_refused(api: httpx.Client) -> None:
    user_id, token, _ = password_user(api)
    device = Authenticator(ORIGIN)
    assert register(api, device, user_id, token).status_code == 200
    refused = sign_in(api, device, key=ec.generate_private_key(ec.SECP256R1()))
    assert refused.status_code == 404 and refused.json() == INVALID
    # Another user's passkey, claiming this user's handle, is not one of this user's passkeys.
    intruder = Authenticator(ORIGIN)
    other_id, other_token, _ = password_user(api)
    assert register(api, intruder, other_id, other_token).status_code == 200
    handle = device.credentials[0].user_handle
    refused = sign_in(api, intruder, user_handle=handle)
    assert refused.status_code == 404 and refused.json() == INVALID
    # An assertion without a user handle, or with a handle nobody has, finds nobody.
    unknown = sign_in(api, device, user_handle=secrets.token_bytes(32))
    assert unknown.status_code == 404 and unknown.json() == INVALID
    assert sign_in(api, device).status_code == 200


def test_a_sign_counter_going_backwards_is_refused(api: httpx.Client) -> None:
    user_id, token, _ = password_user(api)
    device = Authenticator(ORIGIN)
    assert register(api, device, user_id, token).status_code == 200
    assert sign_in(api, device, counter=5).status_code == 200
    for counter in (3, 5, 0):
        refused = sign_in(api, device, counter=counter)
        assert refused.status_code == 404 and refused.json() == INVALID, counter
    assert sign_in(api, device, counter=6).status_code == 200


def test_a_passkey_signs_in_a_user_with_a_second_factor(api: httpx.Client) -> None:
    user_id, token, username = password_user(api)
    linked = api.put(f"/users/{user_id}", headers=session(token), json={"authData": {"second": {"code": "4242"}}})
    assert linked.status_code == 200, linked.text
    missing = api.post("/login", json={"username": username, "password": "pw"})
    assert missing.status_code == 400 and missing.json()["code"] == -1
    device = Authenticator(ORIGIN)
    assert register(api, device, user_id, token).status_code == 200
    # The solo policy: the passkey alone is enough.
    signed = sign_in(api, device)
    assert signed.status_code == 200, signed.text
    assert signed.json()["objectId"] == user_id
    assert api.post("/login", json={"username": username, "password": "pw"}).status_code == 400


def test_bad_requests(api: httpx.Client) -> None:
    wrong = api.post("/challenge", json={"challengeData": {"webauthn": {"action": "dance"}}})
    assert wrong.status_code == 400 and wrong.json()["code"] == 142
    # Neither a registration nor an assertion.
    shapeless = api.post("/users", json={"authData": {"webauthn": {"challengeId": "x"}}})
    assert shapeless.status_code == 400 and shapeless.json()["code"] == 142
    unknown = api.post("/users", json={"authData": {"webauthn": {"challengeId": "nope", "registration": {}}}})
    assert unknown.status_code == 404 and unknown.json() == BAD_CHALLENGE
    # No user handle: refused before any lookup.
    device = Authenticator(ORIGIN)
    device.create(challenge(api, "register"))  # a credential the server never stored
    body = sign_in_body(api, device)
    body["authData"]["webauthn"]["assertion"]["response"]["userHandle"] = None
    refused = api.post("/users", json=body)
    assert refused.status_code == 404 and refused.json() == INVALID
    # Two challenges a minute for tinyrate.
    statuses = [api.post("/challenge", json={"challengeData": {"tinyrate": {"action": "login"}}}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_two_sign_ins_racing_with_one_counter(api: httpx.Client, server: Server) -> None:
    """Two assertions with the same counter, sent at once: one signs in, the other is refused
    (the counter check, or the lock on the stored passkeys when both read the old counter)."""
    user_id, token, _ = password_user(api)
    device = Authenticator(ORIGIN)
    assert register(api, device, user_id, token).status_code == 200
    bodies = [sign_in_body(api, device, counter=9) for _ in range(2)]

    def send(body: dict[str, Any]) -> int:
        with server.client() as client:
            return client.post("/users", json=body).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(send, bodies))
    assert statuses[0] == 200 and statuses[1] in (400, 404), statuses
    assert sign_in(api, device, counter=10).status_code == 200


def test_a_sign_up_from_another_origin_is_refused(api: httpx.Client) -> None:
    options = challenge(api, "register")
    refused = api.post("/users", json={"authData": {"webauthn": {
        "challengeId": options["challengeId"],
        "registration": Authenticator("https://evil.example.net").create(options)}}})
    assert refused.status_code == 404 and refused.json() == INVALID
