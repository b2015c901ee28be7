"""/schemas and /purge: class definitions, fields, indexes and class-level permissions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, count, create, fetch, strip_meta
from tests.conftest import Server, make_class

DEFAULT_FIELDS = {
    "objectId": {"type": "String"},
    "createdAt": {"type": "Date"},
    "updatedAt": {"type": "Date"},
    "ACL": {"type": "ACL"},
}
# What Parse Server on PostgreSQL answers for a class created without permissions (its "ACL" entry
# included), and the empty operations it fills in around permissions that were set.
DEFAULT_CLP = {
    "ACL": {"*": {"read": True, "write": True}},
    "find": {"*": True}, "get": {"*": True}, "count": {"*": True}, "create": {"*": True},
    "update": {"*": True}, "delete": {"*": True}, "addField": {"*": True}, "protectedFields": {"*": []},
}
EMPTY_CLP = {"find": {}, "get": {}, "count": {}, "create": {}, "update": {}, "delete": {}, "addField": {},
             "protectedFields": {}}


def schema(master: httpx.Client, class_name: str) -> dict[str, Any]:
    response = master.get(f"/schemas/{class_name}")
    assert response.status_code == 200, response.text
    return response.json()


def test_an_explicit_required_false_is_answered_back(master: httpx.Client, class_name: str) -> None:
    # Parse Server keeps a field's definition as given: Parse Dashboard's "Add a new column" sends
    # "required": false, and the schema answers it back, on create, on update and when read.
    response = master.post(f"/schemas/{class_name}", json={"className": class_name, "fields": {
        "a": {"type": "String", "required": False},
        "friends": {"type": "Relation", "targetClass": "_User", "required": False},
        "b": {"type": "String"},
    }})
    assert response.status_code == 200, response.text
    response = master.put(f"/schemas/{class_name}", json={"fields": {
        "nickname": {"type": "String", "required": False, "defaultValue": "anon"},
    }})
    assert response.status_code == 200, response.text
    expected = {
        "a": {"type": "String", "required": False},
        "friends": {"type": "Relation", "targetClass": "_User", "required": False},
        "b": {"type": "String"},
        "nickname": {"type": "String", "required": False, "defaultValue": "anon"},
    }
    for answer in (response.json(), schema(master, class_name)):
        assert {name: answer["fields"][name] for name in expected} == expected
    # It changes nothing else: an object without the fields is saved, the default filled in.
    created = master.post(f"/classes/{class_name}", json={})
    assert created.status_code == 201, created.text
    assert master.get(f"/classes/{class_name}/{created.json()['objectId']}").json()["nickname"] == "anon"


def test_create_class_with_fields(master: httpx.Client, class_name: str) -> None:
    response = master.post(f"/schemas/{class_name}", json={"className": class_name, "fields": {
        "name": {"type": "String", "required": True},
        "level": {"type": "Number", "defaultValue": 5},
        "owner": {"type": "Pointer", "targetClass": "_User"},
        "friends": {"type": "Relation", "targetClass": "_User"},
        "when": {"type": "Date", "defaultValue": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}},
    }})
    assert response.status_code == 200, response.text
    expected = {
        "className": class_name,
        "fields": {
            **DEFAULT_FIELDS,
            "name": {"type": "String", "required": True},
            "level": {"type": "Number", "defaultValue": 5},
            "owner": {"type": "Pointer", "targetClass": "_User"},
            "friends": {"type": "Relation", "targetClass": "_User"},
            "when": {"type": "Date", "defaultValue": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}},
        },
        "classLevelPermissions": DEFAULT_CLP,
    }
    assert response.json() == expected
    # No "indexes" key until the class has an index.
    assert schema(master, class_name) == expected


def test_create_class_through_post_schemas(master: httpx.Client, class_name: str) -> None:
    response = master.post("/schemas", json={"className": class_name, "fields": {"a": {"type": "Boolean"}}})
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["a"] == {"type": "Boolean"}
    assert_error(master.post("/schemas", json={}), 400, 135, "POST /schemas needs a class name.")


def test_list_schemas(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "String"}})
    response = master.get("/schemas")
    assert response.status_code == 200
    results = response.json()["results"]
    ours = [s for s in results if s["className"] == class_name]
    assert ours == [schema(master, class_name)]


def test_create_class_errors(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    url = f"/schemas/{class_name}"
    assert_error(master.post(url, json={}), 400, 103, f"Class {class_name} already exists.")
    assert_error(master.post(url, json={"className": "Other"}), 400, 103,
                 f"Class name mismatch between Other and {class_name}.")
    assert_error(master.post("/schemas/1bad", json={}), 400, 103,
                 "Invalid classname: 1bad, classnames can only have alphanumeric characters and _, and must "
                 "start with an alpha character ")
    new = f"/schemas/{class_name}N"
    assert_error(master.post(new, json={"fields": {"a": {"type": "Blah"}}}), 400, 111, "invalid field type: Blah")
    assert_error(master.post(new, json={"fields": {"a": "String"}}), 400, 107, "invalid JSON")
    assert_error(master.post(new, json={"fields": {"1a": {"type": "String"}}}), 400, 105, "invalid field name: 1a")
    assert_error(master.post(new, json={"fields": {"objectId": {"type": "String"}}}), 400, 136,
                 "field objectId cannot be added")
    assert_error(master.post(new, json={"fields": {"p": {"type": "Pointer"}}}), 400, 135,
                 "type Pointer needs a class name")
    assert_error(master.post(new, json={"fields": {"n": {"type": "Number", "defaultValue": "x"}}}), 400, 111,
                 f"schema mismatch for {class_name}N.n default value; expected Number but got String")
    assert_error(master.post(new, json={"fields": {"r": {"type": "Relation", "targetClass": "_User",
                                                         "required": True}}}),
                 400, 111, "The 'required' option is not applicable for Relation<_User>")
    assert_error(master.post(new, json={"fields": {"g1": {"type": "GeoPoint"}, "g2": {"type": "GeoPoint"}}}),
                 400, 111, "currently, only one GeoPoint field may exist in an object. Adding g2 when g1 already exists.")
    # None of the refused definitions created the class.
    assert_error(master.get(new), 400, 103, f"Class {class_name}N does not exist.")


def test_missing_class(master: httpx.Client, class_name: str) -> None:
    assert_error(master.get(f"/schemas/{class_name}"), 400, 103, f"Class {class_name} does not exist.")
    assert_error(master.put(f"/schemas/{class_name}", json={"fields": {}}), 400, 103,
                 f"Class {class_name} does not exist.")
    assert master.delete(f"/schemas/{class_name}").json() == {}


def test_add_and_delete_fields(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "String"}, "b": {"type": "Number"}})
    created = create(master, class_name, {"a": "x", "b": 1})
    response = master.put(f"/schemas/{class_name}", json={"className": class_name, "fields": {
        "b": {"__op": "Delete"},
        "c": {"type": "Array"},
    }})
    assert response.status_code == 200, response.text
    assert response.json()["fields"] == {**DEFAULT_FIELDS, "a": {"type": "String"}, "c": {"type": "Array"}}
    # The deleted field's data is gone with it.
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {"a": "x"}
    # A deleted field can come back with another type.
    response = master.put(f"/schemas/{class_name}", json={"fields": {"b": {"type": "String"}}})
    assert response.json()["fields"]["b"] == {"type": "String"}
    assert strip_meta(fetch(master, class_name, created["objectId"])) == {"a": "x"}
    create(master, class_name, {"b": "now a string"})


def test_update_field_options(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "String", "required": True},
                                    "p": {"type": "Pointer", "targetClass": "_User"}})
    # The same type again replaces the field's options (Parse Server 9).
    response = master.put(f"/schemas/{class_name}", json={"fields": {"a": {"type": "String", "defaultValue": "d"}}})
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["a"] == {"type": "String", "defaultValue": "d"}
    assert strip_meta(create(master, class_name, {})) == {"a": "d"}
    assert_error(master.put(f"/schemas/{class_name}", json={"fields": {"a": {"type": "Number"}}}), 400, 255,
                 "Field a exists, cannot update.")
    assert_error(master.put(f"/schemas/{class_name}", json={"fields": {"p": {"type": "Pointer", "targetClass": "_Role"}}}),
                 400, 111, f"schema mismatch for {class_name}.p; expected Pointer<_User> but got Pointer<_Role>")
    # Default fields given with their own type are left alone.
    response = master.put(f"/schemas/{class_name}", json={"fields": {"objectId": {"type": "String"}}})
    assert response.status_code == 200
    assert response.json()["fields"]["objectId"] == {"type": "String"}


def test_field_errors(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "String"}})
    url = f"/schemas/{class_name}"
    assert_error(master.put(url, json={"fields": {"zz": {"__op": "Delete"}}}), 400, 255,
                 "Field zz does not exist, cannot delete.")
    assert_error(master.put(url, json={"fields": {"createdAt": {"__op": "Delete"}}}), 400, 136,
                 "field createdAt cannot be changed")
    assert_error(master.put(url, json={"fields": {"b-c": {"type": "String"}}}), 400, 105, "invalid field name: b-c")
    assert schema(master, class_name)["fields"] == {**DEFAULT_FIELDS, "a": {"type": "String"}}


def test_indexes(master: httpx.Client, class_name: str) -> None:
    response = master.post(f"/schemas/{class_name}", json={
        "fields": {"a": {"type": "String"}, "n": {"type": "Number"}}, "indexes": {"a_1": {"a": 1}}})
    assert response.status_code == 200, response.text
    # With an index, Parse Server also shows the primary key's "_id_".
    assert schema(master, class_name)["indexes"] == {"_id_": {"_id": 1}, "a_1": {"a": 1}}
    url = f"/schemas/{class_name}"
    response = master.put(url, json={"indexes": {"n_a": {"n": -1, "a": 1}, "t": {"a": "text"}}})
    assert response.status_code == 200, response.text
    assert response.json()["indexes"] == {"_id_": {"_id": 1}, "a_1": {"a": 1}, "n_a": {"n": -1, "a": 1},
                                          "t": {"a": "text"}}
    response = master.put(url, json={"indexes": {"a_1": {"__op": "Delete"}}})
    assert response.json()["indexes"] == {"_id_": {"_id": 1}, "n_a": {"n": -1, "a": 1}, "t": {"a": "text"}}
    assert_error(master.put(url, json={"indexes": {"n_a": {"n": 1}}}), 400, 102, "Index n_a exists, cannot update.")
    assert_error(master.put(url, json={"indexes": {"zz": {"__op": "Delete"}}}), 400, 102,
                 "Index zz does not exist, cannot delete.")
    assert_error(master.put(url, json={"indexes": {"b": {"nope": 1}}}), 400, 102,
                 "Field nope does not exist, cannot add index.")
    # Objects still write and read with the indexes in place.
    create(master, class_name, {"a": "x", "n": 1})


def test_bad_index_does_not_create_the_class(master: httpx.Client, class_name: str) -> None:
    response = master.post(f"/schemas/{class_name}", json={"fields": {"a": {"type": "String"}},
                                                           "indexes": {"bad": {"zz": 1}}})
    assert_error(response, 400, 102, "Field zz does not exist, cannot add index.")
    assert_error(master.get(f"/schemas/{class_name}"), 400, 103, f"Class {class_name} does not exist.")


def test_class_level_permissions(master: httpx.Client, class_name: str) -> None:
    clp = {"find": {"*": True}, "get": {"requiresAuthentication": True}, "create": {"role:admin": True}}
    response = master.post(f"/schemas/{class_name}", json={
        "fields": {"owner": {"type": "Pointer", "targetClass": "_User"}, "secret": {"type": "String"}},
        "classLevelPermissions": clp})
    assert response.status_code == 200, response.text
    # The operations left out come back empty (which grants nothing).
    assert response.json()["classLevelPermissions"] == {**EMPTY_CLP, **clp}
    assert schema(master, class_name)["classLevelPermissions"] == {**EMPTY_CLP, **clp}
    # PUT replaces them all.
    new = {"find": {"*": True}, "update": {"pointerFields": ["owner"]}, "readUserFields": ["owner"],
           "protectedFields": {"*": ["secret"]}, "ACL": {"*": {"read": True, "write": False}}}
    response = master.put(f"/schemas/{class_name}", json={"classLevelPermissions": new})
    assert response.status_code == 200, response.text
    assert schema(master, class_name)["classLevelPermissions"] == {**EMPTY_CLP, **new}


@pytest.mark.parametrize(("clp", "message"), [
    ({"foo": {}}, "foo is not a valid operation for class level permissions"),
    ({"find": {"*": "yes"}}, "'yes' is not a valid value for class level permissions acl find:*"),
    ({"find": {"*": False}}, "'false' is not a valid value for class level permissions acl find:*"),
    ({"find": {"bad-key": True}}, "'bad-key' is not a valid key for class level permissions"),
    ({"find": True}, "'true' is not a valid value for class level permissions find - must be an object"),
    ({"readUserFields": "owner"}, "'owner' is not a valid value for class level permissions readUserFields - must be an array"),
    ({"readUserFields": ["secret"]}, "'secret' is not a valid column for class level pointer permissions readUserFields"),
    ({"protectedFields": {"*": ["nope"]}}, "Field 'nope' in protectedFields:* does not exist"),
    ({"protectedFields": {"*": ["objectId"]}}, "Default field 'objectId' can not be protected"),
    ({"ACL": {"*": {"read": 1}}}, "'1' is not a valid value for class level permissions acl"),
])
def test_invalid_class_level_permissions(master: httpx.Client, class_name: str, clp: dict[str, Any],
                                         message: str) -> None:
    make_class(master, class_name, {"owner": {"type": "Pointer", "targetClass": "_User"}, "secret": {"type": "String"}})
    assert_error(master.put(f"/schemas/{class_name}", json={"classLevelPermissions": clp}), 400, 107, message)
    assert schema(master, class_name)["classLevelPermissions"] == DEFAULT_CLP


def test_delete_class(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "String"}})
    created = create(master, class_name, {"a": "x"})
    create(master, class_name, {"a": "y"})
    assert_error(master.delete(f"/schemas/{class_name}"), 400, 255,
                 f"Class {class_name} is not empty, contains 2 objects, cannot drop schema.")
    master.delete(f"/classes/{class_name}/{created['objectId']}").raise_for_status()
    assert_error(master.delete(f"/schemas/{class_name}"), 400, 255,
                 f"Class {class_name} is not empty, contains 1 objects, cannot drop schema.")
    assert master.delete(f"/purge/{class_name}").json() == {}
    response = master.delete(f"/schemas/{class_name}")
    assert response.status_code == 200 and response.json() == {}
    assert_error(master.get(f"/schemas/{class_name}"), 400, 103, f"Class {class_name} does not exist.")
    assert class_name not in [s["className"] for s in master.get("/schemas").json()["results"]]


def test_purge(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"a": {"type": "String"}})
    for value in ("x", "y", "z"):
        create(master, class_name, {"a": value})
    response = master.delete(f"/purge/{class_name}")
    assert response.status_code == 200 and response.json() == {}
    assert master.get(f"/classes/{class_name}").json() == {"results": []}
    assert count(master, class_name) == 0
    # The schema stays.
    assert schema(master, class_name)["fields"]["a"] == {"type": "String"}
    assert master.delete(f"/purge/{class_name}Missing").json() == {}


def test_master_key_is_required(server: Server, master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    # Parse Server 9 sanitizes "unauthorized: master key is required".
    denied = {"error": "Permission denied"}
    for method, path, body in (
        ("GET", "/schemas", None),
        ("GET", f"/schemas/{class_name}", None),
        ("POST", f"/schemas/{class_name}X", {}),
        ("POST", "/schemas", {"className": class_name + "X"}),
        ("PUT", f"/schemas/{class_name}", {"fields": {"b": {"type": "String"}}}),
        ("DELETE", f"/schemas/{class_name}", None),
        ("DELETE", f"/purge/{class_name}", None),
    ):
        # A connection each: Parse Server leaves a refused request's body unread on the connection.
        with server.client() as api:
            response = api.request(method, path, json=body)
        assert response.status_code == 403, response.text
        assert response.json() == denied
    assert "b" not in schema(master, class_name)["fields"]


def test_indexes_stay_once_set(master: httpx.Client, class_name: str) -> None:
    """Parse Server answers the indexes given when a class is created (no "_id_"), and keeps an
    indexes document with the primary key's "_id_" once indexes were set, even to none, and
    after the last one is deleted. Its jsonb column lists shorter names first."""
    url = f"/schemas/{class_name}"
    response = master.post(url, json={"fields": {"abc": {"type": "String"}, "b": {"type": "String"}},
                                      "indexes": {"abc_1": {"abc": 1}}})
    assert response.json()["indexes"] == {"abc_1": {"abc": 1}}
    indexes = master.put(url, json={"indexes": {"b_1": {"b": 1}}}).json()["indexes"]
    assert list(indexes.items()) == [("b_1", {"b": 1}), ("_id_", {"_id": 1}), ("abc_1", {"abc": 1})]
    response = master.put(url, json={"indexes": {"b_1": {"__op": "Delete"}, "abc_1": {"__op": "Delete"}}})
    assert response.json()["indexes"] == {"_id_": {"_id": 1}}
    assert schema(master, class_name)["indexes"] == {"_id_": {"_id": 1}}
    # Set to nothing: the same document.
    other = class_name + "x"
    master.post(f"/schemas/{other}", json={"indexes": {}})
    assert "indexes" not in schema(master, other)
    assert master.put(f"/schemas/{other}", json={"indexes": {}}).json()["indexes"] == {"_id_": {"_id": 1}}
    assert schema(master, other)["indexes"] == {"_id_": {"_id": 1}}
    master.delete(f"/schemas/{other}")


def test_empty_lists_are_empty_objects(master: httpx.Client, class_name: str) -> None:
    """PHP encodes an empty object as []; Parse Server reads fields, indexes and class-level
    permissions given so as empty objects (an empty CLP grants nothing)."""
    url = f"/schemas/{class_name}"
    response = master.post(url, json={"fields": [], "indexes": [], "classLevelPermissions": []})
    assert response.status_code == 200, response.text
    closed = EMPTY_CLP
    assert response.json() == {"className": class_name, "fields": DEFAULT_FIELDS, "classLevelPermissions": closed}
    response = master.put(url, json={"fields": [], "indexes": []})
    assert response.status_code == 200, response.text
    assert response.json() == {"className": class_name, "fields": DEFAULT_FIELDS, "classLevelPermissions": closed,
                               "indexes": {"_id_": {"_id": 1}}}
    assert schema(master, class_name)["classLevelPermissions"] == closed
    # A list with items is an object keyed by its indexes.
    assert_error(master.put(url, json={"fields": ["a"]}), 400, 105, "invalid field name: 0")
