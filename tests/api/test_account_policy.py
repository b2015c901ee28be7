"""Account lockout (--account-lockout) and password policy (--password-policy) over the wire, on
SQLite and PostgreSQL, with Parse Server 9's codes and messages (AccountLockout.js, RestWrite.js's
_validatePasswordPolicy, UsersRouter.handleLogIn). Hidden columns are read and, to age a password
or a lock, written straight in the database, as no client can reach them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import Server, backend_database, start_server, stop_server

LOCKOUT = {"duration": 0.05, "threshold": 3, "unlockOnPasswordReset": True}  # 3 seconds
POLICY = {"validatorPattern": "^(?=.*[a-z])(?=.*[0-9]).{6,}$", "validationError": "Needs a letter and a digit.",
          "doNotAllowUsername": True, "maxPasswordAge": 1, "maxPasswordHistory": 3}
LOCKED = "Your account is locked due to multiple failed login attempts. Please try again after 0.05 minute(s)"
INVALID = "Invalid username/password."
XHR = {"X-Requested-With": "XMLHttpRequest"}


@dataclass
class PolicyServer:
    srv: Server
    database: str | None  # None: the server's SQLite file

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """One statement on the server's database (``?`` placeholders, turned into $n for PostgreSQL)."""
        if self.database is None:
            with sqlite3.connect(self.srv.data_dir / "bastion.db", timeout=10) as conn:
                return list(conn.execute(statement, args).fetchall())
        import asyncpg

        parts = statement.split("?")
        pg = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))

        async def run() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.database)
            try:
                return [tuple(row) for row in await conn.fetch(pg, *args)]
            finally:
                await conn.close()
        return asyncio.run(run())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ps(request: pytest.FixtureRequest) -> Iterator[PolicyServer]:
    with backend_database(request.param) as database:
        srv = start_server(request.param, database, ["--account-lockout", json.dumps(LOCKOUT),
                                                     "--password-policy", json.dumps(POLICY)])
        try:
            yield PolicyServer(srv, database)
        finally:
            stop_server(srv)


def uname() -> str:
    return "user" + secrets.token_hex(4)


def sign_up(ps: PolicyServer, password: str = "secret1", **extra: Any) -> tuple[str, str, str]:
    """(username, objectId, session token)."""
    username = uname()
    with ps.srv.client() as api:
        response = api.post("/users", json={"username": username, "password": password, **extra})
    assert response.status_code == 201, response.text
    body = response.json()
    assert not any(key.startswith("_") for key in body)
    return username, body["objectId"], body["sessionToken"]


def log_in(ps: PolicyServer, username: str, password: str) -> httpx.Response:
    with ps.srv.client() as api:
        return api.post("/login", json={"username": username, "password": password})


def error(response: httpx.Response) -> tuple[int, int, str]:
    return response.status_code, response.json()["code"], response.json()["error"]


def change_password(ps: PolicyServer, user_id: str, token: str, password: str, **extra: Any) -> httpx.Response:
    with ps.srv.client(**{"X-Parse-Session-Token": token}) as api:
        return api.put(f"/users/{user_id}", json={"password": password, **extra})


def reset_password(ps: PolicyServer, user_id: str, address: str, password: str) -> httpx.Response:
    with ps.srv.client() as api:
        assert api.post("/requestPasswordReset", json={"email": address}).json() == {}
    [(token,)] = ps.sql('SELECT "_perishable_token" FROM "_User" WHERE "objectId" = ?', user_id)
    return httpx.post(f"{ps.srv.url}/apps/{ps.srv.app_id}/request_password_reset", headers=XHR,
                      data={"token": token, "new_password": password})


# --- account lockout -------------------------------------------------------------------------------


def test_lockout_after_threshold_then_expiry(ps: PolicyServer) -> None:
    username, user_id, _ = sign_up(ps)
    for _ in range(3):  # failures up to the threshold answer as any wrong password
        assert error(log_in(ps, username, "wrong1")) == (404, 101, INVALID)
    assert error(log_in(ps, username, "wrong1")) == (404, 101, LOCKED)
    assert error(log_in(ps, username, "secret1")) == (404, 101, LOCKED)  # the right password too
    [(count,)] = ps.sql('SELECT "_failed_login_count" FROM "_User" WHERE "objectId" = ?', user_id)
    assert count == 3  # a refusal while locked does not count
    time.sleep(3.2)
    assert log_in(ps, username, "secret1").status_code == 200
    [(count,)] = ps.sql('SELECT "_failed_login_count" FROM "_User" WHERE "objectId" = ?', user_id)
    assert count == 0


