"""GET /classes/:className: where, order, limit, skip, count, keys, include; the SDK's POST-as-GET;
distinct through /aggregate."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, count, create
from tests.conftest import Server, make_class

PLAYERS: list[dict[str, Any]] = [
    {"name": "ann", "score": 10, "team": "red", "tags": ["x", "y"], "stats": {"wins": 1, "rank": "gold"},
     "born": {"__type": "Date", "iso": "2000-01-01T00:00:00.000Z"}, "active": True},
    {"name": "bob", "score": 20, "team": "blue", "tags": ["y"], "stats": {"wins": 5, "rank": "silver"},
     "born": {"__type": "Date", "iso": "2100-01-01T00:00:00.000Z"}, "active": False},
    {"name": "cat", "score": 30, "team": "red", "tags": [], "stats": {"wins": 3}},
    {"name": "dan", "score": 20},
]


def seed(master: httpx.Client, class_name: str, objects: list[dict[str, Any]]) -> list[str]:
    """Create objects in one batch; their ids in order."""
    requests = [{"method": "POST", "path": f"/parse/classes/{class_name}", "body": obj} for obj in objects]
    response = master.post("/batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    return [item["success"]["objectId"] for item in response.json()]


def names(client: httpx.Client, class_name: str, **params: Any) -> list[str]:
    """The names a query finds, in the order it answers (sorted when no order is given)."""
    if "where" in params:
        params["where"] = json.dumps(params["where"])
    response = client.get(f"/classes/{class_name}", params=params)
    assert response.status_code == 200, response.text
    found = [obj.get("name") for obj in response.json()["results"]]
    return found if "order" in params else sorted(found)


@pytest.fixture
def players(master: httpx.Client, class_name: str) -> str:
    seed(master, class_name, PLAYERS)
    return class_name


# --- where ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expected"), [
    ({}, ["ann", "bob", "cat", "dan"]),
    ({"team": "red"}, ["ann", "cat"]),
    ({"score": 20}, ["bob", "dan"]),
    ({"score": {"$lt": 20}}, ["ann"]),
    ({"score": {"$lte": 20}}, ["ann", "bob", "dan"]),
    ({"score": {"$gt": 20}}, ["cat"]),
    ({"score": {"$gte": 20, "$lt": 30}}, ["bob", "dan"]),
    ({"name": {"$eq": "bob"}}, ["bob"]),
    ({"score": {"$in": [10, 30, 99]}}, ["ann", "cat"]),
    ({"score": {"$nin": [10, 30]}}, ["bob", "dan"]),
    ({"active": True}, ["ann"]),
    ({"active": False}, ["bob"]),
    ({"team": {"$exists": True}}, ["ann", "bob", "cat"]),
    ({"team": {"$exists": False}}, ["dan"]),
    ({"team": None}, ["dan"]),
    ({"nosuchfield": {"$exists": False}}, ["ann", "bob", "cat", "dan"]),
    ({"name": {"$regex": "^b"}}, ["bob"]),
    ({"name": {"$regex": "A", "$options": "i"}}, ["ann", "cat", "dan"]),
    ({"name": {"$regex": "^\\Qc\\E"}}, ["cat"]),
    ({"$or": [{"team": "blue"}, {"score": 30}]}, ["bob", "cat"]),
    ({"$and": [{"score": {"$gte": 20}}, {"team": "red"}]}, ["cat"]),
    ({"score": {"$gt": 10}, "$or": [{"team": "red"}, {"name": "dan"}]}, ["cat", "dan"]),
    ({"$or": [{"score": 10}, {"team": {"$exists": False}}]}, ["ann", "dan"]),
    ({"born": {"$lt": {"__type": "Date", "iso": "2050-01-01T00:00:00.000Z"}}}, ["ann"]),
    ({"born": {"__type": "Date", "iso": "2100-01-01T00:00:00.000Z"}}, ["bob"]),
    ({"createdAt": {"$gt": {"__type": "Date", "iso": "2000-01-01T00:00:00.000Z"}}}, ["ann", "bob", "cat", "dan"]),
])
def test_where(api: httpx.Client, players: str, where: dict[str, Any], expected: list[str]) -> None:
    assert names(api, players, where=where) == expected


@pytest.mark.parametrize(("where", "expected"), [
    ({"stats.wins": 5}, ["bob"]),
    ({"stats.wins": {"$gte": 3}}, ["bob", "cat"]),
    ({"stats.rank": "gold"}, ["ann"]),
    ({"stats.wins": {"$ne": 1}}, ["bob", "cat", "dan"]),
])
def test_where_dot_notation(api: httpx.Client, players: str, where: dict[str, Any], expected: list[str]) -> None:
    assert names(api, players, where=where) == expected


@pytest.mark.differs_from_parse_server("dot-notation $exists and $in on numbers are broken there")
def test_where_dot_notation_exists_and_in(api: httpx.Client, players: str) -> None:
    # Parse Server on PostgreSQL answers every object for {"stats.rank": {"$exists": false}}, none
    # for {"$exists": true}, and none for {"stats.wins": {"$in": [1, 3]}} (it compares the JSON text
    # with numbers). Bastion answers what the query means.
    assert names(api, players, where={"stats.rank": {"$exists": False}}) == ["cat", "dan"]
    assert names(api, players, where={"stats.rank": {"$exists": True}}) == ["ann", "bob"]
    assert names(api, players, where={"stats.wins": {"$in": [1, 3]}}) == ["ann", "cat"]


@pytest.mark.parametrize(("where", "expected"), [
    ({"tags": {"$all": ["x", "y"]}}, ["ann"]),
    ({"tags": {"$all": ["y"]}}, ["ann", "bob"]),
    ({"tags": {"$in": ["x"]}}, ["ann"]),
    ({"tags": {"$containedBy": ["x", "y"]}}, ["ann", "bob", "cat"]),
    ({"tags": {"$exists": True}}, ["ann", "bob", "cat"]),
])
def test_where_arrays(api: httpx.Client, players: str, where: dict[str, Any], expected: list[str]) -> None:
    assert names(api, players, where=where) == expected


@pytest.mark.differs_from_parse_server("equality with an array field answers 500 there")
def test_where_array_contains_value(api: httpx.Client, players: str) -> None:
    # {"tags": "y"} (an array holding "y") is MongoDB's meaning; Parse Server on PostgreSQL answers
    # it with 500 ("An internal server error occurred"). Bastion answers what the SDKs mean.
    assert names(api, players, where={"tags": "y"}) == ["ann", "bob"]


@pytest.mark.parametrize(("where", "expected"), [
    ({"team": {"$ne": "red"}}, ["bob", "dan"]),
    ({"score": {"$ne": 20}}, ["ann", "cat"]),
    ({"active": {"$ne": True}}, ["bob", "cat", "dan"]),
])
def test_where_ne_matches_missing_fields(api: httpx.Client, players: str, where: dict[str, Any],
                                         expected: list[str]) -> None:
    # Parse Server on PostgreSQL compiles $ne to ("f" <> v OR "f" IS NULL).
    assert names(api, players, where=where) == expected


def test_where_nor(api: httpx.Client, players: str) -> None:
    # Parse Server on PostgreSQL: NOT (active = true OR active = false) is null, not true, when
    # "active" is missing, so cat and dan do not match.
    assert names(api, players, where={"$nor": [{"active": True}, {"active": False}]}) == []


def test_where_unsupported_operator(api: httpx.Client, players: str) -> None:
    response = api.get(f"/classes/{players}", params={"where": json.dumps({"tags": {"$size": 1}})})
    assert response.status_code == 400
    assert response.json()["code"] == 119


def test_where_errors(api: httpx.Client, players: str) -> None:
    assert_error(api.get(f"/classes/{players}", params={"where": "{nope"}), 400, 107,
                 "where parameter is not valid JSON")
    assert_error(api.get(f"/classes/{players}", params={"where": json.dumps({"$bad": 1})}), 400, 105,
                 "Invalid key name: $bad")
    assert_error(api.get(f"/classes/{players}", params={"bogus": "1"}), 400, 102, "Invalid parameter for query: bogus")
    assert_error(api.get(f"/classes/{players}/abc", params={"limit": "1"}), 400, 102, "Improper encode of parameter")


def test_relative_time(api: httpx.Client, players: str) -> None:
    assert names(api, players, where={"born": {"$lt": {"$relativeTime": "now"}}}) == ["ann"]
    assert names(api, players, where={"born": {"$gt": {"$relativeTime": "in 1 year"}}}) == ["bob"]
    assert names(api, players, where={"born": {"$gt": {"$relativeTime": "30 years ago"}}}) == ["ann", "bob"]
    assert names(api, players, where={"born": {"$gte": {"$relativeTime": "2 weeks 3 days ago"},
                                                "$lte": {"$relativeTime": "in 100 years"}}}) == ["bob"]
    assert names(api, players, where={"createdAt": {"$gt": {"$relativeTime": "1 hour ago"}}}) == [
        "ann", "bob", "cat", "dan"]

    def query(where: dict[str, Any]) -> httpx.Response:
        return api.get(f"/classes/{players}", params={"where": json.dumps(where)})

    assert_error(query({"born": {"$gt": {"$relativeTime": "2 days"}}}), 400, 107,
                 "bad $relativeTime (2 days) value. Time should either start with 'in' or end with 'ago'")
    assert_error(query({"born": {"$eq": {"$relativeTime": "2 days ago"}}}), 400, 107,
                 "$relativeTime can only be used with the $lt, $lte, $gt, and $gte operators")
    assert_error(query({"score": {"$lt": {"$relativeTime": "in 1 day"}}}), 400, 107,
                 "$relativeTime can only be used with Date field")


def test_select_and_dont_select(master: httpx.Client, api: httpx.Client, players: str) -> None:
    picks = players + "P"
    seed(master, picks, [{"who": "ann", "on": True}, {"who": "cat", "on": True}, {"who": "bob", "on": False}])
    select = {"query": {"className": picks, "where": {"on": True}}, "key": "who"}
    assert names(api, players, where={"name": {"$select": select}}) == ["ann", "cat"]
    assert names(api, players, where={"name": {"$dontSelect": select}}) == ["bob", "dan"]
    assert names(api, players, where={"name": {"$select": select}, "score": {"$gt": 10}}) == ["cat"]


def test_in_query_and_not_in_query(master: httpx.Client, api: httpx.Client, players: str) -> None:
    ids = dict(zip([p["name"] for p in PLAYERS], [o["objectId"] for o in master.get(
        f"/classes/{players}", params={"order": "name"}).json()["results"]], strict=True))
    games = players + "G"
    seed(master, games, [
        {"name": "g1", "player": {"__type": "Pointer", "className": players, "objectId": ids["ann"]}},
        {"name": "g2", "player": {"__type": "Pointer", "className": players, "objectId": ids["bob"]}},
        {"name": "g3", "player": {"__type": "Pointer", "className": players, "objectId": ids["cat"]}},
        {"name": "g4"},
    ])
    red = {"className": players, "where": {"team": "red"}}
    assert names(api, games, where={"player": {"$inQuery": red}}) == ["g1", "g3"]
    # As Parse Server on PostgreSQL: objects without the pointer do not match $notInQuery.
    assert names(api, games, where={"player": {"$notInQuery": red}}) == ["g2"]
    pointer = {"__type": "Pointer", "className": players, "objectId": ids["bob"]}
    assert names(api, games, where={"player": pointer}) == ["g2"]
    assert names(api, games, where={"player": {"$in": [pointer]}}) == ["g2"]


# --- order, limit, skip, count --------------------------------------------------------------------


def test_order(api: httpx.Client, players: str) -> None:
    assert names(api, players, order="score,name") == ["ann", "bob", "dan", "cat"]
    assert names(api, players, order="-score,name") == ["cat", "bob", "dan", "ann"]
    assert names(api, players, order="-score,-name") == ["cat", "dan", "bob", "ann"]
    assert names(api, players, order="team,-score") == ["bob", "cat", "ann", "dan"]  # no team sorts last
    assert names(api, players, order="-team,name") == ["dan", "ann", "cat", "bob"]  # and first descending
    assert names(api, players, order="stats.wins") == ["ann", "cat", "bob", "dan"]
    # Ordering by a field the class does not have is ignored.
    assert sorted(names(api, players, order="nosuch")) == ["ann", "bob", "cat", "dan"]


def test_order_by_creation(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    for name in ("first", "second", "third"):  # one at a time: a batch may create them in any order
        create(master, class_name, {"name": name})
        time.sleep(0.002)  # dates have millisecond precision
    assert names(api, class_name, order="createdAt") == ["first", "second", "third"]
    assert names(api, class_name, order="-createdAt") == ["third", "second", "first"]


def test_limit_skip_count(api: httpx.Client, players: str) -> None:
    def query(**params: Any) -> dict[str, Any]:
        response = api.get(f"/classes/{players}", params={"order": "name", **params})
        assert response.status_code == 200, response.text
        return response.json()

    assert [o["name"] for o in query(limit=2)["results"]] == ["ann", "bob"]
    assert [o["name"] for o in query(limit=2, skip=1)["results"]] == ["bob", "cat"]
    assert [o["name"] for o in query(skip=3)["results"]] == ["dan"]
    assert query(skip=10) == {"results": []}
    page = query(limit=1, count=1)
    assert page["count"] == 4 and [o["name"] for o in page["results"]] == ["ann"]
    assert query(limit=0, count=1) == {"results": [], "count": 4}
    assert query(limit=0, count=1, where=json.dumps({"team": "red"})) == {"results": [], "count": 2}
    assert "count" not in query(count=0)
    assert query(skip=10, count=1) == {"results": [], "count": 4}


def test_default_limit_is_100(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    for start in (0, 35, 70):
        seed(master, class_name, [{"i": i} for i in range(start, start + 35)])
    response = api.get(f"/classes/{class_name}", params={"count": 1})
    assert response.json()["count"] == 105
    assert len(response.json()["results"]) == 100
    assert len(api.get(f"/classes/{class_name}", params={"limit": 1000}).json()["results"]) == 105


# --- keys, excludeKeys, include -------------------------------------------------------------------


def test_keys_and_exclude_keys(api: httpx.Client, players: str) -> None:
    ann = api.get(f"/classes/{players}", params={"where": json.dumps({"name": "ann"}), "keys": "name,score"}).json()
    assert set(ann["results"][0]) == {"objectId", "createdAt", "updatedAt", "name", "score"}
    nested = api.get(f"/classes/{players}", params={"where": json.dumps({"name": "ann"}), "keys": "stats.wins"}).json()
    # Parse Server on PostgreSQL answers the whole object of a dotted key.
    assert nested["results"][0]["stats"] == {"wins": 1, "rank": "gold"}
    excluded = api.get(f"/classes/{players}", params={"where": json.dumps({"name": "ann"}),
                                                      "excludeKeys": "tags,stats,born"}).json()
    assert set(excluded["results"][0]) == {"objectId", "createdAt", "updatedAt", "name", "score", "team", "active"}
    one = api.get(f"/classes/{players}/{ann['results'][0]['objectId']}", params={"keys": "team"}).json()
    assert set(one) == {"objectId", "createdAt", "updatedAt", "team"}


def test_relation_fields_ignore_keys(master: httpx.Client, api: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"name": {"type": "String"}, "rel": {"type": "Relation", "targetClass": "_User"}})
    create(master, class_name, {"name": "a"})
    relation = {"__type": "Relation", "className": "_User"}
    # Parse Server answers relation fields whatever keys and excludeKeys say.
    for params in ({"keys": "name"}, {"excludeKeys": "rel"}, {}):
        found = api.get(f"/classes/{class_name}", params=params).json()["results"][0]
        assert found["rel"] == relation, params


@pytest.fixture
def chain(master: httpx.Client, class_name: str) -> dict[str, str]:
    """Three classes: A points to B and C (and holds an array of C and a dangling pointer); B to C."""
    a, b, c = class_name + "A", class_name + "B", class_name + "C"
    c_id = create(master, c, {"label": "leaf", "x": 1})["objectId"]
    c_ptr = {"__type": "Pointer", "className": c, "objectId": c_id}
    b_id = create(master, b, {"title": "mid", "c": c_ptr, "y": 2})["objectId"]
    a_id = create(master, a, {"b": {"__type": "Pointer", "className": b, "objectId": b_id}, "c": c_ptr,
                              "arr": [c_ptr, "plain"], "gone": {"__type": "Pointer", "className": c,
                                                                 "objectId": "missing000"}})["objectId"]
    return {"a": a, "b": b, "c": c, "a_id": a_id, "b_id": b_id, "c_id": c_id}


def _included(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("createdAt", "updatedAt")}


def test_include_nested(api: httpx.Client, chain: dict[str, str]) -> None:
    found = api.get(f"/classes/{chain['a']}", params={"include": "b.c"}).json()["results"][0]
    b = found["b"]
    assert b["__type"] == "Object" and b["className"] == chain["b"] and b["objectId"] == chain["b_id"]
    assert (b["title"], b["y"]) == ("mid", 2)
    assert _included(b["c"]) == {"objectId": chain["c_id"], "label": "leaf", "x": 1, "__type": "Object",
                                 "className": chain["c"]}
    # Not included: stays a pointer.
    assert found["c"] == {"__type": "Pointer", "className": chain["c"], "objectId": chain["c_id"]}
    # An included pointer whose object does not exist disappears.
    found = api.get(f"/classes/{chain['a']}", params={"include": "gone"}).json()["results"][0]
    assert "gone" not in found
    found = api.get(f"/classes/{chain['a']}/{chain['a_id']}", params={"include": "b,arr"}).json()
    assert found["b"]["c"] == {"__type": "Pointer", "className": chain["c"], "objectId": chain["c_id"]}
    assert [_included(found["arr"][0]), found["arr"][1]] == [
        {"objectId": chain["c_id"], "label": "leaf", "x": 1, "__type": "Object", "className": chain["c"]}, "plain"]


def test_include_all(api: httpx.Client, chain: dict[str, str]) -> None:
    found = api.get(f"/classes/{chain['a']}", params={"include": "*"}).json()["results"][0]
    assert found["b"]["__type"] == "Object" and found["b"]["title"] == "mid"
    # One level only: B's own pointer stays a pointer.
    assert found["b"]["c"] == {"__type": "Pointer", "className": chain["c"], "objectId": chain["c_id"]}
    assert found["c"]["__type"] == "Object" and found["c"]["label"] == "leaf"
    # "*" includes the pointers in arrays too, and drops the dangling pointer.
    assert found["arr"][0]["__type"] == "Object" and found["arr"][1] == "plain"
    assert "gone" not in found


def test_include_with_keys(api: httpx.Client, chain: dict[str, str]) -> None:
    found = api.get(f"/classes/{chain['a']}", params={"include": "b", "keys": "b.title"}).json()["results"][0]
    assert set(found) == {"objectId", "createdAt", "updatedAt", "b"}
    assert set(found["b"]) == {"objectId", "createdAt", "updatedAt", "title", "__type", "className"}
    found = api.get(f"/classes/{chain['a']}", params={"include": "b.c", "keys": "b.c.label"}).json()["results"][0]
    assert set(found["b"]) == {"objectId", "createdAt", "updatedAt", "c", "__type", "className"}
    assert set(found["b"]["c"]) == {"objectId", "createdAt", "updatedAt", "label", "__type", "className"}
    found = api.get(f"/classes/{chain['a']}", params={"include": "b", "excludeKeys": "b.y"}).json()["results"][0]
    assert "y" not in found["b"] and found["b"]["title"] == "mid"


# --- the JavaScript SDK's POST with _method ---------------------------------------------------------


def test_sdk_post_as_get_with_text_plain_body(server: Server, players: str) -> None:
    body = {"_method": "GET", "_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key,
            "_ClientVersion": "js5.3.0", "_InstallationId": "4b2c6a4e-0000-0000-0000-000000000000",
            "where": {"score": 20}, "order": "name", "keys": "name", "limit": 10, "count": 1}
    response = httpx.post(f"{server.url}/classes/{players}", content=json.dumps(body),
                          headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["results"]] == ["bob", "dan"]
    assert response.json()["count"] == 2


def test_sdk_body_keys_carry_the_master_key_and_methods(server: Server, master: httpx.Client, class_name: str) -> None:
    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{server.url}{path}", content=json.dumps(body), headers={"Content-Type": "text/plain"})

    keys = {"_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key}
    masterkeys = {"_ApplicationId": server.app_id, "_MasterKey": server.master_key}
    created = post(f"/classes/{class_name}", {**masterkeys, "n": 1})
    assert created.status_code == 201, created.text
    object_id = created.json()["objectId"]
    assert post(f"/schemas/{class_name}", {**masterkeys, "_method": "GET"}).json()["className"] == class_name
    assert post(f"/schemas/{class_name}", {**keys, "_method": "GET"}).status_code == 403
    updated = post(f"/classes/{class_name}/{object_id}", {**keys, "_method": "PUT", "n": {"__op": "Increment", "amount": 1}})
    assert updated.json()["n"] == 2
    got = post(f"/classes/{class_name}/{object_id}", {**keys, "_method": "GET"}).json()
    assert got["n"] == 2 and "_method" not in got
    assert post(f"/classes/{class_name}/{object_id}", {**keys, "_method": "DELETE"}).json() == {}
    assert count(master, class_name) == 0
    wrong = post(f"/classes/{class_name}", {"_ApplicationId": server.app_id, "_JavaScriptKey": "wrong", "_method": "GET"})
    assert wrong.status_code == 403 and wrong.json() == {"error": "unauthorized"}


# --- distinct -------------------------------------------------------------------------------------


def test_distinct(master: httpx.Client, api: httpx.Client, players: str) -> None:
    def distinct(field: str, **params: Any) -> Any:
        response = master.get(f"/aggregate/{players}", params={"distinct": field, **params})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    assert sorted(distinct("team")) == ["blue", "red"]
    assert sorted(distinct("score")) == [10, 20, 30]
    assert sorted(distinct("score", where=json.dumps({"team": "red"}))) == [10, 30]
    # Arrays are unwound; dates come back as ISO strings (Parse Server on PostgreSQL).
    assert sorted(distinct("tags")) == ["x", "y"]
    assert sorted(distinct("born")) == ["2000-01-01T00:00:00.000Z", "2100-01-01T00:00:00.000Z"]
    assert distinct("nosuch") == []
    response = api.get(f"/aggregate/{players}", params={"distinct": "team"})
    assert response.status_code == 403 and response.json() == {"error": "Permission denied"}


def test_distinct_pointers(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name + "T")
    pointer = {"__type": "Pointer", "className": class_name + "T", "objectId": "aaaaaaaaaa"}
    seed(master, class_name, [{"p": pointer}, {"p": pointer}, {"n": 1}])
    response = master.get(f"/aggregate/{class_name}", params={"distinct": "p"})
    assert response.json() == {"results": [pointer]}


def test_all_with_starts_with_expressions(master: httpx.Client, class_name: str) -> None:
    # The SDKs' containsAllStartingWith: $all of ^\Q…\E expressions; every prefix must start some
    # string element (Parse Server on PostgreSQL: array_contains_all_regex).
    for tags in (["apple", "banana"], ["apricot"], ["banana", "avocado"], [1, "b"], ["a.b", "x"]):
        create(master, class_name, {"tags": tags})

    def found(where: dict[str, Any]) -> list[list[Any]]:
        response = master.get(f"/classes/{class_name}", params={"where": json.dumps(where), "order": "createdAt"})
        assert response.status_code == 200, response.text
        return [o["tags"] for o in response.json()["results"]]

    assert found({"tags": {"$all": [{"$regex": "^\\Qap\\E"}, {"$regex": "^\\Qba\\E"}]}}) == [["apple", "banana"]]
    assert found({"tags": {"$all": [{"$regex": "^\\Qa\\E"}]}}) == [
        ["apple", "banana"], ["apricot"], ["banana", "avocado"], ["a.b", "x"]]
    assert found({"tags": {"$all": [{"$regex": "^\\Qa.\\E"}]}}) == [["a.b", "x"]]  # literal, not a wildcard
    assert_error(master.get(f"/classes/{class_name}", params={"where": json.dumps(
        {"tags": {"$all": [{"$regex": "^\\Qa\\E"}, "x"]}})}), 400, 107,
        "All $all values must be of regex type or none: [object Object],x")
