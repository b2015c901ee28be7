"""Relation constraints mean the same on SQLite and PostgreSQL: hypothesis draws owners, items, join
rows and read permissions, then wheres mixing ``$relatedTo`` (on the items, and on the owners through
a relation of the class to itself), pointer/``$in``/``$nin``/``$ne``/``$inQuery``/``$notInQuery`` on a Relation field, plain
constraints, ``$or``/``$and``/``$nor`` and ``objectId`` constraints, read with the master key and as
the public. Both adapters are held to a reference: the matcher, taught here what the join rows say
(the matcher itself refuses relation nodes, it cannot see join tables).

Set ``BASTION_DIFF_EXAMPLES`` to run more (or fewer) than the default 150 examples.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bastion.core.query import ir
from bastion.core.query.matcher import Matcher, UnsupportedInMemory, matches
from bastion.core.query.parse import parse_where
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import ParseError
from bastion.ports.storage import MASTER, Access, FindQuery, Record, StorageAdapter
from tests.differential.conftest import refill, with_classes

OWNER, ITEM = "DiffRelOwner", "DiffRelItem"
SCHEMAS = {
    OWNER: ClassSchema.new(OWNER, {"k": FieldType("Number"), "rel": FieldType("Relation", ITEM),
                                   "peers": FieldType("Relation", OWNER)}),
    ITEM: ClassSchema.new(ITEM, {"n": FieldType("Number"), "s": FieldType("String")}),
}
OWNER_IDS = [f"o{i}" for i in range(5)]
ITEM_IDS = [f"i{i}" for i in range(6)]
PUBLIC = Access(["*"])
EXAMPLES = int(os.environ.get("BASTION_DIFF_EXAMPLES", "150"))
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def lookup(class_name: str) -> ClassSchema | None:
    return SCHEMAS.get(class_name)


def ptr(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


# --- data --------------------------------------------------------------------------------------

PERMS = st.sampled_from([None, ["*"], []])  # anyone, the public, nobody but the master key


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, Any]:
    def record(object_id: str, index: int, fields: dict[str, Any]) -> Record:
        moment = BASE + timedelta(seconds=index)
        return {"objectId": object_id, "createdAt": moment, "updatedAt": moment, "_rperm": draw(PERMS),
                "_wperm": None, **fields}

    owners = [record(i, n, {"k": draw(st.sampled_from([None, 1.0, 2.0]))})
              for n, i in enumerate(draw(st.lists(st.sampled_from(OWNER_IDS), unique=True, max_size=5)))]
    items = [record(i, n, {"n": draw(st.sampled_from([None, 0.0, 1.0, 2.0])), "s": draw(st.sampled_from([None, "a", "b"]))})
             for n, i in enumerate(draw(st.lists(st.sampled_from(ITEM_IDS), unique=True, max_size=6)))]
    # Join rows may name objects that do not exist (deleted ones keep their rows, as in Parse Server).
    rel = draw(st.lists(st.tuples(st.sampled_from(OWNER_IDS), st.sampled_from(ITEM_IDS)), unique=True, max_size=10))
    peers = draw(st.lists(st.tuples(st.sampled_from(OWNER_IDS), st.sampled_from(OWNER_IDS)), unique=True, max_size=6))
    return {"owners": owners, "items": items, "rel": rel, "peers": peers}


# --- queries -------------------------------------------------------------------------------------


def related_to(owner: str, key: str = "rel") -> dict[str, Any]:
    return {"$relatedTo": {"object": ptr(OWNER, owner), "key": key}}


item_leaves = st.one_of(
    st.builds(related_to, st.sampled_from(OWNER_IDS)),
    st.sampled_from([{"n": {"$gte": 1}}, {"s": "a"}, {"n": None}, {"objectId": "i1"},
                     {"objectId": {"$in": ["i0", "i2", "i4"]}}, {"objectId": {"$nin": ["i3"]}}]),
)
item_pointers = st.builds(lambda i: ptr(ITEM, i), st.sampled_from(ITEM_IDS))
owner_pointers = st.builds(lambda i: ptr(OWNER, i), st.sampled_from(OWNER_IDS))
owner_leaves = st.one_of(
    item_pointers.map(lambda p: {"rel": p}),
    st.lists(item_pointers, max_size=3).map(lambda ps: {"rel": {"$in": ps}}),
    st.lists(item_pointers, max_size=3).map(lambda ps: {"rel": {"$nin": ps}}),
    item_pointers.map(lambda p: {"rel": {"$ne": p}}),
    owner_pointers.map(lambda p: {"peers": p}),
    st.builds(lambda o: related_to(o, "peers"), st.sampled_from(OWNER_IDS)),
    st.sampled_from([{"k": 1}, {"k": {"$exists": False}}, {"rel": {"$exists": True}}, {"objectId": "o2"}]),
    st.tuples(st.sampled_from(["$inQuery", "$notInQuery"]), st.deferred(lambda: item_wheres))
    .map(lambda t: {"rel": {t[0]: {"className": ITEM, "where": t[1]}}}),
    st.tuples(item_pointers, st.deferred(lambda: item_wheres))
    .map(lambda t: {"rel": {"$in": [t[0]], "$inQuery": {"className": ITEM, "where": t[1]}}}),
)


def wheres(leaves: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in parts:
            for key, value in part.items():
                if key in out:  # one constraint per key in a JSON where: the others go in an $and
                    out.setdefault("$and", []).append({key: value})
                else:
                    out[key] = value
        return out

    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(merge),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"$or": cs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"$and": cs}),
            st.lists(inner, min_size=1, max_size=2).map(lambda cs: {"$nor": cs}),
        ),
        max_leaves=5,
    )


item_wheres = wheres(item_leaves)
queries = st.one_of(st.tuples(st.just(ITEM), item_wheres), st.tuples(st.just(OWNER), wheres(owner_leaves)))


# --- the reference ---------------------------------------------------------------------------------


class JoinMatcher(Matcher):
    """The matcher, with the join rows and the owners' read permissions it cannot see in a database."""

    def __init__(self, data: dict[str, Any], access: Access) -> None:
        super().__init__(self._subquery_ids)
        self.data = data
        self.access = access

    def _subquery_ids(self, sub: ir.SubQuery) -> list[Any]:
        records = self.data["owners"] if sub.class_name == OWNER else self.data["items"]
        return [r["objectId"] for r in records if self._readable(r) and self.matches(sub.where, r)]

    def _readable(self, record: Mapping[str, Any]) -> bool:
        perms = record["_rperm"]
        return self.access.is_master or perms is None or bool(set(perms) & set(self.access.acting_as or []))

    def _RelatedTo(self, node: ir.RelatedTo, record: Mapping[str, Any]) -> bool:
        owner = next((o for o in self.data["owners"] if o["objectId"] == node.owning_id), None)
        if not self.access.is_master and (owner is None or not self._readable(owner)):
            return False
        return (node.owning_id, record["objectId"]) in self.data[node.key]

    def _RelationHas(self, node: ir.RelationHas, record: Mapping[str, Any]) -> bool:
        related = [*node.related_ids, *(self._candidates(node.sub) if node.sub is not None else [])]
        return any((record["objectId"], r) in self.data[node.key] for r in related)


