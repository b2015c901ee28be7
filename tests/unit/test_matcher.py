"""The in-memory meaning of the query IR (LiveQuery, triggers, and the reference of the differential tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bastion.core.query import ir
from bastion.core.query.matcher import Matcher, field_value, json_equal, matches
from bastion.core.query.parse import parse_where
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType

S, N, D = ir.Field("s", "String"), ir.Field("n", "Number"), ir.Field("d", "Date")
A, P, OBJ = ir.Field("a", "Array"), ir.Field("p", "Pointer"), ir.Field("o", "Object")
OX = ir.Field("o", "Object", ("x",))

ITEM = ClassSchema.new("Item", {"s": FieldType("String"), "n": FieldType("Number"), "a": FieldType("Array"),
                                "o": FieldType("Object"), "p": FieldType("Pointer", "Other")})
OTHER = ClassSchema.new("Other", {"name": FieldType("String"), "tags": FieldType("Array")})


def pointer(object_id: str, class_name: str = "Other") -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def test_json_equal() -> None:
    assert json_equal(1, 1.0)
    assert json_equal(-0.0, 0)
    assert not json_equal(True, 1)
    assert not json_equal(False, 0)
    assert not json_equal("1", 1)
    assert json_equal({"a": [1, {"b": 2.0}]}, {"a": [1.0, {"b": 2}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": None})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal(None, 0)
    assert json_equal(None, None)


def test_field_value_follows_paths_into_objects() -> None:
    record = {"o": {"x": {"y": 3}, "z": [1]}}
    assert field_value(record, ir.Field("o", "Object", ("x", "y"))) == 3
    assert field_value(record, ir.Field("o", "Object", ("z", "0"))) is None  # no indexing into arrays
    assert field_value(record, ir.Field("o", "Object", ("missing", "y"))) is None
    assert field_value({}, OX) is None


@pytest.mark.parametrize(("node", "record", "expected"), [
    (ir.Compare(S, ir.EQ, "a"), {"s": "a"}, True),
    (ir.Compare(S, ir.EQ, "a"), {"s": "A"}, False),
    (ir.Compare(S, ir.EQ, "a"), {}, False),
    (ir.Compare(S, ir.EQ, None), {}, True),
    (ir.Compare(S, ir.EQ, None), {"s": None}, True),
    (ir.Compare(S, ir.EQ, None), {"s": ""}, False),
    (ir.Compare(N, ir.EQ, 1), {"n": 1.0}, True),
    (ir.Compare(S, ir.NE, "a"), {}, True),  # $ne matches objects without the field, as in Parse
    (ir.Compare(S, ir.NE, "a"), {"s": "a"}, False),
    (ir.Compare(S, ir.NE, None), {"s": "a"}, True),
    (ir.Compare(S, ir.NE, None), {}, False),
    (ir.Compare(N, ir.LT, 2), {"n": 1.5}, True),
    (ir.Compare(N, ir.LT, 2), {"n": 2.0}, False),
    (ir.Compare(N, ir.LTE, 2), {"n": 2.0}, True),
    (ir.Compare(N, ir.GT, 2), {}, False),
    (ir.Compare(N, ir.GTE, 2), {"n": 3}, True),
    (ir.Compare(S, ir.LT, "b"), {"s": "a"}, True),
    (ir.Compare(S, ir.LT, "b"), {"s": "B"}, True),  # code point order: "B" < "b"
    (ir.Compare(OX, ir.LT, 5), {"o": {"x": "1"}}, False),  # strings and numbers never compare
    (ir.Compare(OX, ir.LT, 5), {"o": {"x": True}}, False),
    (ir.Compare(OX, ir.GT, 0), {"o": {"x": True}}, False),
    (ir.Compare(OX, ir.EQ, 1), {"o": {"x": True}}, False),
    (ir.Compare(OX, ir.EQ, None), {"o": {"x": None}}, True),
    (ir.Compare(OX, ir.EQ, None), {"o": {}}, True),
    (ir.Compare(D, ir.LT, datetime(2024, 1, 2, tzinfo=UTC)), {"d": datetime(2024, 1, 1, tzinfo=UTC)}, True),
    (ir.Compare(OBJ, ir.EQ, {"x": 1}), {"o": {"x": 1.0}}, True),
    (ir.Compare(A, ir.EQ, [1, "a"]), {"a": [1, "a"]}, True),
    (ir.Compare(A, ir.EQ, [1, "a"]), {"a": ["a", 1]}, False),
])
def test_compare(node: ir.Node, record: dict[str, Any], expected: bool) -> None:
    assert matches(node, record) is expected


@pytest.mark.parametrize(("node", "record", "expected"), [
    (ir.In(S, ("a", "b")), {"s": "b"}, True),
    (ir.In(S, ("a", "b")), {}, False),
    (ir.In(N, (1,)), {"n": 1.0}, True),
    (ir.In(N, (1,)), {"n": True}, False),
    (ir.In(A, (1, "x")), {"a": [3, "x"]}, True),  # an array field: any element
    (ir.In(A, (1, "x")), {"a": []}, False),
    (ir.In(A, (1,)), {"a": [True]}, False),
    (ir.ArrayContains(A, 2), {"a": [1, 2.0]}, True),
    (ir.ArrayContains(A, 2), {"a": ["2"]}, False),
    (ir.ArrayContains(A, pointer("x")), {"a": [pointer("x")]}, True),
    (ir.ArrayContains(A, pointer("x")), {"a": [pointer("x", "_User")]}, False),
    (ir.ArrayContains(A, 2), {}, False),
    (ir.ContainsAll(A, (1, 2)), {"a": [2, 3, 1]}, True),
    (ir.ContainsAll(A, (1, 2)), {"a": [1]}, False),
    (ir.ContainsAll(A, (1,)), {"a": None}, False),
    (ir.ContainedBy(A, (1, 2)), {"a": [1, 1, 2]}, True),
    (ir.ContainedBy(A, (1, 2)), {"a": [1, 3]}, False),
    (ir.ContainedBy(A, (1, 2)), {"a": []}, True),
    (ir.ContainedBy(A, (1, 2)), {}, False),  # a missing array is not contained by anything
    (ir.ContainedBy(A, ()), {"a": []}, True),
    (ir.Exists(S), {"s": ""}, True),
    (ir.Exists(S), {"s": None}, False),
    (ir.Exists(A), {"a": []}, True),
    (ir.Exists(OX), {"o": {"x": None}}, False),
    (ir.Exists(OX), {"o": {"x": False}}, True),
])
def test_sets_and_existence(node: ir.Node, record: dict[str, Any], expected: bool) -> None:
    assert matches(node, record) is expected


@pytest.mark.parametrize(("node", "value", "expected"), [
    (ir.Regex(S, "^a"), "abc", True),
    (ir.Regex(S, "^a"), "Abc", False),
    (ir.Regex(S, "^a", ignore_case=True), "Abc", True),
    (ir.Regex(S, "é", ignore_case=True), "É", True),
    (ir.Regex(S, "b$"), "ab", True),
    (ir.Regex(S, "^b"), "a\nb", False),
    (ir.Regex(S, "^b", multiline=True), "a\nb", True),
    (ir.Regex(S, "a.b"), "a\nb", True),  # "." matches a newline, as in PostgreSQL
    (ir.Regex(S, "a b", extended=True), "ab", True),
    (ir.Regex(S, "a b"), "ab", False),
    (ir.Regex(S, "\\d+"), "x12", True),
    (ir.Regex(S, ""), "", True),
    (ir.Regex(S, "1"), None, False),
])
def test_regex(node: ir.Regex, value: Any, expected: bool) -> None:
    assert matches(node, {"s": value}) is expected


def test_regex_matches_only_strings() -> None:
    assert not matches(ir.Regex(OX, "1"), {"o": {"x": 1}})
    assert matches(ir.Regex(OX, "1"), {"o": {"x": "1"}})


def test_boolean_structure() -> None:
    yes, no = ir.Compare(S, ir.EQ, "a"), ir.Compare(S, ir.EQ, "b")
    record = {"s": "a"}
    assert matches(ir.TRUE, record) and not matches(ir.FALSE, record)
    assert matches(ir.Or((no, yes)), record)
    assert not matches(ir.And((no, yes)), record)
    assert matches(ir.Not(no), record)
    assert matches(ir.And(()), record) and not matches(ir.Or(()), record)


# --- subqueries ---------------------------------------------------------------------------------

OTHERS = [{"objectId": "o1", "name": "x", "tags": [{"k": 1}]}, {"objectId": "o2", "name": None},
          {"objectId": "o3", "name": "y"}]


class Resolver:
    """Evaluates subqueries over OTHERS with the matcher, counting how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, sub: ir.SubQuery) -> list[Any]:
        self.calls += 1
        return [field_value(r, sub.key) for r in OTHERS if matches(sub.where, r, self)]


