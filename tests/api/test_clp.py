"""Class-level permissions and protected fields on every path, as Parse Server 9 enforces them.

Parse Server 9 sanitizes these refusals: 119 "Permission denied" (status 400) for an operation the
CLP does not open, 101 "Permission denied" (404) for ``requiresAuthentication`` without a user, and
101 "Object not found." where pointer permissions leave no object a get, update or delete could
touch. Counts under pointer permissions without a user answer ``[]`` (sic).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, create, fetch
from tests.conftest import Server

DENIED = "Permission denied"
NOT_FOUND = "Object not found."
ALL_OPS = ("find", "count", "get", "create", "update", "delete", "addField")


def clp(**ops: Any) -> dict[str, Any]:
    """A CLP: every operation closed ({}) unless given."""
    out: dict[str, Any] = {op: {} for op in ALL_OPS}
    out.update(ops)
    return out


def open_clp(**ops: Any) -> dict[str, Any]:
    """A CLP: every operation open to everyone unless given."""
    out: dict[str, Any] = {op: {"*": True} for op in ALL_OPS}
    out.update(ops)
    return out


def make(master: httpx.Client, name: str, fields: dict[str, Any], perms: dict[str, Any]) -> None:
    response = master.post(f"/schemas/{name}", json={"className": name, "fields": fields,
                                                      "classLevelPermissions": perms})
    assert response.status_code == 200, response.text


def set_clp(master: httpx.Client, name: str, perms: dict[str, Any]) -> None:
    response = master.put(f"/schemas/{name}", json={"classLevelPermissions": perms})
    assert response.status_code == 200, response.text


def ptr(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def find(client: httpx.Client, class_name: str, where: Any = None, **params: Any) -> httpx.Response:
    if where is not None:
        params["where"] = json.dumps(where)
    return client.get(f"/classes/{class_name}", params=params)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(obj["objectId"] for obj in response.json()["results"])


class User:
    def __init__(self, server: Server, username: str, body: dict[str, Any]) -> None:
        self.username = username
        self.id: str = body["objectId"]
        self.token: str = body["sessionToken"]
        self.client = server.client()
        self.client.headers["X-Parse-Session-Token"] = self.token

    @property
    def pointer(self) -> dict[str, str]:
        return ptr("_User", self.id)


@pytest.fixture
def users(server: Server, api: httpx.Client) -> Iterator[Any]:
    """Signs users up (readable by everyone, so that only CLPs decide); clients acting as them."""
    made: list[User] = []

    def sign_up(**extra: Any) -> User:
        name = "clp_" + secrets.token_hex(4)
        body = {"username": name, "password": "pw", "email": f"{name}@example.com",
                "ACL": {"*": {"read": True}}, **extra}
        response = api.post("/users", json=body)
        assert response.status_code == 201, response.text
        user = User(server, name, response.json())
        made.append(user)
        return user

    yield sign_up
    for user in made:
        user.client.close()


def add_role(master: httpx.Client, name: str, *members: User) -> None:
    response = master.post("/classes/_Role", json={
        "name": name, "ACL": {"*": {"read": True}},
        "users": {"__op": "AddRelation", "objects": [m.pointer for m in members]}})
    assert response.status_code == 201, response.text


# --- operations closed and opened ------------------------------------------------------------------


def test_closed_class_refuses_every_operation_but_the_master_key(api: httpx.Client, master: httpx.Client,
                                                                 class_name: str) -> None:
    make(master, class_name, {"n": {"type": "Number"}}, clp())
    obj = create(master, class_name, {"n": 1})["objectId"]
    for response in (find(api, class_name), find(api, class_name, count=1, limit=0),
                     api.get(f"/classes/{class_name}/{obj}"),
                     api.post(f"/classes/{class_name}", json={"n": 2}),
                     api.put(f"/classes/{class_name}/{obj}", json={"n": 3}),
                     api.delete(f"/classes/{class_name}/{obj}")):
        assert_error(response, 400, 119, DENIED)
    assert ids(find(master, class_name)) == [obj]
    assert fetch(master, class_name, obj)["n"] == 1
    assert master.put(f"/classes/{class_name}/{obj}", json={"n": 4}).status_code == 200
    assert master.delete(f"/classes/{class_name}/{obj}").status_code == 200


def test_operations_for_a_user_and_a_role(api: httpx.Client, master: httpx.Client, users: Any,
                                          class_name: str) -> None:
    alice, bob, carol = users(), users(), users()
    role = "clpRole" + secrets.token_hex(3)
    add_role(master, role, carol)
    make(master, class_name, {"n": {"type": "Number"}},
         clp(find={alice.id: True, f"role:{role}": True}, get={alice.id: True},
             create={alice.id: True}, update={f"role:{role}": True}, delete={alice.id: True}))
    obj = create(alice.client, class_name, {"n": 1})["objectId"]
    assert_error(bob.client.post(f"/classes/{class_name}", json={"n": 1}), 400, 119, DENIED)
    assert_error(api.post(f"/classes/{class_name}", json={"n": 1}), 400, 119, DENIED)
    assert ids(find(alice.client, class_name)) == [obj]
    assert ids(find(carol.client, class_name)) == [obj]
    assert_error(find(bob.client, class_name), 400, 119, DENIED)
    assert_error(find(api, class_name), 400, 119, DENIED)
    assert fetch(alice.client, class_name, obj)["n"] == 1
    assert_error(carol.client.get(f"/classes/{class_name}/{obj}"), 400, 119, DENIED)
    assert carol.client.put(f"/classes/{class_name}/{obj}", json={"n": 2}).status_code == 200
    assert_error(alice.client.put(f"/classes/{class_name}/{obj}", json={"n": 3}), 400, 119, DENIED)
    assert_error(carol.client.delete(f"/classes/{class_name}/{obj}"), 400, 119, DENIED)
    assert alice.client.delete(f"/classes/{class_name}/{obj}").status_code == 200


def test_requires_authentication(api: httpx.Client, master: httpx.Client, users: Any, class_name: str) -> None:
    alice = users()
    auth = {"requiresAuthentication": True}
    make(master, class_name, {"x": {"type": "String"}},
         clp(find=auth, count=auth, get=auth, create=auth, update=auth, delete=auth))
    obj = create(master, class_name, {"x": "a"})["objectId"]
    for response in (find(api, class_name), find(api, class_name, count=1, limit=0),
                     api.get(f"/classes/{class_name}/{obj}"),
                     api.post(f"/classes/{class_name}", json={"x": "b"}),
                     api.put(f"/classes/{class_name}/{obj}", json={"x": "c"}),
                     api.delete(f"/classes/{class_name}/{obj}")):
        assert_error(response, 404, 101, DENIED)
    assert ids(find(alice.client, class_name)) == [obj]
    assert find(alice.client, class_name, count=1, limit=0).json() == {"results": [], "count": 1}
    assert alice.client.post(f"/classes/{class_name}", json={"x": "b"}).status_code == 201
    # addField stays closed: a new field is refused even to an authenticated user.
    assert_error(alice.client.post(f"/classes/{class_name}", json={"y": "b"}), 400, 119, DENIED)
    assert alice.client.put(f"/classes/{class_name}/{obj}", json={"x": "c"}).status_code == 200
    assert alice.client.delete(f"/classes/{class_name}/{obj}").status_code == 200


def test_count_get_and_find_are_separate(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    make(master, class_name, {"n": {"type": "Number"}}, open_clp(count={}, find={}))
    obj = create(master, class_name, {"n": 1})["objectId"]
    assert fetch(api, class_name, obj)["n"] == 1
    # A where holding nothing but one objectId is a get, as Parse Server reads it.
    assert ids(find(api, class_name, {"objectId": obj})) == [obj]
    assert_error(find(api, class_name, {"objectId": obj, "n": 1}), 400, 119, DENIED)
    assert_error(find(api, class_name), 400, 119, DENIED)
    assert_error(find(api, class_name, count=1, limit=0), 400, 119, DENIED)
    set_clp(master, class_name, open_clp(find={}))
    assert find(api, class_name, count=1, limit=0).json() == {"results": [], "count": 1}
    assert_error(find(api, class_name, count=1), 400, 119, DENIED)
    set_clp(master, class_name, open_clp(count={}))
    assert ids(find(api, class_name)) == [obj]
    assert_error(find(api, class_name, count=1), 400, 119, DENIED)


def test_add_field(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    make(master, class_name, {"n": {"type": "Number"}}, open_clp(addField={}))
    obj = create(api, class_name, {"n": 1})["objectId"]
    assert_error(api.post(f"/classes/{class_name}", json={"n": 1, "extra": "x"}), 400, 119, DENIED)
    assert_error(api.put(f"/classes/{class_name}/{obj}", json={"extra": "x"}), 400, 119, DENIED)
    assert api.put(f"/classes/{class_name}/{obj}", json={"n": 2}).status_code == 200
    assert "extra" not in master.get(f"/schemas/{class_name}").json()["fields"]
    assert master.put(f"/classes/{class_name}/{obj}", json={"extra": "x"}).status_code == 200


def test_a_new_class_with_only_addfield_closed_still_takes_its_fields_from_the_master_key(
        master: httpx.Client, class_name: str) -> None:
    make(master, class_name, {}, open_clp(addField={}))
    create(master, class_name, {"a": 1, "b": "x"})
    assert {"a", "b"} <= set(master.get(f"/schemas/{class_name}").json()["fields"])


# --- pointer permissions -----------------------------------------------------------------------------


@pytest.fixture
def owned(master: httpx.Client, users: Any, class_name: str) -> dict[str, Any]:
    """A class readable and writable through its ``owner`` field only (readUserFields and
    writeUserFields), with one object owned by alice and one by bob."""
    alice, bob = users(), users()
    make(master, class_name, {"owner": {"type": "Pointer", "targetClass": "_User"}, "n": {"type": "Number"}},
         clp(create={"*": True}, readUserFields=["owner"], writeUserFields=["owner"]))
    a = create(master, class_name, {"owner": alice.pointer, "n": 1})["objectId"]
    b = create(master, class_name, {"owner": bob.pointer, "n": 2})["objectId"]
    return {"alice": alice, "bob": bob, "a": a, "b": b, "class": class_name}


def test_read_user_fields(api: httpx.Client, owned: dict[str, Any]) -> None:
    alice, bob, cls = owned["alice"], owned["bob"], owned["class"]
    assert ids(find(alice.client, cls)) == [owned["a"]]
    assert ids(find(bob.client, cls)) == [owned["b"]]
    assert ids(find(alice.client, cls, {"n": {"$gte": 0}})) == [owned["a"]]
    assert fetch(alice.client, cls, owned["a"])["n"] == 1
    assert_error(alice.client.get(f"/classes/{cls}/{owned['b']}"), 404, 101, NOT_FOUND)
    assert find(alice.client, cls, count=1, limit=0).json() == {"results": [], "count": 1}
    # Without a user nothing can match: no results, a get not found, and a count of [] (sic).
    assert find(api, cls).json() == {"results": []}
    assert find(api, cls, count=1, limit=0).json() == {"results": [], "count": []}
    assert_error(api.get(f"/classes/{cls}/{owned['a']}"), 404, 101, NOT_FOUND)


def test_write_user_fields(api: httpx.Client, master: httpx.Client, owned: dict[str, Any]) -> None:
    alice, cls = owned["alice"], owned["class"]
    for client in (api, alice.client):
        assert_error(client.put(f"/classes/{cls}/{owned['b']}", json={"n": 9}), 404, 101, NOT_FOUND)
        assert_error(client.delete(f"/classes/{cls}/{owned['b']}"), 404, 101, NOT_FOUND)
    assert fetch(master, cls, owned["b"])["n"] == 2
    assert alice.client.put(f"/classes/{cls}/{owned['a']}", json={"n": 5}).status_code == 200
    # writeUserFields open addField too (to create and update alike; pointerFields of addField
    # only to updates).
    assert alice.client.put(f"/classes/{cls}/{owned['a']}", json={"added": "x"}).status_code == 200
    fresh = create(alice.client, cls, {"fresh": 1})["objectId"]
    assert alice.client.delete(f"/classes/{cls}/{owned['a']}").status_code == 200
    assert ids(find(master, cls)) == sorted([owned["b"], fresh])


def test_pointer_fields_per_operation_and_arrays(api: httpx.Client, master: httpx.Client, users: Any,
                                                 class_name: str) -> None:
    alice, bob, carol = users(), users(), users()
    make(master, class_name, {"editors": {"type": "Array"}, "owner": {"type": "Pointer", "targetClass": "_User"}},
         open_clp(get={"pointerFields": ["editors", "owner"]}, find={}, update={"pointerFields": ["editors"]}))
    obj = create(master, class_name, {"editors": [alice.pointer, bob.pointer], "owner": carol.pointer})["objectId"]
    for user in (alice, bob, carol):
        assert fetch(user.client, class_name, obj)["objectId"] == obj
    other = users()
    assert_error(other.client.get(f"/classes/{class_name}/{obj}"), 404, 101, NOT_FOUND)
    assert_error(find(alice.client, class_name), 400, 119, DENIED)
    assert alice.client.put(f"/classes/{class_name}/{obj}", json={"x": 1}).status_code == 200
    assert_error(carol.client.put(f"/classes/{class_name}/{obj}", json={"x": 2}), 404, 101, NOT_FOUND)
    assert_error(api.put(f"/classes/{class_name}/{obj}", json={"x": 3}), 404, 101, NOT_FOUND)


def test_pointer_permissions_in_a_batch(api: httpx.Client, owned: dict[str, Any]) -> None:
    alice, cls = owned["alice"], owned["class"]
    base = alice.client.base_url.path.rstrip("/")
    response = alice.client.post("/batch", json={"requests": [
        {"method": "PUT", "path": f"{base}/classes/{cls}/{owned['a']}", "body": {"n": 7}},
        {"method": "PUT", "path": f"{base}/classes/{cls}/{owned['b']}", "body": {"n": 7}},
        {"method": "DELETE", "path": f"{base}/classes/{cls}/{owned['b']}"},
    ]})
    assert response.status_code == 200, response.text
    first, second, third = response.json()
    assert "updatedAt" in first["success"]
    assert second == {"error": {"code": 101, "error": NOT_FOUND}}
    assert third == {"error": {"code": 101, "error": NOT_FOUND}}


def test_batch_refusals(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    make(master, class_name, {"n": {"type": "Number"}}, open_clp(create={}))
    base = api.base_url.path.rstrip("/")
    response = api.post("/batch", json={"requests": [
        {"method": "POST", "path": f"{base}/classes/{class_name}", "body": {"n": 1}},
    ]})
    assert response.status_code == 200, response.text
    assert response.json() == [{"error": {"code": 119, "error": DENIED}}]


# --- include and subqueries ----------------------------------------------------------------------------


def test_include_obeys_the_target_class(api: httpx.Client, master: httpx.Client, owned: dict[str, Any]) -> None:
    alice, bob, cls = owned["alice"], owned["bob"], owned["class"]
    holder = "H" + secrets.token_hex(5)
    make(master, holder, {"item": {"type": "Pointer", "targetClass": cls}}, open_clp())
    h = create(master, holder, {"item": ptr(cls, owned["a"])})["objectId"]
    mine = find(alice.client, holder, include="item").json()["results"]
    assert mine[0]["item"]["n"] == 1 and mine[0]["item"]["__type"] == "Object"
    # Someone the pointer permission does not name: the pointer disappears.
    assert "item" not in find(bob.client, holder, include="item").json()["results"][0]
    # No user at all: Parse Server's get of the included object fails the whole query.
    assert_error(find(api, holder, include="item"), 404, 101, NOT_FOUND)
    assert_error(api.get(f"/classes/{holder}/{h}", params={"include": "item"}), 404, 101, NOT_FOUND)
    # A target class closed to get refuses the query.
    set_clp(master, cls, open_clp(get={}))
    assert_error(find(alice.client, holder, include="item"), 400, 119, DENIED)
    assert find(alice.client, holder).json()["results"][0]["item"] == ptr(cls, owned["a"])


def test_subqueries_obey_their_class(api: httpx.Client, master: httpx.Client, owned: dict[str, Any]) -> None:
    alice, bob, cls = owned["alice"], owned["bob"], owned["class"]
    holder = "H" + secrets.token_hex(5)
    make(master, holder, {"item": {"type": "Pointer", "targetClass": cls}, "n": {"type": "Number"}}, open_clp())
    ha = create(master, holder, {"item": ptr(cls, owned["a"]), "n": 1})["objectId"]
    create(master, holder, {"item": ptr(cls, owned["b"]), "n": 2})
    in_query = {"item": {"$inQuery": {"className": cls, "where": {}}}}
    assert ids(find(alice.client, holder, in_query)) == [ha]
    assert ids(find(api, holder, in_query)) == []
    select = {"n": {"$select": {"query": {"className": cls, "where": {}}, "key": "n"}}}
    assert ids(find(alice.client, holder, select)) == [ha]
    assert ids(find(api, holder, {"$or": [in_query, {"n": 5}]})) == []
    set_clp(master, cls, open_clp(find={}))
    assert_error(find(bob.client, holder, in_query), 400, 119, DENIED)
    assert_error(find(bob.client, holder, {"item": {"$notInQuery": {"className": cls, "where": {}}}}),
                 400, 119, DENIED)
    assert_error(find(bob.client, holder, select), 400, 119, DENIED)


# --- protected fields ---------------------------------------------------------------------------------


@pytest.fixture
def secrets_class(master: httpx.Client, users: Any, class_name: str) -> dict[str, Any]:
    alice, bob, carol = users(), users(), users()
    role = "clpMods" + secrets.token_hex(3)
    add_role(master, role, carol)
    make(master, class_name, {"a": {"type": "String"}, "b": {"type": "String"}, "c": {"type": "String"},
                              "owner": {"type": "Pointer", "targetClass": "_User"}},
         open_clp(protectedFields={"*": ["a", "b", "c"], "authenticated": ["a", "b"], f"role:{role}": ["a"],
                                   bob.id: ["b", "c"], "userField:owner": []}))
    obj = create(master, class_name, {"a": "A", "b": "B", "c": "C", "owner": alice.pointer})["objectId"]
    return {"alice": alice, "bob": bob, "carol": carol, "obj": obj, "class": class_name}


def visible(client: httpx.Client, class_name: str, object_id: str, **params: Any) -> set[str]:
    return set(fetch(client, class_name, object_id, **params)) & {"a", "b", "c"}


def test_protected_fields_intersect(api: httpx.Client, master: httpx.Client, users: Any,
                                    secrets_class: dict[str, Any]) -> None:
    s = secrets_class
    cls, obj = s["class"], s["obj"]
    assert visible(api, cls, obj) == set()
    assert visible(users().client, cls, obj) == {"c"}           # * ∩ authenticated
    assert visible(s["carol"].client, cls, obj) == {"b", "c"}   # ∩ role
    assert visible(s["bob"].client, cls, obj) == {"a", "c"}     # ∩ his id: only b is hidden from all sets
    assert visible(s["alice"].client, cls, obj) == {"a", "b", "c"}  # userField:owner hides nothing
    assert visible(master, cls, obj) == {"a", "b", "c"}
    assert set(find(api, cls).json()["results"][0]) & {"a", "b", "c"} == set()
    assert set(find(api, cls, keys="a,c").json()["results"][0]) & {"a", "b", "c"} == set()


def test_userfield_rule_applies_when_keys_leave_the_field_out(secrets_class: dict[str, Any]) -> None:
    s = secrets_class
    results = find(s["alice"].client, s["class"], keys="a").json()["results"]
    assert results[0]["a"] == "A" and "owner" not in results[0]


def test_querying_or_sorting_by_a_protected_field_is_refused(api: httpx.Client, master: httpx.Client,
                                                             secrets_class: dict[str, Any]) -> None:
    s = secrets_class
    cls = s["class"]
    for where in ({"a": "A"}, {"a": {"$exists": True}}, {"a.x": 1}, {"$or": [{"c": "C"}, {"owner": None}]},
                  {"$and": [{"$or": [{"b": "B"}]}]}, {"$nor": [{"b": "x"}]}):
        assert_error(find(api, cls, where), 400, 119, DENIED)
    assert_error(find(api, cls, order="-b"), 400, 119, DENIED)
    assert_error(find(api, cls, order="createdAt,c"), 400, 119, DENIED)
    # Not refused where the field is visible to the caller, or for the master key.
    assert ids(find(s["bob"].client, cls, {"a": "A"})) == [s["obj"]]
    assert_error(find(s["bob"].client, cls, {"b": "B"}), 400, 119, DENIED)
    assert ids(find(master, cls, {"b": "B"}, order="c")) == [s["obj"]]


def test_protected_field_in_a_subquery_is_refused(api: httpx.Client, master: httpx.Client,
                                                  secrets_class: dict[str, Any]) -> None:
    cls = secrets_class["class"]
    holder = "H" + secrets.token_hex(5)
    make(master, holder, {"item": {"type": "Pointer", "targetClass": cls}}, open_clp())
    create(master, holder, {"item": ptr(cls, secrets_class["obj"])})
    for where in ({"item": {"$inQuery": {"className": cls, "where": {"a": "A"}}}},
                  {"item": {"$notInQuery": {"className": cls, "where": {"$or": [{"b": "B"}]}}}},
                  {"objectId": {"$dontSelect": {"query": {"className": cls, "where": {"c": "C"}}, "key": "objectId"}}}):
        assert_error(find(api, holder, where), 400, 119, DENIED)
    assert len(ids(find(master, holder, {"item": {"$inQuery": {"className": cls, "where": {"a": "A"}}}}))) == 1


@pytest.mark.differs_from_parse_server("Parse Server fails a $select of a protected key with a 500")
def test_selecting_a_protected_key_is_refused(api: httpx.Client, master: httpx.Client,
                                              secrets_class: dict[str, Any]) -> None:
    cls = secrets_class["class"]
    holder = "H" + secrets.token_hex(5)
    make(master, holder, {"s": {"type": "String"}}, open_clp())
    create(master, holder, {"s": "A"})
    assert_error(find(api, holder, {"s": {"$select": {"query": {"className": cls, "where": {}}, "key": "a"}}}),
                 400, 119, DENIED)


def test_protected_fields_of_included_objects(api: httpx.Client, master: httpx.Client,
                                              secrets_class: dict[str, Any]) -> None:
    cls = secrets_class["class"]
    holder = "H" + secrets.token_hex(5)
    make(master, holder, {"item": {"type": "Pointer", "targetClass": cls}}, open_clp())
    create(master, holder, {"item": ptr(cls, secrets_class["obj"])})
    included = find(api, holder, include="item").json()["results"][0]["item"]
    assert included["__type"] == "Object" and not set(included) & {"a", "b", "c"}
    assert find(secrets_class["alice"].client, holder, include="item").json()["results"][0]["item"]["a"] == "A"
    assert find(master, holder, include="item").json()["results"][0]["item"]["b"] == "B"


def test_user_email_is_protected_by_default(api: httpx.Client, users: Any) -> None:
    alice, bob = users(), users()
    assert "email" not in fetch(bob.client, "_User", alice.id)
    assert "email" not in fetch(api, "_User", alice.id)
    assert fetch(alice.client, "_User", alice.id)["email"] == f"{alice.username}@example.com"
    listed = {u["objectId"]: u for u in find(bob.client, "_User", {"objectId": {"$in": [alice.id, bob.id]}})
              .json()["results"]}
    assert "email" not in listed[alice.id] and listed[bob.id]["email"] == f"{bob.username}@example.com"
    # The email oracle: other users may not query by it; a user may, about their own object.
    assert_error(find(bob.client, "_User", {"email": f"{alice.username}@example.com"}), 400, 119, DENIED)
    assert_error(find(api, "_User", {"$or": [{"email": "x"}]}), 400, 119, DENIED)
    assert_error(find(api, "_User", order="email"), 400, 119, DENIED)
    assert ids(find(alice.client, "_User", {"objectId": alice.id, "email": f"{alice.username}@example.com"})) \
        == [alice.id]


def test_user_protected_fields_merge_with_the_default(api: httpx.Client, master: httpx.Client, users: Any) -> None:
    alice, bob = users(), users()
    response = master.put("/schemas/_User", json={"classLevelPermissions": open_clp(
        protectedFields={"*": ["username"], "authenticated": []})})
    assert response.status_code == 200, response.text
    try:
        public = fetch(api, "_User", alice.id)
        assert "email" not in public and "username" not in public
        # authenticated: [] intersects the public set away: other users see email and username.
        seen = fetch(bob.client, "_User", alice.id)
        assert seen["email"] == f"{alice.username}@example.com" and seen["username"] == alice.username
    finally:
        master.put("/schemas/_User", json={"classLevelPermissions": open_clp(protectedFields={"*": []})})
    assert "email" not in fetch(bob.client, "_User", alice.id)


def test_add_field_pointer_fields_open_updates_only(master: httpx.Client, users: Any, class_name: str) -> None:
    alice = users()
    make(master, class_name, {"owner": {"type": "Pointer", "targetClass": "_User"}},
         open_clp(addField={"pointerFields": ["owner"]}))
    obj = create(master, class_name, {"owner": alice.pointer})["objectId"]
    assert_error(alice.client.post(f"/classes/{class_name}", json={"fresh": 1}), 400, 119, DENIED)
    assert alice.client.put(f"/classes/{class_name}/{obj}", json={"fresh": 1}).status_code == 200
    other = create(master, class_name, {})["objectId"]
    assert_error(alice.client.put(f"/classes/{class_name}/{other}", json={"fresh2": 1}), 404, 101, NOT_FOUND)


def test_relation_operations_need_update(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    make(master, class_name, {"rel": {"type": "Relation", "targetClass": class_name}}, open_clp(update={}))
    a = create(master, class_name, {})["objectId"]
    b = create(master, class_name, {})["objectId"]
    op = {"__op": "AddRelation", "objects": [ptr(class_name, b)]}
    assert_error(api.put(f"/classes/{class_name}/{a}", json={"rel": op}), 400, 119, DENIED)
    related = {"$relatedTo": {"object": ptr(class_name, a), "key": "rel"}}
    assert ids(find(master, class_name, related)) == []
    assert master.put(f"/classes/{class_name}/{a}", json={"rel": op}).status_code == 200
    assert ids(find(api, class_name, related)) == [b]


def test_closed_sign_up_refuses_before_telling_a_name_is_taken(api: httpx.Client, master: httpx.Client,
                                                                users: Any) -> None:
    taken = users()
    response = master.put("/schemas/_User", json={"classLevelPermissions": open_clp(
        create={}, protectedFields={"*": []})})
    assert response.status_code == 200, response.text
    try:
        assert_error(api.post("/users", json={"username": taken.username, "password": "x"}), 400, 119, DENIED)
        assert_error(api.post("/users", json={"username": "fresh" + secrets.token_hex(4), "password": "x"}),
                     400, 119, DENIED)
    finally:
        master.put("/schemas/_User", json={"classLevelPermissions": open_clp(protectedFields={"*": []})})
    assert api.post("/users", json={"username": "fresh" + secrets.token_hex(4), "password": "x"}).status_code == 201


@pytest.fixture(scope="module")
def read_only(own_server: None, server: Server) -> Iterator[tuple[Server, str]]:
    """A Bastion of the backend under test with a read-only master key."""
    from tests.conftest import start_server, stop_server

    if server.backend == "postgres":
        pytest.skip("checked on SQLite: the key bypasses permissions before any storage is involved")
    key = "ro-" + secrets.token_hex(4)
    srv = start_server("sqlite", None, ["--read-only-master-key", key])
    try:
        yield srv, key
    finally:
        stop_server(srv)


def test_read_only_master_key_reads_everything_and_writes_nothing(read_only: tuple[Server, str]) -> None:
    srv, key = read_only
    name = "RO" + secrets.token_hex(4)
    with srv.client(master=True) as master, srv.client(**{"X-Parse-Master-Key": key}) as ro:
        make(master, name, {"s": {"type": "String"}, "n": {"type": "Number"}},
             clp(protectedFields={"*": ["s"]}))
        obj = create(master, name, {"s": "secret", "n": 1})["objectId"]
        assert find(ro, name, {"s": "secret"}, count=1).json()["results"][0]["s"] == "secret"
        assert fetch(ro, name, obj)["s"] == "secret"
        assert_error(ro.post(f"/classes/{name}", json={"n": 2}), 400, 119, DENIED)
        assert_error(ro.put(f"/classes/{name}/{obj}", json={"n": 2}), 400, 119, DENIED)
        assert_error(ro.delete(f"/classes/{name}/{obj}"), 400, 119, DENIED)
        assert fetch(master, name, obj)["n"] == 1


def test_related_to_needs_the_owner_and_a_visible_relation(api: httpx.Client, master: httpx.Client,
                                                           class_name: str) -> None:
    make(master, class_name, {"rel": {"type": "Relation", "targetClass": class_name}}, open_clp())
    owner = create(master, class_name, {})["objectId"]
    member = create(master, class_name, {})["objectId"]
    master.put(f"/classes/{class_name}/{owner}", json={"rel": {"__op": "AddRelation",
                                                               "objects": [ptr(class_name, member)]}})
    related = {"$relatedTo": {"object": ptr(class_name, owner), "key": "rel"}}
    assert ids(find(api, class_name, related)) == [member]
    set_clp(master, class_name, open_clp(get={}))
    assert ids(find(api, class_name, related)) == []
    set_clp(master, class_name, open_clp(protectedFields={"*": ["rel"]}))
    assert_error(find(api, class_name, related), 400, 119, DENIED)
    assert ids(find(master, class_name, related)) == [member]


@pytest.fixture(scope="module")
def configured(own_server: None, server: Server) -> Iterator[Server]:
    """A Bastion with the protectedFields option and protectedFieldsOwnerExempt off."""
    from tests.conftest import start_server, stop_server

    if server.backend == "postgres":
        pytest.skip("checked on SQLite: the option only changes what core/permissions.py computes")
    srv = start_server("sqlite", None, [
        "--protected-fields", json.dumps({"Things": {"*": ["s"]}, "_User": {"*": ["phone"]}}),
        "--no-protected-fields-owner-exempt"])
    try:
        yield srv
    finally:
        stop_server(srv)


def test_protected_fields_option(configured: Server) -> None:
    with configured.client(master=True) as master, configured.client() as api:
        obj = create(master, "Things", {"s": "hidden", "n": 1})["objectId"]
        assert "s" not in fetch(api, "Things", obj) and fetch(master, "Things", obj)["s"] == "hidden"
        assert_error(find(api, "Things", {"s": "hidden"}), 400, 119, DENIED)
        name = "clp_" + secrets.token_hex(4)
        body = api.post("/users", json={"username": name, "password": "pw", "email": f"{name}@example.com",
                                        "phone": "555", "ACL": {"*": {"read": True}}}).json()
        with configured.client(**{"X-Parse-Session-Token": body["sessionToken"]}) as own:
            mine = fetch(own, "_User", body["objectId"])
        # Without the owner exemption the option's list replaces the default one (email shows) and
        # applies to the owner too.
        assert "phone" not in mine and mine["email"] == f"{name}@example.com"
        assert "phone" not in fetch(api, "_User", body["objectId"])


def test_related_to_owner_behind_pointer_permissions(master: httpx.Client, users: Any, class_name: str) -> None:
    alice, bob = users(), users()
    make(master, class_name, {"rel": {"type": "Relation", "targetClass": class_name},
                              "owner": {"type": "Pointer", "targetClass": "_User"}},
         open_clp(get={"pointerFields": ["owner"]}))
    owner = create(master, class_name, {"owner": alice.pointer})["objectId"]
    member = create(master, class_name, {})["objectId"]
    master.put(f"/classes/{class_name}/{owner}", json={"rel": {"__op": "AddRelation",
                                                               "objects": [ptr(class_name, member)]}})
    related = {"$relatedTo": {"object": ptr(class_name, owner), "key": "rel"}}
    assert ids(find(alice.client, class_name, related)) == [member]
    assert ids(find(bob.client, class_name, related)) == []


def test_included_users_hide_their_email(master: httpx.Client, users: Any, class_name: str) -> None:
    alice, bob = users(), users()
    make(master, class_name, {"who": {"type": "Pointer", "targetClass": "_User"}}, open_clp())
    create(master, class_name, {"who": alice.pointer})
    seen_by_bob = find(bob.client, class_name, include="who").json()["results"][0]["who"]
    assert seen_by_bob["username"] == alice.username and "email" not in seen_by_bob
    seen_by_alice = find(alice.client, class_name, include="who").json()["results"][0]["who"]
    assert seen_by_alice["email"] == f"{alice.username}@example.com"
