"""cloud.Object, User, Role and ACL without a server: changes, encoding, relations, merging answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion import cloud
from bastion.cloud._runtime import data
from bastion.cloud.objects import decode, encode


def test_encode_and_decode() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    owner = cloud.Object.pointer("Owner", "o1")
    value = {"when": when, "owner": owner, "list": [owner, 1], "naive": datetime(2024, 1, 1)}
    encoded = encode(value)
    assert encoded == {
        "when": {"__type": "Date", "iso": "2024-01-02T03:04:05.678Z"},
        "owner": {"__type": "Pointer", "className": "Owner", "objectId": "o1"},
        "list": [{"__type": "Pointer", "className": "Owner", "objectId": "o1"}, 1],
        "naive": {"__type": "Date", "iso": "2024-01-01T00:00:00.000Z"},
    }
    decoded = decode(encoded)
    assert decoded["when"] == when and decoded["owner"] == owner
    with pytest.raises(ValueError, match="unsaved"):
        encode(cloud.Object("Owner"))


def test_pointers_decode_to_the_registered_classes() -> None:
    user = decode({"__type": "Pointer", "className": "_User", "objectId": "u1"})
    role = decode({"__type": "Object", "className": "_Role", "objectId": "r1", "name": "admins"})
    assert isinstance(user, cloud.User) and isinstance(role, cloud.Role)
    assert role.name == "admins"


def test_changes_are_the_write_body() -> None:
    obj = cloud.Object("Game", {"score": 1})
    obj.increment("plays").add_unique("tags", "a").unset("gone")
    obj.acl = cloud.ACL()
    assert obj.changes() == {"score": 1, "plays": {"__op": "Increment", "amount": 1},
                             "tags": {"__op": "AddUnique", "objects": ["a"]}, "gone": {"__op": "Delete"},
                             "ACL": {}}
    assert obj.get("plays") == 1 and obj.get("tags") == ["a"] and obj.get("gone") is None


def test_relation_operations_merge_as_the_sdk_merges_them() -> None:
    parent = cloud.Object.pointer("Parent", "p1")
    a, b = cloud.Object.pointer("Item", "a"), cloud.Object.pointer("Item", "b")
    pa = {"__type": "Pointer", "className": "Item", "objectId": "a"}
    pb = {"__type": "Pointer", "className": "Item", "objectId": "b"}
    parent.relation("likes").add([a, b])
    parent.relation("likes").add(a)
    assert parent.changes() == {"likes": {"__op": "AddRelation", "objects": [pa, pb]}}
    parent.relation("likes").remove(b)
    assert parent.changes() == {"likes": {"__op": "Batch", "ops": [
        {"__op": "AddRelation", "objects": [pa]}, {"__op": "RemoveRelation", "objects": [pb]}]}}
    parent.remove_relation("likes", a)
    assert parent.changes() == {"likes": {"__op": "RemoveRelation", "objects": [pb, pa]}}
    parent.add_relation("likes", [a, b])
    assert parent.changes() == {"likes": {"__op": "AddRelation", "objects": [pa, pb]}}
    # Pending relation additions make the field a Relation of the objects' class.
    assert parent.get("likes") == {"__type": "Relation", "className": "Item"}
    assert parent.relation("likes").target_class == "Item"
    with pytest.raises(ValueError, match="unsaved"):
        parent.relation("likes").add(cloud.Object("Item"))
    parent.set("plain", 1)
    with pytest.raises(ValueError, match="not a relation"):
        parent.relation("plain").add(a)


def test_role_relations_and_acl() -> None:
    acl = cloud.ACL()
    acl.set_public_read_access(True)
    role = cloud.Role("admins", acl)
    user = cloud.User.pointer("_User", "u1")
    role.users.add(user)
    role.roles.add(cloud.Role.pointer("_Role", "r2"))
    assert role.changes() == {
        "name": "admins", "ACL": {"*": {"read": True}},
        "users": {"__op": "AddRelation", "objects": [{"__type": "Pointer", "className": "_User", "objectId": "u1"}]},
        "roles": {"__op": "AddRelation", "objects": [{"__type": "Pointer", "className": "_Role", "objectId": "r2"}]},
    }
    assert role.users.target_class == "_User" and role.get_roles().target_class == "_Role"
    role_acl = cloud.ACL()
    role_acl.set_role_read_access(role, True)
    role_acl.set_role_write_access("editors", True)
    role_acl.set_write_access(user, True)
    assert role_acl.to_json() == {"role:admins": {"read": True}, "role:editors": {"write": True},
                                  "u1": {"write": True}}
    assert cloud.ACL(user).to_json() == {"u1": {"read": True, "write": True}}


def test_role_names_are_checked_before_saving() -> None:
    data._check_role(cloud.Role("ok name-1_x"))
    with pytest.raises(cloud.Error) as bad:
        data._check_role(cloud.Role("no/slash"))
    assert bad.value.code == -1
    with pytest.raises(cloud.Error, match="must be a String"):
        data._check_role(_role_named(5))
    saved = cloud.Role.from_json("_Role", {"objectId": "r1", "name": "old"})
    saved.set("name", "new")
    with pytest.raises(cloud.Error, match="only be set before"):
        data._check_role(saved)


def _role_named(name: object) -> cloud.Role:
    role = cloud.Role()
    role._changes["name"] = name
    return role


def test_a_write_answer_is_merged_as_the_sdk_merges_it() -> None:
    obj = cloud.Object("Game", {"score": 1, "name": "x", "drop": 1, "password": "secret"})
    obj.increment("plays")
    data._take_answer(obj, {"objectId": "g1", "createdAt": "2024-01-01T00:00:00.000Z", "name": "X",
                            "drop": {"__op": "Delete"}, "plays": 1}, created=True)
    assert obj.id == "g1" and not obj.dirty()
    assert obj.created_at == obj.updated_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert obj.get("name") == "X" and obj.get("score") == 1 and obj.get("plays") == 1
    assert "drop" not in obj and "password" not in obj._server
    assert obj.existed()
    obj.increment("plays", 2)
    data._take_answer(obj, {"updatedAt": "2024-01-02T00:00:00.000Z", "plays": 3}, created=False)
    assert obj.get("plays") == 3 and obj.updated_at == datetime(2024, 1, 2, tzinfo=UTC)


def test_object_identity_and_errors() -> None:
    assert cloud.Object.pointer("A", "1") == cloud.Object.pointer("A", "1")
    assert cloud.Object.pointer("A", "1") != cloud.Object.pointer("B", "1")
    with pytest.raises(ValueError):
        cloud.Object("A").set("objectId", "x")
    with pytest.raises(ValueError):
        cloud.Object("")
    assert isinstance(cloud.Error(101, "x"), cloud.Error) and cloud.Error.OBJECT_NOT_FOUND == 101
