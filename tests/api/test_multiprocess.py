"""Several Bastion processes on one database: what one changes, the others serve at once.

Three transports between the processes (bastion/invalidation.py), each a module-scoped group:
``notify`` (three processes on one PostgreSQL database, no ``--pubsub``: LISTEN/NOTIFY), ``sqlite``
(three processes on one SQLite file, no ``--pubsub``: the polled ``_PubSub`` table) and ``redis`` (two
processes on PostgreSQL with ``--pubsub redis://…``). A LiveQuery client subscribed on one process
gets the events of writes made on another. Schema changes (new fields, class-level permissions),
role membership, revoked sessions, Parse Config and webhooks made on the first are served by the
others within BOUND seconds of the changing request's answer (the caches' own expiry is 5 s); a
session made on one is accepted by the others at once, the database's first included. Each check
first makes the others cache the old value.

Redis pub/sub channels are server-wide, so the Redis group runs under an application id of its own
(channels are named after it): parallel runs never see each other's messages. Skipped, with the
reason, when PostgreSQL or Redis does not answer.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from bastion.invalidation import HEARTBEAT
from tests.conftest import Server, backend_database, start_server, stop_server
from tests.contract.test_pubsub import REDIS_URL, redis_unavailable

BOUND = 0.5  # seconds after the changing request answered by which every process serves the change


@dataclasses.dataclass
class Pair:
    a: Server
    others: list[Server]
    started: float  # time.monotonic() once all answered

    @property
    def b(self) -> Server:
        return self.others[0]


def start_group(backend: str, database: str | None, count: int, args: list[str]) -> list[Server]:
    """``count`` servers on one database: the first alone (it makes the tables), then the others."""
    first = start_server(backend, database, args)
    servers = [first]
    try:
        with ThreadPoolExecutor(count - 1) as pool:
            for server in pool.map(lambda _: start_server(backend, database, args), range(count - 1)):
                servers.append(server)
    except BaseException:
        for server in servers:
            stop_server(server)
        raise
    return servers


@pytest.fixture(scope="module", params=["notify", "sqlite", "redis"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    transport = request.param
    app_id = "mp-" + secrets.token_hex(6)
    args = ["--app-id", app_id]
    if transport == "redis":
        reason = redis_unavailable()
        if reason:
            pytest.skip(f"multi-process tests skipped: {reason}")
        args += ["--pubsub", REDIS_URL]
    backend = "sqlite" if transport == "sqlite" else "postgres"
    with backend_database(backend) as database:
        shared = None
        if backend == "sqlite":
            shared = Path(tempfile.mkdtemp(prefix="bastion-shared-"))
            database = f"sqlite:///{shared / 'bastion.db'}"
        servers = start_group(backend, database, 2 if transport == "redis" else 3, args)
        try:
            servers = [dataclasses.replace(server, app_id=app_id) for server in servers]
            yield Pair(servers[0], servers[1:], time.monotonic())
        finally:
            for server in servers:
                stop_server(server)


def eventually(check: Callable[[], bool], within: float = BOUND) -> float:
    """Seconds until ``check()`` held; fails when it did not within ``within``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"not seen within {within} s")
        time.sleep(0.01)
    return time.monotonic() - start


def everywhere(pair: Pair, check: Callable[[httpx.Client], bool], master: bool = False) -> None:
    """``check`` holds on every other process within BOUND."""
    for server in pair.others:
        with server.client(master=master) as client:
            eventually(lambda client=client: check(client))  # type: ignore[misc]


