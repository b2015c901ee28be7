"""Game Center and LDAP sign-in over the wire, on SQLite and PostgreSQL.

Game Center: a local stand-in (``tests/auth_standins/gcenter.py``) holds a CA and certificates it
issued, serves them on loopback and signs payloads as GameKit does. Providers: ``gcenter`` trusts the
CA given inline (``caCertificates``) and refuses timestamps older than 10 minutes; ``gcfetch`` (the
same adapter) downloads the CA from ``rootCertificateUrl`` as Parse Server does.

LDAP: a private slapd (``tests/auth_standins/ldap_server.py``); skipped, with the reason, when slapd
is not installed. Providers: ``ldap`` (bind as ``uid=<id>,ou=users,…``), ``ldapgroup`` (bind with a
``dn`` template, then membership of ``admins`` by ``groupFilter``), ``ldapdown`` (a closed port), ``ldaphang`` (a port that never answers).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.auth_standins.gcenter import BUNDLE_ID, GameCenter, serve
from tests.auth_standins.ldap_server import USERS, Directory, find_slapd, running_directory
from tests.conftest import Server, backend_database, free_port, start_server, stop_server

BASE = "dc=example,dc=com"


@pytest.fixture(scope="module")
def center() -> Iterator[GameCenter]:
    stand_in = GameCenter.make()
    http = serve(stand_in)
    try:
        yield stand_in
    finally:
        http.shutdown()
        http.server_close()


@pytest.fixture(scope="module")
def directory() -> Iterator[Directory | None]:
    if find_slapd() is None:
        print("LDAP tests skipped: slapd is not installed (apt-get install slapd ldap-utils)")
        yield None
        return
    with running_directory() as running:
        yield running


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def _auth_config(center: GameCenter, directory: Directory | None, silent: int) -> dict[str, Any]:
    ldap_url = directory.url if directory else "ldap://127.0.0.1:9"
    module = "bastion.domain.auth_providers.ldap:LdapAdapter"
    return {
        "gcenter": {"bundleId": BUNDLE_ID, "caCertificates": center.ca_pem(),
                    "publicKeyUrlHosts": ["127.0.0.1"], "maxTimestampAge": 600},
        "gcfetch": {"module": "bastion.domain.auth_providers.gcenter:GameCenterAdapter", "bundleId": BUNDLE_ID,
                    "rootCertificateUrl": center.url + "/root.pem", "publicKeyUrlHosts": ["127.0.0.1"]},
        "ldap": {"url": ldap_url, "suffix": USERS},
        "ldapgroup": {"module": module, "url": ldap_url, "suffix": BASE, "dn": f"uid={{{{id}}}},{USERS}",
                      "groupCn": "admins", "groupFilter": "(&(objectClass=posixGroup)(memberUid={{id}}))"},
        "ldapdown": {"module": module, "url": f"ldap://127.0.0.1:{free_port()}", "suffix": USERS,
                     "connectTimeout": 2000, "timeout": 2000},
        "ldaphang": {"module": module, "url": f"ldap://127.0.0.1:{silent}", "suffix": USERS,
                     "connectTimeout": 2000, "timeout": 2000},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, center: GameCenter, directory: Directory | None,
           silent_port: int) -> Iterator[tuple[Server, str | None]]:
    if EXTERNAL:
        pytest.skip("starts its own Bastion with Game Center and LDAP providers")
    with ExitStack() as stack:
        database = stack.enter_context(backend_database(request.param))
        srv = start_server(request.param, database, ["--auth", json.dumps(_auth_config(center, directory, silent_port))])
        stack.callback(stop_server, srv)
        yield srv, database


@pytest.fixture
def api(server: tuple[Server, str | None]) -> Iterator[httpx.Client]:
    with server[0].client() as client:
        yield client


@pytest.fixture
def ldap_ready(directory: Directory | None) -> Directory:
    if directory is None:
        pytest.skip("slapd is not installed (apt-get install slapd ldap-utils)")
    return directory


def _stored_users(server: tuple[Server, str | None]) -> str:
    """Every stored _User row as text, straight from the database."""
    srv, database = server
    if database is None:
        with sqlite3.connect(srv.data_dir / "bastion.db") as db:
            return "\n".join(db.iterdump())

    async def dump() -> str:
        import asyncpg

        connection = await asyncpg.connect(database)
        try:
            rows = await connection.fetch('SELECT row_to_json(u)::text AS t FROM "_User" u')
        finally:
            await connection.close()
        return "\n".join(row["t"] for row in rows)

    return asyncio.run(dump())


def _player() -> str:
    return "G:" + secrets.token_hex(6)


# --- Game Center ------------------------------------------------------------------------------------------


def test_gcenter_sign_up_and_log_in(api: httpx.Client, center: GameCenter) -> None:
    player = _player()
    created = api.post("/users", json={"authData": {"gcenter": center.auth_data(player)}})
    assert created.status_code == 201, created.text
    again = api.post("/users", json={"authData": {"gcenter": center.auth_data(player)}})
    assert again.status_code == 200, again.text
    assert again.json()["objectId"] == created.json()["objectId"]
    assert again.json()["authData"]["gcenter"]["id"] == player
    # The CA downloaded from rootCertificateUrl works as well.
    fetched = api.post("/users", json={"authData": {"gcfetch": center.auth_data(_player())}})
    assert fetched.status_code == 201, fetched.text
    assert "/root.pem" in center.requests


def test_gcenter_certificate_is_cached(api: httpx.Client, center: GameCenter) -> None:
    before = center.requests.count("/public/gc.cer")
    for _ in range(3):
        created = api.post("/users", json={"authData": {"gcenter": center.auth_data(_player())}})
        assert created.status_code == 201, created.text
    assert center.requests.count("/public/gc.cer") - before <= 1


def test_gcenter_refusals(api: httpx.Client, center: GameCenter) -> None:
    player = _player()

    def refused(data: dict[str, Any], message: str, status: int = 404, code: int = 101) -> None:
        assert_error(api.post("/users", json={"authData": {"gcenter": data}}), status, code, message)

    # Signed for another player, by another key, for another app, or tampered with.
    refused(center.auth_data(player, signed_player_id=_player()), "Invalid signature.")
    refused(center.auth_data(player, key=center.stranger_key), "Invalid signature.")
    refused(center.auth_data(player, bundle_id="com.example.other"), "Invalid signature.")
    tampered = center.auth_data(player)
    tampered["timestamp"] += 1
    refused(tampered, "Invalid signature.")
    # Certificates: expired, from a CA nobody trusts (same name, another key), not a certificate.
    refused(center.auth_data(player, path="/public/expired.cer", key=center.expired_key),
            "The Game Center certificate is expired or not yet valid.")
    stranger = center.auth_data(player, path="/public/stranger.cer", key=center.stranger_key)
    refused(stranger, f"Invalid publicKeyUrl: {stranger['publicKeyUrl']}")
    garbage = center.auth_data(player, path="/public/garbage.cer")
    refused(garbage, f"Invalid publicKeyUrl: {garbage['publicKeyUrl']}")
    # publicKeyUrl: only *.apple.com over https, and the configured hosts.
    for url in ("http://static.gc.apple.com/public-key/gc-prod-10.cer", "https://evil.example/gc.cer",
                "https://apple.com.evil.example/gc.cer", "http://localhost" + center.url[16:] + "/public/gc.cer",
                center.url + "/public/gc.pem", "https://user@static.gc.apple.com/x.cer"):
        data = center.auth_data(player)
        data["publicKeyUrl"] = url
        refused(data, f"Invalid publicKeyUrl: {url}")
    # Stale (maxTimestampAge is 600 s here; Parse Server has no such check).
    refused(center.auth_data(player, timestamp=int(time.time() * 1000) - 3_600_000),
            "AuthData timestamp is too old.")
    # Missing fields, as Parse Server names them.
    for key in ("publicKeyUrl", "timestamp", "signature", "salt"):
        data = center.auth_data(player)
        del data[key]
        refused(data, f"AuthData {key} is missing.")
    refused({**center.auth_data(player), "signature": "%%%"}, "AuthData signature is invalid.")
    # None of these made a user.
    again = api.post("/users", json={"authData": {"gcenter": center.auth_data(player)}})
    assert again.status_code == 201, again.text


def test_gcenter_network_failure_is_a_parse_error(api: httpx.Client, center: GameCenter) -> None:
    data = center.auth_data(_player())
    data["publicKeyUrl"] = f"http://127.0.0.1:{free_port()}/public/gc.cer"
    started = time.monotonic()
    assert_error(api.post("/users", json={"authData": {"gcenter": data}}), 400, 141, "Auth failed. Unknown error.")
    missing = center.auth_data(_player(), path="/public/missing.cer")
    assert_error(api.post("/users", json={"authData": {"gcenter": missing}}), 400, 141,
                 "Auth failed. Unknown error.")
    assert time.monotonic() - started < 10


# --- LDAP -------------------------------------------------------------------------------------------------


def test_ldap_sign_up_log_in_and_no_password_stored(api: httpx.Client, ldap_ready: Directory,
                                                    server: tuple[Server, str | None]) -> None:
    created = api.post("/users", json={"authData": {"ldap": {"id": "alice", "password": "alice-pw"}}})
    if created.status_code == 200:  # the other test of this module may have signed alice up
        user_id = created.json()["objectId"]
    else:
        assert created.status_code == 201, created.text
        user_id = created.json()["objectId"]
    login = api.post("/users", json={"authData": {"ldap": {"id": "alice", "password": "alice-pw"}}})
    assert login.status_code == 200, login.text
    assert login.json()["objectId"] == user_id
    assert login.json()["authData"]["ldap"] == {"id": "alice"}
    token = login.json()["sessionToken"]
    me = api.get("/users/me", headers={"X-Parse-Session-Token": token})
    assert me.json()["authData"]["ldap"] == {"id": "alice"}
    # An id with DN specials binds as exactly that user (escaped, not parsed as DN syntax).
    dan = api.post("/users", json={"authData": {"ldap": {"id": "dan,admin+x", "password": "dan-pw"}}})
    assert dan.status_code in (200, 201), dan.text
    stored = _stored_users(server)
    assert "alice" in stored and "dan,admin+x" in stored
    assert "alice-pw" not in stored and "dan-pw" not in stored


def test_ldap_refusals(api: httpx.Client, ldap_ready: Directory) -> None:
    wrong = (404, 101, "LDAP: Wrong username or password")
    for data in ({"id": "alice", "password": "nope"}, {"id": "alice"}, {"id": "alice", "password": ""},
                 {"id": "alice", "password": 5}, {"id": "nobody", "password": "alice-pw"},
                 {"id": "bob", "password": "alice-pw"}):
        assert_error(api.post("/users", json={"authData": {"ldap": data}}), *wrong)
    # Injection through the id: DN syntax and filter wildcards are data, never structure.
    for user_id in ("*", "alice,ou=users", "alice)(uid=*", "uid=alice,ou=users,dc=example,dc=com",
                    "alice\\", "alice\x00", "dan\\,admin\\+x"):
        for password in ("alice-pw", "dan-pw"):
            response = api.post("/users", json={"authData": {"ldap": {"id": user_id, "password": password}}})
            assert response.status_code == 404, (user_id, response.text)
            assert response.json()["code"] == 101


def test_ldap_group_membership(api: httpx.Client, ldap_ready: Directory) -> None:
    member = api.post("/users", json={"authData": {"ldapgroup": {"id": "ev-admin", "password": "eva-pw"}}})
    assert member.status_code in (200, 201), member.text
    assert member.json().get("authData", {}).get("ldapgroup", {"id": "ev-admin"}) == {"id": "ev-admin"}
    not_member = (500, 1, "LDAP: User not in group")
    assert_error(api.post("/users", json={"authData": {"ldapgroup": {"id": "bob", "password": "bob-pw"}}}),
                 *not_member)
    # "ev*" binds, but must not pass as "ev-admin": the filter's * is escaped (memberUid=ev\2a).
    assert_error(api.post("/users", json={"authData": {"ldapgroup": {"id": "ev*", "password": "ev-pw"}}}),
                 *not_member)
    assert_error(api.post("/users", json={"authData": {"ldapgroup": {"id": "bob", "password": "x"}}}),
                 404, 101, "LDAP: Wrong username or password")


def test_ldap_server_down_is_a_parse_error(api: httpx.Client) -> None:
    started = time.monotonic()
    response = api.post("/users", json={"authData": {"ldapdown": {"id": "alice", "password": "alice-pw"}}})
    assert_error(response, 404, 101, "LDAP: Somthing went wrong (ECONNREFUSED)")
    assert time.monotonic() - started < 10
    # A server that accepts and never answers: refused once the 2 s read timeout passes.
    started = time.monotonic()
    response = api.post("/users", json={"authData": {"ldaphang": {"id": "alice", "password": "alice-pw"}}})
    assert_error(response, 404, 101, "LDAP: Somthing went wrong (ETIMEDOUT)")
    assert time.monotonic() - started < 10
