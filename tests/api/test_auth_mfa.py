"""The ``mfa`` auth adapter over the wire (Parse Server 9.10's protocol), on SQLite and PostgreSQL.

Each backend runs a Bastion with ``mfa`` on for TOTP and SMS; its ``sendSMS`` is a cloud function
(written here) that appends each code to a file the tests read, in place of an SMS gateway.
Beyond Parse: codes are single-use (a TOTP step is not accepted twice, and of many concurrent
log-ins with one code exactly one succeeds), MFA is turned off only with a valid code or by the
master key, and secrets and recovery codes never reach a client.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.conftest import Server, running_server
from tests.livequery.helpers import connected

PERIOD = 30
SMS_FUNCTION = "sendMfaSms"
CLOUD = '''
import json
from bastion import cloud

OUT = {out!r}


@cloud.define({name!r})
def send_mfa_sms(request):
    # Only the server (the mfa adapter) may send codes: clients calling the function are refused.
    if not request.master:
        raise cloud.Error(141, "Unauthorized")
    with open(OUT, "a") as out:
        out.write(json.dumps({{"mobile": request.params["mobile"], "token": request.params["token"]}}) + "\\n")
'''
MISSING = (400, -1, "Missing additional authData mfa")
INVALID_TOKEN = (400, 141, "Invalid MFA token")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mfa_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with the mfa provider")
    folder = tmp_path_factory.mktemp("mfa_cloud")
    (folder / "mfa_cloud.py").write_text(CLOUD.format(out=str(folder / "sms.jsonl"), name=SMS_FUNCTION))
    auth = {"mfa": {"options": ["TOTP", "SMS"], "digits": 6, "period": PERIOD, "algorithm": "SHA1",
                    "sendSMS": SMS_FUNCTION}}
    with running_server(request.param, ["--auth", json.dumps(auth), "--cloud", str(folder / "mfa_cloud.py")]) as srv:
        _SMS_LOGS[srv.url] = folder / "sms.jsonl"
        yield srv


@pytest.fixture
def api(mfa_server: Server) -> Iterator[httpx.Client]:
    with mfa_server.client() as client:
        yield client


@pytest.fixture
def master(mfa_server: Server) -> Iterator[httpx.Client]:
    with mfa_server.client(master=True) as client:
        yield client


_SMS_LOGS: dict[str, Path] = {}  # server URL -> the file its sendSMS function writes


def sent_codes(server: Server, mobile: str) -> list[str]:
    """The codes sent to ``mobile`` so far, oldest first."""
    path = _SMS_LOGS[server.url]
    lines = path.read_text().splitlines() if path.exists() else []
    return [entry["token"] for entry in map(json.loads, lines) if entry["mobile"] == mobile]


def as_user(token: str) -> dict[str, str]:
    return {"X-Parse-Session-Token": token}


def step_now() -> int:
    return int(time.time()) // PERIOD


def code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, interval=PERIOD).generate_otp(step)


class Account:
    def __init__(self, user_id: str, session: str, username: str, password: str) -> None:
        self.id, self.session, self.username, self.password = user_id, session, username, password
        self.secret = ""
        self.recovery: list[str] = []
        self.step = 0  # the TOTP step the enrolment used

    def login(self, api: httpx.Client, mfa: Any = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"username": self.username, "password": self.password, **extra}
        if mfa is not None:
            body["authData"] = {"mfa": mfa}
        return api.post("/login", json=body)


def new_account(api: httpx.Client) -> Account:
    username, password = "u" + secrets.token_hex(6), "pw-" + secrets.token_hex(4)
    response = api.post("/users", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return Account(response.json()["objectId"], response.json()["sessionToken"], username, password)


def enrol_totp(api: httpx.Client, account: Account) -> Account:
    account.secret = pyotp.random_base32()  # 32 characters
    account.step = step_now()
    response = api.put(f"/users/{account.id}", headers=as_user(account.session),
                       json={"authData": {"mfa": {"secret": account.secret, "token": code(account.secret,
                                                                                          account.step)}}})
    assert response.status_code == 200, response.text
    recovery = response.json()["authDataResponse"]["mfa"]["recovery"]
    account.recovery = recovery.split(", ")
    assert len(account.recovery) == 2 and all(len(c) == 30 and c.isalnum() for c in account.recovery)
    return account


def stored(master: httpx.Client, account: Account) -> dict[str, Any]:
    response = master.get(f"/users/{account.id}")
    assert response.status_code == 200, response.text
    return response.json().get("authData", {}).get("mfa", {})  # type: ignore[no-any-return]


def concurrently(server: Server, account: Account, mfa: dict[str, Any], count: int = 12) -> list[httpx.Response]:
    """``count`` log-ins with the same ``authData.mfa``, sent at once."""
    async def run() -> list[httpx.Response]:
        headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Javascript-Key": server.javascript_key}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            body = {"username": account.username, "password": account.password, "authData": {"mfa": mfa}}
            return await asyncio.gather(*(client.post("/login", json=body) for _ in range(count)))
    return asyncio.run(run())


def exactly_one_wins(responses: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert response.json()["code"] == 141, response.text
            assert response.json()["error"] in ("Invalid MFA token", "Invalid MFA token 1", "Invalid auth data")


# --- TOTP ----------------------------------------------------------------------------------------------


def test_totp_enrolment_then_log_in_with_a_code(api: httpx.Client, master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    entry = stored(master, account)
    assert entry["secret"] == account.secret and entry["recovery"] == account.recovery
    me = api.get("/users/me", headers=as_user(account.session)).json()
    assert me["authData"] == {"mfa": {"status": "enabled"}}

    assert_error(account.login(api), *MISSING)
    assert_error(account.login(api, {}), *MISSING)
    assert_error(account.login(api, {"token": "000000" if code(account.secret, account.step + 1) != "000000"
                                     else "111111"}), *INVALID_TOKEN)
    assert_error(account.login(api, {"token": 123456}), *INVALID_TOKEN)
    # The enrolment's code is used up: it cannot log in.
    assert_error(account.login(api, {"token": code(account.secret, account.step)}), *INVALID_TOKEN)
    login = account.login(api, {"token": code(account.secret, account.step + 1)})
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["objectId"] == account.id and body["sessionToken"]
    assert body["authData"] == {"mfa": {"status": "enabled"}}
    assert body["authDataResponse"] == {}
    # A code that logged in cannot log in again, nor can an older one.
    assert_error(account.login(api, {"token": code(account.secret, account.step + 1)}), *INVALID_TOKEN)
    assert_error(account.login(api, {"token": code(account.secret, account.step)}), *INVALID_TOKEN)
    assert stored(master, account)["last"] == account.step + 1


def test_enrolment_needs_a_valid_secret_and_code(api: httpx.Client) -> None:
    account = new_account(api)
    secret = pyotp.random_base32()
    put = lambda mfa: api.put(f"/users/{account.id}", headers=as_user(account.session),  # noqa: E731
                              json={"authData": {"mfa": mfa}})
    assert_error(put({"secret": secret}), 400, 141, "Invalid MFA data")
    assert_error(put({"token": code(secret, step_now())}), 400, 141, "Invalid MFA data")
    assert_error(put({"secret": secret[:16], "token": "123456"}), 400, 141, "Invalid MFA data")
    assert_error(put({"secret": "!" * 32, "token": "123456"}), 400, 141, "Invalid MFA data")
    assert_error(put({"secret": secret, "token": code(secret, step_now() - 5)}), *INVALID_TOKEN)
    assert_error(put({"secret": secret, "token": code(pyotp.random_base32(), step_now())}), *INVALID_TOKEN)
    # Still a plain account: the password alone logs in.
    assert account.login(api).status_code == 200
    me = api.get("/users/me", headers=as_user(account.session)).json()
    assert "authData" not in me


def test_recovery_codes_log_in_once_each(api: httpx.Client, master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    first, second = account.recovery
    login = account.login(api, {"token": first})
    assert login.status_code == 200, login.text
    assert_error(account.login(api, {"token": first}), *INVALID_TOKEN)
    assert stored(master, account)["recovery"] == [second]
    assert account.login(api, {"token": second}).status_code == 200
    assert stored(master, account)["recovery"] == []
    assert_error(account.login(api, {"token": second}), *INVALID_TOKEN)


def test_concurrent_log_ins_with_one_code_let_exactly_one_in(mfa_server: Server, api: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    exactly_one_wins(concurrently(mfa_server, account, {"token": code(account.secret, account.step + 1)}))
    exactly_one_wins(concurrently(mfa_server, account, {"token": account.recovery[0]}))
    assert_error(account.login(api, {"token": account.recovery[0]}), *INVALID_TOKEN)
    assert account.login(api, {"token": account.recovery[1]}).status_code == 200


def test_a_new_secret_needs_a_current_code(api: httpx.Client, master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    secret = pyotp.random_base32()
    url, headers = f"/users/{account.id}", as_user(account.session)
    new = {"secret": secret, "token": code(secret, step_now())}
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": new}}), *INVALID_TOKEN)
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {**new, "old": "12345x"}}}), *INVALID_TOKEN)
    # The code used at enrolment is used up, also as ``old``.
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {**new, "old": code(
        account.secret, account.step)}}}), *INVALID_TOKEN)
    # Another user cannot change it, whatever the codes.
    other = new_account(api)
    changed = api.put(url, headers=as_user(other.session),
                      json={"authData": {"mfa": {**new, "old": code(account.secret, account.step + 1)}}})
    assert changed.status_code in (400, 403, 404) and stored(master, account)["secret"] == account.secret
    changed = api.put(url, headers=headers,
                      json={"authData": {"mfa": {**new, "old": code(account.secret, account.step + 1)}}})
    assert changed.status_code == 200, changed.text
    recovery = changed.json()["authDataResponse"]["mfa"]["recovery"].split(", ")
    assert recovery != account.recovery and len(recovery) == 2
    assert stored(master, account)["secret"] == secret
    # The old secret's codes and recovery codes no longer work; the new ones do.
    assert_error(account.login(api, {"token": account.recovery[0]}), *INVALID_TOKEN)
    assert account.login(api, {"token": recovery[0]}).status_code == 200


def test_the_status_sent_back_changes_nothing(api: httpx.Client, master: httpx.Client) -> None:
    """The JS SDK's linkWith sends the user's whole authData, MFA's status included."""
    account = enrol_totp(api, new_account(api))
    anonymous = {"id": secrets.token_hex(8)}
    linked = api.put(f"/users/{account.id}", headers=as_user(account.session),
                     json={"authData": {"mfa": {"status": "enabled"}, "anonymous": anonymous}})
    assert linked.status_code == 200, linked.text
    entry = stored(master, account)
    assert entry["secret"] == account.secret and entry["recovery"] == account.recovery
    assert master.get(f"/users/{account.id}").json()["authData"]["anonymous"] == anonymous
    # At log-in the status is no code.
    assert_error(account.login(api, {"status": "enabled"}), *INVALID_TOKEN)