def test_a_failure_after_the_lock_expired_locks_again(ps: PolicyServer) -> None:
    # Parse Server's count is not cleared by the expiry: the next failure passes the threshold.
    username, user_id, _ = sign_up(ps)
    for _ in range(3):
        log_in(ps, username, "wrong1")
    ps.sql('UPDATE "_User" SET "_account_lockout_expires_at" = NULL WHERE "objectId" = ?', user_id)
    assert error(log_in(ps, username, "wrong1")) == (404, 101, LOCKED)
    assert error(log_in(ps, username, "secret1")) == (404, 101, LOCKED)


def test_success_below_threshold_resets_the_count(ps: PolicyServer) -> None:
    username, _, _ = sign_up(ps)
    for _ in range(2):
        log_in(ps, username, "wrong1")
    assert log_in(ps, username, "secret1").status_code == 200
    for _ in range(3):
        assert error(log_in(ps, username, "wrong1")) == (404, 101, INVALID)
    assert error(log_in(ps, username, "wrong1")) == (404, 101, LOCKED)


def test_verify_password_counts_too(ps: PolicyServer) -> None:
    username, _, _ = sign_up(ps)
    with ps.srv.client() as api:
        for _ in range(3):
            api.post("/verifyPassword", json={"username": username, "password": "wrong1"})
        assert error(api.post("/verifyPassword", json={"username": username, "password": "secret1"})) == (
            404, 101, LOCKED)


def test_password_reset_unlocks(ps: PolicyServer) -> None:
    address = uname() + "@example.com"
    username, user_id, _ = sign_up(ps, email=address)
    for _ in range(4):
        log_in(ps, username, "wrong1")
    assert error(log_in(ps, username, "secret1")) == (404, 101, LOCKED)
    done = reset_password(ps, user_id, address, "renewed2")
    assert (done.status_code, done.json()) == (200, "Password successfully reset")
    assert log_in(ps, username, "renewed2").status_code == 200
    assert ps.sql('SELECT "_failed_login_count" FROM "_User" WHERE "objectId" = ?', user_id) in ([(None,)], [(0,)])


# --- password policy -------------------------------------------------------------------------------


def test_validator_pattern_and_username_on_sign_up(ps: PolicyServer) -> None:
    with ps.srv.client() as api:
        weak = api.post("/users", json={"username": uname(), "password": "abcdef"})
        assert error(weak) == (400, 142, "Needs a letter and a digit.")
        name = uname()
        mine = api.post("/users", json={"username": name, "password": f"x1{name}"})
        assert error(mine) == (400, 142, "Password cannot contain your username.")
        assert api.get("/users", params={"where": json.dumps({"username": name})},
                       headers={"X-Parse-Master-Key": ps.srv.master_key}).json()["results"] == []


def test_validator_pattern_and_username_on_update(ps: PolicyServer) -> None:
    username, user_id, token = sign_up(ps)
    assert error(change_password(ps, user_id, token, "short")) == (400, 142, "Needs a letter and a digit.")
    assert error(change_password(ps, user_id, token, f"9{username}")) == (
        400, 142, "Password cannot contain your username.")
    # A write that renames the user is checked against the new name.
    renamed = "nm" + secrets.token_hex(3)
    assert error(change_password(ps, user_id, token, f"a1{renamed}", username=renamed)) == (
        400, 142, "Password cannot contain your username.")
    ok = change_password(ps, user_id, token, "better7")
    assert ok.status_code == 200, ok.text
    assert log_in(ps, username, "better7").status_code == 200
    with ps.srv.client(master=True) as master:  # the master key is held to the policy too
        assert error(master.put(f"/users/{user_id}", json={"password": "nodigits"}))[1] == 142


def test_password_history(ps: PolicyServer) -> None:
    username, user_id, token = sign_up(ps, password="first1")
    message = "New password should not be the same as last 3 passwords."

    def change(password: str) -> httpx.Response:
        nonlocal token
        response = change_password(ps, user_id, token, password)
        if response.status_code == 200:
            token = response.json()["sessionToken"]
        return response

    assert change("second2").status_code == 200
    assert error(change("second2")) == (400, 142, message)  # the current one
    assert change("third3").status_code == 200
    assert error(change("first1")) == (400, 142, message)
    assert change("fourth4").status_code == 200
    assert change("first1").status_code == 200  # four back: allowed again
    [(history,)] = ps.sql('SELECT "_password_history" FROM "_User" WHERE "objectId" = ?', user_id)
    stored = json.loads(history) if isinstance(history, str) else history
    assert len(stored) == 2 and all(isinstance(h, str) and h.startswith("$argon2") for h in stored)


