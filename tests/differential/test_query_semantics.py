"""One meaning of a query: every storage adapter returns what the in-memory matcher says.

Hypothesis draws a small data set (objects of a class with every common field type, and of a
second class that subqueries and pointers reach) and a handful of Parse ``where`` queries built
from every operator the parser knows. Each query is parsed once into the IR; the adapter's
``find`` (as the master key, and as a user whose ACL hides some objects) must return the same
objects as ``matcher.matches`` over the same records, in an order that respects ``order`` (and
``count`` must count them).

250 examples of 8-24 queries take 10-15 s per adapter on two cores. The deadline (10 s for one
example, normally 20-200 ms) only catches a statement that runs away, with room for a machine busy
with other suites. Set ``BASTION_DIFF_EXAMPLES`` to run more (or fewer) examples than the default;
a few thousand make a good hunt after a change to the parser, the matcher or a compiler.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bastion.core.query import ir
from bastion.core.query.matcher import field_value, json_equal, matches
from bastion.core.query.parse import parse_order, parse_where
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType, format_iso, parse_iso
from bastion.errors import ParseError
from bastion.ports.storage import MASTER, Access, FindQuery, Record, StorageAdapter
from tests.differential.conftest import with_classes

ITEM, OTHER = "DiffItem", "DiffOther"

ITEM_SCHEMA = ClassSchema.new(ITEM, {
    "s": FieldType("String"),
    "n": FieldType("Number"),
    "b": FieldType("Boolean"),
    "d": FieldType("Date"),
    "o": FieldType("Object"),
    "a": FieldType("Array"),
    "p": FieldType("Pointer", OTHER),
    "f": FieldType("File"),
})
OTHER_SCHEMA = ClassSchema.new(OTHER, {
    "s": FieldType("String"),
    "n": FieldType("Number"),
    "b": FieldType("Boolean"),
    "a": FieldType("Array"),
    "o": FieldType("Object"),
})
SCHEMAS = {ITEM: ITEM_SCHEMA, OTHER: OTHER_SCHEMA}

USER = Access(["*", "u1"])
ACCESSES = (MASTER, USER)

EXAMPLES = int(os.environ.get("BASTION_DIFF_EXAMPLES", "250"))


def lookup(class_name: str) -> ClassSchema | None:
    return SCHEMAS.get(class_name)


# --- values ------------------------------------------------------------------------------------

NOW = parse_iso(format_iso(datetime.now(UTC)))
DATES = [NOW + timedelta(days=days) for days in (-400, -40, -3.5, -1.5, -0.25, 0, 0.5, 2.5, 45, 500)]
DATES += [datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)]

# Every value is drawn from a small pool half of the time, so that queries and objects meet often;
# the long pools hold the edge cases (unicode, case, JSON look-alikes, -0.0, 1 and 1.0 ...).
FEW_STRINGS = ["a", "A", "ab", "b", "1", ""]
STRINGS = ["", "a", "A", "ab", "Ab", "AB", "abc", "ABC", "b", "é", "É", "e\u0301", "ß", "SS", "日本",
           "a\nb", "line\n", " a", "10", "2", "true", "null", "o0", "o1", "x.y", "%", "_", "a%b",
           "it's", '"q"', "\\", "x y"]
FEW_NUMBERS: list[float | int] = [0, 1, 1.0, 2.5]
NUMBERS: list[float | int] = [0, 1, 1.0, -1, 2, 2.5, -2.5, 3, 10, 0.1, 1e15, -0.0, 7]
OTHER_IDS = ["o0", "o1", "o2", "o3", "o4"]
FILES = ["f1.txt", "f2.png", "F1.txt"]
RPERMS: list[list[str] | None] = [None, None, None, ["*"], ["u1"], ["u2"], ["role:admin"], [], ["u2", "u1"]]


def pick(*options: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of the strategies, chosen uniformly: ``st.one_of`` strongly favours its first ones."""
    return st.sampled_from(options).flatmap(lambda chosen: chosen)


