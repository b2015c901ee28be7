"""The ``email`` provider over the wire, on SQLite and PostgreSQL: codes and magic links mailed
through a local SMTP server (``tests/auth_standins/email_smtp.py``), read out of the mails and
sent back as ``authData`` as a client would.

Besides ``email``, the server has three more providers of the same class with other options:
``emailfast`` (codes live 2 s), ``emailip`` (2 mails an hour per IP) and ``emailclosed``
(``signUp: false``).
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
from tests.auth_standins.email_smtp import Inbox, smtp_inbox
from tests.conftest import Server, running_server

MODULE = "bastion.domain.auth_providers.email_codes:EmailCodeAdapter"
LINK = "https://app.example.com/signin?email={email}&token={token}"
SENT = {"sent": True}


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as box:
        yield box


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def email_server(request: pytest.FixtureRequest, inbox: Inbox) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with a mailer")
    auth = {
        "email": {"maxPerHour": 3, "maxPerHourPerIp": 10_000, "maxAttempts": 3, "link": LINK},
        "emailfast": {"module": MODULE, "ttl": 2, "maxPerHourPerIp": 10_000},
        "emailip": {"module": MODULE, "maxPerHourPerIp": 2},
        "emailclosed": {"module": MODULE, "signUp": False, "maxPerHourPerIp": 10_000},
    }
    args = ["--auth", json.dumps(auth), "--mail-url", f"smtp://127.0.0.1:{inbox.port}?from=no-reply@example.com"]
    with running_server(request.param, args) as server:
        yield server


@pytest.fixture
def api(email_server: Server) -> Iterator[httpx.Client]:
    with email_server.client() as client:
        yield client


@pytest.fixture
def master(email_server: Server) -> Iterator[httpx.Client]:
    with email_server.client(master=True) as client:
        yield client


def new_address() -> str:
    return f"user-{secrets.token_hex(5)}@example.com"


def ask(api: httpx.Client, address: str, provider: str = "email") -> httpx.Response:
    return api.post("/challenge", json={"challengeData": {provider: {"email": address}}})


def mailed(api: httpx.Client, inbox: Inbox, address: str, provider: str = "email") -> Any:
    """Ask for a code and wait for the new mail (to the address as the server normalizes it)."""
    to = address.strip().lower()
    before = len(inbox.to(to))
    response = ask(api, address, provider)
    assert response.status_code == 200, response.text
    assert response.json() == {"challengeData": {provider: SENT}}
    return inbox.wait_for(to, before + 1)[-1]


def sign_in(api: httpx.Client, entry: dict[str, Any], provider: str = "email") -> httpx.Response:
    return api.post("/users", json={"authData": {provider: entry}})


def me(email_server: Server, token: str) -> dict[str, Any]:
    with email_server.client(**{"X-Parse-Session-Token": token}) as client:
        response = client.get("/users/me")
        assert response.status_code == 200, response.text
        return dict(response.json())


# --- sign-up and log-in ------------------------------------------------------------------------------


def test_code_signs_up_then_logs_in(api: httpx.Client, inbox: Inbox, email_server: Server,
                                    master: httpx.Client) -> None:
    address = new_address()
    mail = mailed(api, inbox, address)
    assert mail.recipients == (address,) and mail.message["To"] == address
    created = sign_in(api, {"id": address, "code": mail.code})
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["username"]) == 25 and body["sessionToken"]
    user = me(email_server, body["sessionToken"])
    assert user["email"] == address and user["emailVerified"] is True
    assert user["authData"] == {"email": {"id": address}}  # after_find: the id only
    stored = master.get(f"/users/{body['objectId']}").json()
    assert stored["authData"] == {"email": {"id": address}}

    again = sign_in(api, {"id": address, "code": mailed(api, inbox, address).code})
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == body["objectId"]
    assert again.json()["authData"] == {"email": {"id": address}}
    assert again.json()["sessionToken"] != body["sessionToken"]


def test_magic_link_token_signs_in(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    mail = mailed(api, inbox, address)
    assert mail.token and len(mail.token) >= 40
    assert f"https://app.example.com/signin?email={address}&token={mail.token}" in mail.text
    created = sign_in(api, {"id": address, "token": mail.token})
    assert created.status_code == 201, created.text
    # The link was the mail's: its code went with it.
    assert_error(sign_in(api, {"id": address, "code": mail.code}), 404, 101)
    assert_error(sign_in(api, {"id": address, "token": mail.token}), 404, 101)


def test_addresses_are_trimmed_and_lowercase(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    mail = mailed(api, inbox, "  " + address.upper() + " ")
    assert mail.recipients == (address,)
    created = sign_in(api, {"id": address.upper(), "code": mail.code})
    assert created.status_code == 201, created.text
    logged = sign_in(api, {"id": address, "code": mailed(api, inbox, address).code})
    assert logged.status_code == 200 and logged.json()["objectId"] == created.json()["objectId"]


def test_a_code_is_used_once(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    code = mailed(api, inbox, address).code
    assert sign_in(api, {"id": address, "code": code}).status_code == 201
    assert_error(sign_in(api, {"id": address, "code": code}), 404, 101, "Email auth is invalid for this user.")


@pytest.mark.parametrize("known", [False, True])
def test_concurrent_uses_of_one_code_one_wins(api: httpx.Client, inbox: Inbox, email_server: Server,
                                              known: bool) -> None:
    address = new_address()
    if known:
        assert sign_in(api, {"id": address, "code": mailed(api, inbox, address).code}).status_code == 201
    code = mailed(api, inbox, address).code
    statuses: list[int] = []
    barrier = threading.Barrier(3)  # maxAttempts: more parallel tries would void the code for all

    def use() -> None:
        with email_server.client() as client:
            barrier.wait()
            statuses.append(sign_in(client, {"id": address, "code": code}).status_code)
    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == sorted([200 if known else 201, 404, 404]), statuses


def test_expired_code_refused(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    code = mailed(api, inbox, address, "emailfast").code
    time.sleep(2.5)
    assert_error(sign_in(api, {"id": address, "code": code}, "emailfast"), 404, 101)


def test_wrong_codes_void_the_pending_one(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    code = mailed(api, inbox, address).code
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):  # maxAttempts
        assert_error(sign_in(api, {"id": address, "code": wrong}), 404, 101)
    assert_error(sign_in(api, {"id": address, "code": code}), 404, 101)  # void now
    fresh = mailed(api, inbox, address).code
    assert sign_in(api, {"id": address, "code": fresh}).status_code == 201


def test_missing_or_bad_credentials(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    assert_error(sign_in(api, {"id": address}), 404, 101)
    assert_error(sign_in(api, {"id": address, "code": 123456}), 404, 101)
    assert_error(sign_in(api, {"id": "not an address", "code": "123456"}), 404, 101)
    assert_error(ask(api, "not an address"), 400, 125)


def test_codes_are_for_their_address(api: httpx.Client, inbox: Inbox) -> None:
    one, other = new_address(), new_address()
    code = mailed(api, inbox, one).code
    assert_error(sign_in(api, {"id": other, "code": code}), 404, 101)
    assert sign_in(api, {"id": one, "code": code}).status_code == 201


# --- what answers and mails tell -----------------------------------------------------------------


def test_rate_limit_per_address(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    answers = [ask(api, address) for _ in range(5)]
    assert {(r.status_code, r.text) for r in answers} == {(200, answers[0].text)}
    inbox.wait_for(address, 3)
    time.sleep(1.0)
    assert len(inbox.to(address)) == 3  # maxPerHour: the extra requests mailed nothing


def test_rate_limit_per_ip(api: httpx.Client, inbox: Inbox) -> None:
    addresses = [new_address() for _ in range(3)]
    answers = [ask(api, address, "emailip") for address in addresses]
    assert all(r.status_code == 200 and r.json() == {"challengeData": {"emailip": SENT}} for r in answers)
    inbox.wait_for(addresses[0])
    inbox.wait_for(addresses[1])
    time.sleep(1.0)
    assert inbox.to(addresses[2]) == []


def test_known_and_unknown_addresses_answer_alike(api: httpx.Client, inbox: Inbox) -> None:
    known, unknown = new_address(), new_address()
    assert sign_in(api, {"id": known, "code": mailed(api, inbox, known).code}).status_code == 201
    one, two = ask(api, known), ask(api, unknown)
    assert (one.status_code, one.json()) == (two.status_code, two.json())
    wrong_known = sign_in(api, {"id": known, "code": "000000"})
    wrong_unknown = sign_in(api, {"id": unknown, "code": "000000"})
    assert (wrong_known.status_code, wrong_known.json()) == (wrong_unknown.status_code, wrong_unknown.json())


def test_mails_go_only_to_the_given_address(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    before = len(inbox.mails)
    mail = mailed(api, inbox, address)
    time.sleep(0.5)
    new = inbox.mails[before:]
    assert [m.recipients for m in new] == [(address,)]
    assert mail.message["To"] == address and mail.message["Cc"] is None and mail.message["Bcc"] is None
    # A list or an object is not an address: nothing is mailed.
    for bad in ([address, new_address()], {"email": address}, f"{address}, other@example.com",
                f"{address}\r\nBcc: other@example.com"):
        assert_error(ask(api, bad), 400, 125)  # type: ignore[arg-type]
    time.sleep(0.3)
    assert len(inbox.mails) == before + 1


def test_sign_up_closed(api: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    answer = ask(api, address, "emailclosed")
    assert answer.json() == {"challengeData": {"emailclosed": SENT}}
    time.sleep(1.0)
    assert inbox.to(address) == []
    assert_error(sign_in(api, {"id": address, "code": "123456"}, "emailclosed"), 404, 101)


# --- users who already have the address -----------------------------------------------------------


def test_existing_password_user_with_the_email(api: httpx.Client, master: httpx.Client, inbox: Inbox) -> None:
    address = new_address()
    created = api.post("/users", json={"username": "pw-" + secrets.token_hex(4), "password": "pw", "email": address})
    assert created.status_code == 201, created.text
    user_id = created.json()["objectId"]
    # Unverified: whoever made that account may not own the address; refused, nothing linked.
    refused = sign_in(api, {"id": address, "code": mailed(api, inbox, address).code})
    assert_error(refused, 400, 203)
    assert "authData" not in master.get(f"/users/{user_id}").json()
    # Verified: that user signs in and gets the provider.
    assert master.put(f"/users/{user_id}", json={"emailVerified": True}).status_code == 200
    logged = sign_in(api, {"id": address, "code": mailed(api, inbox, address).code})
    assert logged.status_code == 200, logged.text
    assert logged.json()["objectId"] == user_id and logged.json()["sessionToken"]
    assert master.get(f"/users/{user_id}").json()["authData"] == {"email": {"id": address}}
    again = sign_in(api, {"id": address, "code": mailed(api, inbox, address).code})
    assert again.status_code == 200 and again.json()["objectId"] == user_id
    # signUp: false still signs such a user in.
    closed = sign_in(api, {"id": address, "code": mailed(api, inbox, address, "emailclosed").code}, "emailclosed")
    assert closed.status_code == 200 and closed.json()["objectId"] == user_id


def test_client_cannot_choose_another_email(api: httpx.Client, inbox: Inbox, email_server: Server) -> None:
    address = new_address()
    code = mailed(api, inbox, address).code
    created = api.post("/users", json={"authData": {"email": {"id": address, "code": code}},
                                       "email": "someone-else@example.com"})
    assert created.status_code == 201, created.text
    user = me(email_server, created.json()["sessionToken"])
    assert user["email"] == address and user["emailVerified"] is True


def test_linking_to_a_signed_in_user(api: httpx.Client, inbox: Inbox, email_server: Server) -> None:
    created = api.post("/users", json={"username": "ln-" + secrets.token_hex(4), "password": "pw"})
    session, user_id = created.json()["sessionToken"], created.json()["objectId"]
    address = new_address()
    code = mailed(api, inbox, address).code
    with email_server.client(**{"X-Parse-Session-Token": session}) as client:
        linked = client.put(f"/users/{user_id}", json={"authData": {"email": {"id": address, "code": code}}})
        assert linked.status_code == 200, linked.text
        assert client.get("/users/me").json()["authData"] == {"email": {"id": address}}
    logged = sign_in(api, {"id": address, "code": mailed(api, inbox, address).code})
    assert logged.status_code == 200 and logged.json()["objectId"] == user_id