def test_password_history_on_reset(ps: PolicyServer) -> None:
    address = uname() + "@example.com"
    _, user_id, _ = sign_up(ps, password="first1", email=address)
    refused = reset_password(ps, user_id, address, "first1")
    assert error(refused) == (400, -1, "New password should not be the same as last 3 passwords.")
    weak = reset_password(ps, user_id, address, "weak")
    assert error(weak) == (400, -1, "Needs a letter and a digit.")


def test_max_password_age_refuses_login(ps: PolicyServer) -> None:
    username, user_id, _ = sign_up(ps)
    [(changed,)] = ps.sql('SELECT "_password_changed_at" FROM "_User" WHERE "objectId" = ?', user_id)
    assert changed is not None  # stamped at sign-up
    ps.sql("""UPDATE "_User" SET "_password_changed_at" = ? WHERE "objectId" = ?""",
           *_old_date(ps), user_id)
    assert error(log_in(ps, username, "secret1")) == (
        404, 101, "Your password has expired. Please reset your password.")
    assert error(log_in(ps, username, "wrong1")) == (404, 101, INVALID)  # the password is checked first


def test_password_without_change_date_starts_counting_at_login(ps: PolicyServer) -> None:
    username, user_id, _ = sign_up(ps)
    ps.sql('UPDATE "_User" SET "_password_changed_at" = NULL WHERE "objectId" = ?', user_id)
    assert log_in(ps, username, "secret1").status_code == 200
    [(changed,)] = ps.sql('SELECT "_password_changed_at" FROM "_User" WHERE "objectId" = ?', user_id)
    assert changed is not None


def _old_date(ps: PolicyServer) -> tuple[Any]:
    if ps.database is None:
        return ("2000-01-01T00:00:00.000Z",)
    from datetime import UTC, datetime

    return (datetime(2000, 1, 1, tzinfo=UTC),)


# --- hidden columns --------------------------------------------------------------------------------


def test_hidden_columns_never_reach_clients(ps: PolicyServer) -> None:
    username, user_id, token = sign_up(ps, password="first1")
    token = change_password(ps, user_id, token, "second2").json()["sessionToken"]
    log_in(ps, username, "wrong1")
    answers: list[Any] = [log_in(ps, username, "second2").json()]
    with ps.srv.client(**{"X-Parse-Session-Token": token}) as api:
        answers.append(api.get("/users/me").json())
        answers.append(api.get(f"/users/{user_id}").json())
    with ps.srv.client(master=True) as master:
        answers.append(master.get(f"/users/{user_id}").json())
        answers += master.get("/users", params={"where": json.dumps({"objectId": user_id})}).json()["results"]
        answers += master.get("/classes/_User", params={"where": json.dumps({"objectId": user_id})}).json()["results"]
    assert len(answers) == 6
    for answer in answers:
        assert answer["objectId"] == user_id
        assert not [key for key in answer if key.startswith("_") or key == "password"], answer


# --- options checked at start ----------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--account-lockout", {"duration": 0, "threshold": 3},
     "Account lockout duration should be greater than 0 and less than 100000"),
    ("--account-lockout", {"duration": 5, "threshold": 1000},
     "Account lockout threshold should be an integer greater than 0 and less than 1000"),
    ("--account-lockout", {"duration": 5, "threshold": 3, "unlockOnPasswordReset": "yes"},
     "accountLockout.unlockOnPasswordReset must be a boolean."),
    ("--password-policy", {"maxPasswordHistory": 21}, "passwordPolicy.maxPasswordHistory must be an integer ranging 0 - 20"),
    ("--password-policy", {"maxPasswordAge": -1}, "passwordPolicy.maxPasswordAge must be a positive number"),
    ("--password-policy", {"resetTokenReuseIfValid": True},
     "You cannot use resetTokenReuseIfValid without resetTokenValidityDuration"),
    ("--password-policy", {"validatorPattern": "("}, "passwordPolicy.validatorPattern is not a valid regular"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("--") else None)
def test_bad_options_stop_the_start(ps: PolicyServer, flag: str, value: Any, message: str) -> None:
    if ps.database is not None:
        pytest.skip("a start-up check: once is enough")
    from bastion.cli import main

    result = CliRunner().invoke(main, ["serve", "--data-dir", str(ps.srv.data_dir / "bad"), flag, json.dumps(value)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_policy_is_checked_before_uniqueness(ps: PolicyServer) -> None:
    # As Parse Server's transformUser: the password policy first, then the taken username.
    taken, user_id, token = sign_up(ps)
    other, _, _ = sign_up(ps)
    with ps.srv.client() as api:
        assert error(api.post("/users", json={"username": taken, "password": "weak"}))[1] == 142
        assert error(api.post("/users", json={"username": taken, "password": "strong9"}))[1] == 202
    assert error(change_password(ps, user_id, token, "weak", username=other))[1] == 142