def where(query: dict[str, Any]) -> ir.Node:
    return parse_where(query, ITEM, "Item", {"Item": ITEM, "Other": OTHER}.get)


def run(query: dict[str, Any], record: dict[str, Any]) -> bool:
    return matches(where(query), record, Resolver())


def test_in_query_on_a_pointer_and_an_array_of_pointers() -> None:
    q = {"p": {"$inQuery": {"className": "Other", "where": {"name": "x"}}}}
    assert run(q, {"p": "o1"})
    assert not run(q, {"p": "o3"})
    assert not run(q, {})
    qa = {"a": {"$inQuery": {"className": "Other", "where": {"name": "y"}}}}
    assert run(qa, {"a": [pointer("o9"), pointer("o3")]})
    assert not run(qa, {"a": [pointer("o1")]})
    assert not run(qa, {"a": []})


def test_not_in_query() -> None:
    q = {"p": {"$notInQuery": {"className": "Other", "where": {"name": "x"}}}}
    assert run(q, {"p": "o3"})
    assert not run(q, {"p": "o1"})
    assert not run(q, {})  # as Parse Server's $nin on PostgreSQL: a missing pointer matches neither side
    empty = {"p": {"$notInQuery": {"className": "Other", "where": {"name": "nobody"}}}}
    assert run(empty, {})  # an empty subquery constrains nothing