def sign_up(client: httpx.Client) -> tuple[str, str, str]:
    username, password = "u" + secrets.token_hex(5), "pw-" + secrets.token_hex(4)
    response = client.post("/users", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return response.json()["objectId"], response.json()["sessionToken"], password


def test_the_first_session_is_accepted_everywhere_at_once(pair: Pair) -> None:
    # The first test of the group: the database has no session yet, so the others do not know
    # _Session when the sign-up on A makes it.
    with pair.a.client() as a:
        _, token, _ = sign_up(a)
    for server in pair.others:
        with server.client() as other:
            me = other.get("/users/me", headers={"X-Parse-Session-Token": token})
            assert me.status_code == 200, me.text


def test_a_new_field_is_read_and_queried_everywhere(pair: Pair) -> None:
    name = "Mp" + secrets.token_hex(4)
    with pair.a.client(master=True) as ma:
        object_id = ma.post(f"/classes/{name}", json={"n": 1}).json()["objectId"]
        everywhere(pair, lambda c: c.get(f"/classes/{name}/{object_id}").status_code == 200)  # cached
        assert ma.put(f"/classes/{name}/{object_id}", json={"tag": "new"}).status_code == 200
        everywhere(pair, lambda c: c.get(f"/classes/{name}/{object_id}").json().get("tag") == "new")
        everywhere(pair, lambda c: len(c.get(f"/classes/{name}", params={"where": '{"tag": "new"}'})
                                       .json().get("results", [])) == 1)


def test_schema_change_on_a_is_seen_on_b_at_once(pair: Pair) -> None:
    name = "Mp" + secrets.token_hex(4)
    with pair.a.client(master=True) as ma:
        assert ma.post(f"/schemas/{name}", json={"className": name, "fields": {"n": {"type": "Number"}}}
                       ).status_code == 200
        assert ma.post(f"/classes/{name}", json={"n": 1}).status_code == 201
        # The others read the class: their schemas are fresh now, and public find is allowed.
        everywhere(pair, lambda c: c.get(f"/classes/{name}").status_code == 200)
        response = ma.put(f"/schemas/{name}", json={"className": name, "classLevelPermissions": {
            "find": {}, "get": {}, "count": {}, "create": {}, "update": {}, "delete": {}, "addField": {},
            "protectedFields": {}}})
        assert response.status_code == 200, response.text
        everywhere(pair, lambda c: c.get(f"/classes/{name}").json().get("code") == 119)
        # A new field made on A is in the others' schemas.
        assert ma.put(f"/schemas/{name}", json={"className": name, "fields": {"tag": {"type": "String"}}}
                      ).status_code == 200
        everywhere(pair, lambda c: "tag" in c.get(f"/schemas/{name}").json().get("fields", {}), master=True)


def test_role_change_on_a_is_seen_on_b_at_once(pair: Pair) -> None:
    name = "Mp" + secrets.token_hex(4)
    role = "editors" + secrets.token_hex(3)
    with pair.a.client(master=True) as ma, pair.a.client() as a:
        user_id, token, _ = sign_up(a)
        headers = {"X-Parse-Session-Token": token}
        role_id = ma.post("/roles", json={"name": role, "ACL": {"*": {"read": True}}}).json()["objectId"]
        created = ma.post(f"/classes/{name}", json={"secret": 1, "ACL": {f"role:{role}": {"read": True}}})
        assert created.status_code == 201, created.text
        # The others resolve the user's roles (none) and cache them.
        everywhere(pair, lambda c: c.get(f"/classes/{name}", headers=headers).json().get("results") == [])
        response = ma.put(f"/roles/{role_id}", json={"users": {"__op": "AddRelation", "objects": [
            {"__type": "Pointer", "className": "_User", "objectId": user_id}]}})
        assert response.status_code == 200, response.text
        everywhere(pair, lambda c: len(c.get(f"/classes/{name}", headers=headers).json()["results"]) == 1)


def test_a_role_change_in_a_batch_transaction_is_told_after_its_commit(pair: Pair) -> None:
    name = "Mp" + secrets.token_hex(4)
    role = "batch" + secrets.token_hex(3)
    with pair.a.client(master=True) as ma, pair.a.client() as a:
        user_id, token, _ = sign_up(a)
        headers = {"X-Parse-Session-Token": token}
        role_id = ma.post("/roles", json={"name": role, "ACL": {"*": {"read": True}}}).json()["objectId"]
        assert ma.post(f"/classes/{name}", json={"ACL": {f"role:{role}": {"read": True}}}).status_code == 201
        everywhere(pair, lambda c: c.get(f"/classes/{name}", headers=headers).json().get("results") == [])
        add = {"__op": "AddRelation", "objects": [{"__type": "Pointer", "className": "_User", "objectId": user_id}]}
        response = ma.post("/batch", json={"transaction": True, "requests": [
            {"method": "PUT", "path": f"/parse/roles/{role_id}", "body": {"users": add}}]})
        assert response.status_code == 200 and "success" in response.json()[0], response.text
        everywhere(pair, lambda c: len(c.get(f"/classes/{name}", headers=headers).json()["results"]) == 1)


def _session_cached_everywhere(pair: Pair, token: str) -> None:
    for server in pair.others:
        with server.client() as other:
            assert other.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code == 200


def test_logout_on_a_ends_the_session_on_b_at_once(pair: Pair) -> None:
    with pair.a.client() as a:
        _, token, _ = sign_up(a)
        _session_cached_everywhere(pair, token)
        assert a.post("/logout", headers={"X-Parse-Session-Token": token}).status_code == 200
        everywhere(pair, lambda c: c.get("/users/me", headers={"X-Parse-Session-Token": token})
                   .json().get("code") == 209)


def test_password_change_on_a_ends_other_sessions_on_b_at_once(pair: Pair) -> None:
    with pair.a.client(master=True) as ma, pair.a.client() as a:
        user_id, token, _ = sign_up(a)
        _session_cached_everywhere(pair, token)
        assert ma.put(f"/users/{user_id}", json={"password": "another-" + secrets.token_hex(4)}).status_code == 200
        everywhere(pair, lambda c: c.get("/users/me", headers={"X-Parse-Session-Token": token}).status_code != 200)


def test_session_deleted_on_a_is_forgotten_on_b_at_once(pair: Pair) -> None:
    with pair.a.client() as a:
        _, token, _ = sign_up(a)
        headers = {"X-Parse-Session-Token": token}
        _session_cached_everywhere(pair, token)
        session_id = a.get("/sessions/me", headers=headers).json()["objectId"]
        assert a.delete(f"/sessions/{session_id}", headers=headers).status_code == 200
        everywhere(pair, lambda c: c.get("/users/me", headers=headers).status_code != 200)


def test_config_change_on_a_is_served_everywhere(pair: Pair) -> None:
    key = "mp" + secrets.token_hex(4)
    with pair.a.client(master=True) as ma:
        assert ma.put("/config", json={"params": {key: 1}}).status_code == 200
        everywhere(pair, lambda c: c.get("/config").json()["params"].get(key) == 1)
        assert ma.put("/config", json={"params": {key: 2}}).status_code == 200
        everywhere(pair, lambda c: c.get("/config").json()["params"].get(key) == 2)


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
        with pair.a.client(master=True) as ma:
            assert ma.post("/hooks/functions", json={"functionName": name, "url": hooks.url + "/one"}
                           ).status_code == 200
            # The others find it (a miss re-reads the hooks) and keep it.
            everywhere(pair, lambda c: c.post(f"/functions/{name}", json={}).json() == {"result": "/one"})
            assert ma.put(f"/hooks/functions/{name}", json={"url": hooks.url + "/two"}).status_code == 200
            everywhere(pair, lambda c: c.post(f"/functions/{name}", json={}).json() == {"result": "/two"})
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
            # An event past NOTIFY's 8000-byte payload travels by reference (bastion/adapters/pubsub/postgres.py).
            big = "x" * 20_000
            assert b.put(f"/classes/{name}/{object_id}", json={"text": big}).status_code == 200
            event = receive(ws)
            assert event["op"] == "update" and event["object"]["text"] == big
            assert b.delete(f"/classes/{name}/{object_id}").status_code == 200
            event = receive(ws)
            assert event["op"] == "delete" and event["object"]["objectId"] == object_id