def pointer_json(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


# Pools of values, each drawn in one step (hypothesis is slow at drawing deep structures one piece
# at a time). Repeating the few common values makes queries and objects meet often.
FEW_SCALARS: list[Any] = ["a", "A", "1", 1, 1.0, 2, True, False, None]
POINTERS = [pointer_json(cls, oid) for cls in (OTHER, "_User") for oid in ("o0", "o1", "o2", "oX")]
NESTED: list[Any] = [{"a": 1}, {"a": 1.0}, {"b": "A"}, {"a": None}, {"a": {"b": 1.0}}, {"objectId": "o1"}, {},
                     [], [1], [1.0, "a"], [[1]], [None], {"a": 1, "b": [2]}]
ELEMENTS = FEW_SCALARS * 4 + STRINGS + NUMBERS + POINTERS + NESTED
LEAVES = FEW_SCALARS * 4 + STRINGS + NUMBERS + NESTED + [{"b": v} for v in FEW_SCALARS]


def _pools(seed: int = 20240501) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    arrays = [[rng.choice(ELEMENTS) for _ in range(rng.randint(0, 4))] for _ in range(30)]
    objects = [{key: rng.choice(LEAVES) for key in rng.sample("abc", rng.randint(0, 3))} for _ in range(30)]
    return arrays, objects


ARRAYS, OBJECTS = _pools()

strings = st.sampled_from(FEW_STRINGS * 5 + STRINGS)
numbers = st.sampled_from(FEW_NUMBERS * 3 + NUMBERS)
dates = st.sampled_from(DATES)
other_ids = st.sampled_from(OTHER_IDS + ["oX"])
scalars = st.sampled_from(FEW_STRINGS * 2 + STRINGS + FEW_NUMBERS * 2 + NUMBERS + [True, False, None])
pointers = st.sampled_from(POINTERS)
array_items = st.sampled_from(ELEMENTS)
arrays = st.sampled_from(ARRAYS)
objects = st.sampled_from(OBJECTS)


def respell(value: Any) -> Any:
    """The same JSON written differently: 1 as 1.0 (and back), object keys in another order."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, list):
        return [respell(item) for item in value]
    return {key: respell(value[key]) for key in reversed(list(value))}


# Query values: as stored, or respelled (which must not change what they match).
query_items = pick(array_items, array_items.map(respell))
query_arrays = pick(arrays, arrays.map(respell))
query_objects = pick(objects, objects.map(respell))

MISSING = object()  # the field is absent from the record (as opposed to an explicit null)


def _field_pool(values: list[Any]) -> st.SearchStrategy[Any]:
    """A field's value: missing or null a quarter of the time each, at most."""
    weight = max(1, len(values) // 6)
    return st.sampled_from(values + [MISSING] * weight + [None] * weight)


ITEM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "s": _field_pool(FEW_STRINGS * 5 + STRINGS),
    "n": _field_pool(FEW_NUMBERS * 3 + NUMBERS),
    "b": _field_pool([True, False]),
    "d": _field_pool(DATES),
    "o": _field_pool(OBJECTS),
    "a": _field_pool(ARRAYS),
    "p": _field_pool(OTHER_IDS + ["oX"]),
    "f": _field_pool(FILES),
}
OTHER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "s": _field_pool(FEW_STRINGS * 5 + STRINGS),
    "n": _field_pool(FEW_NUMBERS * 3 + NUMBERS),
    "b": _field_pool([True, False]),
    "a": _field_pool(ARRAYS),
    "o": _field_pool([{"a": v} for v in FEW_SCALARS + STRINGS[:8]] + [{"b": 1}, {}]),
}


@st.composite
def records(draw: st.DrawFn, object_id: str, values: Mapping[str, st.SearchStrategy[Any]]) -> Record:
    record: Record = {
        "objectId": object_id,
        "createdAt": draw(dates),
        "updatedAt": draw(dates),
        "_rperm": draw(st.sampled_from(RPERMS)),
        "_wperm": None,
    }
    for name, strategy in values.items():
        value = draw(strategy)
        if value is not MISSING:
            record[name] = copy.deepcopy(value)
    return record


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, list[Record]]:
    n_other = draw(st.integers(0, len(OTHER_IDS)))
    n_items = draw(st.integers(3, 14))
    return {
        OTHER: [draw(records(OTHER_IDS[i], OTHER_VALUES)) for i in range(n_other)],
        ITEM: [draw(records(f"i{i:02d}", ITEM_VALUES)) for i in range(n_items)],
    }


