"""Several worker processes behind one port (``--workers N``, no ``--pubsub``): every worker serves
what any of them just changed.

Requests land on whichever worker accepts them, so every check is repeated over fresh connections:
with a stale cache, some of them would answer 103 "Class … does not exist.", miss the new objects,
accept a token that was logged out or refuse one just made. On SQLite (three workers) the workers
hear each other through the polled ``_PubSub`` table, on PostgreSQL (two) through LISTEN/NOTIFY.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import Server, running_server

BOUND = 0.5  # seconds after the changing request answered by which every worker serves the change
SPREAD = 12  # fresh connections per check: enough to reach every worker


@pytest.fixture(scope="module", params=[("sqlite", 3), ("postgres", 2)], ids=["sqlite-3", "postgres-2"])
def workers(request: pytest.FixtureRequest, own_server: None) -> Iterator[Server]:
    backend, count = request.param
    with running_server(backend, ["--workers", str(count)]) as server:
        yield server


def on_every_worker(server: Server, ask: Callable[[httpx.Client], httpx.Response], master: bool = False
                    ) -> list[httpx.Response]:
    """``ask`` on SPREAD fresh connections (each may reach another worker)."""
    answers = []
    for _ in range(SPREAD):
        with server.client(master=master) as client:
            answers.append(ask(client))
    return answers


def sign_up(server: Server) -> tuple[str, str]:
    with server.client() as client:
        body = client.post("/users", json={"username": "u" + secrets.token_hex(5), "password": "pw"}).json()
    return body["objectId"], body["sessionToken"]


def test_the_first_session_is_accepted_by_every_worker_at_once(workers: Server) -> None:
    # The first test on a fresh database: no worker knows _Session before this sign-up makes it.
    _, token = sign_up(workers)
    answers = on_every_worker(workers, lambda c: c.get("/users/me", headers={"X-Parse-Session-Token": token}))
    assert [a.status_code for a in answers] == [200] * SPREAD, [a.text for a in answers if a.status_code != 200]


def test_schema_changes_reach_every_worker_at_once(workers: Server) -> None:
    with workers.client(master=True) as master:
        for _ in range(6):
            name = "W" + secrets.token_hex(4)
            assert master.post(f"/schemas/{name}", json={"fields": {"n": {"type": "Number"}}}).status_code == 200
            updated = master.put(f"/schemas/{name}", json={"indexes": {"n_1": {"n": 1}}})
            assert updated.status_code == 200, updated.text
            assert master.get(f"/schemas/{name}").status_code == 200
            created = master.post(f"/classes/{name}", json={"n": 1})
            assert created.status_code == 201, created.text
            found = master.get(f"/classes/{name}", params={"where": '{"n": 1}'}).json()["results"]
            assert len(found) == 1


def test_logout_revokes_on_every_worker(workers: Server) -> None:
    _, token = sign_up(workers)
    headers = {"X-Parse-Session-Token": token}
    assert {a.status_code for a in on_every_worker(workers, lambda c: c.get("/users/me", headers=headers))} == {200}
    with workers.client() as client:
        assert client.post("/logout", headers=headers).status_code == 200
    time.sleep(BOUND)
    codes = {a.json().get("code") for a in on_every_worker(workers, lambda c: c.get("/users/me", headers=headers))}
    assert codes == {209}


def test_new_field_and_tighter_clp_on_every_worker(workers: Server) -> None:
    name = "W" + secrets.token_hex(4)
    with workers.client(master=True) as master:
        object_id = master.post(f"/classes/{name}", json={"n": 1}).json()["objectId"]
        assert {a.status_code for a in on_every_worker(workers, lambda c: c.get(f"/classes/{name}"))} == {200}
        assert master.put(f"/classes/{name}/{object_id}", json={"tag": "new"}).status_code == 200
        time.sleep(BOUND)
        found = on_every_worker(workers, lambda c: c.get(f"/classes/{name}", params={"where": '{"tag": "new"}'}))
        assert {len(a.json()["results"]) for a in found} == {1}
        assert {a.json()["results"][0].get("tag") for a in found} == {"new"}
        locked = {"find": {}, "get": {}, "count": {}, "create": {}, "update": {}, "delete": {}, "addField": {},
                  "protectedFields": {}}
        assert master.put(f"/schemas/{name}", json={"classLevelPermissions": locked}).status_code == 200
        time.sleep(BOUND)
        codes = {a.json().get("code") for a in on_every_worker(workers, lambda c: c.get(f"/classes/{name}"))}
        assert codes == {119}