# --- turning MFA off -------------------------------------------------------------------------------------


def test_turning_mfa_off_needs_a_valid_code(api: httpx.Client, master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    url, headers = f"/users/{account.id}", as_user(account.session)
    refused = api.put(url, headers=headers, json={"authData": {"mfa": None}})
    assert_error(refused, 400, 141, "MFA is turned off with a valid code: authData.mfa = {token: <code>, disable: true}")
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {"disable": True}}}), *INVALID_TOKEN)
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {"token": "000001", "disable": True}}}),
                 *INVALID_TOKEN)
    # Dotted keys, null authData and other shapes do not get around it.
    assert api.put(url, headers=headers, json={"authData.mfa": {"__op": "Delete"}}).status_code == 400
    assert api.put(url, headers=headers, json={"authData": None}).status_code == 400
    assert api.put(url, headers=headers, json={"authData": {"__op": "Delete"}}).status_code == 400
    assert stored(master, account)["secret"] == account.secret
    assert_error(account.login(api), *MISSING)

    off = api.put(url, headers=headers,
                  json={"authData": {"mfa": {"token": code(account.secret, account.step + 1), "disable": True}}})
    assert off.status_code == 200, off.text
    assert stored(master, account) == {}
    assert "authData" not in api.get("/users/me", headers=headers).json()
    assert account.login(api).status_code == 200


