"""The server-side data API (cloud.Object, cloud.Query, cloud.User, cloud.Role) through the wire.

The functions in tests/cloud_app/data_api.py use the data API and answer what they saw; these tests
call them with POST /functions/... on both backends. Writes and reads go through the server's own
pipelines, so access control and CloudScore's triggers (tests/cloud_app/triggers.py) apply.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error, fetch

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="runs Bastion's Python cloud code (tests/cloud_app)")


def cls() -> str:
    return "CloudData" + secrets.token_hex(4)


def run(client: httpx.Client, name: str, **params: Any) -> Any:
    response = client.post(f"/functions/{name}", json=params)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "error": message, "isCloudError": True}


def test_create_update_fetch_destroy(api: httpx.Client) -> None:
    result = run(api, "dataCrud", cls=cls())
    created = result["created"]
    assert len(created["id"]) == 10 and created["hasCreatedAt"] and created["updatedIsCreated"]
    assert created["dirty"] is False
    # Increment and AddUnique go to the server as operations; their results come back merged.
    assert result["updated"] == {"score": 5, "tags": ["a", "b"], "name": "second"}
    assert result["fetched"] == {"score": 5, "name": "second", "when": "2024-05-06T07:08:09.123000+00:00",
                                 "whenIsDatetime": True}
    assert result["unset"] is None
    assert result["gone"] == error(101, "Object not found.")


def test_data_api_writes_are_ordinary_objects(api: httpx.Client, master: httpx.Client) -> None:
    name = cls()
    run(api, "dataEach", cls=name, total=7)  # saves 7 objects, then destroys the first 5
    found = master.get(f"/classes/{name}", params={"order": "i"}).json()["results"]
    assert [obj["name"] for obj in found] == ["o005", "o006"]
    assert fetch(master, name, found[0]["objectId"])["i"] == 5


def test_acl_is_enforced_without_the_master_key(api: httpx.Client) -> None:
    result = run(api, "dataAcl", cls=cls())
    assert result["publicSees"] == ["public"]
    assert result["masterSees"] == ["private", "public"]
    for key in ("publicGet", "publicFetch", "publicUpdate", "publicUpdateReadOnly", "publicDelete"):
        assert result[key] == error(101, "Object not found."), key
    assert result["masterUpdate"] is None
    assert (result["publicCount"], result["masterCount"]) == (1, 2)
    assert result["aclOnObject"] == {}


def test_acting_as_the_caller_with_the_session_token(api: httpx.Client, master: httpx.Client,
                                                     as_user: Any) -> None:
    name = cls()
    master.post(f"/schemas/{name}", json={"className": name})
    user = api.post("/users", json={"username": "dataapi" + secrets.token_hex(4), "password": "pw"}).json()
    result = run(as_user(user["sessionToken"]), "dataAsCaller", cls=name)
    assert result["user"] == user["objectId"]
    assert result["asCaller"] == ["mine"] and result["asPublic"] == []
    assert result["fetchAsCaller"] == "mine"
    assert result["updateAsCaller"] is None
    assert result["badToken"] == error(209, "Invalid session token")
    # What the function wrote carries the user's ACL, as a write of the user's own would.
    stored = master.get(f"/classes/{name}").json()["results"]
    assert stored[0]["ACL"] == {user["objectId"]: {"read": True, "write": True}}


def test_triggers_run_for_data_api_writes_and_queries(api: httpx.Client, master: httpx.Client) -> None:
    master.post("/schemas/CloudScore", json={"className": "CloudScore"})
    marker = secrets.token_hex(4)
    result = run(api, "dataTriggers", marker=marker)
    assert result["created"] == {"name": "SHOUT", "checked": True, "existed": False, "sawMaster": False,
                                 "contextTag": "from-data-api", "dropMe": None, "hasDropMe": False}
    assert result["updated"] == {"sawOriginal": 2, "existed": True, "sawMaster": True}
    assert result["refused"] == error(142, "score must be >= 0")
    # before_find hid the hidden score; after_find decorated the others.
    assert result["foundCount"] == 2 and result["decorated"] is True
    assert result["protectedDelete"] == error(119, "this score is protected")
    stored = master.get("/classes/CloudScore", params={"where": json.dumps({"marker": marker})}).json()["results"]
    # The refused score was not stored; the REST query sees the same two (before_find hides the third).
    assert len(stored) == 2 and all(obj["decorated"] for obj in stored)


def test_every_query_operator(api: httpx.Client) -> None:
    r = run(api, "dataOperators", cls=cls())
    expected = {
        "equal_to": ["b"], "equal_to_dict": ["b"], "equal_to_date": ["b"], "equal_to_pointer": ["a", "c"],
        "equal_to_array_item": ["a", "b"], "not_equal_to": ["a", "c", "d"], "less_than": ["a"],
        "less_than_or_equal_to": ["a", "b"], "greater_than": ["d"], "greater_than_or_equal_to": ["c", "d"],
        "range": ["b", "c"], "date_range": ["b", "c"], "contained_in": ["a", "c"], "not_contained_in": ["b", "d"],
        "contained_in_pointers": ["b"], "contains_all": ["a"], "contained_by": ["a", "b", "d"],
        "exists": ["d"], "does_not_exist": ["d"],
        "matches": ["a"], "matches_i": ["a", "b"], "matches_pattern": ["a", "b"], "starts_with": ["b"],
        "ends_with": ["a"], "contains": ["c"], "contains_literal_dot": ["c"],
        "full_text": ["a", "c"], "full_text_options": ["b"],
        "near": ["c", "b", "a"], "within_kilometers": ["a", "b"], "within_miles": ["a", "b"],
        "within_radians": ["a", "b"], "within_geo_box": ["a", "b"], "within_polygon": ["a", "b"],
        "polygon_contains": ["b"],
        "matches_query": ["a", "c"], "does_not_match_query": ["b"], "matches_key_in_query": ["b"],
        "does_not_match_key_in_query": ["c", "d"],
        "or": ["a", "d"], "and": ["b", "c"], "nor": ["b", "c"],
        "ascending": ["a", "b", "c", "d"], "descending": ["d", "c", "b", "a"], "add_descending": [2, 1, 4, 3],
        "limit_skip": ["b", "c"],
        "select": ["createdAt", "n", "objectId", "updatedAt"],
        "exclude": ["area", "at", "createdAt", "grp", "loc", "n", "name", "objectId", "owner", "text", "updatedAt"],
        "or_mixed_classes": "All queries must be for the same class.",
        "full_text_diacritics": {"code": 107, "error": "bad $text: $diacriticSensitive - false not supported, "
                                                       "install Postgres Unaccent Extension"},
        "contains_all_starting_with": ["c"],  # ["xylophone", "zebra"]: an element for each prefix
    }
    assert {key: r.get(key) for key in expected} == expected
    assert set(r) == set(expected)


def test_include_count_first_get_distinct_aggregate(api: httpx.Client) -> None:
    r = run(api, "dataReads", cls=cls())
    assert r["includedClass"] == "Object" and r["includedName"] == "ann"
    assert r["notIncludedName"] is None and len(r["notIncludedId"]) == 10  # a pointer only
    assert r["fetchIncluded"] == "ann"
    assert r["fetchAll"] == ["a", "d"]
    assert (r["count"], r["countWhere"]) == (4, 2)
    assert r["first"] == "a" and r["firstNone"] is None
    assert r["get"] == "b"
    assert r["getMissing"] == error(101, "Object not found.")
    assert r["getOutsideQuery"] == error(101, "Object not found.")  # get keeps the query's constraints
    assert r["distinct"] == [1, 2, 3, 4] and r["distinctWhere"] == [3, 4]
    assert r["aggregate"] == [{"objectId": None, "total": 9}]
    assert r["aggregatePublic"] == error(119, "Permission denied")


def test_each_walks_every_batch(api: httpx.Client) -> None:
    r = run(api, "dataEach", cls=cls(), total=25)
    assert r["seen"] == list(range(25)) and r["seenCount"] == 25
    assert r["batches"] == [10, 10, 5]
    assert r["iterated"] == list(range(5, 25))
    assert r["public"] == 25 and r["findAll"] == 25
    assert r["sortedRefused"] == error(102, "Cannot iterate on a query with sort, skip, or limit.")
    assert r["afterDestroyAll"] == 20


def test_users_and_roles(api: httpx.Client, master: httpx.Client) -> None:
    name = cls()
    master.post(f"/schemas/{name}", json={"className": name})
    username = "dataapi" + secrets.token_hex(4)
    r = run(api, "dataUsersRoles", cls=name, username=username)
    assert r["userClass"] == "User" and r["hasToken"] and r["noPassword"]
    assert r["loggedInId"] == r["userId"] == r["becomeId"]
    assert r["loggedInEmail"] == f"{username}@example.com"
    assert r["badLogin"] == error(101, "Invalid username/password.")
    assert r["duplicate"] == error(202, "Account already exists for this username.")
    assert r["roleClass"] == "Role" and r["roleName"] == name + "Members"
    assert r["members"] == [r["userId"]]
    # A role's members read what the role may, and so does a role that inherits it.
    assert r["seenByUser"] == ["for-members", "for-parent"]
    assert r["seenByPublic"] == []
    assert r["afterRemoval"] == []
    assert r["badRole"] == error(-1, "A role's name can be only contain alphanumeric characters, _, -, and spaces.")
    assert r["renamed"] == error(-1, "A role's name can only be set before it has been saved.")
    assert r["level"] == 4
    assert r["otherUpdate"] == error(206, "Permission denied")
    assert r["loggedOutBecome"] == error(209, "Permission denied")
    # The user logs in over REST with the password the data API signed them up with.
    login = api.post("/login", json={"username": username, "password": "pw-" + username})
    assert login.status_code == 200, login.text
    roles = master.get("/roles", params={"where": json.dumps({"name": name + "Members"})}).json()["results"]
    assert roles[0]["ACL"] == {"*": {"read": True}}


def test_a_session_opened_with_the_callers_token(api: httpx.Client, as_user: Any) -> None:
    """cloud.Session(...).save(session_token=...) opens a session as POST /sessions with that token
    does: the server sets its user, token and expiry; the session is the caller's own."""
    user, other = (api.post("/users", json={"username": "dataapi" + secrets.token_hex(4), "password": "pw"}).json()
                   for _ in range(2))
    caller = as_user(user["sessionToken"])
    r = run(caller, "dataSessions", other=other["objectId"])
    opened = r["opened"]
    assert opened["user"] == user["objectId"] and opened["hasId"] and opened["expires"]
    assert opened["token"].startswith("r:") and opened["token"] not in ("r:chosen", user["sessionToken"])
    assert opened["createdWith"] == {"action": "create"} and opened["note"] == "from cloud code"
    assert r["fetchedNote"] == "from cloud code"
    assert r["changed"] is None
    assert r["serverField"] == error(105, "Invalid key name: expiresAt")
    assert r["withAcl"] == error(105, "Cannot set ACL on a Session.")
    assert r["public"] == error(209, "Session token required.")
    assert r["publicDestroy"] == error(209, "Permission denied")
    # Over REST, the new token acts as the user, and its session carries the change.
    opened_client = as_user(opened["token"])
    assert opened_client.get("/users/me").json()["objectId"] == user["objectId"]
    me = opened_client.get("/sessions/me").json()
    assert me["objectId"] == r["sessionId"] and me["note"] == "changed"
    # Another user cannot close it; its user can.
    closed_by_other = run(as_user(other["sessionToken"]), "dataSessionClose", id=r["sessionId"])
    assert closed_by_other == {"closed": error(101, "Object not found.")}
    assert run(caller, "dataSessionClose", id=r["sessionId"]) == {"closed": None}
    assert_error(opened_client.get("/users/me"), 400, 209)