# --- queries -----------------------------------------------------------------------------------

def date_json(moment: datetime) -> dict[str, str]:
    return {"__type": "Date", "iso": format_iso(moment)}


RELATIVE = ["now", "3 days ago", "in 1 day", "2 weeks ago", "in 2 months", "1 year ago",
            "1 day 12 hours ago", "in 36 hours", "12 hours ago", "in 1 yr 2 wks"]
REGEXES = ["a", "^a", "b$", "^$", "A", "é", "^.b", "a.b", "[a-c]+", "\\d", "^\\d+$", "x y", "É", "ß",
           "日", "a|b", "^(ab|AB)c?$", ".", "^a$", "\\.", "%", "_", "o\\d", "\\n", "^line$", "b$|^x",
           "[^a]", "a*", "e\u0301", "^[A-Z]"]
REGEX_OPTIONS = ["", "", "i", "m", "x", "im", "ix", "imx"]

query_dates = st.one_of(dates.map(date_json), dates.map(format_iso))
relative = st.sampled_from(RELATIVE).map(lambda text: {"$relativeTime": text})
files = st.sampled_from(FILES + ["nope.txt"]).map(lambda name: {"__type": "File", "name": name}) | st.sampled_from(FILES)
query_pointers = pick(st.builds(pointer_json, st.just(OTHER), other_ids), pointers, other_ids)
object_ids = st.sampled_from(OTHER_IDS + ["i00", "i01", "i02", "i03", "i10", "nope"])

# kind -> (values to compare with, whether $lt & co. are worth generating)
KINDS: dict[str, tuple[st.SearchStrategy[Any], bool]] = {
    "string": (strings, True),
    "number": (numbers, True),
    "bool": (st.booleans(), False),
    "date": (query_dates, True),
    "object": (query_objects, False),
    "json": (st.sampled_from([v for v in FEW_SCALARS if v is not None] * 2 + STRINGS + NUMBERS), True),
    "array": (query_items, False),
    "pointer": (query_pointers, False),
    "file": (files, False),
    "id": (object_ids, True),
    "unknown": (scalars, True),
}

# Fields of the queried class: where key -> kind.
ITEM_FIELDS = {"s": "string", "n": "number", "b": "bool", "d": "date", "createdAt": "date", "o": "object",
               "o.a": "json", "o.b": "json", "o.a.b": "json", "a": "array", "p": "pointer", "f": "file",
               "objectId": "id", "zz": "unknown"}
OTHER_FIELDS = {"s": "string", "n": "number", "b": "bool", "a": "array", "o.a": "json", "objectId": "id"}

# Keys of the other class a $select may pick, by the kind of the field it is compared with.
SELECT_KEYS = {"string": ["s", "objectId", "o.a"], "number": ["n", "o.a"], "bool": ["b", "o.a"],
               "json": ["s", "n", "b", "o.a"], "pointer": ["objectId", "s"], "array": ["s", "n", "objectId", "o.a"],
               "id": ["objectId", "s"], "file": ["s"], "unknown": ["s"]}