def test_a_recovery_code_turns_mfa_off(api: httpx.Client, master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    off = api.put(f"/users/{account.id}", headers=as_user(account.session),
                  json={"authData": {"mfa": {"old": account.recovery[1], "disable": True}}})
    assert off.status_code == 200, off.text
    assert stored(master, account) == {}


def test_the_master_key_may_always_unlink(api: httpx.Client, master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    off = master.put(f"/users/{account.id}", json={"authData": {"mfa": None}})
    assert off.status_code == 200, off.text
    assert stored(master, account) == {}
    assert account.login(api).status_code == 200
    account = enrol_totp(api, new_account(api))
    off = master.put(f"/users/{account.id}", json={"authData": {"mfa": {"disable": True}}})
    assert off.status_code == 200, off.text
    assert stored(master, account) == {}


# --- SMS -------------------------------------------------------------------------------------------------


def mobile_number() -> str:
    return "+1555" + str(secrets.randbelow(10**7)).zfill(7)


def enrol_sms(server: Server, api: httpx.Client, account: Account, mobile: str) -> None:
    url, headers = f"/users/{account.id}", as_user(account.session)
    started = api.put(url, headers=headers, json={"authData": {"mfa": {"mobile": mobile}}})
    assert started.status_code == 200, started.text
    codes = sent_codes(server, mobile)
    assert len(codes) == 1 and len(codes[0]) == 6 and codes[0].isdigit()
    # Pending: not yet asked for at log-in.
    assert account.login(api).status_code == 200
    assert api.get("/users/me", headers=headers).json()["authData"] == {"mfa": {"status": "disabled"}}
    wrong = "000000" if codes[0] != "000000" else "111111"
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {"mobile": mobile, "token": wrong}}}),
                 *INVALID_TOKEN)
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {"mobile": "+1999", "token": codes[0]}}}),
                 400, 141, "This number is not pending")
    confirmed = api.put(url, headers=headers, json={"authData": {"mfa": {"mobile": mobile, "token": codes[0]}}})
    assert confirmed.status_code == 200, confirmed.text


