"""Two Bastion processes on one PostgreSQL database and one Redis (``--pubsub redis://…``).

A LiveQuery client subscribed on one process gets the events of writes made on the other. What one
process changes, the other sees at once: schema changes, role membership, revoked
sessions and webhooks (bastion/invalidation.py), well before the 5 s their caches would otherwise
keep an entry. Each check first makes the other process cache the old value, then changes it on
the first and polls the second for at most AT_ONCE seconds.

Redis pub/sub channels are server-wide, so the pair runs under an application id of its own
(channels are named after it): parallel runs never see each other's messages. Skipped, with the
reason, when PostgreSQL or Redis does not answer.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from bastion.invalidation import HEARTBEAT
from tests.conftest import Server, backend_database, start_server, stop_server
from tests.contract.test_pubsub import REDIS_URL, redis_unavailable

AT_ONCE = 2.0  # seconds; the caches' own expiry is 5 s


@dataclasses.dataclass
class Pair:
    a: Server
    b: Server
    started: float  # time.monotonic() once both answered


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    reason = redis_unavailable()
    if reason:
        pytest.skip(f"multi-process tests skipped: {reason}")
    app_id = "mp-" + secrets.token_hex(6)
    args = ["--app-id", app_id, "--pubsub", REDIS_URL]
    with backend_database("postgres") as database:
        a = start_server("postgres", database, args)
        try:
            b = start_server("postgres", database, args)
            try:
                yield Pair(dataclasses.replace(a, app_id=app_id), dataclasses.replace(b, app_id=app_id),
                           time.monotonic())
            finally:
                stop_server(b)
        finally:
            stop_server(a)


def eventually(check: Callable[[], bool], within: float = AT_ONCE) -> float:
    """Seconds until ``check()`` held; fails when it did not within ``within``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"not seen within {within} s")
        time.sleep(0.02)
    return time.monotonic() - start


