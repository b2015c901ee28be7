"""``find_json`` (objects encoded as REST JSON by the database) must equal ``find`` + ``RecordEncoder``.

Adapters without the optional method answer None; then there is nothing to compare.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.domain.read import RecordEncoder
from bastion.ports.storage import MASTER, Access, FindQuery, StorageAdapter

T0 = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def plain_schema() -> ClassSchema:
    """Every type the database spells itself (File, Polygon and Bytes are not among them)."""
    return ClassSchema.new("Plain", {
        "name": FieldType("String"),
        "n": FieldType("Number"),
        "flag": FieldType("Boolean"),
        "when": FieldType("Date"),
        "obj": FieldType("Object"),
        "tags": FieldType("Array"),
        "ptr": FieldType("Pointer", "Other"),
        "loc": FieldType("GeoPoint"),
        "rel": FieldType("Relation", "Other"),
    })


def rec(object_id: str, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"objectId": object_id, "createdAt": T0, "updatedAt": T0, "_rperm": None, "_wperm": None}
    out.update(values)
    return out


RECORDS = [
    rec("a", name="h\u00e9llo \U0001f30d \"quoted\" back\\slash \u2028 \t\n", n=0.1, flag=True, when=T0,
        obj={"k\u00e9y": [1, None, {"z": 2.5}], "e": {}, "null": None}, tags=[1, 2.5, "x", None, True, [1, [2]]],
        ptr="p1", loc=(-33.8688, 151.2093), _rperm=["*", "u1", "role:admin"], _wperm=["u1"]),
    rec("b", name="", n=-0.0, flag=False, when=datetime(1, 1, 1, tzinfo=UTC), obj={}, tags=[], _rperm=[], _wperm=[]),
    rec("c", n=1e300, obj={"big": 2**62, "neg": -1.5e-7}, _wperm=["role:w"]),
    rec("d", n=2**53 + 2, tags=[{"__type": "Pointer", "className": "X", "objectId": "y"}], loc=(0.0, -180.0)),
    rec("e", n=3.0, when=datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), _rperm=["u2"]),
    rec("f"),
]


async def both(storage: StorageAdapter, schema: ClassSchema, query: FindQuery,
               access: Access = MASTER) -> tuple[list[Any] | None, list[Any]]:
    texts = await storage.find_json(schema, query, access)
    encode = RecordEncoder(schema, lambda name: "http://files/" + name)
    expected = [encode(r) for r in await storage.find(schema, query, access)]
    return (None if texts is None else [orjson.loads(t) for t in texts]), expected


def same(got: list[Any] | None, expected: list[Any]) -> None:
    if got is None:
        return
    # Equal as JSON, key order included.
    assert [list(o.items()) for o in got] == [list(o.items()) for o in expected]


async def test_plain_objects_encode_alike(storage: StorageAdapter) -> None:
    schema = plain_schema()
    await storage.create_class(schema)
    for r in RECORDS:
        await storage.insert(schema, r)
    order = (ir_order("objectId"),)
    got, expected = await both(storage, schema, FindQuery(order=order))
    same(got, expected)
    if got is not None:
        assert got[1]["n"] == 0 and got[3]["n"] == 2**53 + 2
    columns = ("objectId", "createdAt", "updatedAt", "_rperm", "_wperm", "name", "loc")
    same(*await both(storage, schema, FindQuery(order=order, columns=columns)))
    same(*await both(storage, schema, FindQuery(order=order), Access(["*", "u2"])))


def ir_order(column: str) -> Any:
    from bastion.core.query import ir

    return ir.OrderKey(ir.Field(column, "String"))


async def test_unsupported_types_decline(storage: StorageAdapter) -> None:
    schema = ClassSchema.new("Filed", {"file": FieldType("File"), "name": FieldType("String")})
    await storage.create_class(schema)
    await storage.insert(schema, rec("a", file="f.png", name="x"))
    assert await storage.find_json(schema, FindQuery(), MASTER) is None
    texts = await storage.find_json(schema, FindQuery(columns=("objectId", "name")), MASTER)
    assert texts is None or [orjson.loads(t)["name"] for t in texts] == ["x"]


async def test_escaped_nul_falls_back(storage: StorageAdapter) -> None:
    schema = plain_schema()
    await storage.create_class(schema)
    await storage.insert(schema, rec("a", name="a\x00b", obj={"k": "\x01"}))
    texts = await storage.find_json(schema, FindQuery(), MASTER)
    assert texts is None or orjson.loads(texts[0])["name"] == "a\x00b"


def count_statements(storage: StorageAdapter, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """On PostgreSQL: a counter of the statements run from now on (in ``[0]``), with reads batched
    from the second of a key on (BatchedReads' in_flight 1); elsewhere an empty list."""
    pool = getattr(storage, "_pool", None)
    if pool is None:
        return []
    reads = storage._json_reads  # type: ignore[attr-defined]
    reads._gets.in_flight = reads._queries.in_flight = 1
    counter, fetch = [0], pool.fetch

    async def counting(*args: Any) -> Any:
        counter[0] += 1
        return await fetch(*args)
    monkeypatch.setattr(pool, "fetch", counting)
    return counter


async def test_concurrent_gets_answer_as_each_alone(storage: StorageAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gets by id started together (PostgreSQL answers them with shared statements) answer exactly
    what each answers alone: its own object, within its reader's ACL, or nothing."""
    from bastion.core.query import ir

    schema = plain_schema()
    await storage.create_class(schema)
    for r in [*RECORDS, rec("g", name="nul \x00 inside")]:
        await storage.insert(schema, r)

    def get(object_id: str, columns: tuple[str, ...] | None = None) -> FindQuery:
        return FindQuery(ir.Compare(ir.Field("objectId", "String"), ir.EQ, object_id), limit=1, columns=columns)

    readers = [MASTER, Access(["*"]), Access(["*", "u1"]), Access(["*", "u2"]), Access([])]
    ids = [r["objectId"] for r in RECORDS] + ["g", "missing"]
    calls = [(get(oid, cols), access) for oid in ids for access in readers
             for cols in (None, ("objectId", "name"))]
    alone = [await storage.find_json(schema, q, a) for q, a in calls]
    statements = count_statements(storage, monkeypatch)
    together = await asyncio.gather(*(storage.find_json(schema, q, a) for q, a in calls))
    assert together == alone
    if statements:  # per (reader, columns) pair: the first get alone, the others in one statement
        assert statements[0] == len(readers) * 2 * 2


async def test_concurrent_queries_answer_as_each_alone(storage: StorageAdapter,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries started together (PostgreSQL runs those of one statement as one, postgres/lateral.py)
    answer exactly what each answers alone, in its own order, limit and skip."""
    from bastion.core.query import ir

    schema = plain_schema()
    await storage.create_class(schema)
    for r in [*RECORDS, rec("g", name="nul \x00 inside", n=2.0)]:
        await storage.insert(schema, r)
    n = ir.Field("n", "Number")
    readers = [MASTER, Access(["*"]), Access(["*", "u1"]), Access(["*", "u2"])]
    queries = [FindQuery(ir.Compare(n, ir.GT, bound), (ir.OrderKey(n, descending),), limit, skip, columns)
               for bound in (-1.0, 0.0, 1.0, 2.5, 5.0) for descending in (False, True)
               for limit, skip in ((2, 0), (3, 1))
               for columns in (None, ("objectId", "n"))]
    queries.append(FindQuery(ir.Compare(ir.Field("name", "String"), ir.EQ, "nul \x00 inside")))
    queries += [FindQuery(ir.Compare(ir.Field("objectId", "String"), ir.EQ, oid), limit=1) for oid in "abcg"]
    calls = [(q, a) for q in queries for a in readers]
    alone = [await storage.find_json(schema, q, a) for q, a in calls]
    assert all(texts is None for texts in alone) or any(texts and len(texts) > 1 for texts in alone)
    statements = count_statements(storage, monkeypatch)
    together = await asyncio.gather(*(storage.find_json(schema, q, a) for q, a in calls))
    assert together == alone
    if statements:  # runs of one statement shape share one (postgres/lateral.py)
        assert statements[0] <= len(calls) / 2


async def test_concurrent_queries_with_text_dates_and_bad_values(storage: StorageAdapter) -> None:
    """Batched runs carry text (with the NUL escapes of the connection's codec), dates, booleans and
    numbers as arrays; a run whose value PostgreSQL refuses fails alone, the others answer."""
    from bastion.core.query import ir

    schema = plain_schema()
    await storage.create_class(schema)
    for r in [*RECORDS, rec("g", name="nul \x00 inside"), rec("h", name="one \x01 two", flag=True, n=7)]:
        await storage.insert(schema, r)
    name, when, flag, n = (ir.Field("name", "String"), ir.Field("when", "Date"), ir.Field("flag", "Boolean"),
                           ir.Field("n", "Number"))
    queries = [FindQuery(ir.Compare(name, ir.EQ, v)) for v in
               ["", "nul \x00 inside", "one \x01 two", "missing", RECORDS[0]["name"]]]
    queries += [FindQuery(ir.Compare(when, op, v), (ir.OrderKey(when),)) for op in (ir.GT, ir.LTE)
                for v in (T0, datetime(2000, 1, 1, tzinfo=UTC))]
    queries += [FindQuery(ir.Compare(flag, ir.EQ, v)) for v in (True, False)]
    queries += [FindQuery(ir.Compare(n, ir.GT, v), (ir.OrderKey(n),)) for v in (0, 2, 3.5, -1)]
    queries += [FindQuery(ir.Regex(name, pattern)) for pattern in ("^h", "(", "nul", "[")]

    async def answer(query: FindQuery) -> Any:
        try:
            return await storage.find_json(schema, query, MASTER)
        except Exception as exc:  # noqa: BLE001 - the error is the answer
            return type(exc).__name__, getattr(exc, "code", None)

    alone = [await answer(q) for q in queries]
    assert any(isinstance(a, tuple) for a in alone) or all(a is None for a in alone)
    assert await asyncio.gather(*(answer(q) for q in queries)) == alone


# Text as JSON can carry it: no lone surrogates (a client's JSON decoder refuses them before Bastion).
unicode_chars = st.characters(blacklist_categories=("Cs",))
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(unicode_chars, max_size=8))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=5),
                    inner, max_size=3)), max_leaves=8)


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.none(), st.text(unicode_chars, max_size=12)),
       n=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False)),
       obj=st.one_of(st.none(), st.dictionaries(st.text(unicode_chars, max_size=5), json_value, max_size=4)),
       tags=st.one_of(st.none(), st.lists(json_value, max_size=4)),
       millis=st.integers(0, 253402300799999))
async def test_generated_values_encode_alike(storage: StorageAdapter, name: str | None, n: float | None,
                                             obj: dict[str, Any] | None, tags: list[Any] | None,
                                             millis: int) -> None:
    schema = plain_schema()
    if await storage.load_schemas():
        await storage.purge("Plain")
    else:
        await storage.create_class(schema)
    when = datetime.fromtimestamp(millis / 1000, UTC)
    await storage.insert(schema, rec("g", name=name, n=n, obj=obj, tags=tags, when=when))
    same(*await both(storage, schema, FindQuery()))