def test_sms_enrolment_and_log_in(mfa_server: Server, api: httpx.Client, master: httpx.Client) -> None:
    account, mobile = new_account(api), mobile_number()
    assert_error(api.put(f"/users/{account.id}", headers=as_user(account.session),
                         json={"authData": {"mfa": {"mobile": "call me"}}}), 400, 141, "Invalid mobile number.")
    enrol_sms(mfa_server, api, account, mobile)
    assert stored(master, account)["mobile"] == mobile
    assert_error(account.login(api), *MISSING)
    assert_error(account.login(api, {"token": "request"}), 400, 141, "Please enter the token")
    sms = sent_codes(mfa_server, mobile)[-1]
    assert_error(account.login(api, {"token": "12"}), 400, 141, "Invalid MFA token 1")
    login = account.login(api, {"token": sms})
    assert login.status_code == 200, login.text
    assert login.json()["authData"] == {"mfa": {"status": "enabled"}}
    assert_error(account.login(api, {"token": sms}), 400, 141, "Invalid MFA token 1")
    assert "token" not in stored(master, account)
    # The cloud function that sends the codes is the server's: a client may not call it.
    assert_error(api.post(f"/functions/{SMS_FUNCTION}", json={"mobile": mobile, "token": "1"}), 400, 141,
                 "Unauthorized")

    # Concurrent log-ins with one SMS code: one gets in.
    assert_error(account.login(api, {"token": "request"}), 400, 141, "Please enter the token")
    exactly_one_wins(concurrently(mfa_server, account, {"token": sent_codes(mfa_server, mobile)[-1]}))

    # Turning SMS MFA off: a code is asked for, then given.
    url, headers = f"/users/{account.id}", as_user(account.session)
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": None}}), 400, 141,
                 "MFA is turned off with a valid code: authData.mfa = {token: <code>, disable: true}")
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {"mobile": "+15550000"}}}), 400, 141,
                 "MFA is already set up on this account")
    assert_error(api.put(url, headers=headers, json={"authData": {"mfa": {"token": "request", "disable": True}}}),
                 400, 141, "Please enter the token")
    off = api.put(url, headers=headers,
                  json={"authData": {"mfa": {"token": sent_codes(mfa_server, mobile)[-1], "disable": True}}})
    assert off.status_code == 200, off.text
    assert account.login(api).status_code == 200


# --- secrets stay on the server -------------------------------------------------------------------------


def hidden(response: httpx.Response, account: Account, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    for secret in (account.secret, *account.recovery):
        assert secret not in response.text, response.text
    return response.json()  # type: ignore[no-any-return]


def test_secrets_never_reach_a_client(api: httpx.Client, master: httpx.Client) -> None:
    anonymous = {"id": secrets.token_hex(8)}
    created = api.post("/users", json={"authData": {"anonymous": anonymous}})
    assert created.status_code == 201, created.text
    account = Account(created.json()["objectId"], created.json()["sessionToken"], created.json()["username"], "")
    enrol_totp(api, account)
    mine, other = as_user(account.session), as_user(new_account(api).session)
    status = {"status": "enabled"}

    # A log-in with authData must give the code too, and its answer shows the status only.
    assert_error(api.post("/users", json={"authData": {"anonymous": anonymous}}), *MISSING)
    login = api.post("/users", json={"authData": {"anonymous": anonymous,
                                                  "mfa": {"token": code(account.secret, account.step + 1)}}})
    assert hidden(login, account)["authData"]["mfa"] == status
    assert hidden(api.get("/users/me", headers=mine), account)["authData"]["mfa"] == status
    assert hidden(api.get(f"/users/{account.id}", headers=mine), account)["authData"]["mfa"] == status
    # Users are private (enforcePrivateUsers, Parse Server 9's default): another user finds nothing.
    hidden(api.get(f"/users/{account.id}", headers=other), account, 404)
    assert hidden(api.get(f"/classes/_User/{account.id}", headers=mine), account)["authData"]["mfa"] == status
    where = json.dumps({"objectId": account.id})
    for keys in (None, "authData", "authData.mfa", "authData.mfa.secret", "authData.mfa.recovery"):
        params = {"where": where, **({"keys": keys} if keys else {})}
        found = hidden(api.get("/users", params=params, headers=mine), account)["results"]
        assert len(found) == 1 and found[0].get("authData", {}).get("mfa", status) == status, found
    # A query cannot test guesses of the secret either.
    for guess in ({"authData.mfa.secret": account.secret},
                  {"authData.mfa.secret": {"$regex": "^" + account.secret[0]}},
                  {"authData.mfa.recovery": account.recovery[0]}):
        probe = api.get("/users", params={"where": json.dumps({"objectId": account.id, **guess})}, headers=mine)
        assert_error(probe, 400, 119, "Permission denied")
    sorted_by = api.get("/users", params={"where": where, "order": "authData.mfa.secret"}, headers=mine)
    assert_error(sorted_by, 400, 119, "Permission denied")
    # (the provider id stays queryable, as in Parse Server)
    assert api.get("/users", params={"where": json.dumps({"authData.anonymous.id": anonymous["id"]})},
                   headers=mine).json()["results"][0]["objectId"] == account.id

    note = master.post("/classes/MfaNote",
                    json={"owner": {"__type": "Pointer", "className": "_User", "objectId": account.id}})
    assert note.status_code == 201, note.text
    got = api.get(f"/classes/MfaNote/{note.json()['objectId']}", params={"include": "owner"}, headers=mine)
    included = hidden(got, account)["owner"]
    assert included["objectId"] == account.id and included["authData"]["mfa"] == status
    # Another user cannot read the (private) user: the include leaves nothing of it.
    got = api.get(f"/classes/MfaNote/{note.json()['objectId']}", params={"include": "owner"}, headers=other)
    assert "authData" not in hidden(got, account).get("owner", {})
    # The master key sees the entry as stored.
    assert master.get(f"/users/{account.id}").json()["authData"]["mfa"]["secret"] == account.secret


def test_a_password_log_in_shows_the_status_only(api: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))
    body = hidden(account.login(api, {"token": account.recovery[0]}), account)
    account.recovery = account.recovery  # both codes stay hidden, the used one included
    assert body["authData"] == {"mfa": {"status": "enabled"}}
    assert hidden(api.post("/verifyPassword", json={"username": account.username, "password": account.password}),
                  account)["authData"] == {"mfa": {"status": "enabled"}}