def sign_up(client: httpx.Client) -> tuple[str, str, str]:
    username, password = "u" + secrets.token_hex(5), "pw-" + secrets.token_hex(4)
    response = client.post("/users", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return response.json()["objectId"], response.json()["sessionToken"], password


def test_schema_change_on_a_is_seen_on_b_at_once(pair: Pair) -> None:
    name = "Mp" + secrets.token_hex(4)
    with pair.a.client(master=True) as ma, pair.b.client() as b:
        assert ma.post(f"/schemas/{name}", json={"className": name, "fields": {"n": {"type": "Number"}}}
                       ).status_code == 200
        assert ma.post(f"/classes/{name}", json={"n": 1}).status_code == 201
        # B reads the class (told of it, or re-reading on the miss): its schemas are fresh now, and
        # public find is allowed.
        eventually(lambda: b.get(f"/classes/{name}").status_code == 200)
        response = ma.put(f"/schemas/{name}", json={"className": name, "classLevelPermissions": {
            "find": {}, "get": {}, "count": {}, "create": {}, "update": {}, "delete": {}, "addField": {},
            "protectedFields": {}}})
        assert response.status_code == 200, response.text
        eventually(lambda: b.get(f"/classes/{name}").status_code == 400)
        assert b.get(f"/classes/{name}").json()["code"] == 119
        # A new field made on A is in B's schema (B's cached schema would refuse the type).
        assert ma.put(f"/schemas/{name}", json={"className": name, "fields": {"tag": {"type": "String"}}}
                      ).status_code == 200
        with pair.b.client(master=True) as mb:
            eventually(lambda: "tag" in mb.get(f"/schemas/{name}").json().get("fields", {}))


def test_role_change_on_a_is_seen_on_b_at_once(pair: Pair) -> None:
    name = "Mp" + secrets.token_hex(4)
    role = "editors" + secrets.token_hex(3)
    with pair.a.client(master=True) as ma, pair.a.client() as a, pair.b.client() as b:
        user_id, token, _ = sign_up(a)
        role_id = ma.post("/roles", json={"name": role, "ACL": {"*": {"read": True}}}).json()["objectId"]
        created = ma.post(f"/classes/{name}", json={"secret": 1, "ACL": {f"role:{role}": {"read": True}}})
        assert created.status_code == 201, created.text
        # B resolves the user's roles (none) and caches them.
        eventually(lambda: b.get(f"/classes/{name}", headers={"X-Parse-Session-Token": token}).status_code == 200)
        assert b.get(f"/classes/{name}", headers={"X-Parse-Session-Token": token}).json()["results"] == []
        response = ma.put(f"/roles/{role_id}", json={"users": {"__op": "AddRelation", "objects": [
            {"__type": "Pointer", "className": "_User", "objectId": user_id}]}})
        assert response.status_code == 200, response.text
        eventually(lambda: len(b.get(f"/classes/{name}", headers={"X-Parse-Session-Token": token})
                               .json()["results"]) == 1)


def test_logout_on_a_ends_the_session_on_b_at_once(pair: Pair) -> None:
    with pair.a.client() as a, pair.b.client() as b:
        _, token, _ = sign_up(a)
        assert b.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code == 200  # cached on B
        assert a.post("/logout", headers={"X-Parse-Session-Token": token}).status_code == 200
        eventually(lambda: b.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code != 200)
        assert b.get("/users/me", headers={"X-Parse-Session-Token": token}).json()["code"] == 209


def test_password_change_on_a_ends_other_sessions_on_b_at_once(pair: Pair) -> None:
    with pair.a.client(master=True) as ma, pair.a.client() as a, pair.b.client() as b:
        user_id, token, _ = sign_up(a)
        assert b.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code == 200
        assert ma.put(f"/users/{user_id}", json={"password": "another-" + secrets.token_hex(4)}).status_code == 200
        eventually(lambda: b.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code != 200)


def test_session_deleted_on_a_is_forgotten_on_b_at_once(pair: Pair) -> None:
    with pair.a.client() as a, pair.b.client() as b:
        _, token, _ = sign_up(a)
        headers = {"X-Parse-Session-Token": token}
        assert b.get("/users/me", headers=headers).status_code == 200
        session_id = a.get("/sessions/me", headers=headers).json()["objectId"]
        assert a.delete(f"/sessions/{session_id}", headers=headers).status_code == 200
        eventually(lambda: b.get("/users/me", headers=headers).status_code != 200)


class Hooks:
    """A webhook endpoint answering ``{"success": <its path>}``."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = json.dumps({"success": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_change_on_a_is_served_by_b_at_once(pair: Pair) -> None:
    hooks = Hooks()
    name = "mp" + secrets.token_hex(4)
    try:
        with pair.a.client(master=True) as ma, pair.b.client() as b:
            assert ma.post("/hooks/functions", json={"functionName": name, "url": hooks.url + "/one"}
                           ).status_code == 200
            # B finds it (a miss re-reads the hooks) and keeps it.
            assert b.post(f"/functions/{name}", json={}).json() == {"result": "/one"}
            assert ma.put(f"/hooks/functions/{name}", json={"url": hooks.url + "/two"}).status_code == 200
            eventually(lambda: b.post(f"/functions/{name}", json={}).json() == {"result": "/two"})
    finally:
        hooks.close()


# --- LiveQuery across processes ----------------------------------------------------------------------


def live(server: Server) -> ClientConnection:
    """A LiveQuery socket to ``server`` (the WebSocket at the mount path); ``connect`` it first."""
    return ws_connect(server.url.replace("http://", "ws://"), open_timeout=10)


def connect(ws: ClientConnection, server: Server) -> None:
    ws.send(json.dumps({"op": "connect", "applicationId": server.app_id, "javascriptKey": server.javascript_key}))
    assert receive(ws)["op"] == "connected"


def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def test_a_write_on_b_reaches_a_subscriber_on_a(pair: Pair) -> None:
    # Past the start-up warm-up, in which a process makes change events for every class: B makes
    # them for this class only because A announced its subscriber.
    time.sleep(max(0.0, pair.started + HEARTBEAT + 2 - time.monotonic()))
    name = "Live" + secrets.token_hex(4)
    with pair.b.client(master=True) as mb:
        assert mb.post(f"/schemas/{name}", json={"className": name, "fields": {"n": {"type": "Number"}}}
                       ).status_code == 200
    with live(pair.a) as ws:
        connect(ws, pair.a)
        ws.send(json.dumps({"op": "subscribe", "requestId": 1, "query": {"className": name, "where": {}}}))
        assert receive(ws)["op"] == "subscribed"
        with pair.b.client() as b:
            created = b.post(f"/classes/{name}", json={"n": 1})
            assert created.status_code == 201, created.text
            object_id = created.json()["objectId"]
            event = receive(ws)
            assert event["op"] == "create" and event["requestId"] == 1
            assert event["object"]["objectId"] == object_id and event["object"]["n"] == 1
            assert b.put(f"/classes/{name}/{object_id}", json={"n": 2}).status_code == 200
            event = receive(ws)
            assert event["op"] == "update"
            assert event["object"]["n"] == 2
            assert event["original"]["n"] == 1  # B read the original: it knew of A's subscriber
            assert b.delete(f"/classes/{name}/{object_id}").status_code == 200
            event = receive(ws)
            assert event["op"] == "delete" and event["object"]["objectId"] == object_id
