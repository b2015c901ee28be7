"""Cloud code's LiveQuery triggers (tests/cloud_app/livequery.py): before_connect may refuse a
connection, before_subscribe may refuse or narrow a query, after_event may change or drop events."""

from __future__ import annotations

from tests.conftest import Server
from tests.livequery.helpers import LQ, connected, rest, sign_up, unique


async def test_before_connect_may_refuse(server: Server) -> None:
    client = await LQ.open(server)
    answer = await client.connect(server, installationId="live-cloud-blocked")
    assert answer == {"op": "error", "error": "this installation may not connect", "code": 119,
                      "reconnect": False, "requestId": None}
    answer = await client.connect(server, installationId="live-cloud-user-only")
    assert answer["op"] == "error" and answer["code"] == 209
    _user, token = await sign_up(server)
    answer = await client.connect(server, installationId="live-cloud-user-only", sessionToken=token)
    assert answer["op"] == "connected"
    await client.close()


async def test_before_subscribe_may_refuse_or_narrow(server: Server) -> None:
    client = await connected(server)
    answer = await client.subscribe("LiveCloudRoom", {"secret": 1}, expect="error")
    assert answer["code"] == 119 and answer["error"] == "no subscriptions on secret" and answer["requestId"] == 1
    tag = unique("t")
    await client.subscribe("LiveCloudRoom", {"tag": tag})
    async with rest(server, master=True) as http:
        await http.post("/classes/LiveCloudRoom", json={"tag": tag, "hidden": True})
        await http.post("/classes/LiveCloudRoom", json={"tag": tag, "name": "open"})
    event = await client.event("create")
    assert event["object"]["name"] == "open"
    await client.nothing()
    await client.close()


async def test_after_event_may_change_or_drop(server: Server) -> None:
    client = await connected(server)
    tag = unique("t")
    await client.subscribe("LiveCloudRoom", {"tag": tag})
    async with rest(server, master=True) as http:
        oid = (await http.post("/classes/LiveCloudRoom", json={"tag": tag, "n": 1})).json()["objectId"]
        event = await client.event("create")
        assert event["object"]["event"] == "create" and event["object"]["sawOriginal"] is False
        assert event["object"]["n"] == 1 and event["object"]["className"] == "LiveCloudRoom"
        await http.put(f"/classes/LiveCloudRoom/{oid}", json={"drop": True})
        await client.nothing()
        await http.put(f"/classes/LiveCloudRoom/{oid}", json={"drop": False, "n": 2})
        event = await client.event("update")
        assert event["object"]["event"] == "update" and event["object"]["sawOriginal"] is True
        assert event["original"]["n"] == 1
        # What the trigger added is not stored.
        assert "event" not in (await http.get(f"/classes/LiveCloudRoom/{oid}")).json()
    await client.close()
