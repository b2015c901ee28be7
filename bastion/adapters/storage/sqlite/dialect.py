"""How SQLite spells the query IR: JSON text for arrays and objects, the SQL functions of functions.py."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, assert_never

import orjson

from bastion.adapters.storage.sql import Compilation, GeoLeaf, Leaf, Params, SqlDialect, balanced, quote
from bastion.adapters.storage.sqlite.functions import canonical_json_text, dumps
from bastion.core import geo
from bastion.core.query import ir
from bastion.core.types import format_iso, is_number
from bastion.errors import Code, ParseError
from bastion.ports.storage import Access

COLUMN_TYPES = {"String": "TEXT", "Number": "REAL", "Boolean": "INTEGER", "Date": "TEXT"}
JSON_TYPES = frozenset({"Object", "Array", "GeoPoint", "Polygon"})
INDEX_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}\Z")

def json_path(path: tuple[str, ...]) -> str:
    # Path keys go inside an SQL string literal: the query parser refuses quotes, backslashes and
    # NUL in them, and this refuses them again rather than trust it.
    if any(c in part for part in path for c in "'\"\\\x00"):
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid key name.")
    return "$" + "".join('."' + part + '"' for part in path)


class SqliteDialect(SqlDialect):
    # --- Bastion's own tables (system_tables.py) ------------------------------------------------
    system_column_types = {"text": "TEXT", "json": "TEXT", "integer": "INTEGER", "bigint": "INTEGER"}
    # None needed: a claim runs on the one writer thread inside BEGIN IMMEDIATE, which serialises it
    # against every other process's claim.
    claim_lock = ""
    hooks_order = " ORDER BY rowid"

    def placeholder(self, index: int) -> str:
        return "?"

    @staticmethod
    def json_mark(mark: str) -> str:
        return mark  # JSON is text

    @staticmethod
    def json_cell(cell: Any) -> Any:
        return orjson.loads(cell)

    def true(self) -> str:
        return "1"

    def false(self) -> str:
        return "0"

    def column_value(self, type_name: str, value: Any) -> Any:
        if value is None:
            return None
        if type_name == "Date":
            return format_iso(value) if isinstance(value, datetime) else value
        if type_name == "Boolean":
            return 1 if value else 0
        if type_name in JSON_TYPES:
            return dumps(value)
        if type_name == "Number":
            return float(value)
        return value

    # --- access ---------------------------------------------------------------------------------

    def perm_predicate(self, column: str, access: Access, params: Params, table: str | None) -> str:
        if access.acting_as is None:
            return "1"
        col = f"{table}.{quote(column)}" if table else quote(column)
        marks = ", ".join(params.add(entry) for entry in access.acting_as)
        if not marks:
            return f"({col} IS NULL)"
        return f"({col} IS NULL OR EXISTS (SELECT 1 FROM json_each({col}) WHERE json_each.value IN ({marks})))"

    def order_term(self, key: ir.Order, params: Params | None = None) -> str:
        if isinstance(key, ir.DistanceOrder):
            assert params is not None, "a distance order binds its point"
            # Positional parameters: each use of the expression binds its own copy.
            first, second = (self.distance(key.field, key.point, params) for _ in range(2))
            return f"({first} IS NULL), {second}"
        if not isinstance(key, ir.OrderKey):
            raise ParseError(Code.INVALID_QUERY, f"unsupported order {type(key).__name__}")
        expr = self.value_expr(key.field)
        if key.descending:
            return f"({expr} IS NULL) DESC, {expr} DESC"
        return f"({expr} IS NULL), {expr}"

    def value_expr(self, field: ir.Field) -> str:
        col = quote(field.column)
        if not field.path:
            return col
        return f"json_extract({col}, '{json_path(field.path)}')"

    # --- leaves ---------------------------------------------------------------------------------

    def leaf(self, node: Leaf, params: Params) -> str:
        match node:
            case ir.Compare():
                return self.compare(node, params)
            case ir.In():
                return self.in_values(node, params)
            case ir.ArrayContains():
                return self.array_any(node.field, (node.value,), params)
            case ir.ArrayStartsWith():
                col = quote(node.field.column)
                first, second = params.add(node.prefix), params.add(node.prefix)
                return (f"(json_type({col}) IS 'array' AND EXISTS (SELECT 1 FROM json_each({col}) j "
                        f"WHERE j.type = 'text' AND substr(j.value, 1, length({first})) = {second}))")
            case ir.ContainsAll():
                checks = [self.array_any(node.field, (value,), params) for value in node.values]
                return balanced([f"json_type({quote(node.field.column)}) IS 'array'", *checks], "AND")
            case ir.ContainedBy():
                col = quote(node.field.column)
                inside = self.json_item_in("j", node.values, params)
                return f"(json_type({col}) IS 'array' AND NOT EXISTS (SELECT 1 FROM json_each({col}) j WHERE NOT {inside}))"
            case ir.Exists():
                if node.field.path:
                    jt = self.json_type_expr(node.field, params)
                    return f"({jt} IS NOT NULL AND {jt} != 'null')"
                return f"({quote(node.field.column)} IS NOT NULL)"
            case ir.Regex():
                flags = (1 if node.ignore_case else 0) | (2 if node.multiline else 0) | (4 if node.extended else 0)
                value = self.value_expr(node.field)
                guard = f"{self.json_type_expr(node.field, params)} = 'text' AND " if node.field.path else ""
                return f"({guard}bastion_regex({params.add(node.pattern)}, {flags}, {value}) = 1)"
            case ir.GeoNear() | ir.GeoWithinBox() | ir.GeoWithinPolygon() | ir.PolygonContains():
                return self.geo_leaf(node, params)
            case ir.TextSearch():
                return (f"(bastion_ts_match({params.add(node.language)}, {params.add(node.term)}, "
                        f"{quote(node.field.column)}) = 1)")
            case _:
                assert_never(node)

    def text_rank(self, search: ir.TextSearch, params: Params) -> str:
        return f"bastion_ts_rank({params.add(search.language)}, {params.add(search.term)}, {quote(search.field.column)})"

    def distance(self, field: ir.Field, point: tuple[float, float], params: Params) -> str:
        """Radians from ``point`` to the GeoPoint column (NULL without one)."""
        terms = ", ".join(params.add(term) for term in geo.reference_terms(point))
        return f"bastion_geo_distance({quote(field.column)}, {terms})"

    def geo_leaf(self, node: GeoLeaf, params: Params) -> str:
        match node:
            case ir.GeoNear():
                if node.max_distance is None:
                    return f"({quote(node.field.column)} IS NOT NULL)"
                distance = self.distance(node.field, node.point, params)
                return f"COALESCE({distance} <= {params.add(node.max_distance)}, 0)"
            case ir.GeoWithinBox():
                col = quote(node.field.column)
                (south, west), (north, east) = node.south_west, node.north_east
                return (f"COALESCE(json_extract({col}, '$[0]') BETWEEN {params.add(south)} AND {params.add(north)} "
                        f"AND json_extract({col}, '$[1]') BETWEEN {params.add(west)} AND {params.add(east)}, 0)")
            case ir.GeoWithinPolygon():
                vertices = params.add(dumps([list(v) for v in node.vertices]))
                return f"(bastion_geo_in_polygon({quote(node.field.column)}, {vertices}) = 1)"
            case ir.PolygonContains():
                lat, lng = node.point
                return f"(bastion_polygon_contains({quote(node.field.column)}, {params.add(lat)}, {params.add(lng)}) = 1)"
            case _:
                assert_never(node)

    def json_type_expr(self, field: ir.Field, params: Params) -> str:
        return f"json_type({quote(field.column)}, '{json_path(field.path)}')"

    def compare(self, node: ir.Compare, params: Params) -> str:
        field = node.field
        if field.path:
            return self.compare_json(node, params)
        col = quote(field.column)
        if node.value is None:
            return f"({col} IS NULL)" if node.op == ir.EQ else f"({col} IS NOT NULL)"
        if field.type == "Polygon" and node.op in (ir.EQ, ir.NE):
            equal = f"bastion_polygon_same({col}, {params.add(dumps(node.value))})"
            return f"({col} IS NOT NULL AND {equal} = 1)" if node.op == ir.EQ else f"({col} IS NULL OR {equal} = 0)"
        if field.type in ("Object", "Array") and node.op in (ir.EQ, ir.NE):
            equal = f"bastion_json_canon({col}) = {params.add(canonical_json_text(node.value))}"
            return f"({col} IS NOT NULL AND {equal})" if node.op == ir.EQ else f"({col} IS NULL OR {equal} IS NOT 1)"
        value = params.add(self.column_value(field.type, node.value))
        if node.op == ir.EQ:
            return f"({col} IS NOT NULL AND {col} = {value})"
        if node.op == ir.NE:
            return f"({col} IS NULL OR {col} != {value})"
        sql_op = {ir.LT: "<", ir.LTE: "<=", ir.GT: ">", ir.GTE: ">="}[node.op]
        return f"({col} IS NOT NULL AND {col} {sql_op} {value})"

    def compare_json(self, node: ir.Compare, params: Params) -> str:
        jt = self.json_type_expr(node.field, params)
        if node.value is None:
            is_null = f"({jt} IS NULL OR {jt} = 'null')"
            return is_null if node.op == ir.EQ else f"(NOT {is_null})"
        if node.op in (ir.EQ, ir.NE):
            equal = self.json_scalar_equals(jt, self.value_expr(node.field), node.value, params)
            return equal if node.op == ir.EQ else f"(NOT {equal})"
        sql_op = {ir.LT: "<", ir.LTE: "<=", ir.GT: ">", ir.GTE: ">="}[node.op]
        kinds = "('integer', 'real')" if is_number(node.value) else "('text')"
        return f"(COALESCE({jt} IN {kinds}, 0) AND {self.value_expr(node.field)} {sql_op} {params.add(node.value)})"

    def json_scalar_equals(self, type_expr: str, value_expr: str, value: Any, params: Params) -> str:
        """``value_expr`` (a JSON value split into SQL value and json type) equals ``value``."""
        if isinstance(value, bool):
            return f"COALESCE({type_expr} = '{'true' if value else 'false'}', 0)"
        if is_number(value):
            return f"COALESCE({type_expr} IN ('integer', 'real') AND {value_expr} = {params.add(value)}, 0)"
        if isinstance(value, str):
            return f"COALESCE({type_expr} = 'text' AND {value_expr} = {params.add(value)}, 0)"
        if isinstance(value, (dict, list)):
            # CASE, not AND: SQLite may evaluate both sides of AND, and a text value is not JSON.
            kind = "object" if isinstance(value, dict) else "array"
            mark = params.add(canonical_json_text(value))
            return f"(CASE WHEN {type_expr} = '{kind}' THEN bastion_json_canon({value_expr}) = {mark} ELSE 0 END)"
        if value is None:  # a JSON null element, as PostgreSQL's @> '[null]' finds it
            return f"COALESCE({type_expr} = 'null', 0)"
        return "0"

    def json_item_in(self, alias: str, values: tuple[Any, ...], params: Params) -> str:
        return self.json_in(f"{alias}.type", f"{alias}.value", values, params)

    def json_in(self, type_expr: str, value_expr: str, values: tuple[Any, ...], params: Params) -> str:
        """What an OR of ``json_scalar_equals`` over ``values`` means, with the numbers and the
        strings each in one IN list: thousands of ORs plan in quadratic time and nest too deep."""
        numbers = [v for v in values if is_number(v)]
        texts = [v for v in values if isinstance(v, str)]
        parts = [self.json_scalar_equals(type_expr, value_expr, v, params)
                 for v in values if not is_number(v) and not isinstance(v, str)]
        if numbers:
            marks = ", ".join(params.add(v) for v in numbers)
            parts.append(f"COALESCE({type_expr} IN ('integer', 'real') AND {value_expr} IN ({marks}), 0)")
        if texts:
            marks = ", ".join(params.add(v) for v in texts)
            parts.append(f"COALESCE({type_expr} = 'text' AND {value_expr} IN ({marks}), 0)")
        return balanced(parts, "OR") if parts else "0"

    def array_any(self, field: ir.Field, values: tuple[Any, ...], params: Params) -> str:
        col = quote(field.column)
        inside = self.json_item_in("j", values, params)
        return f"(json_type({col}) IS 'array' AND EXISTS (SELECT 1 FROM json_each({col}) j WHERE {inside}))"

    def in_values(self, node: ir.In, params: Params) -> str:
        field = node.field
        if not node.values:
            return "0"
        if field.type == "Array" and not field.path:
            return self.array_any(field, node.values, params)
        if field.path:
            return self.json_in(self.json_type_expr(field, params), self.value_expr(field), node.values, params)
        col = quote(field.column)
        if field.type == "Object":
            marks = ", ".join(params.add(canonical_json_text(v)) for v in node.values)
            return f"({col} IS NOT NULL AND COALESCE(bastion_json_canon({col}) IN ({marks}), 0))"
        marks = ", ".join(params.add(self.column_value(field.type, v)) for v in node.values)
        return f"({col} IS NOT NULL AND {col} IN ({marks}))"

    def in_subquery(self, node: ir.InSubQuery, ctx: Compilation) -> str:
        # Scalar columns of one kind compare as they are stored. Anything involving JSON (an
        # Object path, an Array's elements, a whole Object or Array) compares as canonical typed
        # text, so that "1" never equals 1, true never equals 1, and 1.0 equals 1, as in the matcher.
        sub = node.sub
        source = self.subquery_source(sub, ctx)
        field = node.field
        scalar = _scalar(field) and _scalar(sub.key)
        key_sql = self.value_expr(sub.key) if scalar else self.typed_key(sub.key)
        select_sql = f"SELECT {key_sql} FROM {source} AND {key_sql} IS NOT NULL"
        if scalar:
            return self.membership(field, select_sql, ctx.params)
        col = quote(field.column)
        if field.type == "Array" and not field.path:
            return (f"(json_type({col}) IS 'array' AND EXISTS (SELECT 1 FROM json_each({col}) j "
                    f"WHERE COALESCE(bastion_jkey(j.value, j.type, 1) IN ({select_sql}), 0)))")
        return f"COALESCE({self.typed_key(field)} IN ({select_sql}), 0)"

    def typed_key(self, field: ir.Field) -> str:
        """SQL for the canonical typed text of a field's value (NULL when it is null)."""
        if field.path:
            return f"bastion_jkey({self.value_expr(field)}, {self.json_type_expr(field, Params(self))}, 0)"
        return f"bastion_jkey({quote(field.column)}, '{field.type}', 0)"

    def subquery_key(self, key: ir.Field) -> str:
        return self.value_expr(key)

    def membership(self, field: ir.Field, select_sql: str, params: Params) -> str:
        col = quote(field.column)
        return f"({col} IS NOT NULL AND {col} IN ({select_sql}))"


def _scalar(field: ir.Field) -> bool:
    return not field.path and field.type in ("String", "Number", "Boolean", "Date", "Pointer", "File")