def test_relations(api: httpx.Client) -> None:
    name = cls()
    r = run(api, "dataRelations", cls=name)
    assert r["first"] == ["x", "y", "z"]
    assert r["batchOp"] == "Batch"  # an add and a remove pending together
    assert r["second"] == ["x", "z"] and r["related"] == ["x", "z"]
    assert r["inRelation"] == ["parent"]
    assert r["relationValue"] == {"__type": "Relation", "className": name + "Item"}


def test_errors_are_cloud_errors(api: httpx.Client) -> None:
    name = cls()
    r = run(api, "dataErrors", cls=name)
    assert r["missingClassPublic"] == error(119, "Permission denied")
    assert r["badQuery"] == error(102, "Invalid regular expression")
    assert r["wrongType"] == error(111, f"schema mismatch for {name}.name; expected String but got Number")
    assert r["updateMissing"] == error(101, "Object not found.")
    assert r["fetchUnsaved"] == error(104, "Object does not have an ID")
    assert r["fetchAllMissing"] == error(101, "All objects must exist on the server.")


def test_an_uncaught_data_api_error_reaches_the_client(api: httpx.Client, master: httpx.Client) -> None:
    name = cls()
    master.post(f"/schemas/{name}", json={"className": name})
    assert_error(api.post("/functions/dataUnhandled", json={"cls": name}), 404, 101, "Object not found.")
