"""Robustness: a client that stops reading is closed without slowing the others, thousands of
connects and disconnects leave nothing behind, and a stopping server tells clients to reconnect.

Most tests run the server in this process (uvicorn in the test's event loop), to look inside it."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bastion.app import Bastion
from bastion.config import Settings
from bastion.livequery import connection as lq_connection
from bastion.livequery import endpoint as lq_endpoint
from tests.conftest import free_port, start_server, stop_server
from tests.livequery.helpers import LQ, connected


class Local:
    def __init__(self, app: Bastion, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}/parse"
        self.app_id = app.settings.app_id
        self.master_key = app.settings.master_key
        self.javascript_key = app.settings.javascript_key


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Local]:
    port = free_port()
    # One process on its own (--pubsub memory): no other process's interest to wait for at start.
    settings = Settings(port=port, data_dir=tmp_path, app_id="local-app", master_key="local-master",
                        javascript_key="local-js", pubsub="memory")
    app = Bastion(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
                            ws_max_size=lq_endpoint.MAX_MESSAGE_BYTES, ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield Local(app, port)
    finally:
        server.should_exit = True
        await task


def event_payload(class_name: str, n: int, size: int = 0) -> bytes:
    obj = {"objectId": f"o{n}", "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
           "n": n, "blob": "x" * size, "className": class_name}
    return json.dumps({"c": class_name, "op": "create", "o": obj, "p": None}).encode()


async def test_a_client_that_stops_reading_is_closed_and_others_get_everything(
        local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lq_connection, "MAX_QUEUED_MESSAGES", 100)
    lq = local.app.services.livequery
    fast = await connected(local)  # type: ignore[arg-type]
    await fast.subscribe("Flood")
    slow = LQ(await connect(local.url.replace("http", "ws"), max_queue=1))  # reads (almost) nothing
    await slow.connect(local)  # type: ignore[arg-type]
    await slow.subscribe("Flood")
    received = 0

    async def read_fast() -> None:
        nonlocal received
        while received < 300:
            assert (await fast.event("create", timeout=10))["object"]["n"] == received
            received += 1

    reader = asyncio.get_running_loop().create_task(read_fast())
    for n in range(300):
        await local.app.services.pubsub.publish(lq.channel, event_payload("Flood", n, 50_000))
        await asyncio.sleep(0.005)  # a steady stream the fast client keeps up with
    await asyncio.wait_for(reader, 30)
    assert received == 300
    slow_conn = [c for c in lq.connections.values() if c.closing]
    assert len(slow_conn) == 1 or len(lq.connections) == 1  # closing, or already gone
    # The slow client reads what reached it, then the error and the close (1013, try again later).
    messages: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            messages.append(json.loads(await asyncio.wait_for(slow.ws.recv(), 10)))
    assert messages[-1]["op"] == "error" and "too slow" in messages[-1]["error"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert len(messages) < 300
    await asyncio.sleep(0.1)
    assert len(lq.connections) == 1 and lq.classes["Flood"].groups  # the fast client is still subscribed
    await fast.close()


async def test_thousands_of_connects_and_disconnects_leave_nothing_behind(local: Local) -> None:
    lq = local.app.services.livequery
    async with __import__("httpx").AsyncClient(base_url=local.url, headers={
            "X-Parse-Application-Id": local.app_id, "X-Parse-Master-Key": local.master_key}) as http:
        answer = await http.post("/users", json={"username": "many", "password": "pw-123456"})
        token = answer.json()["sessionToken"]
    baseline_tasks = len(asyncio.all_tasks())

    async def one(i: int) -> None:
        client = await LQ.open(local)  # type: ignore[arg-type]
        answer = await client.connect(local, sessionToken=token)  # type: ignore[arg-type]
        assert answer["op"] == "connected"
        await client.subscribe(f"Many{i % 7}", {"n": i % 3})
        if i % 2:
            await client.send({"op": "unsubscribe", "requestId": 1})
            assert (await client.recv())["op"] == "unsubscribed"
        await client.close()

    for start in range(0, 2000, 100):
        await asyncio.gather(*(one(i) for i in range(start, start + 100)))
    for _ in range(100):
        if not lq.connections:
            break
        await asyncio.sleep(0.05)
    assert lq.connections == {}
    assert lq.classes == {}
    assert lq.principals == {}
    assert lq.interest.local == {}
    await asyncio.sleep(0.2)
    assert len(asyncio.all_tasks()) <= baseline_tasks + 2


async def test_unsubscribed_classes_cost_writes_nothing(local: Local) -> None:
    """With no subscriber, an update reads nothing before it writes (the interest predicate)."""
    lq = local.app.services.livequery
    assert not lq.interest("Quiet")
    reads: list[str] = []
    original = local.app.services.writer._before_change

    async def spy(schema: Any, object_id: str) -> Any:
        found = await original(schema, object_id)
        reads.append(object_id) if found is not None else None
        return found

    local.app.services.writer._before_change = spy  # type: ignore[method-assign]
    import httpx

    async with httpx.AsyncClient(base_url=local.url, headers={
            "X-Parse-Application-Id": local.app_id, "X-Parse-Master-Key": local.master_key}) as http:
        oid = (await http.post("/classes/Quiet", json={"n": 1})).json()["objectId"]
        await http.put(f"/classes/Quiet/{oid}", json={"n": 2})
        assert reads == []
        client = await connected(local)  # type: ignore[arg-type]
        await client.subscribe("Quiet")
        await http.put(f"/classes/Quiet/{oid}", json={"n": 3})
        assert reads == [oid]
        assert (await client.event("update"))["original"]["n"] == 2
        await client.close()


async def test_a_stopping_server_tells_clients_to_reconnect() -> None:
    srv = start_server("sqlite", None)
    try:
        client = await connected(srv)
        await client.subscribe("Bye" + secrets.token_hex(3))
    finally:
        stop_server(srv)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(client.ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart
