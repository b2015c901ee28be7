"""Events: create, enter, update, leave and delete with the objects Parse Server sends, keys/fields,
watch, matching (the shared IR matcher), and events of transactional batches."""

from __future__ import annotations

from tests.conftest import Server
from tests.livequery.helpers import connected, rest, unique


async def test_every_event_type_with_original(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server, installationId="inst-ev")
    request_id = await client.subscribe(class_name, {"score": {"$gte": 10}})
    async with rest(server, master=True) as http:
        created = (await http.post(f"/classes/{class_name}", json={"score": 10, "name": "a"})).json()
        oid = created["objectId"]
        event = await client.event("create")
        assert event["requestId"] == request_id and event["installationId"] == "inst-ev"
        assert event["object"]["objectId"] == oid and event["object"]["className"] == class_name
        assert event["object"]["createdAt"] == created["createdAt"] and "original" not in event
        await http.put(f"/classes/{class_name}/{oid}", json={"score": 11})
        event = await client.event("update")
        assert event["object"]["score"] == 11 and event["original"]["score"] == 10
        assert event["object"]["name"] == "a"
        await http.put(f"/classes/{class_name}/{oid}", json={"score": 1})
        event = await client.event("leave")
        assert event["object"]["score"] == 1 and event["original"]["score"] == 11
        await http.put(f"/classes/{class_name}/{oid}", json={"name": "b"})  # matches neither before nor after
        await client.nothing()
        await http.put(f"/classes/{class_name}/{oid}", json={"score": {"__op": "Increment", "amount": 20}})
        event = await client.event("enter")
        assert event["object"]["score"] == 21 and event["original"]["score"] == 1
        await http.delete(f"/classes/{class_name}/{oid}")
        event = await client.event("delete")
        assert event["object"]["objectId"] == oid and event["object"]["score"] == 21 and "original" not in event
        await http.post(f"/classes/{class_name}", json={"score": 3})  # not matching: nothing
        await client.nothing()
    await client.close()


async def test_objects_carry_typed_values_and_acl(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server)
    await client.subscribe(class_name, {"when": {"$gt": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}}})
    body = {"when": {"__type": "Date", "iso": "2024-05-01T10:00:00.000Z"},
            "where": {"__type": "GeoPoint", "latitude": 1.5, "longitude": 2},
            "owner": {"__type": "Pointer", "className": "_User", "objectId": "abc"},
            "tags": ["x", "y"], "meta": {"a": {"b": 1}}, "ACL": {"*": {"read": True}}}
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json=body)
        await http.post(f"/classes/{class_name}", json={"when": {"__type": "Date", "iso": "2019-01-01T00:00:00.000Z"}})
    event = await client.event("create")
    obj = event["object"]
    for key, value in body.items():
        assert obj[key] == value, key
    await client.nothing()
    await client.close()


async def test_equality_and_operators_match_as_queries_do(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server)
    await client.subscribe(class_name, {"room": "A", "n": {"$in": [1, 2]}})
    await client.subscribe(class_name, {"$or": [{"room": "B"}, {"tags": "hot"}]})
    await client.subscribe(class_name, {"title": {"$regex": "^he", "$options": "i"}})
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"room": "A", "n": 3})
        await http.post(f"/classes/{class_name}", json={"room": "C", "n": 1})
        await http.post(f"/classes/{class_name}", json={"room": "A", "n": 2.0})
        assert (await client.event("create"))["requestId"] == 1
        await http.post(f"/classes/{class_name}", json={"room": "D", "tags": ["cold", "hot"]})
        assert (await client.event("create"))["requestId"] == 2
        await http.post(f"/classes/{class_name}", json={"title": "Hello"})
        assert (await client.event("create"))["requestId"] == 3
        await client.nothing()
    await client.close()


async def test_a_query_on_a_field_created_later_matches_once_it_exists(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server)
    await client.subscribe(class_name, {"late": True})
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"other": 1})
        await http.post(f"/classes/{class_name}", json={"late": True})
    assert (await client.event("create"))["object"]["late"] is True
    await client.nothing()
    await client.close()


async def test_keys_and_fields_limit_what_events_carry(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server)
    await client.subscribe(class_name, {}, keys=["a"])
    await client.subscribe(class_name, {}, fields=["b"])
    async with rest(server, master=True) as http:
        oid = (await http.post(f"/classes/{class_name}", json={"a": 1, "b": 2, "c": 3})).json()["objectId"]
        events = {e["requestId"]: e for e in [await client.event("create"), await client.event("create")]}
        assert set(events[1]["object"]) == {"className", "objectId", "createdAt", "updatedAt", "a"}
        assert set(events[2]["object"]) == {"className", "objectId", "createdAt", "updatedAt", "b"}
        await http.put(f"/classes/{class_name}/{oid}", json={"a": 5})
        events = {e["requestId"]: e for e in [await client.event("update"), await client.event("update")]}
        assert events[1]["original"]["a"] == 1 and "c" not in events[1]["original"]
    await client.close()


async def test_watch_sends_only_updates_of_watched_fields(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server)
    await client.subscribe(class_name, {}, watch=["status"])
    async with rest(server, master=True) as http:
        oid = (await http.post(f"/classes/{class_name}", json={"status": "new", "n": 1})).json()["objectId"]
        assert (await client.event("create"))["object"]["status"] == "new"
        await http.put(f"/classes/{class_name}/{oid}", json={"n": 2})
        await client.nothing()
        await http.put(f"/classes/{class_name}/{oid}", json={"status": "done"})
        event = await client.event("update")
        assert event["object"]["status"] == "done" and event["original"]["status"] == "new"
        await http.post(f"/classes/{class_name}", json={"n": 1})  # creates without the watched field
        await client.nothing()
        await http.delete(f"/classes/{class_name}/{oid}")  # deletes are not filtered by watch
        await client.event("delete")
    await client.close()


async def test_transactional_batch_events_after_commit_only(server: Server) -> None:
    class_name = unique("Ev")
    client = await connected(server)
    await client.subscribe(class_name)
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"n": 0})
        await client.event("create")
        path = f"/parse/classes/{class_name}"
        answer = await http.post("/batch", json={"transaction": True, "requests": [
            {"method": "POST", "path": path, "body": {"n": 1}},
            {"method": "POST", "path": path, "body": {"n": "not a number"}}]})
        assert answer.status_code >= 400
        await client.nothing()
        answer = await http.post("/batch", json={"transaction": True, "requests": [
            {"method": "POST", "path": path, "body": {"n": 2}},
            {"method": "POST", "path": path, "body": {"n": 3}}]})
        assert answer.status_code == 200
        assert [(await client.event("create"))["object"]["n"] for _ in range(2)] == [2, 3]
    await client.close()


async def test_live_query_classes_narrows_the_classes(tmp_path: object) -> None:
    from tests.conftest import start_server, stop_server

    srv = start_server("sqlite", None, ["--live-query-classes", "Allowed,Other"])
    try:
        client = await connected(srv)
        answer = await client.subscribe("Elsewhere", {}, expect="error")
        assert answer["code"] == 119 and answer["requestId"] == 1
        await client.subscribe("Allowed")
        async with rest(srv, master=True) as http:
            await http.post("/classes/Elsewhere", json={"n": 1})
            await http.post("/classes/Allowed", json={"n": 1})
        assert (await client.event("create"))["object"]["className"] == "Allowed"
        await client.close()
    finally:
        stop_server(srv)