def test_select_and_dont_select() -> None:
    q = {"s": {"$select": {"query": {"className": "Other", "where": {}}, "key": "name"}}}
    assert run(q, {"s": "y"})
    assert not run(q, {"s": "z"})
    dq = {"s": {"$dontSelect": {"query": {"className": "Other", "where": {}}, "key": "name"}}}
    assert run(dq, {"s": "z"})  # o2's missing name does not make every comparison unknown
    assert not run(dq, {"s": "x"})


def test_subqueries_run_once_per_matcher_even_with_json_values() -> None:
    resolver = Resolver()
    node = where({"p": {"$inQuery": {"className": "Other", "where": {"name": {"$in": ["x", "y"]}}}},
                  "a": {"$inQuery": {"className": "Other", "where": {"name": "x"}}}})
    matcher = Matcher(resolver)
    assert matcher.matches(node, {"p": "o1", "a": [pointer("o1")]})
    assert matcher.matches(node, {"p": "o3", "a": [pointer("o1")]})
    assert resolver.calls == 2
    # a subquery holding unhashable JSON (a dict) is cached by identity
    node = where({"p": {"$inQuery": {"className": "Other", "where": {"tags": {"$all": [{"k": 1.0}]}}}}})
    matcher = Matcher(resolver)
    assert matcher.matches(node, {"p": "o1"})
    assert not matcher.matches(node, {"p": "o3"})
    assert resolver.calls == 3


def test_subquery_without_a_resolver_is_an_error() -> None:
    node = where({"p": {"$inQuery": {"className": "Other", "where": {}}}})
    with pytest.raises(NotImplementedError):
        matches(node, {"p": "o1"})


def test_array_starts_with() -> None:
    from bastion.core.query import ir as query_ir
    from bastion.core.query.matcher import matches

    field = query_ir.Field("tags", "Array")
    node = query_ir.ArrayStartsWith(field, "ap")
    assert matches(node, {"tags": ["banana", "apple"]})
    assert not matches(node, {"tags": ["banana", 1, {"ap": 1}]})
    assert not matches(node, {"tags": "apple"}) and not matches(node, {})


SHAPES = ClassSchema.new("Shape", {"area": FieldType("Polygon"), "name": FieldType("String"),
                                   "o": FieldType("Object")})


def polygon(*points: tuple[float, float]) -> dict[str, Any]:
    return {"__type": "Polygon", "coordinates": [list(p) for p in points]}


@pytest.mark.parametrize(("where", "expected"), [
    ({"area": polygon((0, 0), (0, 1), (1, 1))}, True),  # closed when parsed, as the stored ring is
    ({"area": polygon((0, 0), (1, 1), (0, 1))}, True),  # ~=: the other direction
    ({"area": polygon((0, 1), (1, 1), (0, 0))}, False),  # another first point
    ({"area": {"$ne": polygon((0, 0), (0, 1), (1, 1.0000005))}}, False),  # within 1e-6
    ({"name": {"$regex": "\\Qa.b\\E"}}, True),
    ({"name": {"$regex": "\\Qa\\E.b"}}, False),  # literal "a\E.b"
    ({"name": {"$regex": "a\\E.b"}}, True),  # the stray \E dropped
    ({"o": {"n": 2**70}}, True),  # an integer past 64 bits is the double the record holds
    ({"o.n": float(2**70)}, True),
])
def test_matcher_reads_queries_as_parse_server(where: dict[str, Any], expected: bool) -> None:
    record = {"area": [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], "name": "xa.by", "o": {"n": float(2**70)}}
    assert matches(parse_where(where, SHAPES, "Shape", lambda _name: None), record) is expected
