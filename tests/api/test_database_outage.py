"""The database failing under a running Bastion: PostgreSQL gone (connections reset, then refused)
and PostgreSQL frozen (connections held, nothing answered), through a TCP proxy the test controls
(tests/db_proxy.py) in front of a database of its own; SQLite locked by another process.

Each answer is a retryable Parse error with status 503 (code 1 "Database unavailable, retry later.",
or code 124 once --request-timeout passes), in bounded time; the log has one line when the database
goes away and one when it is back, never a traceback per request; and once it is back every request
succeeds: no pooled connection is handed out broken (a statement cancelled by the deadline included).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import Server, backend_database, running_server, start_server, stop_server
from tests.db_proxy import DbProxy

REQUEST_TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Server, DbProxy]]:
    with backend_database("postgres") as url:
        assert url is not None
        parts = urlsplit(url)
        proxy = DbProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        through = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        srv = start_server("postgres", through, ["--request-timeout", str(REQUEST_TIMEOUT_MS),
                                                 "--log-level", "info"])
        try:
            yield srv, proxy
        finally:
            stop_server(srv)
            proxy.close()


def _log(server: Server) -> str:
    return (server.data_dir / "server.log").read_text(errors="replace")


def _get(server: Server, api: httpx.Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = api.get("/classes/Outage", params={"where": "{}"})
    return response, time.monotonic() - started


def _until_served(server: Server, api: httpx.Client, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while True:
        response = api.get("/classes/Outage")
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def test_database_down_answers_503_and_recovers(proxied: tuple[Server, DbProxy]) -> None:
    server, proxy = proxied
    with server.client(master=True) as api:
        assert api.post("/classes/Outage", json={"n": 1}).status_code == 201
        log_before = len(_log(server))
        proxy.down()
        for _ in range(20):
            response, took = _get(server, api)
            assert response.status_code == 503, response.text
            assert response.json() == {"code": 1, "error": "Database unavailable, retry later."}
            assert response.headers["retry-after"] == "1"
            assert took < 1.0
        write = api.post("/classes/Outage", json={"n": 2})
        assert write.status_code == 503 and write.json()["code"] == 1
        time.sleep(1.5)  # the background loops (the push worker polls every second) meet it too
        proxy.up()
        _until_served(server, api)
        # Served again, on every pooled connection.
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: _get(server, api)[0].status_code, range(40)))
        assert statuses == [200] * 40
    log = _log(server)[log_before:]
    assert log.count("database unavailable") == 1, log
    assert log.count("database reachable again") == 1, log
    assert "Traceback" not in log and "Internal server error" not in log


def test_frozen_database_is_bounded_by_the_request_timeout(proxied: tuple[Server, DbProxy]) -> None:
    server, proxy = proxied
    with server.client(master=True) as api:
        _until_served(server, api)
        proxy.freeze()
        try:
            # Several at once: every pooled connection gets a statement that never returns.
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda _: _get(server, api), range(6)))
        finally:
            proxy.up()
        for response, took in answers:
            assert response.status_code == 503, response.text
            assert response.json() == {"code": 124, "error": "Request timed out, retry later."}
            assert REQUEST_TIMEOUT_MS / 1000 - 0.1 < took < REQUEST_TIMEOUT_MS / 1000 + 1.5
        # The connections whose statements were cancelled are not handed out again: every request
        # succeeds, none meets "another operation is in progress".
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: _get(server, api)[0].status_code, range(40)))
        assert statuses == [200] * 40
        assert api.post("/classes/Outage", json={"n": 3}).status_code == 201
    log = _log(server)
    assert "another operation" not in log and "Traceback" not in log
    assert log.count("passed the request timeout") == 1, log  # one line for them all


def test_sqlite_locked_by_another_process_answers_503() -> None:
    """Another process holds the write lock: a write waits at most half the request timeout, then
    answers "Database unavailable" (its write is not left pending past the answer); reads go on."""
    with running_server("sqlite", ["--request-timeout", "1000"]) as server, server.client(master=True) as api:
        assert api.post("/classes/Locked", json={"n": 1}).status_code == 201
        holder = sqlite3.connect(server.data_dir / "bastion.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            response = api.post("/classes/Locked", json={"n": 2})
            took = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json() == {"code": 1, "error": "Database unavailable, retry later."}
            assert 0.4 < took < 1.0
            assert len(api.get("/classes/Locked").json()["results"]) == 1  # WAL: readers are not blocked
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert api.post("/classes/Locked", json={"n": 3}).status_code == 201
        assert sorted(row["n"] for row in api.get("/classes/Locked").json()["results"]) == [1, 3]
