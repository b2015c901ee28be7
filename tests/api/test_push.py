"""POST /push over the wire: Parse Server's refusals, and real deliveries through the Web Push
adapter to the local Web Push service (tests/push_services/webpush.py, which checks the VAPID JWT and
decrypts every message): status records, gone subscriptions, a restart, and two processes on one
database sending each push exactly once. (tests/api/test_push_queue.py covers the rest in process.)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.conftest import Server, backend_database, start_server, stop_server
from tests.push_services.webpush import WebPushService

MISCONFIGURED = 115


# --- refusals, as Parse Server 9 answers them ----------------------------------------------------------


def test_push_needs_the_master_key(api: httpx.Client) -> None:
    assert_error(api.post("/push", json={"channels": ["a"], "data": {"alert": "x"}}), 403, None, "Permission denied")


@pytest.mark.parametrize(("body", "message"), [
    ({"data": {"alert": "x"}}, 'Sending a push requires either "channels" or a "where" query.'),
    ({"channels": ["a"], "where": {}, "data": {}}, "Channels and query can not be set at the same time."),
    ({"where": {}, "expiration_time": "soon"}, "soon is not valid time."),
    ({"where": {}, "expiration_time": True}, "true is not valid time."),
    ({"where": {}, "expiration_time": {"a": 1}}, "[object Object] is not valid time."),
    ({"where": {}, "expiration_interval": 0}, "expiration_interval must be a number greater than 0"),
    ({"where": {}, "expiration_interval": "60"}, "expiration_interval must be a number greater than 0"),
    ({"where": {}, "expiration_time": 2000000000, "expiration_interval": 60},
     "Both expiration_time and expiration_interval cannot be set"),
    ({"where": {}, "push_time": "tomorrow"}, "tomorrow is not valid time."),
    ({"where": {}, "push_time": None}, "null is not valid time."),
])
def test_push_refusals(master: httpx.Client, body: dict[str, Any], message: str) -> None:
    assert_error(master.post("/push", json=body), 400, MISCONFIGURED, message)


def test_an_unreadable_badge_is_an_internal_error(master: httpx.Client) -> None:
    # Parse Server throws a string for it, which it answers as an uncaught error.
    response = master.post("/push", json={"where": {}, "data": {"badge": "lots"}})
    assert response.status_code == 500
    assert response.json() == {"code": 1, "message": "Internal server error."}


def test_push_status_is_answered_and_readable(master: httpx.Client) -> None:
    response = master.post("/push", json={"where": {"deviceType": "nothing-" + secrets.token_hex(3)},
                                          "data": {"alert": "nobody"}})
    assert response.status_code == 200 and response.json() == {"result": True}
    push_id = response.headers["X-Parse-Push-Status-Id"]
    status = master.get(f"/classes/_PushStatus/{push_id}").json()
    assert status["source"] == "rest" and status["payload"] == '{"alert":"nobody"}'


# --- deliveries through the Web Push adapter ---------------------------------------------------------------


@pytest.fixture
async def webpush() -> AsyncIterator[WebPushService]:
    service = WebPushService()
    await service.start()
    yield service
    await service.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(backend, --database) of a fresh database (made outside the test's event loop)."""
    with backend_database(request.param) as url:
        yield request.param, url or f"sqlite:///{tmp_path / 'push.db'}"


@pytest.fixture
def pg_database() -> Iterator[str]:
    with backend_database("postgres") as url:
        assert url is not None
        yield url


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30, headers={
        "X-Parse-Application-Id": server.app_id, "X-Parse-Master-Key": server.master_key})


async def start(backend: str, database: str | None, *extra: str) -> Server:
    return await asyncio.to_thread(start_server, backend, database, ["--push-poll-ms", "100", *extra])


async def stop(server: Server) -> None:
    await asyncio.to_thread(stop_server, server)


async def subscribe(http: httpx.AsyncClient, service: WebPushService, n: int) -> list[tuple[str, str]]:
    """n web installations; (objectId, subscription id) each."""
    out = []
    for _ in range(n):
        sub = service.subscribe()
        response = await http.post("/installations", json={
            "deviceType": "web", "deviceToken": sub.token, "installationId": secrets.token_hex(8)})
        assert response.status_code == 201, response.text
        out.append((response.json()["objectId"], sub.id))
    return out


async def finished(http: httpx.AsyncClient, push_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = (await http.get(f"/classes/_PushStatus/{push_id}")).json()
        if status.get("status") in ("succeeded", "failed"):
            return dict(status)
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)


async def send(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/push", json=body)
    assert response.status_code == 200, response.text
    return response.headers["X-Parse-Push-Status-Id"]


async def test_web_push_delivered_and_gone_subscriptions_removed(database: tuple[str, str],
                                                                 webpush: WebPushService) -> None:
    server = await start(*database)
    try:
        async with client(server) as http:
            installs = await subscribe(http, webpush, 3)
            gone_id, gone_sub = installs[2]
            webpush.unsubscribe(webpush.subscriptions[gone_sub])
            push_id = await send(http, {"where": {"deviceType": "web"},
                                        "data": {"alert": "Hello", "title": "Hi", "badge": "Increment"}})
            status = await finished(http, push_id)
            assert status["status"] == "succeeded" and status["numSent"] == 2 and status["numFailed"] == 1
            assert status["sentPerType"] == {"web": 2} and status["failedPerType"] == {"web": 1}
            assert webpush.rejected == []
            got = {m.subscription_id: m.data for m in webpush.messages}
            assert got == {sub: {"alert": "Hello", "title": "Hi", "badge": 1} for _, sub in installs[:2]}
            assert (await http.get(f"/installations/{gone_id}")).status_code == 404
    finally:
        await stop(server)


async def test_a_push_accepted_before_a_restart_is_delivered_after(database: tuple[str, str],
                                                                   webpush: WebPushService) -> None:
    first = await start(*database, "--no-push-worker")
    try:
        async with client(first) as http:
            installs = await subscribe(http, webpush, 2)
            push_id = await send(http, {"where": {}, "data": {"alert": "later"}})
            await asyncio.sleep(0.5)
            assert (await http.get(f"/classes/_PushStatus/{push_id}")).json()["status"] == "pending"
    finally:
        await stop(first)
    assert webpush.messages == []
    second = await start(*database)
    try:
        async with client(second) as http:
            status = await finished(http, push_id)
            assert status["numSent"] == 2
            assert sorted(m.subscription_id for m in webpush.messages) == sorted(s for _, s in installs)
    finally:
        await stop(second)


async def test_two_processes_on_one_postgres_send_each_push_once(pg_database: str, webpush: WebPushService) -> None:
    one = await start("postgres", pg_database)
    two = await start("postgres", pg_database)
    try:
        async with client(one) as http_one, client(two) as http_two:
            installs = await subscribe(http_one, webpush, 150)
            pushes = [await send(http_one, {"where": {}, "data": {"alert": "one"}}),
                      await send(http_two, {"where": {}, "data": {"alert": "two"}}),
                      await send(http_one, {"where": {}, "data": {"alert": "three"}})]
            for push_id in pushes:
                status = await finished(http_two, push_id, timeout=60)
                assert status["numSent"] == 150 and status["status"] == "succeeded"
            per_alert = Counter((m.data["alert"], m.subscription_id) for m in webpush.messages)
            assert len(per_alert) == 3 * 150 and set(per_alert.values()) == {1}
            assert {sub for _, sub in per_alert} == {sub for _, sub in installs}
    finally:
        await stop(one)
        await stop(two)