def _operator_strategies(kind: str, sub_where: st.SearchStrategy[Any] | None,
                         ) -> list[st.SearchStrategy[dict[str, Any]]]:
    values, orderable = KINDS[kind]
    maybe_null = pick(values, st.none(), values)
    wrong_or_null = pick(values, st.none(), values, values, scalars)
    ops: list[st.SearchStrategy[dict[str, Any]]] = [
        st.builds(lambda v: {"$eq": v}, maybe_null),
        st.builds(lambda v: {"$ne": v}, wrong_or_null),
        st.builds(lambda v: {"$in": v}, st.lists(wrong_or_null, max_size=4)),
        st.builds(lambda v: {"$nin": v}, st.lists(wrong_or_null, max_size=4)),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
    ]
    if orderable:
        for op in ("$lt", "$lte", "$gt", "$gte"):
            ops.append(st.builds(lambda v, op=op: {op: v}, values))
    if kind == "date":
        for op in ("$lt", "$lte", "$gt", "$gte"):
            ops.append(st.builds(lambda v, op=op: {op: v}, relative))
    if kind == "array":
        ops.append(st.builds(lambda v: {"$all": v}, st.lists(query_items, max_size=3)))
        ops.append(st.builds(lambda v: {"$containedBy": v}, st.lists(query_items, max_size=5)))
        ops.append(st.builds(lambda v: {"$ne": v}, query_arrays))
    if kind in ("string", "json", "id", "unknown"):
        ops.append(st.builds(
            lambda pattern, options: {"$regex": pattern, **({"$options": options} if options else {})},
            st.sampled_from(["a", "A", "^a", "^A", "b$"] * 3 + REGEXES), st.sampled_from(REGEX_OPTIONS)))
    if sub_where is not None:
        if kind in ("pointer", "array"):
            for op in ("$inQuery", "$notInQuery"):
                ops.append(st.builds(lambda w, op=op: {op: {"className": OTHER, "where": w}}, sub_where))
        if kind in SELECT_KEYS:
            for op in ("$select", "$dontSelect"):
                ops.append(st.builds(
                    lambda w, key, op=op: {op: {"query": {"className": OTHER, "where": w}, "key": key}},
                    sub_where, st.sampled_from(SELECT_KEYS[kind])))
    return ops


def _constraint(kind: str, sub_where: st.SearchStrategy[Any] | None) -> st.SearchStrategy[Any]:
    values, _ = KINDS[kind]
    ops = pick(*_operator_strategies(kind, sub_where))
    combined = st.lists(ops, min_size=1, max_size=2).map(lambda parts: {k: v for p in parts for k, v in p.items()})
    equality = pick(values, st.none()) if kind != "array" else pick(query_items, query_arrays, st.none())
    return pick(combined, equality, combined)


def _where(fields: dict[str, str], sub_where: st.SearchStrategy[Any] | None, depth: int) -> st.SearchStrategy[Any]:
    """Mostly one or two constraints (a wrong leaf must be able to show); sometimes $or/$and/$nor."""
    constraints = {kind: _constraint(kind, sub_where) for kind in set(fields.values())}
    # Fields whose values are JSON have the most ways to go wrong: they come up twice as often.
    clause = pick(*[st.tuples(st.just(key), constraints[kind]) for key, kind in sorted(fields.items())
                    for _ in range(2 if kind in ("array", "object", "json") else 1)])
    flat = st.lists(clause, min_size=1, max_size=2).map(dict)
    if depth == 0:
        return flat
    inner = _where(fields, sub_where, depth - 1)
    logical = st.builds(lambda op, parts, extra: {**extra, op: parts},
                        st.sampled_from(["$or", "$and", "$nor"]), st.lists(inner, min_size=1, max_size=3),
                        st.lists(clause, max_size=1).map(dict))
    return pick(flat, flat, logical)


# Wheres over the other class; they may themselves $select from the queried class.
ITEM_LEAF_WHERE = _where({"s": "string", "n": "number", "a": "array", "p": "pointer"}, None, 0)
OTHER_SELECTS = st.builds(
    lambda w, key, op: {"s": {op: {"query": {"className": ITEM, "where": w}, "key": key}}},
    ITEM_LEAF_WHERE, st.sampled_from(["s", "p", "o.a"]), st.sampled_from(["$select", "$dontSelect"]))
OTHER_WHERE = pick(_where(OTHER_FIELDS, None, 0), st.just({}), _where(OTHER_FIELDS, None, 1), OTHER_SELECTS)
ITEM_WHERE = _where(ITEM_FIELDS, OTHER_WHERE, 2)

ORDERS = [None, None, "n", "-n", "s", "-s", "d", "-d", "b", "-createdAt", "n,s", "-n,-d", "s,-n", "f,objectId",
          "p,-s", "-objectId"]
queries = st.tuples(ITEM_WHERE, st.sampled_from(ORDERS))


# --- the reference ---------------------------------------------------------------------------

def visible(record: Record, access: Access) -> bool:
    perms = record.get("_rperm")
    return access.acting_as is None or perms is None or any(a in perms for a in access.acting_as)


