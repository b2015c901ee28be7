"""Several worker processes behind one port: a schema one of them just made is known to all.

Requests land on whichever worker accepts them, so every step is repeated: with a stale schema
cache, some of them would answer 103 "Class … does not exist." or miss the new objects.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server, stop_server


@pytest.fixture(scope="module")
def two_workers(own_server: None) -> Iterator[Server]:
    server = start_server("sqlite", None, ["--workers", "2"])
    try:
        yield server
    finally:
        stop_server(server)


def test_schema_changes_reach_every_worker_at_once(two_workers: Server) -> None:
    with two_workers.client(master=True) as master:
        for _ in range(12):
            name = "W" + secrets.token_hex(4)
            assert master.post(f"/schemas/{name}", json={"fields": {"n": {"type": "Number"}}}).status_code == 200
            updated = master.put(f"/schemas/{name}", json={"indexes": {"n_1": {"n": 1}}})
            assert updated.status_code == 200, updated.text
            assert master.get(f"/schemas/{name}").status_code == 200
            created = master.post(f"/classes/{name}", json={"n": 1})
            assert created.status_code == 201, created.text
            found = master.get(f"/classes/{name}", params={"where": '{"n": 1}'}).json()["results"]
            assert len(found) == 1
