"""The parser of Parse ``where`` JSON: the IR it builds, and the errors (with Parse's codes) it raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bastion.core.query import ir
from bastion.core.query.parse import QueryLimits, parse_order, parse_where
from bastion.core.query.regex_parse import quote_literal_sections
from bastion.core.query.relative_time import relative_time
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError

ITEM = ClassSchema.new("Item", {
    "s": FieldType("String"),
    "n": FieldType("Number"),
    "b": FieldType("Boolean"),
    "d": FieldType("Date"),
    "o": FieldType("Object"),
    "a": FieldType("Array"),
    "p": FieldType("Pointer", "Other"),
    "f": FieldType("File"),
})
OTHER = ClassSchema.new("Other", {"name": FieldType("String"), "n": FieldType("Number")})
SCHEMAS = {"Item": ITEM, "Other": OTHER}

S, N, D = ir.Field("s", "String"), ir.Field("n", "Number"), ir.Field("d", "Date")
A, P = ir.Field("a", "Array"), ir.Field("p", "Pointer")


def parse(where: Any, limits: QueryLimits | None = None) -> ir.Node:
    return parse_where(where, ITEM, "Item", SCHEMAS.get, limits)


def error_code(where: Any, limits: QueryLimits | None = None) -> int:
    with pytest.raises(ParseError) as info:
        parse(where, limits)
    return info.value.code


# --- the IR ------------------------------------------------------------------------------------

def test_empty_and_null_where_match_everything() -> None:
    assert parse({}) == ir.TRUE
    assert parse(None) == ir.TRUE


def test_equality_of_scalars() -> None:
    assert parse({"s": "x"}) == ir.Compare(S, ir.EQ, "x")
    assert parse({"n": 2}) == ir.Compare(N, ir.EQ, 2)
    assert parse({"s": {"$eq": "x"}}) == ir.Compare(S, ir.EQ, "x")
    assert parse({"s": None}) == ir.Compare(S, ir.EQ, None)


def test_equality_with_a_value_of_another_type_matches_nothing() -> None:
    assert parse({"n": "2"}) == ir.FALSE
    assert parse({"s": 2}) == ir.FALSE
    assert parse({"s": {"$ne": 2}}) == ir.TRUE


def test_dates_pointers_and_files_become_canonical() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert parse({"d": {"__type": "Date", "iso": "2024-05-01T12:00:00.123Z"}}) == ir.Compare(D, ir.EQ, moment)
    assert parse({"d": {"$lt": "2024-05-01T12:00:00.123Z"}}) == ir.Compare(D, ir.LT, moment)
    assert parse({"p": {"__type": "Pointer", "className": "Other", "objectId": "x1"}}) == ir.Compare(P, ir.EQ, "x1")
    assert parse({"f": {"__type": "File", "name": "a.txt"}}) == ir.Compare(ir.Field("f", "File"), ir.EQ, "a.txt")


def test_pointer_to_another_class_matches_nothing() -> None:
    assert parse({"p": {"__type": "Pointer", "className": "_User", "objectId": "x1"}}) == ir.FALSE


def test_equality_against_an_array_field_means_contains() -> None:
    assert parse({"a": 3}) == ir.ArrayContains(A, 3)
    assert parse({"a": [3, 4]}) == ir.Compare(A, ir.EQ, [3, 4])  # a whole array: the same array
    assert parse({"a": {"$ne": 3}}) == ir.Not(ir.ArrayContains(A, 3))


def test_dot_notation_reaches_into_objects() -> None:
    assert parse({"o.x.y": 1}) == ir.Compare(ir.Field("o", "Object", ("x", "y")), ir.EQ, 1)
    assert parse({"o.x": {"$gt": "m"}}) == ir.Compare(ir.Field("o", "Object", ("x",)), ir.GT, "m")


def test_fields_the_class_lacks_are_null_everywhere() -> None:
    assert parse({"nope": None}) == ir.TRUE
    assert parse({"nope": 1}) == ir.FALSE
    assert parse({"nope": {"$exists": False}}) == ir.TRUE
    assert parse({"nope": {"$exists": True}}) == ir.FALSE
    assert parse({"nope": {"$gt": 1}}) == ir.FALSE


def test_null_in_an_in_list_matches_nothing_as_sql_in() -> None:
    assert parse({"s": {"$in": ["x", None]}}) == ir.In(S, ("x",))
    assert parse({"s": {"$in": [None]}}) == ir.FALSE
    assert parse({"s": {"$in": []}}) == ir.FALSE


def test_nin_as_parse_server_on_postgresql_means_it() -> None:
    # An object without the field matches neither $in nor $nin; an empty $nin constrains nothing.
    assert parse({"s": {"$nin": ["x"]}}) == ir.And((ir.Exists(S), ir.Not(ir.In(S, ("x",)))))
    assert parse({"s": {"$nin": []}}) == ir.TRUE


def test_comparisons_on_unorderable_types_match_nothing() -> None:
    assert parse({"b": {"$lt": True}}) == ir.FALSE
    assert parse({"s": {"$lt": None}}) == ir.FALSE


def test_all_and_contained_by() -> None:
    assert parse({"a": {"$all": [1, "x"]}}) == ir.ContainsAll(A, (1, "x"))
    assert parse({"a": {"$containedBy": [1]}}) == ir.ContainedBy(A, (1,))
    assert parse({"a": {"$all": []}}) == ir.FALSE  # as Parse Server and MongoDB answer it
    # The SDKs' containsAllStartingWith: an element starting with each (literal) prefix.
    assert parse({"a": {"$all": [{"$regex": "^\\Qx.\\E"}, {"$regex": "^\\Qy\\E"}]}}) == ir.And(
        (ir.ArrayStartsWith(A, "x."), ir.ArrayStartsWith(A, "y")))
    # A $regex that is not a startsWith expression is a value like any other (it matches nothing).
    assert parse({"a": {"$all": [{"$regex": "^a"}]}}) == ir.ContainsAll(A, ({"$regex": "^a"},))


def test_exists() -> None:
    assert parse({"s": {"$exists": True}}) == ir.Exists(S)
    assert parse({"s": {"$exists": False}}) == ir.Not(ir.Exists(S))


def test_regex_and_its_options() -> None:
    assert parse({"s": {"$regex": "^a", "$options": "im"}}) == ir.Regex(S, "^a", True, True, False)
    assert parse({"s": {"$regex": "a b", "$options": "x"}}) == ir.Regex(S, "a b", False, False, True)
    assert parse({"n": {"$regex": "1"}}) == ir.FALSE  # only strings match a regex


def test_regex_literal_sections_of_the_sdks_are_escaped() -> None:
    node = parse({"s": {"$regex": "^\\Qa.b*\\E"}})
    assert isinstance(node, ir.Regex)
    assert node.pattern == "^a\\.b\\*"


def test_several_operators_on_one_field_are_a_conjunction() -> None:
    assert parse({"n": {"$gt": 1, "$lte": 5}}) == ir.And((ir.Compare(N, ir.GT, 1), ir.Compare(N, ir.LTE, 5)))


def test_logical_operators() -> None:
    x, y = ir.Compare(S, ir.EQ, "x"), ir.Compare(N, ir.EQ, 1)
    assert parse({"$or": [{"s": "x"}, {"n": 1}]}) == ir.Or((x, y))
    assert parse({"$and": [{"s": "x"}, {"n": 1}]}) == ir.And((x, y))
    # As SQL's NOT on PostgreSQL: an object missing a compared field matches no $nor.
    assert parse({"$nor": [{"s": "x"}, {"n": 1}]}) == ir.And((ir.Exists(S), ir.Exists(N), ir.Not(ir.Or((x, y)))))
    assert parse({"$nor": [{"s": None}]}) == ir.Not(ir.Compare(S, ir.EQ, None))
    assert parse({"$or": [{"s": "x"}, {}]}) == ir.TRUE


def test_relative_time() -> None:
    now = datetime(2024, 1, 10, tzinfo=UTC)
    assert relative_time("now", now) == now
    assert relative_time("in 2 days", now) == now + timedelta(days=2)
    assert relative_time("3 hours 30 mins ago", now) == now - timedelta(hours=3, minutes=30)
    assert relative_time("1 yr ago", now) == now - timedelta(days=365)
    node = parse({"d": {"$gte": {"$relativeTime": "1 day ago"}}})
    assert isinstance(node, ir.Compare) and node.op == ir.GTE
    assert abs(node.value - (datetime.now(UTC) - timedelta(days=1))) < timedelta(seconds=10)


def test_subqueries() -> None:
    node = parse({"p": {"$inQuery": {"className": "Other", "where": {"n": 1}}}})
    assert node == ir.InSubQuery(P, ir.SubQuery("Other", ir.Compare(ir.Field("n", "Number"), ir.EQ, 1),
                                                 ir.Field("objectId", "String")))
    node = parse({"s": {"$select": {"query": {"className": "Other", "where": {}}, "key": "name"}}})
    assert node == ir.InSubQuery(S, ir.SubQuery("Other", ir.TRUE, ir.Field("name", "String")))
    # A pointer to another class is never in the subquery; nor is a key the class lacks.
    assert parse({"p": {"$inQuery": {"className": "Item", "where": {}}}}) == ir.FALSE
    assert parse({"s": {"$select": {"query": {"className": "Other", "where": {}}, "key": "zz"}}}) == ir.FALSE


def test_negated_subqueries_match_everything_when_the_subquery_is_empty() -> None:
    node = parse({"p": {"$notInQuery": {"className": "Other", "where": {}}}})
    assert isinstance(node, ir.Or)
    assert any(isinstance(child, ir.Not) and isinstance(child.child, ir.SubQueryExists) for child in node.children)


def test_order() -> None:
    assert parse_order("-n,s", ITEM) == [ir.OrderKey(N, True), ir.OrderKey(S, False)]
    assert parse_order("nope,o.x", ITEM) == [ir.OrderKey(ir.Field("o", "Object", ("x",)))]
    assert parse_order("", ITEM) == []
    with pytest.raises(ParseError) as info:
        parse_order("$bad", ITEM)
    assert info.value.code == Code.INVALID_KEY_NAME


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", [
    "s = 1",
    ["s"],
    {"$or": {"s": 1}},
    {"$or": []},
    {"$and": "x"},
    {"s": {"$exists": "yes"}},
    {"s": {"$lt": {"x": 1}}},
    {"s": {"$lt": [1]}},
    {"s": {"$eq": "x", "$options": "i"}},
    {"s": {"$regex": 5}},
    {"s": {"$regex": "(unclosed"}},
    {"s": {"$regex": "a", "$options": "q"}},
    {"s": {"$regex": "a", "$options": 1}},
    {"s": {"$regex": "(a+)+$"}},
    {"n": {"$all": [1]}},
    {"o.x": {"$gt": {"y": 1}}},
    {"p": {"$inQuery": "Other"}},
    {"p": {"$inQuery": {"where": {}}}},
    {"s": {"$select": {"query": {"className": "Other", "where": {}}}}},
    {"s": {"$select": {"query": {"className": "Other"}, "key": "name", "extra": 1}}},
    {"s": {"$inQuery": {"className": "Other", "where": {}}}},
    {"s": {"__op": "Increment", "amount": 1}},
])
def test_bad_queries_and_operator_arguments_are_102(where: Any) -> None:
    assert error_code(where) == Code.INVALID_QUERY


@pytest.mark.parametrize("where", [
    {"s": {"$in": "x"}},
    {"s": {"$nin": 1}},
    {"a": {"$all": "x"}},
    {"a": {"$containedBy": {"x": 1}}},
    {"n": 1e400},
    {"n": {"$in": [2**64]}},
])
def test_malformed_operator_values_are_107(where: Any) -> None:
    assert error_code(where) == Code.INVALID_JSON


@pytest.mark.parametrize("where", [
    {"$foo": 1},  # Parse Server's validateQuery: an unknown top-level operator is an invalid key
    {"1abc": 1},
    {"_rperm": "x"},
    {"_wperm": {"$in": ["x"]}},
    {"ACL": {"$exists": True}},
    {"s.x": 1},  # dot notation into a field that is not an Object
    {"o.$x": 1},
    {"o..x": 1},
    {"o.x\"y": 1},
    {"a" * 300: 1},
    {"has space": 1},
])
def test_invalid_key_names_are_105(where: Any) -> None:
    assert error_code(where) == Code.INVALID_KEY_NAME


def test_a_constraint_of_unknown_operators_only_is_refused_as_parse_server_on_postgresql_does() -> None:
    assert error_code({"s": {"$foo": 1}}) == Code.OPERATION_FORBIDDEN
    assert error_code({"s": {"$options": "i"}}) == Code.OPERATION_FORBIDDEN
    # beside a known operator, an unknown one is ignored
    assert parse({"s": {"$eq": "x", "$foo": 1}}) == ir.Compare(S, ir.EQ, "x")


@pytest.mark.parametrize("where", [
    {"d": {"$lt": {"$relativeTime": "tomorrow"}}},
    {"d": {"$lt": {"$relativeTime": "in 1 day ago"}}},
    {"d": {"$lt": {"$relativeTime": "in 1 fortnight"}}},
    {"d": {"$lt": {"$relativeTime": "in x days"}}},
    {"d": {"$lt": {"$relativeTime": "in 1"}}},
    {"d": {"$lt": {"$relativeTime": 5}}},
    {"d": {"$lt": {"$relativeTime": "in 99999999 years"}}},
    {"d": {"$eq": {"$relativeTime": "1 day ago"}}},
    {"d": {"$ne": {"$relativeTime": "1 day ago"}}},
    {"n": {"$lt": {"$relativeTime": "1 day ago"}}},
    {"o.x": {"$lt": {"$relativeTime": "1 day ago"}}},
])
def test_bad_relative_time_is_107(where: Any) -> None:
    assert error_code(where) == Code.INVALID_JSON


def test_regex_length_limit() -> None:
    assert isinstance(parse({"s": {"$regex": "a" * 1000}}), ir.Regex)
    assert error_code({"s": {"$regex": "a" * 1001}}) == Code.INVALID_QUERY
    assert error_code({"s": {"$regex": "a" * 11}}, QueryLimits(max_regex_length=10)) == Code.INVALID_QUERY


def test_or_breadth_limit() -> None:
    wide = {"$or": [{"n": i} for i in range(100)]}
    assert isinstance(parse(wide), ir.Or)
    assert error_code({"$or": [{"n": i} for i in range(101)]}) == Code.INVALID_QUERY
    assert error_code({"$and": [{"n": i} for i in range(4)]}, QueryLimits(max_or_breadth=3)) == Code.INVALID_QUERY


def nested(depth: int) -> dict[str, Any]:
    where: dict[str, Any] = {"s": "x"}
    for _ in range(depth):
        where = {"$or": [where, {"n": 1}]}
    return where


def test_nesting_depth_limit() -> None:
    assert isinstance(parse(nested(10)), ir.Or)
    assert error_code(nested(11)) == Code.INVALID_QUERY
    assert error_code(nested(4), QueryLimits(max_depth=3)) == Code.INVALID_QUERY


def test_subqueries_count_towards_the_depth() -> None:
    where: dict[str, Any] = {"n": 1}
    for _ in range(11):
        where = {"p": {"$inQuery": {"className": "Other", "where": {"$or": [where]}}}}
    assert error_code(where) == Code.INVALID_QUERY


def test_subquery_class_names_are_checked() -> None:
    assert error_code({"p": {"$inQuery": {"className": "1bad", "where": {}}}}) == Code.INVALID_CLASS_NAME


@pytest.mark.parametrize(("pattern", "read"), [
    ("abc", "abc"),
    ("\\Qa.b\\E", "a\\.b"),
    ("^\\Qa.b\\E", "^a\\.b"),
    ("\\Qa.b\\E$", "a\\.b$"),
    ("\\Qa.b\\E.*", "a\\.b\\\\E\\.\\*"),  # one literal section, to the end
    ("x.\\Qa b_1\\E", "x.a b_1"),
    ("a\\Eb\\E", "ab\\E"),  # only the first stray \E goes
    ("\\Ea", "a"),
    ("a\\\\E", "a\\\\E"),  # an escaped backslash before E stays
    ("\\Qa\nb\\E", "a\nb"),  # JavaScript's "." stops at a newline: no literal section then
])
def test_quoted_sections_read_as_parse_server(pattern: str, read: str) -> None:
    assert quote_literal_sections(pattern) == read