class Reference:
    """The matcher's answer over the data set, subqueries included."""

    def __init__(self, data: dict[str, list[Record]], access: Access) -> None:
        self.data = data
        self.access = access

    def subquery_values(self, sub: ir.SubQuery) -> list[Any]:
        return [field_value(record, sub.key) for record in self.data[sub.class_name]
                if visible(record, self.access) and matches(sub.where, record, self.subquery_values)]

    def find(self, node: ir.Node) -> list[Record]:
        return [record for record in self.data[ITEM]
                if visible(record, self.access) and matches(node, record, self.subquery_values)]


def _rank(value: Any) -> tuple[int, Any]:
    # Nulls sort last ascending and first descending, as PostgreSQL puts them.
    return (1, None) if value is None else (0, value)


def out_of_order(rows: list[Record], keys: list[ir.OrderKey]) -> tuple[Record, Record] | None:
    """The first adjacent pair of rows that ``keys`` would order the other way round, if any."""
    for first, second in zip(rows, rows[1:], strict=False):
        for key in keys:
            a, b = field_value(first, key.field), field_value(second, key.field)
            if (a is None and b is None) or (a is not None and b is not None and json_equal(a, b)):
                continue
            ra, rb = _rank(a), _rank(b)
            wrong = (ra > rb) if not key.descending else (ra < rb)
            if wrong:
                return first, second
            break
    return None


# --- the test ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def storage(adapter: tuple[Any, StorageAdapter]) -> tuple[Any, StorageAdapter]:
    return with_classes(adapter, [OTHER_SCHEMA, ITEM_SCHEMA])


async def load(store: StorageAdapter, data: dict[str, list[Record]]) -> None:
    for schema in (OTHER_SCHEMA, ITEM_SCHEMA):
        await store.purge(schema.class_name)
        for record in data[schema.class_name]:
            await store.insert(schema, dict(record))


def describe(rows: list[Record]) -> str:
    return "\n".join(f"  {row}" for row in rows)


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(), batch=st.lists(queries, min_size=8, max_size=24))
def test_adapter_agrees_with_matcher(storage: tuple[Any, StorageAdapter], data: dict[str, list[Record]],
                                     batch: list[tuple[Any, str | None]]) -> None:
    runner, store = storage
    runner.run(load(store, data))
    by_id = {record["objectId"]: record for record in data[ITEM]}
    for where, order in batch:
        try:
            node = parse_where(where, ITEM_SCHEMA, ITEM, lookup)
            keys = parse_order(order, ITEM_SCHEMA)
        except ParseError as exc:
            note(f"refused by the parser ({exc}): {where}")
            event(f"refused by the parser: {exc.code}")
            continue
        for access in ACCESSES:
            expected = Reference(data, access).find(node)
            found = runner.run(store.find(ITEM_SCHEMA, FindQuery(where=node, order=tuple(keys)), access))
            got_ids = [row["objectId"] for row in found]
            want_ids = {row["objectId"] for row in expected}
            event("matches: " + ("none" if not want_ids else "all" if len(want_ids) == len(data[ITEM]) else "some"))
            context = (f"\nwhere={where!r}\norder={order!r}\naccess={access.acting_as}\nIR={node!r}\n"
                       f"{OTHER} records:\n{describe(data[OTHER])}")
            assert len(got_ids) == len(set(got_ids)), f"duplicate rows {got_ids}{context}"
            if set(got_ids) != want_ids:
                only_db = [by_id[i] for i in sorted(set(got_ids) - want_ids)]
                only_matcher = [by_id[i] for i in sorted(want_ids - set(got_ids))]
                pytest.fail(f"{store.name} and the matcher disagree{context}\n"
                            f"only {store.name}:\n{describe(only_db)}\nonly matcher:\n{describe(only_matcher)}")
            if keys:
                pair = out_of_order([by_id[i] for i in got_ids], keys)
                if pair is not None:
                    pytest.fail(f"{store.name} ordered\n  {pair[0]}\nbefore\n  {pair[1]}{context}")
            else:  # count compiles the same predicate: one check per query is enough
                counted = runner.run(store.count(ITEM_SCHEMA, node, access))
                assert counted == len(want_ids), f"{store.name} counted {counted}, found {len(want_ids)}{context}"
