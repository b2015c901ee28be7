"""The push queue and worker, in process, with fake push adapters (both backends).

Each test builds Bastion apps on a fresh database, gives their queues a recording adapter (the
PushAdapter contract of bastion/ports/push.py), and talks to them through ASGI. What is
checked: who gets a push, the _PushStatus record as Parse Server writes it, badges, scheduled and
local-time pushes, expiration, retries, removal of gone installations, restarts, and two workers
on one database sending each push exactly once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bastion.app import Bastion
from bastion.config import Settings
from bastion.domain.push_queue import QueueOptions
from bastion.ports.push import Delivery, Device, PushAdapter
from tests.conftest import backend_database

MASTER = "push-master"
HEADERS = {"X-Parse-Application-Id": "push-app", "X-Parse-Master-Key": MASTER}


class FakeAdapter(PushAdapter):
    """Records every delivery; a token's scripted outcomes ("ok", "gone", "retry", "fail") are
    used up one per attempt (then "ok")."""

    def __init__(self, name: str, device_types: set[str], concurrency: int = 8,
                 log: list[tuple[str, Any]] | None = None) -> None:
        self.name = name
        self.device_types = frozenset(device_types)
        self.concurrency = concurrency
        self.log: list[tuple[str, Any]] = log if log is not None else []  # (installation id, details)
        self.script: dict[str, list[str]] = {}
        self.attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.opened = self.closed = False

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def send(self, data: dict, devices: list[Device], *, push_id: str, expiration: datetime | None,
                   priority: str | None = None) -> list[Delivery]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            out = []
            for device in devices:
                self.attempts[device.device_token] += 1
                steps = self.script.get(device.device_token) or []
                outcome = steps.pop(0) if steps else "ok"
                if outcome == "ok":
                    self.log.append((device.installation_id, {
                        "data": data, "badge": device.badge, "token": device.device_token, "push_id": push_id,
                        "expiration": expiration, "locale": device.locale, "type": device.device_type}))
                    out.append(Delivery(device.installation_id, ok=True))
                elif outcome == "gone":
                    out.append(Delivery(device.installation_id, ok=False, error="Unregistered", gone=True))
                elif outcome == "retry":
                    out.append(Delivery(device.installation_id, ok=False, error="429", retry_after=0.0))
                else:
                    out.append(Delivery(device.installation_id, ok=False, error="BadRequest"))
            return out
        finally:
            self.in_flight -= 1


def adapters(log: list[tuple[str, Any]] | None = None) -> list[FakeAdapter]:
    log = log if log is not None else []
    return [FakeAdapter("apns", {"ios", "osx"}, log=log), FakeAdapter("fcm", {"android"}, log=log),
            FakeAdapter("webpush", {"web"}, log=log)]


class App:
    def __init__(self, app: Bastion, client: httpx.AsyncClient, fakes: list[FakeAdapter]) -> None:
        self.app, self.client, self.fakes = app, client, fakes

    def fake(self, name: str) -> FakeAdapter:
        return next(f for f in self.fakes if f.name == name)

    @property
    def delivered(self) -> list[tuple[str, Any]]:
        return self.fakes[0].log

    async def stop(self) -> None:
        await self.client.aclose()
        await self.app.shutdown()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_database(request.param) as url:
        yield url or f"sqlite:///{tmp_path / 'push.db'}"


async def start_app(database: str, data_dir: Path, fakes: list[FakeAdapter] | None = None, *,
                    worker: bool = True, poll_ms: int = 50, **settings: Any) -> App:
    app = Bastion(Settings(app_id="push-app", master_key=MASTER, database=database, data_dir=data_dir,
                           push_worker=worker, push_poll_ms=poll_ms, **settings))
    fakes = fakes if fakes is not None else adapters()
    app.services.push_queue.adapters = list(fakes)
    app.services.push_queue.options = QueueOptions(poll_s=poll_ms / 1000, retry_base_s=0.05, batch_size=20, max_attempts=3)
    await app.startup()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://push.test/parse",
                               headers=HEADERS)
    return App(app, client, fakes)


@pytest.fixture
async def bastion(database: str, tmp_path: Path) -> AsyncIterator[App]:
    app = await start_app(database, tmp_path)
    yield app
    await app.stop()


async def installation(app: App, device_type: str, **fields: Any) -> str:
    body = {"deviceType": device_type, "installationId": secrets.token_hex(8),
            "deviceToken": secrets.token_hex(32), **fields}
    if body["deviceToken"] is None:
        del body["deviceToken"]
    response = await app.client.post("/installations", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["objectId"])


async def push(app: App, body: dict[str, Any]) -> str:
    response = await app.client.post("/push", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"result": True}
    return response.headers["x-parse-push-status-id"]


async def status(app: App, push_id: str) -> dict[str, Any]:
    response = await app.client.get(f"/classes/_PushStatus/{push_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def finished(app: App, push_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = await status(app, push_id)
        if current["status"] in ("succeeded", "failed"):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"push {push_id} still {current}")
        await asyncio.sleep(0.05)


# --- targeting and the status record ---------------------------------------------------------------


async def test_channels_reach_their_installations_and_status_is_parse_s(bastion: App) -> None:
    ios = await installation(bastion, "ios", channels=["news", "sport"])
    android = await installation(bastion, "android", channels=["news"])
    await installation(bastion, "web", channels=["sport"])
    await installation(bastion, "ios", channels=["news"], deviceToken=None)  # no token: never reached
    push_id = await push(bastion, {"channels": ["news"], "data": {"alert": "Hello", "sound": "default"}})
    done = await finished(bastion, push_id)
    assert sorted(i for i, _ in bastion.delivered) == sorted([ios, android])
    assert all(d["data"] == {"alert": "Hello", "sound": "default"} and d["push_id"] == push_id
               for _, d in bastion.delivered)
    assert done["status"] == "succeeded"
    assert done["source"] == "rest"
    assert done["query"] == '{"channels":{"$in":["news"]}}'
    assert done["payload"] == '{"alert":"Hello","sound":"default"}'
    assert done["pushHash"] == "8b1a9953c4611296a827abf8c47804d7"  # md5("Hello")
    assert done["numSent"] == 2 and done.get("numFailed") is None
    assert done["sentPerType"] == {"ios": 1, "android": 1}
    assert "count" not in done and "expiry" not in done
    assert done["ACL"] == {}
    assert datetime.fromisoformat(done["pushTime"]) <= datetime.now(UTC)
    # Only the master key reads it.
    anonymous = await bastion.client.get(f"/classes/_PushStatus/{push_id}",
                                         headers={"X-Parse-Master-Key": ""})
    assert anonymous.status_code in (400, 403), anonymous.text


async def test_where_targets_and_nobody_matching_succeeds_at_once(bastion: App) -> None:
    web = await installation(bastion, "web", appVersion="2")
    await installation(bastion, "web", appVersion="1")
    push_id = await push(bastion, {"where": {"deviceType": "web", "appVersion": "2"}, "data": {"alert": "v2"}})
    done = await finished(bastion, push_id)
    assert [i for i, _ in bastion.delivered] == [web]
    assert done["sentPerType"] == {"web": 1}
    none_id = await push(bastion, {"where": {"deviceType": "tvos"}, "data": {"alert": "x"}})
    nobody = await finished(bastion, none_id)
    assert nobody["status"] == "succeeded" and nobody["numSent"] == 0 and "count" not in nobody


async def test_a_bad_where_fails_the_status_after_answering(bastion: App) -> None:
    push_id = await push(bastion, {"where": {"deviceType": {"$bogus": 1}}, "data": {"alert": "x"}})
    done = await finished(bastion, push_id)
    assert done["status"] == "failed"
    assert done["errorMessage"] == {"code": 119, "message": "This query type is not supported: ['$bogus']"}


async def test_locales_pick_their_alert(bastion: App) -> None:
    fr = await installation(bastion, "ios", localeIdentifier="fr-FR")
    en = await installation(bastion, "ios", localeIdentifier="en-US")
    push_id = await push(bastion, {"where": {}, "data": {"alert": "Hi", "alert-fr": "Salut", "title-fr": "T"}})
    await finished(bastion, push_id)
    got = {i: d["data"] for i, d in bastion.delivered}
    assert got[fr] == {"alert": "Salut", "title": "T"}
    assert got[en] == {"alert": "Hi"}


# --- badges ------------------------------------------------------------------------------------------


async def test_badge_increment_is_per_device_and_stored(bastion: App) -> None:
    three = await installation(bastion, "ios", badge=3)
    none = await installation(bastion, "ios")
    push_id = await push(bastion, {"where": {"deviceType": "ios"}, "data": {"alert": "x", "badge": "Increment"}})
    await finished(bastion, push_id)
    got = {i: d for i, d in bastion.delivered}
    assert got[three]["badge"] == 4 and got[none]["badge"] == 1
    assert "badge" not in got[three]["data"]
    for object_id, badge in ((three, 4), (none, 1)):
        stored = (await bastion.client.get(f"/installations/{object_id}")).json()
        assert stored["badge"] == badge
    # {"__op": "Increment", "amount": n} and a number.
    bastion.delivered.clear()
    await finished(bastion, await push(bastion, {"where": {"deviceType": "ios"}, "data": {
        "badge": {"__op": "Increment", "amount": 5}}}))
    assert {i: d["badge"] for i, d in bastion.delivered} == {three: 9, none: 6}
    bastion.delivered.clear()
    await finished(bastion, await push(bastion, {"where": {"deviceType": "ios"}, "data": {"badge": 7}}))
    assert {i: (d["badge"], d["data"]["badge"]) for i, d in bastion.delivered} == {three: (7, 7), none: (7, 7)}
    assert (await bastion.client.get(f"/installations/{three}")).json()["badge"] == 7


# --- time ---------------------------------------------------------------------------------------------


async def test_a_scheduled_push_waits_for_its_time(bastion: App) -> None:
    ios = await installation(bastion, "ios")
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    text = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    push_id = await push(bastion, {"where": {}, "push_time": text, "data": {"alert": "later"}})
    scheduled = await status(bastion, push_id)
    assert scheduled["status"] == "scheduled" and scheduled["pushTime"] == text
    await asyncio.sleep(0.5)
    assert bastion.delivered == []
    done = await finished(bastion, push_id)
    assert [i for i, _ in bastion.delivered] == [ios]
    assert datetime.now(UTC) >= at and done["status"] == "succeeded"


async def test_a_local_time_push_reaches_each_zone_at_its_wall_time(bastion: App) -> None:
    tokyo = await installation(bastion, "ios", timeZone="Asia/Tokyo")  # 9 hours ahead: due already
    utc = await installation(bastion, "android", timeZone="UTC")  # due in 1-2 s
    await installation(bastion, "web", timeZone="America/New_York")  # due in hours
    wall = (datetime.now(UTC) + timedelta(seconds=2)).replace(tzinfo=None, microsecond=0)
    text = wall.isoformat(timespec="seconds")
    push_id = await push(bastion, {"where": {}, "push_time": text, "data": {"alert": "local"}})
    assert (await status(bastion, push_id))["pushTime"] == text + ".000"  # no Z: local time
    deadline = time.monotonic() + 5
    while len(bastion.delivered) < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [i for i, _ in bastion.delivered] == [tokyo]
    while len(bastion.delivered) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [i for i, _ in bastion.delivered] == [tokyo, utc]
    assert datetime.now(UTC).replace(tzinfo=None) >= wall
    # The adapter records a delivery before the worker counts its batch done in _PushStatus.
    current = await status(bastion, push_id)
    while current.get("count") != 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        current = await status(bastion, push_id)
    assert current["status"] == "running" and current["count"] == 1  # New York's batch is still to come
    assert current["sentPerUTCOffset"] == {"9": 1, "0": 1}
    rows = await bastion.app.services.storage.push_rows(push_id)
    assert len(rows) == 1 and rows[0]["notBefore"] > time.time() * 1000 + 3600_000


async def test_an_expired_push_is_not_sent(bastion: App) -> None:
    await installation(bastion, "ios")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    push_id = await push(bastion, {"where": {}, "expiration_time": past, "data": {"alert": "stale"}})
    done = await finished(bastion, push_id)
    assert bastion.delivered == []
    assert done["status"] == "failed" and done["numFailed"] == 1 and done["failedPerType"] == {"ios": 1}
    assert done["errorMessage"] == {"message": "The push expired before it was sent."}
    assert isinstance(done["expiry"], int)


async def test_expiration_reaches_the_adapter(bastion: App) -> None:
    await installation(bastion, "ios")
    before = time.time()
    push_id = await push(bastion, {"where": {}, "expiration_interval": 60, "data": {"alert": "x"}})
    done = await finished(bastion, push_id)
    assert done["expiration_interval"] == 60 and abs(done["expiry"] / 1000 - (before + 60)) < 5
    assert bastion.delivered[0][1]["expiration"] == datetime.fromtimestamp(done["expiry"] / 1000, UTC)


# --- failures -----------------------------------------------------------------------------------------


async def test_transient_failures_are_retried_then_counted_failed(bastion: App) -> None:
    flaky = await installation(bastion, "android", deviceToken="flaky")
    down = await installation(bastion, "android", deviceToken="down")
    fcm = bastion.fake("fcm")
    fcm.script = {"flaky": ["retry", "retry"], "down": ["retry"] * 10}
    push_id = await push(bastion, {"where": {}, "data": {"alert": "x"}})
    done = await finished(bastion, push_id)
    assert [i for i, _ in bastion.delivered] == [flaky]
    assert fcm.attempts["flaky"] == 3 and fcm.attempts["down"] == 3  # max_attempts
    assert done["status"] == "succeeded" and done["numSent"] == 1 and done["numFailed"] == 1
    assert done["failedPerType"] == {"android": 1}
    assert down  # still there: a transient failure removes nothing
    assert (await bastion.client.get(f"/installations/{down}")).status_code == 200


async def test_gone_tokens_remove_their_installations(bastion: App) -> None:
    dead = await installation(bastion, "ios", deviceToken="a" * 64)
    alive = await installation(bastion, "ios")
    bastion.fake("apns").script = {"a" * 64: ["gone"]}
    done = await finished(bastion, await push(bastion, {"where": {}, "data": {"alert": "x"}}))
    assert done["numSent"] == 1 and done["numFailed"] == 1
    assert (await bastion.client.get(f"/installations/{dead}")).status_code == 404
    assert (await bastion.client.get(f"/installations/{alive}")).status_code == 200


async def test_unserved_device_types_count_as_failed(bastion: App) -> None:
    await installation(bastion, "winphone")
    done = await finished(bastion, await push(bastion, {"where": {}, "data": {"alert": "x"}}))
    assert done["numFailed"] == 1 and done["failedPerType"] == {"winphone": 1}


async def test_adapter_concurrency_is_respected(database: str, tmp_path: Path) -> None:
    fakes = adapters()
    web = fakes[2]
    web.concurrency, web.delay = 2, 0.02
    app = await start_app(database, tmp_path, fakes)
    try:
        for _ in range(12):
            await installation(app, "web")
        await finished(app, await push(app, {"where": {}, "data": {"alert": "x"}}))
        assert len(app.delivered) == 12 and web.max_in_flight == 2
    finally:
        await app.stop()


# --- durability and several processes ---------------------------------------------------------------


async def test_a_push_survives_a_restart(database: str, tmp_path: Path) -> None:
    first = await start_app(database, tmp_path, worker=False)
    try:
        target = await installation(first, "ios")
        push_id = await push(first, {"where": {}, "data": {"alert": "after restart"}})
        await asyncio.sleep(0.2)
        assert (await status(first, push_id))["status"] == "pending"
    finally:
        await first.stop()
    second = await start_app(database, tmp_path)
    try:
        done = await finished(second, push_id)
        assert [i for i, _ in second.delivered] == [target] and done["numSent"] == 1
    finally:
        await second.stop()


async def test_two_workers_on_one_database_send_each_push_once(database: str, tmp_path: Path) -> None:
    log: list[tuple[str, Any]] = []
    one = await start_app(database, tmp_path / "one", adapters(log))
    two = await start_app(database, tmp_path / "two", adapters(log))
    try:
        ids = [await installation(one, "web") for _ in range(90)]
        ids += [await installation(two, "android") for _ in range(30)]
        pushes = [await push(one, {"where": {}, "data": {"alert": "once"}}),
                  await push(two, {"where": {}, "data": {"alert": "twice"}})]
        for push_id in pushes:
            done = await finished(one, push_id, timeout=30)
            assert done["numSent"] == 120 and done["status"] == "succeeded"
        for push_id in pushes:
            got = Counter(i for i, d in log if d["push_id"] == push_id)
            assert sorted(got) == sorted(ids) and set(got.values()) == {1}
    finally:
        await one.stop()
        await two.stop()


# --- audiences ----------------------------------------------------------------------------------------


async def test_audiences(bastion: App) -> None:
    query = orjson.dumps({"deviceType": "ios"}).decode()
    created = await bastion.client.post("/push_audiences", json={"name": "iPhones", "query": query})
    assert created.status_code == 201, created.text
    audience_id = created.json()["objectId"]
    listed = (await bastion.client.get("/push_audiences")).json()["results"]
    assert [(a["name"], a["query"]) for a in listed] == [("iPhones", {"deviceType": "ios"})]
    one = (await bastion.client.get(f"/push_audiences/{audience_id}")).json()
    assert one["query"] == {"deviceType": "ios"}
    updated = await bastion.client.put(f"/push_audiences/{audience_id}", json={"name": "Apple"})
    assert updated.status_code == 200, updated.text
    # A push the dashboard sends to an audience counts its use.
    await installation(bastion, "ios")
    await finished(bastion, await push(bastion, {"where": {"deviceType": "ios"}, "audience_id": audience_id,
                                                 "data": {"alert": "x"}}))
    one = (await bastion.client.get(f"/push_audiences/{audience_id}")).json()
    assert one["name"] == "Apple" and one["timesUsed"] == 1 and one["lastUsed"]["__type"] == "Date"
    refused = await bastion.client.get("/push_audiences", headers={"X-Parse-Master-Key": ""})
    assert refused.status_code == 403
    assert (await bastion.client.delete(f"/push_audiences/{audience_id}")).status_code == 200
    assert (await bastion.client.get("/push_audiences")).json()["results"] == []


async def test_client_push_and_the_read_only_master_key(database: str, tmp_path: Path) -> None:
    app = await start_app(database, tmp_path, allow_client_push=True, read_only_master_key="push-read-only")
    try:
        await installation(app, "ios")
        as_client = await app.client.post("/push", json={"where": {}, "data": {"alert": "from a client"}},
                                          headers={"X-Parse-Master-Key": ""})
        assert as_client.status_code == 200, as_client.text
        await finished(app, as_client.headers["x-parse-push-status-id"])
        assert [d["data"]["alert"] for _, d in app.delivered] == ["from a client"]
        read_only = await app.client.post("/push", json={"where": {}, "data": {"alert": "x"}},
                                          headers={"X-Parse-Master-Key": "push-read-only"})
        assert read_only.status_code == 400 and read_only.json() == {"code": 119, "error": "Permission denied"}
    finally:
        await app.stop()
