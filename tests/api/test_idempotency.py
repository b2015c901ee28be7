"""--idempotency-paths / --idempotency-ttl: Parse Server's idempotencyOptions, through the wire.

Three Bastion processes share one database (SQLite file or PostgreSQL): ``a`` and ``b`` keep request
ids for Parse's default 300 s, ``c`` (configured by BASTION_* variables instead of flags) for 2 s.
A repeated ``X-Parse-Request-Id`` on a listed path answers 159 "Duplicate request" from any of them
and does not run again; what Parse Server 9.10 answers was checked against it with the same paths.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.conftest import ROOT, Server, backend_database, start_server, stop_server

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="starts Bastions of its own")

# Parse's example patterns, except that only recordCall among the functions and not /installations
# are listed, so that unlisted paths can be tried too.
PATHS = "functions/record.*,jobs/.*,classes/.*,users"
SHORT_TTL = 2


@dataclass
class Trio:
    a: Server
    b: Server
    c: Server  # ttl SHORT_TTL


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def trio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    backend = request.param
    with backend_database(backend) as database:
        if database is None:  # one SQLite file for the three processes
            database = f"sqlite:///{tmp_path_factory.mktemp('idempotency') / 'shared.db'}"
        args = ["--database", database, "--cloud", str(ROOT / "tests" / "cloud_app")]
        servers: list[Server] = []
        try:
            for _ in range(2):
                servers.append(start_server(backend, None, [*args, "--idempotency-paths", PATHS]))
            saved = {name: os.environ.get(name) for name in ("BASTION_IDEMPOTENCY_PATHS", "BASTION_IDEMPOTENCY_TTL")}
            os.environ.update(BASTION_IDEMPOTENCY_PATHS=PATHS, BASTION_IDEMPOTENCY_TTL=str(SHORT_TTL))
            try:
                servers.append(start_server(backend, None, args))
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
            yield Trio(*servers)
        finally:
            for server in servers:
                stop_server(server)


def new_id() -> str:
    return "req-" + secrets.token_hex(8)


def post(server: Server, path: str, body: Any, request_id: str | None = None, master: bool = False,
         **headers: str) -> httpx.Response:
    if request_id is not None:
        headers["X-Parse-Request-Id"] = request_id
    with server.client(master=master, **headers) as client:
        return client.post(path, json=body)


def count(server: Server, class_name: str, where: dict[str, Any]) -> int:
    with server.client(master=True) as master:
        answer = master.get(f"/classes/{class_name}", params={"where": json.dumps(where), "count": 1, "limit": 0})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["count"])


def calls(server: Server, marker: str) -> int:
    return count(server, "CloudCall", {"marker": marker})


def record(server: Server, marker: str, request_id: str | None, master: bool = False) -> httpx.Response:
    return post(server, "/functions/recordCall", {"marker": marker}, request_id, master)


def assert_duplicate(response: httpx.Response) -> None:
    assert_error(response, 400, 159, "Duplicate request")


def test_a_repeated_request_id_runs_once_across_processes(trio: Trio) -> None:
    marker, request_id = secrets.token_hex(6), new_id()
    first = record(trio.a, marker, request_id)
    assert first.status_code == 200 and first.json() == {"result": "recorded"}
    assert_duplicate(record(trio.a, marker, request_id))
    assert_duplicate(record(trio.b, marker, request_id))  # another process, the same database
    # As Parse Server: the master key is no exception.
    assert_duplicate(record(trio.b, marker, request_id, master=True))
    assert calls(trio.a, marker) == 1


def test_concurrent_requests_with_one_id_run_once(trio: Trio) -> None:
    import concurrent.futures

    marker, request_id = secrets.token_hex(6), new_id()
    targets = [trio.a, trio.b] * 4
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda server: record(server, marker, request_id), targets))
    assert sorted(r.status_code for r in answers) == [200] + [400] * 7
    for answer in answers:
        if answer.status_code == 400:
            assert_duplicate(answer)
    assert calls(trio.a, marker) == 1


def test_an_id_is_one_request_on_every_listed_path(trio: Trio) -> None:
    request_id = new_id()
    assert record(trio.a, secrets.token_hex(6), request_id).status_code == 200
    # Parse Server keeps request ids, not (path, id) pairs: the same id elsewhere is a duplicate too.
    assert_duplicate(post(trio.b, "/classes/CloudIdem", {"n": 1}, request_id, master=True))


def test_object_writes_and_sign_ups(trio: Trio) -> None:
    marker, create_id = secrets.token_hex(6), new_id()
    created = post(trio.a, "/classes/CloudIdem", {"marker": marker, "n": 0}, create_id, master=True)
    assert created.status_code == 201, created.text
    assert_duplicate(post(trio.b, "/classes/CloudIdem", {"marker": marker, "n": 0}, create_id, master=True))
    assert count(trio.a, "CloudIdem", {"marker": marker}) == 1
    object_id = created.json()["objectId"]
    increment_id = new_id()
    with trio.a.client(master=True, **{"X-Parse-Request-Id": increment_id}) as master:
        assert master.put(f"/classes/CloudIdem/{object_id}", json={"n": {"__op": "Increment", "amount": 1}}).status_code == 200
        assert_duplicate(master.put(f"/classes/CloudIdem/{object_id}", json={"n": {"__op": "Increment", "amount": 1}}))
        assert master.get(f"/classes/CloudIdem/{object_id}").json()["n"] == 1
    sign_up_id = new_id()
    name = "idem_" + secrets.token_hex(4)
    assert post(trio.a, "/users", {"username": name, "password": "pw"}, sign_up_id).status_code == 201
    assert_duplicate(post(trio.b, "/users", {"username": name + "x", "password": "pw"}, sign_up_id))
    assert count(trio.a, "_User", {"username": name + "x"}) == 0


def test_jobs_start_once(trio: Trio) -> None:
    marker, request_id = secrets.token_hex(6), new_id()
    started = post(trio.a, "/jobs/jobEcho", {"n": marker}, request_id, master=True)
    assert started.status_code == 200 and started.headers["x-parse-job-status-id"]
    assert_duplicate(post(trio.b, "/jobs/jobEcho", {"n": marker}, request_id, master=True))
    assert count(trio.a, "_JobStatus", {"jobName": "jobEcho", "params.n": marker}) == 1


def test_a_failed_request_keeps_its_id(trio: Trio) -> None:
    # As Parse Server: the id is recorded before the request runs, so its retry is refused as well.
    request_id = new_id()
    assert_error(post(trio.a, "/functions/recordNothingSuchFunction", {}, request_id), 400, 141,
                 'Invalid function: "recordNothingSuchFunction"')
    assert_duplicate(post(trio.a, "/functions/recordNothingSuchFunction", {}, request_id))


def test_requests_without_the_header_or_off_the_listed_paths_are_unaffected(trio: Trio) -> None:
    marker = secrets.token_hex(6)
    for _ in range(2):
        assert record(trio.a, marker, None).status_code == 200
        assert record(trio.a, marker, "").status_code == 200  # an empty id is none (Parse's `!requestId`)
    assert calls(trio.a, marker) == 4
    request_id = new_id()
    # /installations is not listed; functions/hello is not matched by functions/record.*
    for _ in range(2):
        installed = post(trio.a, "/installations", {"deviceType": "web", "installationId": secrets.token_hex(8)},
                         request_id)
        assert installed.status_code == 201, installed.text
        assert post(trio.b, "/functions/hello", {}, request_id).json() == {"result": "Hello world"}
    # Reads, deletes and the SDK's POST-as-GET never take part; the id is still free afterwards.
    with trio.a.client(master=True, **{"X-Parse-Request-Id": request_id}) as master:
        for _ in range(2):
            assert master.get("/classes/CloudIdem").status_code == 200
            assert master.post("/classes/CloudIdem", json={"_method": "GET"}).status_code == 200
    assert record(trio.a, marker, request_id).status_code == 200


def test_batch_sub_requests_are_unaffected(trio: Trio) -> None:
    # Parse Server's /batch takes no part, and hands its sub-requests no headers: all of them run,
    # however often the batch is sent with one id, which stays free for a request of its own.
    marker, request_id = secrets.token_hex(6), new_id()
    sub = {"method": "POST", "path": "/parse/classes/CloudIdem", "body": {"marker": marker}}
    for _ in range(2):
        answer = post(trio.a, "/batch", {"requests": [sub, sub]}, request_id, master=True)
        assert answer.status_code == 200 and all("success" in item for item in answer.json()), answer.text
    assert count(trio.a, "CloudIdem", {"marker": marker}) == 4
    assert post(trio.a, "/classes/CloudIdem", {"marker": marker}, request_id, master=True).status_code == 201


def test_ids_expire_after_the_ttl(trio: Trio) -> None:
    marker, request_id = secrets.token_hex(6), new_id()
    assert record(trio.c, marker, request_id).status_code == 200
    assert_duplicate(record(trio.a, marker, request_id))  # c's record, seen from a
    time.sleep(SHORT_TTL + 0.5)
    # Expired: the id runs again (on any process), and only one record of it is kept.
    assert record(trio.a, marker, request_id).status_code == 200
    assert calls(trio.a, marker) == 2
    assert count(trio.a, "_Idempotency", {"reqId": request_id}) == 1


def test_expired_records_are_removed(trio: Trio) -> None:
    stale = new_id()
    assert record(trio.c, secrets.token_hex(6), stale).status_code == 200
    assert count(trio.c, "_Idempotency", {"reqId": stale}) == 1
    time.sleep(SHORT_TTL + 0.5)
    # A request of c after its ttl has c sweep expired records away, in the background.
    assert record(trio.c, secrets.token_hex(6), new_id()).status_code == 200
    deadline = time.monotonic() + 10
    while count(trio.c, "_Idempotency", {"reqId": stale}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count(trio.c, "_Idempotency", {"reqId": stale}) == 0


def test_the_idempotency_class_is_parse_servers_and_master_only(trio: Trio) -> None:
    with trio.a.client(master=True) as master:
        fields = master.get("/schemas/_Idempotency").json()["fields"]
    assert fields["reqId"] == {"type": "String"} and fields["expire"] == {"type": "Date"}
    with trio.a.client() as client:
        assert_error(client.get("/classes/_Idempotency"), 400, 119)
        assert_error(client.post("/classes/_Idempotency", json={"reqId": "x"}), 400, 119)