# --- the test --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage(adapter: tuple[Any, StorageAdapter]) -> tuple[Any, StorageAdapter]:
    return with_classes(adapter, list(SCHEMAS.values()))


async def load(store: StorageAdapter, data: dict[str, Any]) -> None:
    for name, records in ((OWNER, data["owners"]), (ITEM, data["items"])):
        await refill(store, SCHEMAS[name], records)
    for owner in OWNER_IDS:  # the join tables, emptied and filled
        await store.remove_relations(OWNER, "rel", ITEM, owner, ITEM_IDS)
        await store.remove_relations(OWNER, "peers", OWNER, owner, OWNER_IDS)
    for key, target in (("rel", ITEM), ("peers", OWNER)):
        for owner in OWNER_IDS:
            related = [r for o, r in data[key] if o == owner]
            if related:
                await store.add_relations(OWNER, key, target, owner, related)


def test_the_matcher_refuses_relation_nodes() -> None:
    record = {"objectId": "x"}
    for node in (ir.RelatedTo(OWNER, "o1", "rel"), ir.RelationHas(OWNER, "rel", ("i1",))):
        with pytest.raises(UnsupportedInMemory):
            matches(node, record)


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(), batch=st.lists(queries, min_size=4, max_size=10))
def test_relation_queries_agree(storage: tuple[Any, StorageAdapter], data: dict[str, Any],
                                batch: list[tuple[str, dict[str, Any]]]) -> None:
    runner, store = storage
    runner.run(load(store, data))
    for class_name, where in batch:
        schema = SCHEMAS[class_name]
        records = data["owners"] if class_name == OWNER else data["items"]
        try:
            node = parse_where(where, schema, class_name, lookup)
        except ParseError as exc:
            note(f"refused by the parser ({exc}): {where}")
            event(f"refused by the parser: {exc.code}")
            continue
        for access in (MASTER, PUBLIC):
            reference = JoinMatcher(data, access)
            want = {r["objectId"] for r in records if reference._readable(r) and reference.matches(node, r)}
            found = runner.run(store.find(schema, FindQuery(where=node), access))
            got = [row["objectId"] for row in found]
            context = f"\nclass={class_name} access={access}\nwhere={where!r}\nIR={node!r}\ndata={data!r}"
            assert len(got) == len(set(got)), f"duplicate rows {got}{context}"
            assert set(got) == want, f"{store.name} found {sorted(got)}, the reference {sorted(want)}{context}"
            counted = runner.run(store.count(schema, node, access))
            assert counted == len(want), f"{store.name} counted {counted}, found {len(want)}{context}"
            event("matches: " + ("none" if not want else "all" if len(want) == len(records) else "some"))
