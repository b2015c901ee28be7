"""The in-memory meaning of the query IR, for LiveQuery, triggers and tests.

Records are in canonical form (``core/codec.py``). The SQL compilers must agree with this file;
the differential tests hold them to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from bastion.core import geo, text_search
from bastion.core.query import ir
from bastion.core.query.regex_guard import regex_flags
from bastion.core.types import is_number

SubQueryValues = Callable[[ir.SubQuery], set[Any] | list[Any]]


class UnsupportedInMemory(Exception):
    """The query needs the database: relations live in join tables the matcher cannot see.

    Callers that evaluate queries in memory (LiveQuery, triggers) catch this and refuse the query.
    """


def _missing(_sub: ir.SubQuery) -> list[Any]:
    raise NotImplementedError("this matcher cannot evaluate subqueries")


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans distinct from numbers, objects by keys."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(json_equal(x, y) for x, y in zip(a, b, strict=True)))
    return type(a) is type(b) and a == b


def field_value(record: Mapping[str, Any], field: ir.Field) -> Any:
    value = record.get(field.column)
    for key in field.path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _orderable(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return True
    return type(a) is type(b) and not isinstance(a, (bool, dict, list))


@lru_cache(maxsize=512)
def compiled_regex(pattern: str, ignore_case: bool, multiline: bool, extended: bool) -> re.Pattern[str]:
    return re.compile(pattern, regex_flags(ignore_case, multiline, extended))


class Matcher:
    def __init__(self, subquery_values: SubQueryValues = _missing) -> None:
        self.subquery_values = subquery_values
        # By identity: a SubQuery holding JSON values (dicts, lists) cannot be hashed.
        self._sub_cache: dict[int, tuple[ir.SubQuery, list[Any]]] = {}

    def matches(self, node: ir.Node, record: Mapping[str, Any]) -> bool:
        method = getattr(self, "_" + type(node).__name__)
        return bool(method(node, record))

    def _Const(self, node: ir.Const, record: Mapping[str, Any]) -> bool:
        return node.value

    def _And(self, node: ir.And, record: Mapping[str, Any]) -> bool:
        return all(self.matches(child, record) for child in node.children)

    def _Or(self, node: ir.Or, record: Mapping[str, Any]) -> bool:
        return any(self.matches(child, record) for child in node.children)

    def _Not(self, node: ir.Not, record: Mapping[str, Any]) -> bool:
        return not self.matches(node.child, record)

    def _Compare(self, node: ir.Compare, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        equal = geo.same_polygon if node.field.type == "Polygon" and not node.field.path else json_equal
        if node.op == ir.EQ:
            return value is None if node.value is None else value is not None and equal(value, node.value)
        if node.op == ir.NE:
            if node.value is None:
                return value is not None
            return value is None or not equal(value, node.value)
        if value is None or not _orderable(value, node.value):
            return False
        if node.op == ir.LT:
            return bool(value < node.value)
        if node.op == ir.LTE:
            return bool(value <= node.value)
        if node.op == ir.GT:
            return bool(value > node.value)
        return bool(value >= node.value)

    def _In(self, node: ir.In, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        if value is None:
            return False
        if node.field.type == "Array" and not node.field.path:
            return isinstance(value, list) and any(json_equal(v, c) for v in value for c in node.values)
        return any(json_equal(value, c) for c in node.values)

    def _ArrayContains(self, node: ir.ArrayContains, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        return isinstance(value, list) and any(json_equal(v, node.value) for v in value)

    def _ArrayStartsWith(self, node: ir.ArrayStartsWith, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        return isinstance(value, list) and any(isinstance(v, str) and v.startswith(node.prefix) for v in value)

    def _ContainsAll(self, node: ir.ContainsAll, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        if not isinstance(value, list):
            return False
        return all(any(json_equal(v, c) for v in value) for c in node.values)

    def _ContainedBy(self, node: ir.ContainedBy, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        if not isinstance(value, list):
            return False
        return all(any(json_equal(v, c) for c in node.values) for v in value)

    def _Exists(self, node: ir.Exists, record: Mapping[str, Any]) -> bool:
        return field_value(record, node.field) is not None

    def _Regex(self, node: ir.Regex, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        if not isinstance(value, str):
            return False
        pattern = compiled_regex(node.pattern, node.ignore_case, node.multiline, node.extended)
        return pattern.search(value) is not None

    def _TextSearch(self, node: ir.TextSearch, record: Mapping[str, Any]) -> bool:
        # The model of PostgreSQL's to_tsvector @@ to_tsquery that SQLite runs too.
        return text_search.matches(node.language, node.term, field_value(record, node.field))

    # --- geo: the same arithmetic as SQLite's registered functions and PostgreSQL's SQL ----------

    def _GeoNear(self, node: ir.GeoNear, record: Mapping[str, Any]) -> bool:
        point = geo.as_point(field_value(record, node.field))
        if point is None:
            return False
        return node.max_distance is None or geo.distance(node.point, point) <= node.max_distance

    def _GeoWithinBox(self, node: ir.GeoWithinBox, record: Mapping[str, Any]) -> bool:
        point = geo.as_point(field_value(record, node.field))
        return point is not None and geo.in_box(point, node.south_west, node.north_east)

    def _GeoWithinPolygon(self, node: ir.GeoWithinPolygon, record: Mapping[str, Any]) -> bool:
        point = geo.as_point(field_value(record, node.field))
        return point is not None and geo.in_polygon(point, node.vertices)

    def _PolygonContains(self, node: ir.PolygonContains, record: Mapping[str, Any]) -> bool:
        polygon = field_value(record, node.field)
        return isinstance(polygon, list) and geo.in_polygon(node.point, polygon)

    def _InSubQuery(self, node: ir.InSubQuery, record: Mapping[str, Any]) -> bool:
        value = field_value(record, node.field)
        if value is None:
            return False
        candidates = self._candidates(node.sub)
        if node.field.type == "Array" and not node.field.path:
            if not isinstance(value, list):
                return False
            ids = [_pointer_id(v) for v in value]
            return any(i is not None and any(json_equal(i, c) for c in candidates) for i in ids)
        return any(json_equal(value, c) for c in candidates)

    def _SubQueryExists(self, node: ir.SubQueryExists, record: Mapping[str, Any]) -> bool:
        return bool(self._candidates(node.sub))

    def _RelatedTo(self, node: ir.RelatedTo, record: Mapping[str, Any]) -> bool:
        raise UnsupportedInMemory("$relatedTo needs the relation's join table")

    def _RelationHas(self, node: ir.RelationHas, record: Mapping[str, Any]) -> bool:
        raise UnsupportedInMemory(f"a constraint on relation {node.key} needs its join table")

    def _candidates(self, sub: ir.SubQuery) -> list[Any]:
        """The subquery's key values, evaluated once per Matcher (the SubQuery is kept alive)."""
        cached = self._sub_cache.get(id(sub))
        if cached is None:
            cached = self._sub_cache[id(sub)] = (sub, list(self.subquery_values(sub)))
        return cached[1]


def _pointer_id(value: Any) -> Any:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return value.get("objectId")
    return value


def matches(node: ir.Node, record: Mapping[str, Any], subquery_values: SubQueryValues = _missing) -> bool:
    return Matcher(subquery_values).matches(node, record)
