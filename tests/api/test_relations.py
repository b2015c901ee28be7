"""Relations: AddRelation/RemoveRelation, $relatedTo, constraints on Relation fields and
redirectClassNameForKey, as Parse Server 9 on PostgreSQL answers them (checked against it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, create


def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def add(*pointers: dict[str, str]) -> dict[str, Any]:
    return {"__op": "AddRelation", "objects": list(pointers)}


def remove(*pointers: dict[str, str]) -> dict[str, Any]:
    return {"__op": "RemoveRelation", "objects": list(pointers)}


def query(client: httpx.Client, class_name: str, where: Any, **params: Any) -> httpx.Response:
    return client.get(f"/classes/{class_name}", params={"where": json.dumps(where), **params})


def values(response: httpx.Response, key: str = "n") -> list[Any]:
    """The ``key`` of each object found, sorted (a query without order has none)."""
    assert response.status_code == 200, response.text
    return sorted(obj.get(key) for obj in response.json()["results"])


@dataclass
class Rel:
    owner: str  # the owning class, with relation "rel" to item
    item: str
    items: list[str]  # objectIds of items n=0..3
    secret: str  # an item (n=10) nobody but the master key may read
    owners: list[str]  # k=1: items 0, 1, secret; k=2: items 1, 2; k=3 (ACL {}): item 3; k=4: none

    def item_ptr(self, i: int) -> dict[str, str]:
        return pointer(self.item, self.items[i])

    def related_to(self, k: int) -> dict[str, Any]:
        return {"$relatedTo": {"object": pointer(self.owner, self.owners[k - 1]), "key": "rel"}}


@pytest.fixture
def rel(master: httpx.Client, class_name: str) -> Rel:
    owner, item = class_name + "Owner", class_name + "Item"
    items = [create(master, item, {"n": n})["objectId"] for n in range(4)]
    secret = create(master, item, {"n": 10, "ACL": {}})["objectId"]
    ptr = [pointer(item, i) for i in items]
    bodies = [{"k": 1, "rel": add(ptr[0], ptr[1], pointer(item, secret))}, {"k": 2, "rel": add(ptr[1], ptr[2])},
              {"k": 3, "ACL": {}, "rel": add(ptr[3])}, {"k": 4}]
    owners = [create(master, owner, body)["objectId"] for body in bodies]
    return Rel(owner, item, items, secret, owners)


# --- writes ------------------------------------------------------------------------------------


def test_relation_op_creates_the_field(master: httpx.Client, rel: Rel) -> None:
    fields = master.get(f"/schemas/{rel.owner}").json()["fields"]
    assert fields["rel"] == {"type": "Relation", "targetClass": rel.item}
    obj = master.get(f"/classes/{rel.owner}/{rel.owners[3]}").json()
    assert obj["rel"] == {"__type": "Relation", "className": rel.item}
    # A relation op on a new field of an existing object adds it too (RemoveRelation as well).
    response = master.put(f"/classes/{rel.owner}/{rel.owners[3]}", json={"other": remove(rel.item_ptr(0))})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"updatedAt"}
    assert master.get(f"/schemas/{rel.owner}").json()["fields"]["other"] == {"type": "Relation",
                                                                             "targetClass": rel.item}


def test_batch_op_adds_and_removes(master: httpx.Client, rel: Rel) -> None:
    body = {"rel": {"__op": "Batch", "ops": [add(rel.item_ptr(3)), remove(rel.item_ptr(0))]}}
    assert master.put(f"/classes/{rel.owner}/{rel.owners[0]}", json=body).status_code == 200
    assert values(query(master, rel.item, rel.related_to(1))) == [1, 3, 10]
    # Parse Server applies the relation operations of a Batch and ignores any other one in it.
    body = {"rel": {"__op": "Batch", "ops": [add(rel.item_ptr(2)), {"__op": "Increment", "amount": 1}]}}
    assert master.put(f"/classes/{rel.owner}/{rel.owners[0]}", json=body).status_code == 200
    assert values(query(master, rel.item, rel.related_to(1))) == [1, 2, 3, 10]


def test_relation_to_another_class_is_refused(master: httpx.Client, rel: Rel) -> None:
    other = create(master, rel.owner + "X", {})["objectId"]
    response = master.put(f"/classes/{rel.owner}/{rel.owners[0]}",
                          json={"rel": add(pointer(rel.owner + "X", other))})
    assert_error(response, 400, 111, f"schema mismatch for {rel.owner}.rel; expected Relation<{rel.item}> "
                                     f"but got Relation<{rel.owner}X>")
    response = master.put(f"/classes/{rel.owner}/{rel.owners[0]}",
                          json={"rel": {"__type": "Relation", "className": rel.owner + "X"}})
    assert_error(response, 400, 111)
    # Only the first pointer's class is checked, as in Parse Server: the join row holds ids only.
    response = master.put(f"/classes/{rel.owner}/{rel.owners[3]}",
                          json={"rel": add(rel.item_ptr(0), pointer(rel.owner + "X", other))})
    assert response.status_code == 200, response.text
    assert values(query(master, rel.item, rel.related_to(4))) == [0]
    assert values(query(master, rel.owner + "X", rel.related_to(4)), "objectId") == [other]


def test_deleting_objects_keeps_join_rows_deleting_the_class_drops_them(master: httpx.Client, rel: Rel) -> None:
    assert master.delete(f"/classes/{rel.item}/{rel.items[1]}").status_code == 200
    assert values(query(master, rel.item, rel.related_to(1))) == [0, 10]
    # The owner goes, its rows stay (Parse Server does not clean them either).
    assert master.delete(f"/classes/{rel.owner}/{rel.owners[0]}").status_code == 200
    assert values(query(master, rel.item, rel.related_to(1))) == [0, 10]
    assert master.delete(f"/purge/{rel.owner}").status_code == 200
    assert master.delete(f"/schemas/{rel.owner}").status_code == 200
    again = create(master, rel.owner, {"rel": add(rel.item_ptr(3))})["objectId"]
    where = {"$relatedTo": {"object": pointer(rel.owner, rel.owners[0]), "key": "rel"}}
    assert values(query(master, rel.item, where)) == []
    where = {"$relatedTo": {"object": pointer(rel.owner, again), "key": "rel"}}
    assert values(query(master, rel.item, where)) == [3]


# --- $relatedTo ----------------------------------------------------------------------------------


def test_related_to(master: httpx.Client, rel: Rel) -> None:
    assert values(query(master, rel.item, rel.related_to(1))) == [0, 1, 10]
    assert values(query(master, rel.item, rel.related_to(2))) == [1, 2]
    assert values(query(master, rel.item, rel.related_to(4))) == []
    counted = query(master, rel.item, rel.related_to(1), count=1, limit=0).json()
    assert counted == {"results": [], "count": 3}
    assert values(query(master, rel.item, {**rel.related_to(1), "n": {"$gte": 1}})) == [1, 10]
    assert values(query(master, rel.item, {**rel.related_to(1), "objectId": rel.items[1]})) == [1]
    assert values(query(master, rel.item, {**rel.related_to(1), "objectId": {"$nin": [rel.items[1]]}})) == [0, 10]
    ordered = query(master, rel.item, rel.related_to(1), order="-n", limit=2)
    assert [obj["n"] for obj in ordered.json()["results"]] == [10, 1]


def test_related_to_in_or_and_nor(master: httpx.Client, rel: Rel) -> None:
    assert values(query(master, rel.item, {"$or": [rel.related_to(2), {"n": 0}]})) == [0, 1, 2]
    assert values(query(master, rel.item, {"$or": [rel.related_to(1), rel.related_to(2)]})) == [0, 1, 2, 10]
    assert values(query(master, rel.item, {"$and": [rel.related_to(1), rel.related_to(2)]})) == [1]
    assert values(query(master, rel.item, {"$nor": [rel.related_to(1)]})) == [2, 3]
    # Beside $or, $and or $nor, Parse Server leaves $relatedTo unreduced and refuses it as a key.
    for logical in ({"$or": [{"n": 0}]}, {"$and": [{"n": 0}]}, {"$nor": [{"n": 0}]}):
        assert_error(query(master, rel.item, {**logical, **rel.related_to(1)}), 400, 105,
                     "Invalid key name: $relatedTo")


def test_related_to_nothing(master: httpx.Client, rel: Rel) -> None:
    owner = pointer(rel.owner, rel.owners[0])
    for where in (
        {"$relatedTo": {"object": owner, "key": "nope"}},  # no such relation
        {"$relatedTo": {"object": owner, "key": "k"}},  # not a relation
        {"$relatedTo": {"object": pointer("Nope" + rel.owner, rel.owners[0]), "key": "rel"}},
        {"$relatedTo": {"object": pointer(rel.owner, "unknown"), "key": "rel"}},
        {"$relatedTo": {"object": "x", "key": "rel"}},
        {"$relatedTo": {"object": owner}},
        {"$relatedTo": {"object": owner, "key": 5}},
    ):
        assert values(query(master, rel.item, where)) == [], where


@pytest.mark.differs_from_parse_server("Parse Server fails these with a 500")
def test_related_to_malformed(master: httpx.Client, rel: Rel) -> None:
    for value in ("x", [1], 5, {"key": "rel"}):
        assert_error(query(master, rel.item, {"$relatedTo": value}), 400, 102)
    assert_error(query(master, rel.item, {"$relatedTo": None}), 400, 105, "Invalid key name: $relatedTo")


def test_related_to_needs_a_readable_owner(api: httpx.Client, master: httpx.Client, rel: Rel) -> None:
    # The related objects' own ACLs apply; an owner the caller may not read shows no relation.
    assert values(query(api, rel.item, rel.related_to(1))) == [0, 1]
    assert values(query(api, rel.item, rel.related_to(3))) == []
    assert values(query(master, rel.item, rel.related_to(3))) == [3]
    assert values(query(api, rel.item, {"$or": [rel.related_to(3), {"n": 2}]})) == [2]


# --- constraints on a Relation field ---------------------------------------------------------------


def test_equal_to_a_pointer_on_a_relation(master: httpx.Client, rel: Rel) -> None:
    assert values(query(master, rel.owner, {"rel": rel.item_ptr(1)}), "k") == [1, 2]
    assert values(query(master, rel.owner, {"rel": rel.item_ptr(3)}), "k") == [3]
    # The pointer's class is not looked at, only its objectId.
    assert values(query(master, rel.owner, {"rel": pointer("Other", rel.items[1])}), "k") == [1, 2]
    assert values(query(master, rel.owner, {"rel": rel.item_ptr(1), "k": 2}), "k") == [2]
    assert values(query(master, rel.owner, {"rel": rel.item_ptr(1), "objectId": rel.owners[0]}), "k") == [1]
    assert values(query(master, rel.owner, {"$or": [{"rel": rel.item_ptr(0)}, {"k": 4}]}), "k") == [1, 4]
    counted = query(master, rel.owner, {"rel": rel.item_ptr(1)}, count=1, limit=0).json()
    assert counted["count"] == 2


def test_in_nin_ne_on_a_relation(master: httpx.Client, rel: Rel) -> None:
    assert values(query(master, rel.owner, {"rel": {"$in": [rel.item_ptr(0), rel.item_ptr(2)]}}), "k") == [1, 2]
    assert values(query(master, rel.owner, {"rel": {"$in": []}}), "k") == []
    assert values(query(master, rel.owner, {"rel": {"$nin": [rel.item_ptr(0)]}}), "k") == [2, 3, 4]
    assert values(query(master, rel.owner, {"rel": {"$nin": []}}), "k") == [1, 2, 3, 4]
    assert values(query(master, rel.owner, {"rel": {"$ne": rel.item_ptr(1)}}), "k") == [3, 4]
    both = {"$in": [rel.item_ptr(1)], "$nin": [rel.item_ptr(0)]}
    assert values(query(master, rel.owner, {"rel": both}), "k") == [2]
    # Other operators beside them are ignored.
    assert values(query(master, rel.owner, {"rel": {"$in": [rel.item_ptr(1)], "$exists": True}}), "k") == [1, 2]


def test_other_constraints_on_a_relation(master: httpx.Client, rel: Rel) -> None:
    # Parse Server turns anything else into "objectId in []": nothing matches.
    for value in ({"$exists": True}, {"$exists": False}, None, rel.items[1], {"$eq": rel.item_ptr(1)},
                  {"$ne": None}):
        assert values(query(master, rel.owner, {"rel": value}), "k") == [], value
    # A pointer without an objectId yields no constraint at all.
    assert values(query(master, rel.owner, {"rel": {"__type": "Pointer", "className": rel.item}}),
                  "k") == [1, 2, 3, 4]
    # Under $nor Parse Server does not rewrite it: PostgreSQL finds no such column, the query nothing.
    assert values(query(master, rel.owner, {"$nor": [{"rel": rel.item_ptr(0)}]}), "k") == []
    assert values(query(master, rel.owner, {"$or": [{"k": 4}, {"$nor": [{"rel": pointer(rel.item, "nobody")}]}]}),
                  "k") == []


@pytest.mark.differs_from_parse_server("Parse Server fails these with a 500")
def test_malformed_relation_constraints(master: httpx.Client, rel: Rel) -> None:
    assert_error(query(master, rel.owner, {"rel": {"$in": [rel.items[1]]}}), 400, 102)
    assert_error(query(master, rel.owner, {"rel": {"$in": [None]}}), 400, 102)
    assert_error(query(master, rel.owner, {"rel": {"$in": 5}}), 400, 107)


def test_relation_constraint_and_access(api: httpx.Client, rel: Rel) -> None:
    # The owners' ACLs apply; the related objects' do not (the join table is read as it is).
    assert values(query(api, rel.owner, {"rel": rel.item_ptr(3)}), "k") == []
    assert values(query(api, rel.owner, {"rel": pointer(rel.item, rel.secret)}), "k") == [1]


# --- redirectClassNameForKey ---------------------------------------------------------------------


def test_redirect_class_name_for_key(api: httpx.Client, master: httpx.Client, rel: Rel) -> None:
    params = {"redirectClassNameForKey": "rel", "where": json.dumps(rel.related_to(2))}
    found = master.get(f"/classes/{rel.owner}", params=params).json()["results"]
    assert sorted((o["n"], o["className"]) for o in found) == [(1, rel.item), (2, rel.item)]
    counted = master.get(f"/classes/{rel.owner}", params={**params, "count": 1, "limit": 0}).json()
    assert counted == {"results": [], "count": 2}
    # The SDK's POST-as-GET carries it in the body.
    body = {"_method": "GET", "redirectClassNameForKey": "rel", "where": rel.related_to(1)}
    found = api.post(f"/classes/{rel.owner}", json=body).json()["results"]
    assert sorted(o["n"] for o in found) == [0, 1]
    assert {o["className"] for o in found} == {rel.item}
    # A key that is no relation keeps the class, and its objects still say which it is.
    found = master.get(f"/classes/{rel.owner}", params={"redirectClassNameForKey": "k",
                                                        "where": json.dumps({"k": 4})}).json()["results"]
    assert [(o["k"], o["className"]) for o in found] == [(4, rel.owner)]
    found = master.get(f"/classes/{rel.owner}", params={"redirectClassNameForKey": "",
                                                        "where": json.dumps({"k": 4})}).json()["results"]
    assert "className" not in found[0]


def test_in_query_on_a_relation(api: httpx.Client, master: httpx.Client, rel: Rel) -> None:
    # Parse Server runs the subquery and asks $in (or, for $notInQuery, $nin) its objects.
    def sub(where: Any) -> dict[str, Any]:
        return {"className": rel.item, "where": where}

    assert values(query(master, rel.owner, {"rel": {"$inQuery": sub({"n": {"$gte": 2}})}}), "k") == [1, 2, 3]
    assert values(query(master, rel.owner, {"rel": {"$inQuery": sub(rel.related_to(2))}}), "k") == [1, 2]
    assert values(query(master, rel.owner, {"rel": {"$inQuery": sub({"n": 99})}}), "k") == []
    assert values(query(master, rel.owner, {"rel": {"$notInQuery": sub({"n": 0})}}), "k") == [2, 3, 4]
    assert values(query(master, rel.owner, {"rel": {"$notInQuery": sub({"n": 99})}}), "k") == [1, 2, 3, 4]
    # $in and $inQuery together ask for either.
    both = {"$in": [rel.item_ptr(3)], "$inQuery": sub({"n": 0})}
    assert values(query(master, rel.owner, {"rel": both}), "k") == [1, 3]
    # The subquery reads with the caller's access: the secret item (n=10) is not found.
    assert values(query(api, rel.owner, {"rel": {"$inQuery": sub({"n": 10})}}), "k") == []
    assert values(query(master, rel.owner, {"rel": {"$inQuery": sub({"n": 10})}}), "k") == [1]
