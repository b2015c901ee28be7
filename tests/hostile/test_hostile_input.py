"""Hostile input through the wire.

Every request here is one an attacker could send: SQL fragments, quotes, backslashes, NUL bytes and
unicode in class names, field names, values, ``order``, ``keys``/``include``/``excludeKeys``, dot
paths and ``distinct``; catastrophic regular expressions; ``__proto__``-style keys; JSON nested ten
thousand levels deep; numbers JSON cannot hold; every operator given the wrong type; malformed,
mistyped and oversized bodies; ``_method`` junk; queries too wide, too deep or too large.

Each refusal must be a Parse error: a 4xx status and a JSON ``{"code": N, "error": "..."}`` that
shows no traceback, SQL or file path. Inputs that are merely odd (an SQL fragment as a string value)
must be stored and found as they are. After every test an autouse check compares a full listing of
a seeded class, its schema and the list of classes with what they were, and asks for ``/health``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Server

# --- helpers --------------------------------------------------------------------------------------

# Text that would betray the server's insides. None of the hostile inputs below contains any of it,
# so an error message that echoes the input cannot trip these.
LEAK_MARKERS = ("Traceback", 'File "', "sqlite3", "OperationalError", "IntegrityError", "asyncpg",
                "psycopg", "syntax error", "/work/", "bastion/", ".py", 'near "', "Exception")

SQL = ["'; DROP TABLE {cls}; --", '" OR 1=1 --', ") UNION SELECT * FROM _SCHEMA --", "' OR '1'='1"]

SEED_NAMES = [
    "alpha",
    "'; DROP TABLE x; --",
    '" OR 1=1 --',
    ") UNION SELECT * FROM _SCHEMA --",
    "back\\slash\\",
    "quote'n\"dbl`",
    "ünïcødé 😀 \u202egnp",
    "%_*?[]^$.",
]


def assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{marker!r} leaked: {text[:300]}"


def assert_error(response: httpx.Response, code: int | tuple[int, ...] | None, status: int | None = None) -> None:
    """A Parse error: 4xx, JSON ``{"code", "error"}``, nothing leaked."""
    text = response.text
    assert 400 <= response.status_code < 500, f"{response.status_code}: {text[:300]}"
    if status is not None:
        assert response.status_code == status, text[:300]
    assert response.headers.get("content-type", "").startswith("application/json"), text[:300]
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("code"), int) and isinstance(body.get("error"), str), text
    assert set(body) == {"code", "error"}, text[:300]
    if code is not None:
        allowed = code if isinstance(code, tuple) else (code,)
        assert body["code"] in allowed, f"code {body['code']} not in {allowed}: {text[:300]}"
    assert_no_leak(text)


def assert_refused(response: httpx.Response) -> None:
    """A Parse error, or the HTML 404 that Parse Server (Express) gives a request no route takes."""
    if response.status_code == 404 and response.headers.get("content-type", "").startswith("text/html"):
        assert_no_leak(response.text)
        return
    assert_error(response, None)


def assert_ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text[:300]
    assert_no_leak(response.text)
    return response.json()


def path_segment(name: str) -> str:
    """A URL path segment that reaches the server as ``name`` (dots too, so nothing normalises them)."""
    return quote(name, safe="").replace(".", "%2E")


def find(client: httpx.Client, cls: str, where: Any, via: str, **params: Any) -> httpx.Response:
    """A query with ``where`` in the URL, or in a POST body as the JS SDK sends it."""
    if via == "url":
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        if where is not None:
            query["where"] = where if isinstance(where, str) else json.dumps(where)
        return client.get(f"/classes/{cls}", params=query)
    body: dict[str, Any] = {"_method": "GET", **params}
    if where is not None:
        body["where"] = where
    return client.post(f"/classes/{cls}", json=body)


@dataclass
class Seeded:
    cls: str  # holds SEED_NAMES and is compared after every test
    scratch: str  # where the tests that must succeed write
    ids: dict[str, str]  # seed name -> objectId
    baseline: tuple[Any, ...]


def listing(client: httpx.Client, cls: str) -> Any:
    """Every object of ``cls``, in a fixed order."""
    response = client.get(f"/classes/{cls}", params={"order": "objectId", "limit": "1000"})
    assert response.status_code == 200, response.text[:300]
    return response.json()["results"]


def snapshot(client: httpx.Client, cls: str) -> tuple[Any, ...]:
    """Every object of ``cls``, its schema and the names of all classes."""
    schemas = client.get("/schemas")
    assert schemas.status_code == 200, schemas.text[:300]
    results = schemas.json()["results"]
    names = sorted(s["className"] for s in results)
    return listing(client, cls), [s for s in results if s["className"] == cls], names


@pytest.fixture(scope="module")
def watcher(server: Server) -> Iterator[httpx.Client]:
    with server.client(master=True) as client:
        yield client


@pytest.fixture(scope="module")
def seeded(server: Server) -> Iterator[Seeded]:
    suffix = str(int(time.time() * 1000) % 10**8)
    cls, scratch = "Hostile" + suffix, "HostileScratch" + suffix
    with server.client(master=True) as master:
        fields = {"name": {"type": "String"}, "score": {"type": "Number"}, "obj": {"type": "Object"},
                  "tags": {"type": "Array"}, "when": {"type": "Date"}, "ptr": {"type": "Pointer", "targetClass": cls}}
        for name in (cls, scratch):
            response = master.post(f"/schemas/{name}", json={"className": name, "fields": fields})
            assert response.status_code == 200, response.text
        ids: dict[str, str] = {}
        for i, name in enumerate(SEED_NAMES):
            body = {"name": name, "score": i, "obj": {"a": i, "s": name, "in": {"deep": [name]}},
                    "tags": [name, i], "when": {"__type": "Date", "iso": f"2020-01-0{i + 1}T00:00:00.000Z"}}
            response = master.post(f"/classes/{cls}", json=body)
            assert response.status_code == 201, response.text
            ids[name] = response.json()["objectId"]
        yield Seeded(cls, scratch, ids, snapshot(master, cls))


@pytest.fixture(autouse=True)
def data_unchanged(seeded: Seeded, watcher: httpx.Client) -> Iterator[None]:
    """After each test: the server answers, and the seeded class, its schema and the class list are
    as they were."""
    yield
    assert snapshot(watcher, seeded.cls) == seeded.baseline, "hostile input changed data"


# --- class names in the URL path ------------------------------------------------------------------

BAD_CLASS_NAMES = [
    *SQL,
    "a'b", 'a"b', "a\\b", "a\x00b", "a b", "a;b", "a-b", "a.b", "a%b", "Séed", "😀", "T\u202egnp",
    "Ａbc",  # fullwidth
    "1abc", "_", "_Unknown", "_SCHEMA", "_Hooks", "_JoinTable", "..", ".", "~", "a*x*",
    "sqlite_master", "SQLITE_SCHEMA", "sqlite_sequence", "pg_class", "pg_shadow",
    "a" * 129,
]

CLASS_OPERATIONS = {
    "find": ("GET", "/classes/{name}", None),
    "create": ("POST", "/classes/{name}", {"a": 1}),
    "get": ("GET", "/classes/{name}/abc", None),
    "update": ("PUT", "/classes/{name}/abc", {"a": 1}),
    "delete": ("DELETE", "/classes/{name}/abc", None),
    "count": ("GET", "/classes/{name}?count=1&limit=0", None),
}


@pytest.mark.parametrize("name", BAD_CLASS_NAMES, ids=repr)
def test_bad_class_name(seeded: Seeded, api: httpx.Client, master: httpx.Client, name: str) -> None:
    segment = path_segment(name.format(cls=seeded.cls))
    for method, template, body in CLASS_OPERATIONS.values():
        for client in (api, master):
            assert_error(client.request(method, template.format(name=segment), json=body), 103)
    assert_error(master.post(f"/schemas/{segment}", json={}), 103)
    assert_error(master.put(f"/schemas/{segment}", json={}), 103)
    assert_error(master.get(f"/schemas/{segment}"), 103)
    assert_error(master.delete(f"/schemas/{segment}"), 103)
    assert_error(master.get(f"/aggregate/{segment}", params={"distinct": "name"}), 103)
    assert_error(master.post("/schemas", json={"className": name}), 103)
    raw_path = "/classes/" + name.format(cls=seeded.cls)
    batch = master.post("/batch", json={"requests": [{"method": "GET", "path": raw_path}]})
    if batch.status_code != 200:
        assert_error(batch, (103, 107))  # refused, or no route for the path
    else:
        assert batch.json()[0]["error"]["code"] in (103, 107)


def test_join_and_internal_tables_are_not_reachable(seeded: Seeded, api: httpx.Client, master: httpx.Client) -> None:
    join = path_segment(f"_Join:ptr:{seeded.cls}")
    for client in (api, master):
        assert_error(client.get(f"/classes/{join}"), 119)
        assert_error(client.post(f"/classes/{join}", json={"relatedId": "x", "owningId": "y"}), 119)
        assert_error(client.delete(f"/classes/{join}/x"), 119)
    assert_error(master.post(f"/schemas/{join}", json={}), 103)
    # Parse Config's row is a class only the master key sees (tests/api/test_config.py).
    for method in ("GET", "POST", "PUT", "DELETE"):
        path = "/classes/_GlobalConfig" + ("" if method in ("GET", "POST") else "/1")
        assert_error(api.request(method, path, json={"params": {"x": 1}} if method in ("POST", "PUT") else None), 119)
    assert_error(master.post("/classes/_GlobalConfig", json={"params": {"x": 1}}), 103)


@pytest.mark.parametrize("path", ["/classes/..%2F..%2Fetc%2Fpasswd", "/classes/%2E%2E/%2E%2E/schemas",
                                  "/classes/a%2Fb/c/d", "/%2E%2E/%2E%2E/etc/passwd"])
def test_path_traversal_finds_no_route(seeded: Seeded, master: httpx.Client, path: str) -> None:
    response = master.get(path)
    assert response.status_code == 404, response.text[:300]
    assert "root:" not in response.text
    assert_no_leak(response.text)


@pytest.mark.parametrize("object_id", [*SQL, "a\x00b", "..", "a" * 5000, "%", "*", "😀"], ids=repr)
def test_bad_object_id_in_path(seeded: Seeded, api: httpx.Client, master: httpx.Client, object_id: str) -> None:
    segment = path_segment(object_id.format(cls=seeded.cls))
    for client in (api, master):
        assert_error(client.get(f"/classes/{seeded.cls}/{segment}"), 101, 404)
        assert_error(client.put(f"/classes/{seeded.cls}/{segment}", json={"name": "pwned"}), 101, 404)
        assert_error(client.delete(f"/classes/{seeded.cls}/{segment}"), 101, 404)


# --- field names in bodies ------------------------------------------------------------------------

BAD_FIELD_NAMES = [
    "a'b", 'a"b', "a;b", "a b", "a--", "a)b", "a\\b", "a\x00b", "é", "1a", "", "a" * 129, "$where", "$or",
    "_rperm", "_wperm", "_hashed_password", "_id", "className", "length",
    "name'; DROP TABLE x; --", ") UNION SELECT 1 --",
    "obj.a'b", 'obj.a"b', "obj.$x", "obj..a", "obj.", ".obj", "obj.a\\b", "obj.a\x00", "obj.a b'",
    "fresh.a'b", "fresh.$x", "fresh..a",  # a new field: nothing may be added to the schema on the way
    "__proto__", "constructor", "prototype", "obj.__proto__", "obj.constructor.x", "fresh.prototype",
]


@pytest.mark.parametrize("field", BAD_FIELD_NAMES, ids=repr)
def test_bad_field_name_in_body(seeded: Seeded, api: httpx.Client, master: httpx.Client, field: str) -> None:
    body = {"name": "never stored", field: 1}
    for client in (api, master):
        assert_error(client.post(f"/classes/{seeded.cls}", json=body), 105)
        assert_error(client.put(f"/classes/{seeded.cls}/{seeded.ids['alpha']}", json=body), 105)


BAD_VALUES: list[tuple[str, Any, int]] = [
    # nested keys: as Parse Server on PostgreSQL, no "$" or "." in the keys of an object value
    ("nested dot key", {"obj": {"a.b": 1}}, 121),
    ("nested dollar key", {"obj": {"$where": "1"}}, 121),
    ("nested key under path", {"obj.in": {"$x": 1}}, 121),
    # denylisted keys at any depth
    ("proto nested", {"obj": {"__proto__": {"polluted": True}}}, 105),
    ("constructor in array", {"tags": [{"constructor": {"prototype": {"x": 1}}}]}, 105),
    ("prototype deep", {"obj": {"a": {"b": {"c": [{"prototype": 1}]}}}}, 105),
    ("proto under op", {"tags": {"__op": "AddUnique", "objects": [{"__proto__": 1}]}}, 105),
    # wrong types for existing fields
    ("string into number", {"score": "12"}, 111),
    ("number into string", {"name": 5}, 111),
    ("object into array", {"tags": {"a": 1}}, 111),
    ("bad date string", {"when": "'; DROP TABLE x; --"}, 111),
    ("bad date iso", {"when": {"__type": "Date", "iso": "2020-13-45T99:99:99Z"}}, 111),
    ("pointer to bad class", {"fresh": {"__type": "Pointer", "className": "x'; DROP", "objectId": "a"}}, 103),
    ("relation to bad class", {"fresh": {"__type": "Relation", "className": "a b"}}, 103),
    ("pointer with number id", {"ptr": {"__type": "Pointer", "className": "X", "objectId": 5}}, 111),
    ("geopoint out of range", {"fresh": {"__type": "GeoPoint", "latitude": 999, "longitude": 0}}, 107),
    ("geopoint strings", {"fresh": {"__type": "GeoPoint", "latitude": "1", "longitude": "x"}}, 107),
    ("bytes junk", {"fresh": {"__type": "Bytes", "base64": "'; DROP"}}, 107),
    ("ACL string", {"ACL": "'; DROP TABLE x; --"}, 123),
    ("ACL junk", {"ACL": {"*": {"read": "yes"}}}, 123),
    ("ACL list", {"ACL": [1, 2]}, 123),
    # operations
    ("increment string", {"score": {"__op": "Increment", "amount": "1; DROP"}}, 111),
    ("increment object", {"score": {"__op": "Increment", "amount": {"$gt": 1}}}, 111),
    ("add not list", {"tags": {"__op": "Add", "objects": "x"}}, 107),
    ("unknown op", {"tags": {"__op": "'; DROP TABLE x; --"}}, 107),
    ("op not string", {"tags": {"__op": ["Add"]}}, 107),
    ("batch junk", {"tags": {"__op": "Batch", "ops": [{"__op": "Add", "objects": [1]}]}}, 107),
    ("array op on a path", {"obj.a": {"__op": "Add", "objects": [1]}}, 107),
    ("path into string field", {"name.x": 1}, 111),
    # too deep
    ("object 100 deep", {"obj": json.loads('{"a":' * 100 + "1" + "}" * 100)}, 107),
    ("array 100 deep", {"tags": json.loads("[" * 100 + "]" * 100)}, 107),
]


def test_nested_key_in_array_on_create(seeded: Seeded, api: httpx.Client) -> None:
    # Parse Server checks keys at any depth on create (only the first level of a value on update).
    assert_error(api.post(f"/classes/{seeded.cls}", json={"tags": [{"x": {"$gt": 1}}]}), 121)
    assert_error(api.post(f"/classes/{seeded.cls}", json={"obj": {"a": [{"b.c": 1}]}}), 121)


@pytest.mark.parametrize(("label", "body", "code"), BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_bad_value_in_body(seeded: Seeded, api: httpx.Client, label: str, body: dict[str, Any], code: int) -> None:
    assert_error(api.post(f"/classes/{seeded.cls}", json=body), code)
    assert_error(api.put(f"/classes/{seeded.cls}/{seeded.ids['alpha']}", json=body), code)


HOSTILE_STRINGS = [
    *SQL, "a\\", "\\'", "\\\\\"", "😀" * 100, "\u202e\u0301\ufeff\uffff", "%_",
    "$regex", "{\"$gt\": 1}", "__proto__", "\r\n\t\x1b[31m", "a" * 100_000,
]


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=lambda v: repr(v)[:40])
def test_hostile_strings_are_stored_as_they_are(seeded: Seeded, api: httpx.Client, value: str) -> None:
    value = value.format(cls=seeded.cls) if "{cls}" in value else value
    body = {"name": value, "tags": [value, {"k": value}], "obj": {"s": value, "k'\"\\": value}}
    created = assert_ok(api.post(f"/classes/{seeded.scratch}", json=body), 201)
    got = assert_ok(api.get(f"/classes/{seeded.scratch}/{created['objectId']}"))
    assert {k: got[k] for k in body} == body
    for where in ({"name": value}, {"obj.s": value}, {"tags": value}, {"name": {"$in": [value, "x"]}}):
        found = assert_ok(find(api, seeded.scratch, where, "body"))["results"]
        assert [o["objectId"] for o in found] == [created["objectId"]], where
    api.delete(f"/classes/{seeded.scratch}/{created['objectId']}")


def test_big_integers_in_bodies(seeded: Seeded, api: httpx.Client) -> None:
    """Integers past 64 bits arrive as floats; up to 64 bits they may be kept or refused; never a crash."""
    for body in ({"score": 2**70}, {"score": -(2**70)}, {"obj": {"n": 2**64 - 1}}, {"tags": [2**70, -(2**63)]},
                 {"score": {"__op": "Increment", "amount": 2**70}}, {"obj": {"n": 1e308, "m": 5e-324}}):
        response = api.post(f"/classes/{seeded.scratch}", content=json.dumps(body))
        if response.status_code != 201:
            assert_error(response, None)
            continue
        object_id = response.json()["objectId"]
        assert_ok(api.get(f"/classes/{seeded.scratch}/{object_id}"))
        assert_ok(api.get(f"/classes/{seeded.scratch}", params={"order": "-score,score", "limit": "5"}))
        api.delete(f"/classes/{seeded.scratch}/{object_id}")


def test_nul_in_string_values(seeded: Seeded, api: httpx.Client) -> None:
    """NUL in a string: stored and found as it is in a plain column, or refused with a Parse error
    (PostgreSQL cannot store it); never a crash. (SQLite's JSON functions cut a string at NUL, so
    inside objects and arrays it is not compared here.)"""
    for value in ("\x00", "x\x00' OR 1=1 --"):
        response = api.post(f"/classes/{seeded.scratch}", json={"name": value})
        if response.status_code != 201:
            assert_error(response, None)
            continue
        object_id = response.json()["objectId"]
        assert assert_ok(api.get(f"/classes/{seeded.scratch}/{object_id}"))["name"] == value
        found = assert_ok(find(api, seeded.scratch, {"name": value}, "body"))["results"]
        assert [o["objectId"] for o in found] == [object_id]
        api.delete(f"/classes/{seeded.scratch}/{object_id}")


# --- queries: where ----------------------------------------------------------------------------

DEEP = 10_000
BAD_WHERE: list[tuple[str, Any, int | tuple[int, ...]]] = [
    # field names
    *[(f"key {k!r}", {k: 1}, 105) for k in [
        "na'me", 'a"b', "a;b", "1a", "", "a b", "$where", "$expr", "_rperm", "_wperm", "a" * 300,
        "name'; DROP TABLE x; --", ") UNION SELECT 1 --", "obj.a'b", "obj.$x", "obj..a", "obj.", "obj.a\\b",
        "obj.a\x00", "obj.a'b.c", "ACL", "__proto__", "constructor", "obj.__proto__.x", "obj.constructor",
        "obj.prototype.y"]],
    ("proto in operand", {"obj": {"__proto__": 1}}, 105),
    ("constructor in $in", {"obj": {"$in": [{"constructor": {"prototype": 1}}]}}, 105),
    ("prototype under $or", {"$or": [{"name": "a"}, {"obj.in": {"prototype": 1}}]}, 105),
    ("proto in subquery", {"ptr": {"$inQuery": {"className": "X", "where": {"__proto__": 1}}}}, 105),
    ("bad key in subquery", {"ptr": {"$inQuery": {"className": "X", "where": {"a'b": 1}}}}, 105),
    ("bad $select key", {"name": {"$select": {"key": "a'b", "query": {"className": "{cls}"}}}}, 105),
    ("bad subquery class", {"ptr": {"$inQuery": {"className": "'; DROP TABLE x; --", "where": {}}}}, 103),
    ("sqlite_master subquery", {"ptr": {"$inQuery": {"className": "sqlite_master", "where": {}}}}, 103),
    # operators with the wrong types
    ("$in number", {"name": {"$in": 5}}, 107),
    ("$in object", {"name": {"$in": {"a": 1}}}, 107),
    ("$nin string", {"name": {"$nin": "abc"}}, 107),
    ("$all object", {"tags": {"$all": {}}}, 107),
    ("$containedBy number", {"tags": {"$containedBy": 5}}, 107),
    ("$exists string", {"name": {"$exists": "yes"}}, 102),
    ("$exists number", {"name": {"$exists": 1}}, 102),
    ("$regex number", {"name": {"$regex": 5}}, 102),
    ("$regex object", {"name": {"$regex": {"$gt": ""}}}, 102),
    ("$options junk", {"name": {"$regex": "a", "$options": "'; DROP"}}, 102),
    ("$options number", {"name": {"$regex": "a", "$options": 5}}, 102),
    ("$options nul", {"name": {"$regex": "a", "$options": "i\x00"}}, 102),
    ("$options alone", {"name": {"$options": "i", "$eq": "a"}}, 102),
    ("$inQuery list", {"ptr": {"$inQuery": []}}, 102),
    ("$inQuery no class", {"ptr": {"$inQuery": {"where": {}}}}, 102),
    ("$notInQuery string", {"ptr": {"$notInQuery": "x"}}, 102),
    ("$select string", {"name": {"$select": "x"}}, 102),
    ("$select extra", {"name": {"$select": {"key": "name", "query": {"className": "X"}, "x": 1}}}, 102),
    ("$dontSelect number", {"name": {"$dontSelect": 5}}, 102),
    ("$relativeTime number", {"when": {"$lt": {"$relativeTime": 5}}}, 107),
    ("$relativeTime junk", {"when": {"$lt": {"$relativeTime": "'; DROP TABLE x; --"}}}, 107),
    ("$relativeTime huge", {"when": {"$gt": {"$relativeTime": "in 999999999 years"}}}, 107),
    ("$relativeTime huge past", {"when": {"$gt": {"$relativeTime": "999999999 years ago"}}}, 107),
    ("$relativeTime many units", {"when": {"$gt": {"$relativeTime": "in " + "999999999 years " * 20}}}, 107),
    ("$relativeTime on string", {"name": {"$gt": {"$relativeTime": "1 day ago"}}}, 107),
    ("$lt list", {"score": {"$lt": [1]}}, 102),
    ("$gt object", {"score": {"$gt": {"a": 1}}}, 102),
    ("op as value", {"score": {"$eq": {"__op": "Increment", "amount": 1}}}, 102),
    ("date junk", {"when": {"__type": "Date", "iso": "'; DROP"}}, 111),
    ("$or object", {"$or": {"name": "a"}}, 102),
    ("$or empty", {"$or": []}, 102),
    ("$and string", {"$and": "x"}, 102),
    ("$nor number", {"$nor": 5}, 102),
    ("$or of strings", {"$or": ["a", "b"]}, 102),
    ("unknown operator", {"name": {"$where": "sleep(1000)"}}, (102, 119)),
    # numbers that do not fit
    ("2**63 in object path", {"obj.a": 2**63}, 107),
    ("2**63 in array", {"tags": 2**63}, 107),
    ("2**63 in $in", {"obj.a": {"$in": [2**63]}}, 107),
    ("2**63 in $all", {"tags": {"$all": [2**63]}}, 107),
    ("2**64-1", {"score": 2**64 - 1}, 107),
    # size limits
    ("$or breadth 101", {"$or": [{"score": i} for i in range(101)]}, 102),
    ("$and breadth 101", {"$and": [{"score": i} for i in range(101)]}, 102),
    ("$in 10001", {"name": {"$in": [str(i) for i in range(10_001)]}}, 102),
    ("$nin 10001", {"name": {"$nin": list(range(10_001))}}, 102),
    ("$all 10001", {"tags": {"$all": list(range(10_001))}}, 102),
    ("$containedBy 10001", {"tags": {"$containedBy": list(range(10_001))}}, 102),
    ("$or 100 x 100 x 20", {"$or": [{"$or": [{"$or": [{"name": str(i)} for i in range(100)]}
                                              for _ in range(100)]} for _ in range(20)]}, 102),
    ("$or 100 x 100", {"$or": [{"$or": [{"score": i} for i in range(100)]} for _ in range(100)]}, 102),
    ("100 x $in 10000", {"$or": [{"name": {"$in": list(range(10_000))}} for _ in range(10)]}, 102),
    ("object 100 deep", {"obj": json.loads('{"a":' * 100 + "1" + "}" * 100)}, 107),
    ("array 100 deep", {"tags": json.loads("[" * 100 + "]" * 100)}, 107),
]


def _nested_or(depth: int) -> dict[str, Any]:
    where: dict[str, Any] = {"name": "alpha"}
    for i in range(depth):
        where = {"$or": [where, {"score": i}]}
    return where


def _nested_subquery(depth: int, cls: str) -> dict[str, Any]:
    where: dict[str, Any] = {"name": "alpha"}
    for _ in range(depth):
        where = {"ptr": {"$inQuery": {"className": cls, "where": where}}}
    return where


@pytest.mark.parametrize(("label", "where", "code"), BAD_WHERE, ids=[c[0] for c in BAD_WHERE])
def test_bad_where(seeded: Seeded, api: httpx.Client, master: httpx.Client, label: str, where: Any,
                   code: int | tuple[int, ...]) -> None:
    where = json.loads(json.dumps(where).replace("{cls}", seeded.cls))
    for via in ("url", "body") if len(json.dumps(where)) < 20_000 else ("body",):
        assert_error(find(api, seeded.cls, where, via), code)
    assert_error(find(master, seeded.cls, where, "body", count=1, limit=0), code)


def test_bad_where_nesting(seeded: Seeded, api: httpx.Client) -> None:
    for where in (_nested_or(11), _nested_subquery(11, seeded.cls),
                  {"$and": [_nested_or(2), {"ptr": {"$inQuery": {"className": seeded.cls, "where": _nested_or(9)}}}]}):
        for via in ("url", "body"):
            assert_error(find(api, seeded.cls, where, via), 102)
    assert_ok(find(api, seeded.cls, _nested_or(10), "body"))


RAW_WHERE: list[tuple[str, str, int | tuple[int, ...]]] = [
    ("notjson", "notjson", 107), ("empty object string", "{", 107), ("list", "[]", 102), ("number", "5", 102),
    ("string", '"x"', (102, 107)), ("true", "true", 102), ("NaN", '{"score": NaN}', 107),
    ("Infinity", '{"score": Infinity}', 107), ("-Infinity", '{"score": -Infinity}', 107),
    ("1e400", '{"score": 1e400}', 107), ("-1e400", '{"score": -1e400}', 107),
    ("1e400 in $in", '{"score": {"$in": [1e400]}}', 107), ("single quotes", "{'name': 'a'}", 107),
    ("trailing comma", '{"name": "a",}', 107), ("lone surrogate", '{"name": "\\ud800"}', 107),
    ("objects 10000 deep", '{"obj":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}", 107),
    ("arrays 10000 deep", '{"tags":' + "[" * DEEP + "]" * DEEP + "}", 107),
    ("$or 10000 deep", '{"$or":[' * DEEP + "{}" + "]}" * DEEP, 107),
    ("1010 deep (past SQLite's JSON depth)", '{"obj":' + "[" * 1010 + "]" * 1010 + "}", 107),
]


@pytest.mark.parametrize(("label", "raw", "code"), RAW_WHERE, ids=[c[0] for c in RAW_WHERE])
def test_raw_where(seeded: Seeded, api: httpx.Client, label: str, raw: str, code: int | tuple[int, ...]) -> None:
    if len(raw) < 20_000:
        assert_error(api.get(f"/classes/{seeded.cls}", params={"where": raw}), code)
    body = '{"_method": "GET", "where": ' + raw + "}"
    assert_error(api.post(f"/classes/{seeded.cls}", content=body.encode()), code)


@pytest.mark.parametrize("name", SEED_NAMES, ids=repr)
def test_hostile_values_in_where_match_exactly(seeded: Seeded, api: httpx.Client, name: str) -> None:
    want = [seeded.ids[name]]
    for via in ("url", "body"):
        for where in ({"name": name}, {"obj.s": name}, {"tags": name}, {"name": {"$in": [name, "' OR 1=1"]}},
                      {"tags": {"$all": [name]}}, {"obj.in": {"deep": [name]}}, {"name": {"$eq": name}},
                      {"$or": [{"name": name}, {"name": "') OR 1=1 --"}]},
                      # Parse Server reads "^\\Q…\\E$" as the literal text "…\\E$": the SDKs'
                      # startsWith and endsWith, both, stand for an exact match.
                      {"$and": [{"name": {"$regex": "^\\Q" + name + "\\E"}},
                                {"name": {"$regex": "\\Q" + name + "\\E$"}}]}):
            found = assert_ok(find(api, seeded.cls, where, via))["results"]
            assert [o["objectId"] for o in found] == want, (via, where)
        others = assert_ok(find(api, seeded.cls, {"name": {"$ne": name}}, via))["results"]
        assert len(others) == len(SEED_NAMES) - 1


INERT_WHERE: list[tuple[str, Any]] = [
    ("sql in value", {"name": "' OR '1'='1"}),
    ("sql in path value", {"obj.s": "'; DELETE FROM x; --"}),
    ("sql in $in", {"name": {"$in": ["') UNION SELECT 1 --", "\\", "\x00"]}}),
    ("sql in $regex", {"name": {"$regex": "'; DELETE FROM x; --"}}),
    ("sql in $gt", {"score": {"$gt": "' OR 1=1 --"}}),
    ("sql as pointer id", {"ptr": {"__type": "Pointer", "className": "X", "objectId": "' OR 1=1 --"}}),
    ("sql as pointer class", {"ptr": {"__type": "Pointer", "className": "'; DROP", "objectId": "a"}}),
    ("$in 10000 on array", {"tags": {"$in": list(range(100, 10_100))}}),
    ("$in 10000 on path", {"obj.a": {"$in": list(range(100, 10_100))}}),
    ("$nin 10000 on path", {"obj.a": {"$nin": list(range(10_000))}}),
    ("$in 10000 strings", {"name": {"$in": [f"' OR {i}=1" for i in range(10_000)]}}),
    ("$all 2000", {"tags": {"$all": list(range(2000))}}),
    ("$containedBy 10000", {"tags": {"$containedBy": list(range(10_000))}}),
    ("$or 100 of $in 100 on path", {"$or": [{"obj.a": {"$in": list(range(100, 200))}} for _ in range(100)]}),
    ("$and 9 x $or 100", _nested_or(1) | {"$and": [{"$or": [{"score": -i - 1} for i in range(100)]}] * 9}),
    ("obj 60 deep", {"obj": json.loads('{"a":' * 60 + "1" + "}" * 60)}),
    ("2**70 as float", {"score": 2**70 * 1.0}),
    ("unicode key path", {"obj.é": 1}),
]


@pytest.mark.parametrize(("label", "where"), INERT_WHERE, ids=[c[0] for c in INERT_WHERE])
def test_inert_where(seeded: Seeded, api: httpx.Client, label: str, where: Any) -> None:
    started = time.monotonic()
    body = assert_ok(find(api, seeded.cls, where, "body", count=1))
    assert body["results"] == [] and body["count"] == 0
    assert time.monotonic() - started < 10


# --- regular expressions ------------------------------------------------------------------------

REFUSED_REGEX = [
    "(a+)+$", "(a*)*b", "(a+)*$", "(a|aa)+$", "(a|a?)+b", "((ab)*)+c", "(\\w+\\s?)+$", "(.*a){20}$",
    "^(([a-z])+.)+[A-Z]([a-z])+$", "(x+x+)+y", "(.*){1,32000}[bc]", "(?:a+){2,}b", "(a+)+\\Qx\\E$",
    "a\\E(a+)+$",  # (after a \Q all is literal, as Parse Server reads it: the nested quantifier comes first)
    "(a)\\1", "(?P<x>a+)(?P=x)", "[", "(", ")", "a{2,1}", "(?<=a+)b", "\\", "*a", "a**", "(?P<x", "\\k<x>",
    "a{99999999999}", "x" * 1001,
]


@pytest.mark.parametrize("pattern", REFUSED_REGEX, ids=lambda p: repr(p)[:40])
def test_regex_refused(seeded: Seeded, api: httpx.Client, pattern: str) -> None:
    for where in ({"name": {"$regex": pattern}}, {"obj.s": {"$regex": pattern, "$options": "i"}}):
        started = time.monotonic()
        assert_error(find(api, seeded.cls, where, "body"), 102)
        assert time.monotonic() - started < 5


COSTLY_REGEX = ["a*a*a*a*b", ".*.*.*.*=", "(?:a|b)*(?:a|c)*(?:a|d)*!", "a*?a*?a*?b", ".*x.*y.*z"]


@pytest.mark.parametrize("pattern", COSTLY_REGEX, ids=repr)
def test_costly_regex_is_bounded(seeded: Seeded, api: httpx.Client, pattern: str) -> None:
    """Polynomial backtracking over long stored text: bounded in time, the server stays up."""
    created = assert_ok(api.post(f"/classes/{seeded.scratch}", json={"name": "a" * 50_000}), 201)
    try:
        started = time.monotonic()
        response = find(api, seeded.scratch, {"name": {"$regex": pattern}}, "body")
        assert time.monotonic() - started < 15
        if response.status_code != 200:
            assert_error(response, 102)
    finally:
        api.delete(f"/classes/{seeded.scratch}/{created['objectId']}")


def test_regex_time_is_bounded_per_query(seeded: Seeded, api: httpx.Client, master: httpx.Client) -> None:
    """Each value affordable, hundreds of them together not: the query stops at its time budget."""
    cls = "RegexLoad" + seeded.cls
    mount = master.base_url.path.rstrip("/")
    requests = [{"method": "POST", "path": f"{mount}/classes/{cls}", "body": {"name": "a" * 9000}}] * 50
    for _ in range(4):
        assert_ok(master.post("/batch", json={"requests": requests}))
    try:
        started = time.monotonic()
        response = find(api, cls, {"name": {"$regex": ".*b"}}, "body")
        assert time.monotonic() - started < 15
        if response.status_code != 200:
            assert_error(response, 102)
        assert_ok(api.get(f"/classes/{cls}", params={"limit": "1"}))
    finally:
        master.delete(f"/purge/{cls}")
        master.delete(f"/schemas/{cls}")


def test_ordinary_regex_still_works(seeded: Seeded, api: httpx.Client) -> None:
    for pattern, options, want in [("^alp", "", ["alpha"]), ("SLASH", "i", ["back\\slash\\"]),
                                   ("\\\\$", "", ["back\\slash\\"]), ("(ab|al)ph", "", ["alpha"]),
                                   ("^[a-z]+$", "", ["alpha"]), ("DROP\\s+TABLE", "", ["'; DROP TABLE x; --"]),
                                   ("^(\\d+\\.){3}\\d+$", "", []), ("a{1,3}l", "x", ["alpha"])]:
        found = assert_ok(find(api, seeded.cls, {"name": {"$regex": pattern, "$options": options}}, "body"))
        assert sorted(o["name"] for o in found["results"]) == want, pattern


# --- query options ------------------------------------------------------------------------------

BAD_OPTIONS: list[tuple[str, dict[str, Any], int]] = [
    ("limit abc", {"limit": "abc"}, 102), ("limit float", {"limit": "1.5"}, 102), ("limit -2", {"limit": "-2"}, 102),
    ("limit 1e400", {"limit": "1e400"}, 102), ("limit sql", {"limit": "1; DROP TABLE x"}, 102),
    ("skip -1", {"skip": "-1"}, 102), ("skip abc", {"skip": "abc"}, 102), ("skip sql", {"skip": "0 OR 1=1"}, 102),
    *[(f"order {o!r}", {"order": o}, 105) for o in [
        "name'; DROP TABLE x; --", "-obj.a'b", "obj.$x", "\x00", "-", "obj..a", "a b", "name)", "__proto__",
        "_rperm", "a" * 300, "ACL", "$natural"]],
    ("include too deep", {"include": ".".join(["ptr"] * 50)}, 102),
    ("include empty part", {"include": "ptr..ptr"}, 102),
    # JSON-typed options, as the JS SDK may send them in a POST body
    ("limit object", {"limit": {"$gt": 1}}, 102), ("limit true", {"limit": True}, 102),
    ("skip list", {"skip": [1]}, 102), ("order object", {"order": {"name": 1}}, 102),
    ("keys number", {"keys": 5}, 102), ("keys object", {"keys": {"a": 1}}, 102), ("keys list of ints", {"keys": [1]}, 102),
    ("include number", {"include": 5}, 102), ("excludeKeys object", {"excludeKeys": {"a": 1}}, 102),
]


@pytest.mark.parametrize(("label", "params", "code"), BAD_OPTIONS, ids=[c[0] for c in BAD_OPTIONS])
def test_bad_query_options(seeded: Seeded, api: httpx.Client, label: str, params: dict[str, Any], code: int) -> None:
    text_only = all(isinstance(v, str) for v in params.values())  # a URL carries text only
    for via in ("url", "body") if text_only else ("body",):
        assert_error(find(api, seeded.cls, None, via, **params), code)


INERT_OPTIONS: list[tuple[str, dict[str, str]]] = [
    ("limit huge", {"limit": "99999999999999999999999"}),
    ("skip huge", {"skip": "99999999999999999999999", "limit": "5"}),
    ("keys junk", {"keys": "a'b,obj.$x,'; DROP TABLE x; --,__proto__"}),
    ("keys internal", {"keys": "_rperm,_wperm,_hashed_password,_id,ACL"}),
    ("include junk", {"include": "a'b,obj.$x.y,'; DROP TABLE x; --,__proto__"}),
    ("include many", {"include": ",".join(f"f{i}" for i in range(3000))}),
    ("excludeKeys junk", {"excludeKeys": "a'b,_rperm,'; DROP"}),
    ("count junk", {"count": "'; DROP TABLE x; --"}),
    ("order junk but valid", {"order": "a,,b,-,"[:-2]}),
]


@pytest.mark.parametrize(("label", "params"), INERT_OPTIONS, ids=[c[0] for c in INERT_OPTIONS])
def test_inert_query_options(seeded: Seeded, api: httpx.Client, label: str, params: dict[str, str]) -> None:
    for via in ("url", "body"):
        results = assert_ok(find(api, seeded.cls, None, via, **params))["results"]
        for obj in results:
            assert not {"_rperm", "_wperm", "_hashed_password", "_id", "__proto__"} & set(obj), obj


BAD_DISTINCT: list[tuple[str, int]] = [
    ("obj.a'b", 105), ("obj.$x", 105), ("name'", 105), ("a\x00", 105), ("obj..a", 105), ("obj.", 105),
    ("__proto__", 105), ("_rperm", 105), ("ACL", 105), ("obj.a') FROM sqlite_master --", 105),
    ("obj.x\"), 1 FROM sqlite_master --", 105), ('obj.a"b', 105), ("obj.a\\b", 105), ("obj.__proto__", 105),
    ("a" * 300, 105), ("name.x", (102, 105)),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("field", "code"), BAD_DISTINCT, ids=[repr(c[0])[:40] for c in BAD_DISTINCT])
def test_bad_distinct(seeded: Seeded, master: httpx.Client, field: str, code: int) -> None:
    assert_error(master.get(f"/aggregate/{seeded.cls}", params={"distinct": field}), code)


def test_distinct_of_hostile_values(seeded: Seeded, master: httpx.Client) -> None:
    for field in ("name", "obj.s"):
        values = assert_ok(master.get(f"/aggregate/{seeded.cls}", params={"distinct": field}))["results"]
        assert sorted(values) == sorted(SEED_NAMES)
    for where in ({"name": "' OR 1=1 --"}, {"a'b": 1}):
        response = master.get(f"/aggregate/{seeded.cls}", params={"distinct": "name", "where": json.dumps(where)})
        if response.status_code == 200:
            assert response.json()["results"] == []
        else:
            assert_error(response, 105)


# --- bodies: JSON, content types, size, _method ------------------------------------------------

RAW_BODIES: list[tuple[str, bytes, int]] = [
    ("truncated", b'{"name": "a"', 107), ("single quotes", b"{'name': 'a'}", 107), ("bare key", b"{name: 1}", 107),
    ("trailing comma", b'{"name": "a",}', 107), ("two objects", b'{"name": "a"}{"name": "b"}', 107),
    ("garbage", b"\xff\xfe\x00\x01", 107), ("latin-1", b'{"name": "\xe9"}', 107),
    ("lone surrogate", b'{"name": "\\udc00"}', 107), ("BOM", b'\xef\xbb\xbf{"name": "a"}', 107),
    ("NaN", b'{"score": NaN}', 107), ("Infinity", b'{"score": Infinity}', 107),
    ("-Infinity", b'{"score": -Infinity}', 107), ("1e400", b'{"score": 1e400}', 107),
    ("-1e400", b'{"score": -1e400}', 107), ("1e400 nested", b'{"obj": {"n": [1e400]}}', 107),
    ("list", b"[]", 107), ("list of objects", b'[{"name": "a"}]', 107), ("string", b'"x"', 107),
    ("number", b"5", 107), ("true", b"true", 107),
    ("objects 10000 deep", b'{"obj":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}", 107),
    ("arrays 10000 deep", b'{"tags":' + b"[" * DEEP + b"]" * DEEP + b"}", 107),
    ("mixed 10000 deep", b'{"obj":' + b'{"a":[' * (DEEP // 2) + b"1" + b"]}" * (DEEP // 2) + b"}", 107),
    ("1010 deep", b'{"obj":' + b"[" * 1010 + b"]" * 1010 + b"}", 107),
    ("proto top", b'{"__proto__": {"isAdmin": true}}', 105),
    ("proto escaped", b'{"\\u005f_proto__": {"isAdmin": true}}', 105),
    ("constructor.prototype", b'{"obj": {"constructor": {"prototype": {"x": 1}}}}', 105),
    ("nul key", b'{"a\\u0000b": 1}', 105),
]


@pytest.mark.parametrize(("label", "raw", "code"), RAW_BODIES, ids=[c[0] for c in RAW_BODIES])
def test_raw_body(seeded: Seeded, api: httpx.Client, master: httpx.Client, label: str, raw: bytes,
                  code: int) -> None:
    for content_type in ("application/json", "text/plain"):
        headers = {"content-type": content_type}
        assert_error(api.post(f"/classes/{seeded.cls}", content=raw, headers=headers), code)
        assert_error(api.put(f"/classes/{seeded.cls}/{seeded.ids['alpha']}", content=raw, headers=headers), code)
        assert_error(api.post("/batch", content=raw, headers=headers), (code, 107))
        response = master.put(f"/schemas/{seeded.cls}", content=raw, headers=headers)
        if response.status_code != 200:  # the schemas API ignores keys it does not know
            assert_error(response, (code, 107))


@pytest.mark.parametrize(("content_type", "raw"), [
    ("application/x-www-form-urlencoded", b"name=x&score=1"),
    ("multipart/form-data; boundary=xx", b'--xx\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--xx--'),
    ("application/xml", b"<name>x</name>"),
    ("application/json; charset=utf-16", '{"name": "x"}'.encode("utf-16")),
])
def test_wrong_content_type(seeded: Seeded, api: httpx.Client, content_type: str, raw: bytes) -> None:
    assert_error(api.post(f"/classes/{seeded.cls}", content=raw, headers={"content-type": content_type}), 107)


def test_oversized_body(seeded: Seeded, api: httpx.Client) -> None:
    big = b'{"name": "' + b"a" * (21 * 1024 * 1024) + b'"}'
    assert_error(api.post(f"/classes/{seeded.cls}", content=big), 116, 413)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(21):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    assert_error(api.post(f"/classes/{seeded.cls}", content=chunks()), 116, 413)
    assert_error(api.put(f"/classes/{seeded.cls}/{seeded.ids['alpha']}", content=big), 116, 413)


METHOD_OVERRIDES: list[Any] = [
    5, None, ["GET"], {"x": 1}, "", "PATCH", "TRACE", "GET\x00", "GET; DROP TABLE x", "OPTIONS", "HEAD", "DELETE",
    "'; DROP TABLE x; --", "g\u0130t",
]


@pytest.mark.parametrize("override", METHOD_OVERRIDES, ids=repr)
def test_method_override_junk(seeded: Seeded, api: httpx.Client, override: Any) -> None:
    """As Parse Server: an unusable ``_method`` stays in the body (an invalid field, 105), a method
    no route has finds no route (404); nothing is written either way."""
    assert_refused(api.post(f"/classes/{seeded.cls}", json={"_method": override, "name": "x"}))
    if override != "DELETE":  # a real override: POST with _method DELETE deletes the object
        assert_refused(api.post(f"/classes/{seeded.cls}/{seeded.ids['alpha']}",
                                json={"_method": override, "name": "x"}))


def test_js_sdk_body_keys_junk(seeded: Seeded, server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as bare:
        base = {"_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key}
        cases: list[tuple[dict[str, Any], int]] = [
            ({"_method": "GET", "_context": "'; DROP"}, 107),
            ({"_method": "GET", "_context": [1]}, 107),
            ({"_method": "GET", "_SessionToken": "r:'; DROP TABLE x; --"}, 209),
            ({"_method": "GET", "_SessionToken": {"$ne": None}}, 209),
            ({"_method": "GET", "where": {"__proto__": {"x": 1}}}, 105),
        ]
        for extra, code in cases:
            response = bare.post(f"/classes/{seeded.cls}", content=json.dumps({**base, **extra}),
                                 headers={"content-type": "text/plain"})
            assert_error(response, code)


def test_cloud_context_header_junk(seeded: Seeded, api: httpx.Client) -> None:
    for value in ("'; DROP TABLE x; --", "[1]", "5", '{"a":' * 2000 + "1" + "}" * 2000):
        assert_error(api.get(f"/classes/{seeded.cls}", headers={"X-Parse-Cloud-Context": value}), 107)


# --- batch and schemas ---------------------------------------------------------------------------


def test_batch_junk(seeded: Seeded, api: httpx.Client) -> None:
    assert_error(api.post("/batch", json={"requests": "x"}), 107)
    assert_error(api.post("/batch", json={"requests": {"a": 1}}), 107)
    assert_error(api.post("/batch", json={"requests": [{"method": "GET", "path": "/health"}] * 51}), 107)
    items = [
        5, None, {"method": "GET"}, {"method": 5, "path": "/classes/X"}, {"method": "GET", "path": 5},
        {"method": "TRACE", "path": f"/classes/{seeded.cls}"},
        {"method": "POST", "path": f"/classes/{seeded.cls}", "body": [1]},
        {"method": "POST", "path": f"/classes/{seeded.cls}", "body": {"a'b": 1}},
        {"method": "PUT", "path": f"/classes/{seeded.cls}/{seeded.ids['alpha']}", "body": {"score": "x"}},
        {"method": "DELETE", "path": f"/classes/{seeded.cls}/' OR '1'='1"},
        {"method": "GET", "path": "/classes/'; DROP TABLE x; --"},
        {"method": "GET", "path": f"/classes/{seeded.cls}/../../schemas"},
        {"method": "POST", "path": "/batch", "body": {"requests": []}},
        {"method": "GET", "path": f"/classes/{seeded.cls}", "body": {"where": {"a'b": 1}}},
        {"method": "GET", "path": "/schemas"},
    ]
    for item in items:  # one at a time: Parse Server refuses a whole batch holding a path it cannot route
        response = api.post("/batch", json={"requests": [item]})
        if response.status_code != 200:
            assert_error(response, None)
            continue
        (result,) = response.json()
        assert set(result) == {"error"}, (item, result)
        assert isinstance(result["error"]["code"], int) and isinstance(result["error"]["error"], str), result
        assert_no_leak(response.text)


BAD_SCHEMA_BODIES: list[tuple[str, dict[str, Any], int | tuple[int, ...]]] = [
    ("field name sql", {"fields": {"a'; DROP TABLE x; --": {"type": "String"}}}, 105),
    ("field name proto", {"fields": {"__proto__": {"type": "String"}}}, 105),
    ("field name nul", {"fields": {"a\x00": {"type": "String"}}}, 105),
    ("field name long", {"fields": {"a" * 129: {"type": "String"}}}, 105),
    ("field type sql", {"fields": {"z": {"type": "String); DROP TABLE x; --"}}}, 111),
    ("field type number", {"fields": {"z": {"type": 5}}}, 107),
    ("field spec string", {"fields": {"z": "String"}}, 107),
    ("fields list", {"fields": ["z"]}, 105),  # as Parse Server walks it: a field named "0"
    ("target class sql", {"fields": {"z": {"type": "Pointer", "targetClass": "x'; DROP"}}}, 103),
    ("target class sqlite", {"fields": {"z": {"type": "Relation", "targetClass": "sqlite_master"}}}, 103),
    ("default wrong type", {"fields": {"z": {"type": "Number", "defaultValue": "'; DROP"}}}, 111),
    ("default proto", {"fields": {"z": {"type": "Object", "defaultValue": {"__proto__": 1}}}}, 105),
    ("clp junk op", {"classLevelPermissions": {"'; DROP": {"*": True}}}, 107),
    ("clp proto", {"classLevelPermissions": {"find": {"__proto__": True}}}, 105),
    ("clp list", {"classLevelPermissions": [1]}, 107),
    ("index name sql", {"indexes": {"x'; DROP TABLE x; --": {"name": 1}}}, 102),
    ("index field sql", {"indexes": {"ix": {"na'me": 1}}}, (102, 105)),
    ("index direction sql", {"indexes": {"ix": {"name": "1); DROP TABLE x; --"}}}, 102),
    ("index list", {"indexes": [1]}, 102),
    ("class name mismatch", {"className": "'; DROP TABLE x; --"}, 103),
]


@pytest.mark.parametrize(("label", "body", "code"), BAD_SCHEMA_BODIES, ids=[c[0] for c in BAD_SCHEMA_BODIES])
def test_bad_schema_body(seeded: Seeded, master: httpx.Client, label: str, body: dict[str, Any],
                         code: int | tuple[int, ...]) -> None:
    assert_error(master.put(f"/schemas/{seeded.cls}", json=body), code)
    fresh = "Fresh" + seeded.cls
    assert_error(master.post(f"/schemas/{fresh}", json=body), code)
    assert master.get(f"/schemas/{fresh}").status_code == 400  # not created


def test_config_junk(seeded: Seeded, master: httpx.Client) -> None:
    assert_error(master.put("/config", json={"params": {"a": {"__proto__": {"x": 1}}}}), 105)
    assert_error(master.put("/config", json={"params": "'; DROP"}), 107)
    assert_error(master.put("/config", json={"params": {}, "masterKeyOnly": [1]}), 107)
