"""/classes/:className: create, get, update, delete, field types, schema inference and operators."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.api.helpers import ISO_DATE, OBJECT_ID, assert_error, count, create, fetch, strip_meta
from tests.conftest import Server, make_class

# --- create, get, update, delete ------------------------------------------------------------------


def test_create_answers_201_with_location_and_id(server: Server, master: httpx.Client, class_name: str) -> None:
    response = master.post(f"/classes/{class_name}", json={"score": 1337, "player": "Sean"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"objectId", "createdAt"}
    assert OBJECT_ID.match(body["objectId"])
    assert ISO_DATE.match(body["createdAt"])
    assert response.headers["location"] == f"{server.url}/classes/{class_name}/{body['objectId']}"
    assert response.headers["content-type"].startswith("application/json")


def test_get_returns_the_object(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"score": 1337, "player": "Sean", "cheat": False})
    got = fetch(api, class_name, created["objectId"])
    assert got == {
        "objectId": created["objectId"],
        "createdAt": created["createdAt"],
        "updatedAt": created["createdAt"],
        "score": 1337,
        "player": "Sean",
        "cheat": False,
    }


def test_update_answers_updated_at(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"score": 1, "player": "Sean"})
    response = api.put(f"/classes/{class_name}/{created['objectId']}", json={"score": 2, "level": "hard"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"updatedAt"}
    assert ISO_DATE.match(body["updatedAt"]) and body["updatedAt"] >= created["createdAt"]
    got = fetch(api, class_name, created["objectId"])
    assert strip_meta(got) == {"score": 2, "player": "Sean", "level": "hard"}
    assert got["updatedAt"] == body["updatedAt"]
    assert got["createdAt"] == created["createdAt"]


def test_update_answers_results_of_array_and_number_operations(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"n": 5, "tags": ["a", "b", "a"], "set": ["x"]})
    response = master.put(f"/classes/{class_name}/{created['objectId']}", json={
        "n": {"__op": "Increment", "amount": -2},
        "tags": {"__op": "Remove", "objects": ["a"]},
        "set": {"__op": "AddUnique", "objects": ["x", "y"]},
        "more": {"__op": "Add", "objects": [1, {"k": "v"}]},
        "plain": "value",
    })
    assert response.status_code == 200
    body = response.json()
    # Parse Server answers the new value of every Increment/Add/AddUnique/Remove, and not plain sets.
    assert set(body) == {"updatedAt", "n", "tags", "set", "more"}
    assert body["n"] == 3
    assert body["tags"] == ["b"]
    assert body["set"] == ["x", "y"]
    assert body["more"] == [1, {"k": "v"}]


def test_create_answers_results_of_operations(master: httpx.Client, class_name: str) -> None:
    body = create(master, class_name, {
        "n": {"__op": "Increment", "amount": 2},
        "list": {"__op": "Add", "objects": [1, 1]},
        "gone": {"__op": "Remove", "objects": [1]},
        "skip": {"__op": "Delete"},
    })
    assert set(body) == {"objectId", "createdAt", "n", "list", "gone"}
    assert (body["n"], body["list"], body["gone"]) == (2, [1, 1], [])


def test_delete(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"a": 1})
    response = api.delete(f"/classes/{class_name}/{created['objectId']}")
    assert response.status_code == 200
    assert response.json() == {}
    assert_error(api.get(f"/classes/{class_name}/{created['objectId']}"), 404, 101, "Object not found.")
    assert_error(api.delete(f"/classes/{class_name}/{created['objectId']}"), 404, 101, "Object not found.")


def test_missing_object_is_404_101(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"a": 1})
    for client in (api, master):
        assert_error(client.get(f"/classes/{class_name}/nope123456"), 404, 101, "Object not found.")
        assert_error(client.put(f"/classes/{class_name}/nope123456", json={"a": 2}), 404, 101, "Object not found.")
        assert_error(client.delete(f"/classes/{class_name}/nope123456"), 404, 101, "Object not found.")


def test_missing_class(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    # Clients may not touch a class that does not exist (119, message sanitized by Parse Server 9)...
    assert_error(api.get(f"/classes/{class_name}"), 400, 119, "Permission denied")
    assert_error(api.get(f"/classes/{class_name}/abc"), 400, 119, "Permission denied")
    assert_error(api.put(f"/classes/{class_name}/abc", json={"a": 1}), 400, 119, "Permission denied")
    # ...and a delete there finds nothing: 101, for the master key too (Parse Server on MongoDB;
    # its PostgreSQL adapter answers 200 {}, which the SDKs' suites do not expect).
    assert_error(api.delete(f"/classes/{class_name}/abc"), 404, 101, "Object not found.")
    assert_error(master.delete(f"/classes/{class_name}/abc"), 404, 101, "Object not found.")
    # The master key reads an empty class.
    assert master.get(f"/classes/{class_name}", params={"count": 1}).json() == {"results": [], "count": 0}
    assert_error(master.get(f"/classes/{class_name}/abc"), 404, 101, "Object not found.")
    assert_error(master.put(f"/classes/{class_name}/abc", json={"a": 1}), 404, 101, "Object not found.")


def test_object_id_in_body_is_refused(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    for client in (api, master):
        response = client.post(f"/classes/{class_name}", json={"objectId": "abcdefghij", "a": 1})
        assert_error(response, 400, 105, "objectId is an invalid field name.")
    assert count(master, class_name) == 0


def test_server_fields_in_body(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    # A date for createdAt/updatedAt is ignored; anything else is a type mismatch.
    given = {"__type": "Date", "iso": "2001-01-01T00:00:00.000Z"}
    created = create(master, class_name, {"updatedAt": given, "createdAt": given, "a": 1})
    got = fetch(master, class_name, created["objectId"])
    assert got["createdAt"] == created["createdAt"] and got["updatedAt"] == created["createdAt"]
    assert_error(master.post(f"/classes/{class_name}", json={"createdAt": "2001-01-01T00:00:00.000Z"}), 400, 111,
                 f"schema mismatch for {class_name}.createdAt; expected Date but got String")
    assert_error(master.post(f"/classes/{class_name}", json={"className": "x"}), 400, 105,
                 "Invalid field name: className.")
    assert_error(master.post(f"/classes/{class_name}", json={"id": "x"}), 400, 105, "id is an invalid field name.")


def test_invalid_field_names(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    for name in ("a-b", "$x", "_private", "1st"):
        response = master.post(f"/classes/{class_name}", json={name: 1})
        assert_error(response, 400, 105, f"Invalid field name: {name}.")


def test_nested_keys_may_not_hold_dollar_or_dot(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    message = "Nested keys should not contain the '$' or '.' characters"
    assert_error(master.post(f"/classes/{class_name}", json={"o": {"a.b": 1}}), 400, 121, message)
    assert_error(master.post(f"/classes/{class_name}", json={"o": {"x": {"$y": 1}}}), 400, 121, message)
    created = create(master, class_name, {"o": {"x": 1}})
    response = master.put(f"/classes/{class_name}/{created['objectId']}", json={"o": {"$set": 1}})
    assert_error(response, 400, 121, message)


# --- field types ----------------------------------------------------------------------------------


def test_every_field_type_round_trips(server: Server, master: httpx.Client, class_name: str) -> None:
    target = class_name + "T"
    make_class(master, target)
    values: dict[str, Any] = {
        "string": "héllo wörld ✓",
        "int": 7,
        "float": 1.5,
        "negative": -3.25,
        "bool": True,
        "date": {"__type": "Date", "iso": "2020-01-02T03:04:05.678Z"},
        "object": {"a": [1, {"b": None}], "c": {"d": "e"}},
        "array": [1, "x", {"k": 1}, [2], None, True],
        "pointer": {"__type": "Pointer", "className": target, "objectId": "abcdefghij"},
        "file": {"__type": "File", "name": "x.txt", "url": "http://ignored.example/x.txt"},
        "geo": {"__type": "GeoPoint", "latitude": 10.5, "longitude": -20.25},
        "polygon": {"__type": "Polygon", "coordinates": [[0, 0], [0, 1], [1, 1], [0, 0]]},
        "bytes": {"__type": "Bytes", "base64": "aGVsbG8="},
        "ACL": {"*": {"read": True}, "someUser": {"read": True, "write": True}},
    }
    created = create(master, class_name, values)
    got = fetch(master, class_name, created["objectId"])
    expected = dict(values)
    # Parse Server answers a file's URL on its own server, whatever the client sent.
    expected["file"] = {"__type": "File", "name": "x.txt", "url": f"{server.url}/files/{server.app_id}/x.txt"}
    assert strip_meta(got) == expected
    fields = master.get(f"/schemas/{class_name}").json()["fields"]
    assert fields == {
        "objectId": {"type": "String"}, "createdAt": {"type": "Date"}, "updatedAt": {"type": "Date"},
        "ACL": {"type": "ACL"}, "string": {"type": "String"}, "int": {"type": "Number"},
        "float": {"type": "Number"}, "negative": {"type": "Number"}, "bool": {"type": "Boolean"},
        "date": {"type": "Date"}, "object": {"type": "Object"}, "array": {"type": "Array"},
        "pointer": {"type": "Pointer", "targetClass": target}, "file": {"type": "File"},
        "geo": {"type": "GeoPoint"}, "polygon": {"type": "Polygon"}, "bytes": {"type": "Bytes"},
    }


def test_polygon_is_stored_closed(master: httpx.Client, class_name: str) -> None:
    # Parse Server on PostgreSQL closes an open ring: the first point comes back at the end.
    created = create(master, class_name, {"p": {"__type": "Polygon", "coordinates": [[0, 0], [0, 1], [1, 1]]}})
    got = fetch(master, class_name, created["objectId"])
    assert got["p"] == {"__type": "Polygon", "coordinates": [[0, 0], [0, 1], [1, 1], [0, 0]]}


def test_null_values_are_not_stored(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"a": 1, "nothing": None})
    got = fetch(master, class_name, created["objectId"])
    assert strip_meta(got) == {"a": 1}
    assert "nothing" not in master.get(f"/schemas/{class_name}").json()["fields"]


def test_relation_field_reads_as_relation(master: httpx.Client, class_name: str) -> None:
    target = class_name + "R"
    make_class(master, target)
    pointer = {"__type": "Pointer", "className": target, "objectId": "abcdefghij"}
    created = create(master, class_name, {"rel": {"__op": "AddRelation", "objects": [pointer]}})
    assert set(created) == {"objectId", "createdAt"}
    got = fetch(master, class_name, created["objectId"])
    assert got["rel"] == {"__type": "Relation", "className": target}
    schema = master.get(f"/schemas/{class_name}").json()
    assert schema["fields"]["rel"] == {"type": "Relation", "targetClass": target}


# --- schema inference -----------------------------------------------------------------------------


def test_schema_is_inferred_then_enforced(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"score": 1, "name": "a", "when": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}})
    object_id = created["objectId"]
    assert_error(api.post(f"/classes/{class_name}", json={"score": "high"}), 400, 111,
                 f"schema mismatch for {class_name}.score; expected Number but got String")
    assert_error(api.put(f"/classes/{class_name}/{object_id}", json={"name": 3}), 400, 111,
                 f"schema mismatch for {class_name}.name; expected String but got Number")
    assert_error(api.put(f"/classes/{class_name}/{object_id}", json={"when": "2020-01-01"}), 400, 111,
                 f"schema mismatch for {class_name}.when; expected Date but got String")
    assert_error(api.put(f"/classes/{class_name}/{object_id}", json={"name": {"__op": "Increment", "amount": 1}}),
                 400, 111, f"schema mismatch for {class_name}.name; expected String but got Number")
    assert_error(api.put(f"/classes/{class_name}/{object_id}", json={"score": {"__op": "Add", "objects": [1]}}),
                 400, 111, f"schema mismatch for {class_name}.score; expected Number but got Array")
    # A refused write changes nothing.
    assert strip_meta(fetch(api, class_name, object_id)) == {
        "score": 1, "name": "a", "when": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}}


def test_pointer_target_class_is_part_of_the_type(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"p": {"__type": "Pointer", "className": "Alpha", "objectId": "a"}})
    response = master.post(f"/classes/{class_name}", json={"p": {"__type": "Pointer", "className": "Beta", "objectId": "b"}})
    assert_error(response, 400, 111, f"schema mismatch for {class_name}.p; expected Pointer<Alpha> but got Pointer<Beta>")


def test_clients_may_not_create_classes(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    # Parse Server 9 sanitizes "This user is not allowed to access non-existent class: X".
    assert_error(api.post(f"/classes/{class_name}", json={"a": 1}), 400, 119, "Permission denied")
    assert_error(master.get(f"/schemas/{class_name}"), 400, 103, f"Class {class_name} does not exist.")


def test_clients_may_add_fields(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "Number"}})
    created = create(api, class_name, {"a": 1, "extra": "x"})
    api.put(f"/classes/{class_name}/{created['objectId']}", json={"later": [1]}).raise_for_status()
    fields = master.get(f"/schemas/{class_name}").json()["fields"]
    assert fields["extra"] == {"type": "String"}
    assert fields["later"] == {"type": "Array"}


def test_master_creates_classes(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"a": 1})
    schema = master.get(f"/schemas/{class_name}").json()
    assert schema["className"] == class_name
    assert schema["fields"]["a"] == {"type": "Number"}


# --- required fields and default values -----------------------------------------------------------


def test_required_fields_and_default_values(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {
        "name": {"type": "String", "required": True},
        "level": {"type": "Number", "defaultValue": 3},
        "mode": {"type": "String", "required": True, "defaultValue": "easy"},
        "tags": {"type": "Array", "defaultValue": ["new"]},
    })
    assert_error(api.post(f"/classes/{class_name}", json={"level": 1}), 400, 142, "name is required")
    created = create(api, class_name, {"name": "a"})
    # Parse Server answers the default values it filled in.
    assert strip_meta(created) == {"level": 3, "mode": "easy", "tags": ["new"]}
    assert strip_meta(fetch(api, class_name, created["objectId"])) == {
        "name": "a", "level": 3, "mode": "easy", "tags": ["new"]}
    given = create(api, class_name, {"name": "b", "level": 9, "mode": "hard"})
    assert strip_meta(given) == {"tags": ["new"]}
    url = f"/classes/{class_name}/{created['objectId']}"
    assert_error(api.put(url, json={"name": None}), 400, 142, "name is required")
    assert_error(api.put(url, json={"name": {"__op": "Delete"}}), 400, 142, "name is required")
    assert_error(api.put(url, json={"mode": {"__op": "Delete"}}), 400, 142, "mode is required")
    # A default value is not applied again when an update deletes the field.
    api.put(url, json={"level": {"__op": "Delete"}}).raise_for_status()
    assert "level" not in fetch(api, class_name, created["objectId"])


# --- operators ------------------------------------------------------------------------------------


def test_increment(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"n": 10})
    url = f"/classes/{class_name}/{created['objectId']}"
    assert master.put(url, json={"n": {"__op": "Increment", "amount": 5}}).json()["n"] == 15
    assert master.put(url, json={"n": {"__op": "Increment", "amount": -20}}).json()["n"] == -5
    assert master.put(url, json={"n": {"__op": "Increment", "amount": 0.5}}).json()["n"] == -4.5
    # On a field the object does not have yet, Increment starts from 0.
    assert master.put(url, json={"fresh": {"__op": "Increment", "amount": 2}}).json()["fresh"] == 2
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {"n": -4.5, "fresh": 2}


@pytest.mark.differs_from_parse_server("AddUnique reorders and deduplicates the whole array there")
def test_add_add_unique_remove(master: httpx.Client, class_name: str) -> None:
    # Parse Server on PostgreSQL reorders arrays of numbers on Add ([1, 2] + [2, 3] gives [2, 1, 2, 3])
    # and AddUnique deduplicates and reorders the whole array (["a", "b", "b", "c"] + ["c", "d"] gives
    # ["a", "d", "c", "b"]); Bastion appends, as the operations mean (and MongoDB does).
    created = create(master, class_name, {"list": ["a", "b"], "objs": [{"a": 1}, {"a": 2}]})
    url = f"/classes/{class_name}/{created['objectId']}"
    assert master.put(url, json={"list": {"__op": "Add", "objects": ["b", "c"]}}).json()["list"] == [
        "a", "b", "b", "c"]
    assert master.put(url, json={"list": {"__op": "AddUnique", "objects": ["c", "d", "d"]}}).json()["list"] == [
        "a", "b", "b", "c", "d"]
    assert master.put(url, json={"list": {"__op": "Remove", "objects": ["b", "z"]}}).json()["list"] == [
        "a", "c", "d"]
    assert master.put(url, json={"objs": {"__op": "AddUnique", "objects": [{"a": 1}, {"a": 3}]}}).json()["objs"] == [
        {"a": 1}, {"a": 2}, {"a": 3}]
    assert master.put(url, json={"objs": {"__op": "Remove", "objects": [{"a": 2}]}}).json()["objs"] == [
        {"a": 1}, {"a": 3}]
    assert master.put(url, json={"new": {"__op": "Add", "objects": ["x"]}}).json()["new"] == ["x"]
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {
        "list": ["a", "c", "d"], "objs": [{"a": 1}, {"a": 3}], "new": ["x"]}


def test_delete_operator(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"a": 1, "b": "x", "c": [1]})
    url = f"/classes/{class_name}/{created['objectId']}"
    response = master.put(url, json={"a": {"__op": "Delete"}, "c": None})
    assert set(response.json()) == {"updatedAt"}
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {"b": "x"}
    # The fields stay in the schema.
    fields = master.get(f"/schemas/{class_name}").json()["fields"]
    assert {"a", "b", "c"} <= set(fields)


def test_relation_operators(master: httpx.Client, class_name: str) -> None:
    target = class_name + "R"
    make_class(master, target)
    first = {"__type": "Pointer", "className": target, "objectId": "aaaaaaaaaa"}
    second = {"__type": "Pointer", "className": target, "objectId": "bbbbbbbbbb"}
    created = create(master, class_name, {"rel": {"__op": "AddRelation", "objects": [first]}})
    url = f"/classes/{class_name}/{created['objectId']}"
    response = master.put(url, json={"rel": {"__op": "AddRelation", "objects": [second]}})
    assert set(response.json()) == {"updatedAt"}
    response = master.put(url, json={"rel": {"__op": "RemoveRelation", "objects": [first]}})
    assert set(response.json()) == {"updatedAt"}
    response = master.put(url, json={"rel": {"__op": "Batch", "ops": [
        {"__op": "AddRelation", "objects": [first]},
        {"__op": "RemoveRelation", "objects": [second]},
    ]}})
    assert set(response.json()) == {"updatedAt"}
    other = {"__type": "Pointer", "className": class_name, "objectId": "cccccccccc"}
    response = master.put(url, json={"rel": {"__op": "AddRelation", "objects": [other]}})
    assert_error(response, 400, 111,
                 f"schema mismatch for {class_name}.rel; expected Relation<{target}> but got Relation<{class_name}>")
    assert fetch(master, class_name, created["objectId"])["rel"] == {"__type": "Relation", "className": target}


@pytest.mark.differs_from_parse_server("a key two levels down replaces its parent object there")
def test_nested_keys(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"stats": {"wins": 1, "deep": {"x": 1}, "keep": True}})
    url = f"/classes/{class_name}/{created['objectId']}"
    # Two levels down, Parse Server on PostgreSQL replaces "deep" with {"y": "new"} (losing "x");
    # Bastion sets the one key, as dot notation means (and as Parse Server on MongoDB does).
    response = master.put(url, json={"stats.wins": {"__op": "Increment", "amount": 2}, "stats.deep.y": "new"})
    assert response.status_code == 200
    # The result of a nested Increment comes back nested (Parse Server on PostgreSQL echoes the
    # operation itself there, {"wins": {"__op": "Increment", ...}}; Mongo and Bastion answer the value).
    assert response.json()["stats"] == {"wins": 3}
    assert set(response.json()) == {"updatedAt", "stats"}
    assert fetch(master, class_name, created["objectId"])["stats"] == {
        "wins": 3, "deep": {"x": 1, "y": "new"}, "keep": True}
    response = master.put(url, json={"stats.deep.x": {"__op": "Delete"}, "stats.keep": {"__op": "Delete"}})
    assert set(response.json()) == {"updatedAt"}
    assert fetch(master, class_name, created["objectId"])["stats"] == {"wins": 3, "deep": {"y": "new"}}
    # A nested key on a new object field creates it.
    master.put(url, json={"fresh.a": 1}).raise_for_status()
    assert fetch(master, class_name, created["objectId"])["fresh"] == {"a": 1}
    assert master.get(f"/schemas/{class_name}").json()["fields"]["fresh"] == {"type": "Object"}


def test_concurrent_increments_lose_nothing(server: Server, master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"n": 0})
    url = f"/classes/{class_name}/{created['objectId']}"
    answers: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def bump() -> None:
        with server.client() as client:
            start.wait()
            response = client.put(url, json={"n": {"__op": "Increment", "amount": 1}})
            with lock:
                if response.status_code == 200:
                    answers.append(response.json()["n"])
                else:
                    errors.append(response.text)

    threads = [threading.Thread(target=bump) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert fetch(master, class_name, created["objectId"])["n"] == 20
    # Every increment saw its own result: 1, 2, ... 20 in some order.
    assert sorted(answers) == list(range(1, 21))


def test_null_for_an_existing_field_on_create_stores_nothing(master: httpx.Client, class_name: str) -> None:
    # Parse Server 9 accepts null for a field of any type on create, and stores no value.
    master.post(f"/classes/{class_name}", json={"n": 1})
    response = master.post(f"/classes/{class_name}", json={"n": None})
    assert response.status_code == 201, response.text
    stored = master.get(f"/classes/{class_name}/{response.json()['objectId']}").json()
    assert "n" not in stored


def test_delete_operations_on_create(master: httpx.Client, class_name: str) -> None:
    """Parse Server leaves a field to delete out of a new object: no field joins the schema, a
    default value still fills it in and a required field is still missing. An ACL to delete
    becomes the empty ACL (only the master key reads the object)."""
    delete = {"__op": "Delete"}
    created = create(master, class_name, {"a": 1, "gone": delete, "path.inner": delete})
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {"a": 1}
    fields = master.get(f"/schemas/{class_name}").json()["fields"]
    assert "gone" not in fields and "path" not in fields
    # A field the class has already.
    created = create(master, class_name, {"a": delete})
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {}
    master.put(f"/schemas/{class_name}", json={"fields": {
        "d": {"type": "Number", "defaultValue": 5}, "r": {"type": "String", "required": True}}})
    created = create(master, class_name, {"r": "x", "d": delete})
    assert created["d"] == 5 and fetch(master, class_name, created["objectId"])["d"] == 5
    assert_error(master.post(f"/classes/{class_name}", json={"r": delete}), 400, 142, "r is required")
    created = create(master, class_name, {"r": "x", "ACL": delete})
    assert fetch(master, class_name, created["objectId"])["ACL"] == {}
    # An ACL given beside another field's Delete stays as given (the PHP SDK sends both).
    acl = {"*": {"read": True, "write": True}}
    created = create(master, class_name, {"r": "x", "ACL": acl, "gone": delete})
    assert fetch(master, class_name, created["objectId"])["ACL"] == acl