def test_live_query_events_on_users_hide_the_secret(mfa_server: Server, api: httpx.Client,
                                                    master: httpx.Client) -> None:
    account = enrol_totp(api, new_account(api))

    async def watch() -> dict[str, Any]:
        client = await connected(mfa_server, sessionToken=account.session)
        try:
            await client.subscribe("_User", {"objectId": account.id})
            changed = await asyncio.to_thread(master.put, f"/users/{account.id}", json={"nickname": "lq"})
            assert changed.status_code == 200, changed.text
            return await client.event("update")
        finally:
            await client.close()
    event = asyncio.run(watch())
    text = json.dumps(event)
    assert account.secret not in text and not any(c in text for c in account.recovery), text
    assert event["object"]["nickname"] == "lq"
    assert event["object"].get("authData", {}).get("mfa", {"status": "enabled"}) == {"status": "enabled"}


def test_an_entry_without_a_last_step_is_still_single_use(mfa_server: Server, api: httpx.Client,
                                                          master: httpx.Client) -> None:
    """A TOTP entry as Parse Server stored it ({secret, recovery}, no ``last``): the first log-in
    adds the step, and of concurrent log-ins with one code only one does."""
    account = enrol_totp(api, new_account(api))
    entry = {"secret": account.secret, "recovery": account.recovery}
    assert master.put(f"/users/{account.id}", json={"authData": {"mfa": entry}}).status_code == 200
    assert stored(master, account) == entry
    exactly_one_wins(concurrently(mfa_server, account, {"token": code(account.secret, account.step)}))
    assert stored(master, account)["last"] == account.step


def test_sign_up_with_mfa(api: httpx.Client, master: httpx.Client) -> None:
    username, secret, step = "s" + secrets.token_hex(6), pyotp.random_base32(), step_now()
    created = api.post("/users", json={"username": username, "password": "pw",
                                       "authData": {"mfa": {"secret": secret, "token": code(secret, step)}}})
    assert created.status_code == 201, created.text
    recovery = created.json()["authDataResponse"]["mfa"]["recovery"].split(", ")
    account = Account(created.json()["objectId"], created.json()["sessionToken"], username, "pw")
    account.secret = secret
    assert secret not in created.text and "authData" not in created.json()
    assert stored(master, account)["recovery"] == recovery
    assert_error(account.login(api), *MISSING)
    assert account.login(api, {"token": code(secret, step + 1)}).status_code == 200
