"""How PostgreSQL spells the query IR: leaves, access, order, full-text search, geo and update operations."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, assert_never

import asyncpg

from bastion.adapters.storage.postgres.codecs import encode_text
from bastion.adapters.storage.postgres.regex import pg_regex
from bastion.adapters.storage.sql import Compilation, GeoLeaf, Leaf, Params, SqlDialect, quote
from bastion.core import geo
from bastion.core.query import ir
from bastion.core.schema import HIDDEN_COLUMNS
from bastion.core.types import is_number, parse_iso
from bastion.errors import Code, ParseError
from bastion.ports.storage import Access, AddItems, Increment, RemoveItems, Set, SetPath, UpdateOp

# Parse Server's parseTypeToPostgresType; "Perms" is the text[] of _rperm/_wperm.
COLUMN_TYPES = {
    "String": "text",
    "Number": "double precision",
    "Boolean": "boolean",
    "Date": "timestamp with time zone",
    "Object": "jsonb",
    "Array": "jsonb",
    "Pointer": "text",
    "File": "text",
    "GeoPoint": "point",
    "Polygon": "polygon",
    "Bytes": "jsonb",
    "Perms": "text[]",
}
CASTS = {**COLUMN_TYPES, "Number": "float8", "Boolean": "bool", "Date": "timestamptz"}
TEXT_TYPES = frozenset({"String", "Pointer", "File"})
BASE_TYPES = {"objectId": "String", "createdAt": "Date", "updatedAt": "Date", "_rperm": "Perms", "_wperm": "Perms"}
# Columns Parse Server adds to _User besides its schema fields; created alike so both servers agree.
USER_INTERNAL_COLUMNS = HIDDEN_COLUMNS["_User"]
INDEX_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}\Z")
MAX_IDENTIFIER = 63  # PostgreSQL silently truncates longer names, so two long names could collide
COMPARATORS = {ir.LT: "<", ir.LTE: "<=", ir.GT: ">", ir.GTE: ">="}


def literal(text: str) -> str:
    """A SQL string literal, for names that belong to a statement's shape (JSON keys)."""
    return "'" + encode_text(text).replace("'", "''") + "'"


def is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


def jsonb_elements(array_sql: str) -> str:
    """The elements of a jsonb value when it is an array, else none (never an error)."""
    return f"jsonb_array_elements(CASE WHEN jsonb_typeof({array_sql}) = 'array' THEN {array_sql} END)"


def _is_array(array_sql: str) -> str:
    return f"COALESCE(jsonb_typeof({array_sql}) = 'array', FALSE)"


def _named(expr: str, alias: str) -> str:
    """A one-row derived table naming ``expr`` once.

    OFFSET 0 keeps the planner from pulling the subquery up, which would paste ``expr`` into every
    reference to its name: composed update operations would then grow exponentially at planning.
    """
    return f"(SELECT {expr} OFFSET 0) AS {alias}"


def _bytes_text(col: str) -> str:
    # Parse Server stores Bytes as {"__type": "Bytes", "base64": ...}; accept a bare string too.
    return f"(CASE WHEN jsonb_typeof({col}) = 'string' THEN {col} #>> '{{}}' ELSE {col} ->> 'base64' END)"


class PostgresDialect(SqlDialect):
    # --- Bastion's own tables (system_tables.py) ------------------------------------------------
    system_column_types = {"text": "text", "json": "jsonb", "integer": "integer", "bigint": "bigint"}
    # Rows another claim has locked are skipped, not waited for: each row goes to one process.
    claim_lock = " FOR UPDATE SKIP LOCKED"
    hooks_order = ""  # no ORDER BY, as Parse Server reads them

    def __init__(self, collate: str = ' COLLATE "C"') -> None:
        # Strings compare by code point everywhere; empty when the database's collation is C.
        self.collate = collate

    def placeholder(self, index: int) -> str:
        return f"${index}"

    @staticmethod
    def json_mark(mark: str) -> str:
        return f"{mark}::jsonb"

    @staticmethod
    def json_cell(cell: Any) -> Any:
        return cell  # the connection's jsonb codec decoded it

    def bind(self, params: Params, type_name: str, value: Any) -> str:
        return f"{params.add(self.encode(type_name, value))}::{CASTS[type_name]}"

    def encode(self, type_name: str, value: Any) -> Any:
        """column_value, with a value of the wrong shape refused as a client error."""
        try:
            return self.column_value(type_name, value)
        except (TypeError, ValueError):
            raise ParseError(Code.INCORRECT_TYPE, f"invalid value for a {type_name} field") from None

    def column_value(self, type_name: str, value: Any) -> Any:
        if value is None:
            return None
        if type_name == "Date":
            return parse_iso(value) if isinstance(value, str) else value
        if type_name == "Number":
            if not is_number(value):
                raise TypeError("not a number")
            return float(value)
        if type_name == "GeoPoint":
            lat, lng = value
            return asyncpg.Point(lng, lat)  # x is the longitude, as Parse Server stores it
        if type_name == "Polygon":
            return asyncpg.Polygon(*[asyncpg.Point(lng, lat) for lat, lng in value])
        if type_name == "Bytes":
            return {"__type": "Bytes", "base64": value}
        if type_name == "Perms":  # text[] elements bypass the connection's text codec
            return [encode_text(entry) for entry in value]
        return value

    # --- access ---------------------------------------------------------------------------------

    def perm_predicate(self, column: str, access: Access, params: Params, table: str | None) -> str:
        if access.acting_as is None:
            return "TRUE"
        col = f"{table}.{quote(column)}" if table else quote(column)
        # One array parameter whatever the number of roles, so the statement text stays the same.
        entries = [encode_text(entry) for entry in access.acting_as]
        return f"({col} IS NULL OR {col} && {params.add(entries)}::text[])"

    # --- values ---------------------------------------------------------------------------------

    def column_sql(self, field: ir.Field, table: str | None = None) -> str:
        return f"{table}.{quote(field.column)}" if table else quote(field.column)

    def json_expr(self, field: ir.Field, table: str | None = None) -> str:
        """The jsonb at a path; text keys, so that "0" never indexes into an array."""
        keys = "".join(f" -> {literal(part)}::text" for part in field.path)
        return f"({self.column_sql(field, table)}{keys})"

    def value_expr(self, field: ir.Field) -> str:
        return self.json_expr(field) if field.path else quote(field.column)

    def order_term(self, key: ir.Order, params: Params | None = None) -> str:
        if isinstance(key, ir.DistanceOrder):
            assert params is not None, "a distance order binds its point"
            return self.distance(key.field, key.point, params)  # rows without a point come last
        if not isinstance(key, ir.OrderKey):
            raise ParseError(Code.INVALID_QUERY, f"unsupported order {type(key).__name__}")
        field = key.field
        desc = " DESC" if key.descending else ""
        if field.path:
            # As SQLite orders json_extract(): nulls apart, numbers (and booleans) before text.
            v = self.json_expr(field)
            t = f"jsonb_typeof({v})"
            terms = [
                f"(COALESCE({t}, 'null') = 'null')",
                f"(COALESCE({t}, 'null') NOT IN ('number', 'boolean'))",
                f"(CASE {t} WHEN 'number' THEN ({v})::float8 "
                f"WHEN 'boolean' THEN CASE WHEN ({v})::boolean THEN 1 ELSE 0 END END)",
                f"(CASE {t} WHEN 'string' THEN {v} #>> '{{}}' ELSE ({v})::text END){self.collate}",
            ]
            return ", ".join(term + desc for term in terms)
        col = quote(field.column)
        if field.type in TEXT_TYPES:
            return f"{col}{self.collate}{desc}"
        if field.type == "GeoPoint":
            return f"({col})[1]{desc}, ({col})[0]{desc}"
        if field.type == "Polygon":
            return f"({col})::text{self.collate}{desc}"
        if field.type == "Bytes":
            return f"{_bytes_text(col)}{self.collate}{desc}"
        return f"{col}{desc}"

    # --- leaves ---------------------------------------------------------------------------------

    def leaf(self, node: Leaf, params: Params) -> str:
        match node:
            case ir.Compare():
                return self.compare_json(node, params) if node.field.path else self.compare(node, params)
            case ir.In():
                return self.in_values(node, params)
            case ir.ArrayContains():
                return self.contains_all(node.field, (node.value,), params)
            case ir.ContainsAll():
                return self.contains_all(node.field, node.values, params)
            case ir.ArrayStartsWith():
                prefix = params.add(node.prefix)
                return (f"EXISTS (SELECT 1 FROM {jsonb_elements(self.array_sql(node.field))} AS _e(_v) "
                        f"WHERE jsonb_typeof(_e._v) = 'string' AND starts_with(_e._v #>> '{{}}', {prefix}::text))")
            case ir.ContainedBy():
                return self.contained_by(node.field, node.values, params)
            case ir.Exists():
                if node.field.path:
                    return f"(COALESCE(jsonb_typeof({self.json_expr(node.field)}), 'null') <> 'null')"
                return f"({quote(node.field.column)} IS NOT NULL)"
            case ir.Regex():
                regex = params.add(pg_regex(node.pattern, node.ignore_case, node.multiline, node.extended))
                if node.field.path:
                    v = self.json_expr(node.field)
                    return f"(CASE WHEN jsonb_typeof({v}) = 'string' THEN ({v} #>> '{{}}') ~ {regex}::text ELSE FALSE END)"
                col = quote(node.field.column)
                return f"({col} IS NOT NULL AND {col} ~ {regex}::text)"
            case ir.GeoNear() | ir.GeoWithinBox() | ir.GeoWithinPolygon() | ir.PolygonContains():
                return self.geo_leaf(node, params)
            case ir.TextSearch():
                vector, query = self.text_search_terms(node, params)
                return f"COALESCE({vector} @@ {query}, FALSE)"
            case _:
                assert_never(node)

    # --- full-text search: Parse Server's SQL (the language reaches regconfig as bound text) -----

    def text_search_terms(self, search: ir.TextSearch, params: Params) -> tuple[str, str]:
        language = f"{params.add(search.language)}::text::regconfig"
        return (f"to_tsvector({language}, {quote(search.field.column)})",
                f"to_tsquery({language}, {params.add(search.term)}::text)")

    def text_rank(self, search: ir.TextSearch, params: Params) -> str:
        vector, query = self.text_search_terms(search, params)
        return f"ts_rank_cd({vector}, {query}, 32)"

    # --- geo: built-in operators and math, no PostGIS (same steps as core/geo.py) ------------

    def distance(self, field: ir.Field, point: tuple[float, float], params: Params) -> str:
        """Radians from ``point`` to the GeoPoint column (x longitude, y latitude), by haversine."""
        lat0, lng0, cos0 = (f"{params.add(term)}::float8" for term in geo.reference_terms(point))
        col = quote(field.column)
        lat = f"radians(({col})[1])"
        s = f"sin(({lat0} - {lat}) / 2)"
        t = f"sin(({lng0} - radians(({col})[0])) / 2)"
        return f"(2 * asin(sqrt(least(1, {s} * {s} + {cos0} * cos({lat}) * {t} * {t}))))"

    def geo_leaf(self, node: GeoLeaf, params: Params) -> str:
        col = quote(node.field.column)
        match node:
            case ir.GeoNear():
                if node.max_distance is None:
                    return f"({col} IS NOT NULL)"
                distance = self.distance(node.field, node.point, params)
                return f"({col} IS NOT NULL AND {distance} <= {params.add(node.max_distance)}::float8)"
            case ir.GeoWithinBox():
                (south, west), (north, east) = node.south_west, node.north_east
                corners = [f"{params.add(float(v))}::float8" for v in (west, south, east, north)]
                return (f"({col} IS NOT NULL AND {col} <@ box(point({corners[0]}, {corners[1]}), "
                        f"point({corners[2]}, {corners[3]})))")
            case ir.GeoWithinPolygon():
                return f"({col} IS NOT NULL AND {col} <@ {self.bind(params, 'Polygon', node.vertices)})"
            case ir.PolygonContains():
                lat, lng = node.point
                return (f"({col} IS NOT NULL AND {col} @> point({params.add(float(lng))}::float8, "
                        f"{params.add(float(lat))}::float8))")
            case _:
                assert_never(node)

    def equals(self, field: ir.Field, col: str, value: Any, params: Params) -> str:
        """``col`` (not null) equals the canonical ``value``; TRUE or FALSE."""
        kind = field.type
        if kind == "GeoPoint":
            lat, lng = value
            return (f"(({col})[0] = {params.add(float(lng))}::float8 "
                    f"AND ({col})[1] = {params.add(float(lat))}::float8)")
        if kind == "Polygon":
            # ~=, as Parse Server compares polygons: 1e-6 tolerance, any start point, either direction.
            return f"({col} ~= {self.bind(params, kind, value)})"
        if kind == "Bytes":
            return f"COALESCE({_bytes_text(col)} = {params.add(value)}::text, FALSE)"
        if kind in CASTS:
            return f"({col} = {self.bind(params, kind, value)})"
        return "FALSE"

    def compare(self, node: ir.Compare, params: Params) -> str:
        field, op, value = node.field, node.op, node.value
        col = quote(field.column)
        if value is None:
            return f"({col} IS NULL)" if op == ir.EQ else f"({col} IS NOT NULL)"
        if op == ir.EQ:
            return f"({col} IS NOT NULL AND {self.equals(field, col, value, params)})"
        if op == ir.NE:
            return f"({col} IS NULL OR NOT {self.equals(field, col, value, params)})"
        if field.type not in ("String", "Number", "Date"):
            return "FALSE"
        lhs = f"{col}{self.collate}" if field.type == "String" else col
        return f"({col} IS NOT NULL AND {lhs} {COMPARATORS[op]} {self.bind(params, field.type, value)})"

    def compare_json(self, node: ir.Compare, params: Params) -> str:
        op, value = node.op, node.value
        v = self.json_expr(node.field)
        t = f"jsonb_typeof({v})"
        if value is None:
            is_null = f"(COALESCE({t}, 'null') = 'null')"
            return is_null if op == ir.EQ else f"(NOT {is_null})"
        if op in (ir.EQ, ir.NE):
            # jsonb equality is JSON equality: numbers by value, objects by keys, arrays in order.
            equal = f"COALESCE({v} = {params.add(value)}::jsonb, FALSE)"
            return equal if op == ir.EQ else f"(NOT {equal})"
        if isinstance(value, str):
            return (f"(CASE WHEN {t} = 'string' THEN ({v} #>> '{{}}'){self.collate} {COMPARATORS[op]} "
                    f"{params.add(value)}::text ELSE FALSE END)")
        if is_number(value):
            # Integers compare exactly (numeric), floats as doubles, as Python compares them.
            cast = "numeric" if isinstance(value, int) else "float8"
            return (f"(CASE WHEN {t} = 'number' THEN ({v})::{cast} {COMPARATORS[op]} "
                    f"{params.add(value)}::{cast} ELSE FALSE END)")
        return "FALSE"

    def in_values(self, node: ir.In, params: Params) -> str:
        field = node.field
        values = [v for v in node.values if v is not None]
        if not values:
            return "FALSE"
        if field.type == "Array" and not field.path:
            a = quote(field.column)
            return (f"EXISTS (SELECT 1 FROM {jsonb_elements(a)} AS _e(_v) "
                    f"WHERE _e._v IN (SELECT jsonb_array_elements({params.add(values)}::jsonb)))")
        if field.path or field.type in ("Object", "Array"):
            v = self.value_expr(field)
            return f"COALESCE({v} IN (SELECT jsonb_array_elements({params.add(values)}::jsonb)), FALSE)"
        col = quote(field.column)
        kind = field.type
        if kind == "GeoPoint":
            lngs = params.add([float(lng) for _lat, lng in values])
            lats = params.add([float(lat) for lat, _lng in values])
            return (f"({col} IS NOT NULL AND EXISTS (SELECT 1 FROM unnest({lngs}::float8[], {lats}::float8[]) "
                    f"AS _g(_x, _y) WHERE _g._x = ({col})[0] AND _g._y = ({col})[1]))")
        if kind == "Polygon":
            return f"({col} IS NOT NULL AND (" + " OR ".join(self.equals(field, col, v, params) for v in values) + "))"
        if kind == "Bytes":
            return f"COALESCE({_bytes_text(col)} = ANY({params.add(values)}::text[]), FALSE)"
        if kind in TEXT_TYPES:  # text[] elements bypass the connection's text codec
            values = [encode_text(v) for v in values]
        if kind not in CASTS:
            return "FALSE"
        encoded = [self.column_value(kind, v) for v in values]
        return f"({col} IS NOT NULL AND {col} = ANY({params.add(encoded)}::{CASTS[kind]}[]))"

    def array_sql(self, field: ir.Field) -> str:
        return self.json_expr(field) if field.path else quote(field.column)

    def contains_all(self, field: ir.Field, values: Sequence[Any], params: Params) -> str:
        a = self.array_sql(field)
        scalars = [v for v in values if is_scalar(v)]
        parts = [f"{a} IS NOT NULL", f"jsonb_typeof({a}) = 'array'"]
        if scalars or not values:
            # For scalars, containment is element equality (and a GIN index can serve it); for
            # objects it is not ({"a":1,"b":2} contains {"a":1}), so those are compared one by one.
            parts.append(f"{a} @> {params.add(scalars)}::jsonb")
        for value in values:
            if not is_scalar(value):
                parts.append(f"EXISTS (SELECT 1 FROM {jsonb_elements(a)} AS _e(_v) WHERE _e._v = {params.add(value)}::jsonb)")
        return "(" + " AND ".join(parts) + ")"

    def contained_by(self, field: ir.Field, values: Sequence[Any], params: Params) -> str:
        a = self.array_sql(field)
        kept = list(values)
        if all(is_scalar(v) for v in kept):
            return f"({a} IS NOT NULL AND jsonb_typeof({a}) = 'array' AND {params.add(kept)}::jsonb @> {a})"
        return (f"({_is_array(a)} AND NOT EXISTS (SELECT 1 FROM {jsonb_elements(a)} AS _e(_v) WHERE NOT EXISTS "
                f"(SELECT 1 FROM jsonb_array_elements({params.add(kept)}::jsonb) AS _f(_w) WHERE _f._w = _e._v)))")

    # --- subqueries -----------------------------------------------------------------------------

    def json_of(self, field: ir.Field, table: str | None = None) -> str:
        """The field as the JSON value the matcher compares (SQL NULL where nothing can be equal)."""
        if field.path:
            return self.json_expr(field, table)
        col = self.column_sql(field, table)
        kind = field.type
        if kind in TEXT_TYPES or kind in ("Number", "Boolean"):
            return f"to_jsonb({col})"
        if kind in ("Object", "Array"):
            return col
        if kind == "Bytes":
            return f"to_jsonb({_bytes_text(col)})"
        if kind == "GeoPoint":  # (lat, lng) equals the JSON list [lat, lng]
            return f"(CASE WHEN {col} IS NOT NULL THEN jsonb_build_array(({col})[1], ({col})[0]) END)"
        return "NULL::jsonb"  # a date or a polygon never equals a JSON value

    @staticmethod
    def _native(kind: str) -> str | None:
        if kind in TEXT_TYPES:
            return "text"
        return kind if kind in ("Number", "Boolean", "Date", "GeoPoint", "Polygon", "Object", "Bytes") else None

    def in_subquery(self, node: ir.InSubQuery, ctx: Compilation) -> str:
        """``field IN (SELECT key FROM sub WHERE ... AND read access)``: one statement, no NULLs."""
        sub, field, key = node.sub, node.field, node.sub.key
        table = quote(sub.class_name)
        source = self.subquery_source(sub, ctx)
        outer_array = field.type == "Array" and not field.path
        native = self._native(field.type)
        if not outer_array and not field.path and not key.path and native and native == self._native(key.type):
            lhs, rhs = quote(field.column), self.column_sql(key, table)
            if native in ("GeoPoint", "Polygon"):  # no equality operator; exact text instead
                lhs, rhs = f"({lhs})::text", f"({rhs})::text"
            select = f"SELECT {rhs} FROM {source} AND {rhs} IS NOT NULL"
            return f"({quote(field.column)} IS NOT NULL AND {lhs} IN ({select}))"
        rhs = self.json_of(key, table)
        select = f"SELECT {rhs} FROM {source} AND COALESCE(jsonb_typeof({rhs}), 'null') <> 'null'"
        if outer_array:
            # An array of pointers matches by each pointer's objectId, as the matcher does.
            element = ("(CASE WHEN jsonb_typeof(_e._v) = 'object' AND _e._v ->> '__type' = 'Pointer' "
                       "THEN _e._v -> 'objectId' ELSE _e._v END)")
            return (f"EXISTS (SELECT 1 FROM {jsonb_elements(quote(field.column))} AS _e(_v) "
                    f"WHERE {element} IN ({select}))")
        lhs = self.json_of(field)
        return f"(COALESCE(jsonb_typeof({lhs}), 'null') <> 'null' AND {lhs} IN ({select}))"

    def subquery_key(self, key: ir.Field) -> str:
        return self.value_expr(key)

    def membership(self, field: ir.Field, select_sql: str, params: Params) -> str:
        # in_subquery is overridden with type-aware SQL; this stays for the abstract contract.
        col = quote(field.column)
        return f"COALESCE({col} IN ({select_sql}), FALSE)"

    # --- update operations ----------------------------------------------------------------------

    def op_sql(self, kind: str, op: UpdateOp, current: str, params: Params) -> str:
        """SQL computing ``apply_op(current, op)``; ``current`` appears once so ops compose."""
        if isinstance(op, Set):
            return self.bind(params, kind, op.value)
        if isinstance(op, Increment) and not op.path and kind == "Number":
            return f"(COALESCE({current}, 0) + {params.add(float(op.amount))}::float8)"
        if kind not in ("Object", "Array"):
            raise ParseError(Code.INCORRECT_TYPE, f"cannot apply {type(op).__name__} to a {kind} field")
        if isinstance(op, Increment):
            if not op.path:
                return f"(SELECT {self._json_increment('_w._d', op.amount, params)} FROM {_named(current, '_w(_d)')})"
            return self._set_path(current, op.path, lambda old: self._json_increment(old, op.amount, params))
        if isinstance(op, SetPath):
            if op.delete:
                return self._delete_path(current, op.path)
            mark = params.add(op.value)
            return self._set_path(current, op.path, lambda _old: f"COALESCE({mark}::jsonb, 'null'::jsonb)")
        array = "(CASE WHEN jsonb_typeof(_w._d) = 'array' THEN _w._d ELSE '[]'::jsonb END)"
        mark = params.add(list(op.items))
        if isinstance(op, AddItems) and not op.unique:
            body = f"{array} || {mark}::jsonb"
        elif isinstance(op, AddItems):
            # Append each item not yet present (JSON equality), first occurrence only, in order.
            body = (f"{array} || COALESCE((SELECT jsonb_agg(_x._v ORDER BY _x._i) "
                    f"FROM jsonb_array_elements({mark}::jsonb) WITH ORDINALITY AS _x(_v, _i) "
                    f"WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements({array}) AS _y(_v) WHERE _y._v = _x._v) "
                    f"AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements({mark}::jsonb) WITH ORDINALITY AS _z(_v, _i) "
                    f"WHERE _z._i < _x._i AND _z._v = _x._v)), '[]'::jsonb)")
        elif isinstance(op, RemoveItems):
            body = (f"COALESCE((SELECT jsonb_agg(_x._v ORDER BY _x._i) "
                    f"FROM jsonb_array_elements({array}) WITH ORDINALITY AS _x(_v, _i) "
                    f"WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements({mark}::jsonb) AS _y(_v) "
                    f"WHERE _y._v = _x._v)), '[]'::jsonb)")
        else:
            raise TypeError(f"unknown update op {op!r}")
        return f"(SELECT {body} FROM {_named(current, '_w(_d)')})"

    @staticmethod
    def _json_increment(old: str, amount: float | int, params: Params) -> str:
        """``old`` (jsonb) plus ``amount``, a non-number counting as 0, as Python adds them."""
        t = f"jsonb_typeof({old})"
        if isinstance(amount, int):
            # int + int stays exact (numeric); a float on either side makes a double.
            mark = params.add(amount)
            return (f"(CASE WHEN {t} IS DISTINCT FROM 'number' THEN to_jsonb({mark}::numeric) "
                    f"ELSE CASE WHEN scale(({old})::numeric) = 0 THEN to_jsonb(({old})::numeric + {mark}::numeric) "
                    f"ELSE to_jsonb(({old})::float8 + {mark}::float8) END END)")
        mark = params.add(float(amount))
        return f"to_jsonb((CASE WHEN {t} = 'number' THEN ({old})::float8 ELSE 0 END) + {mark}::float8)"

    @staticmethod
    def _set_path(current: str, path: tuple[str, ...], leaf: Callable[[str], str]) -> str:
        """Rebuild the object along ``path`` (non-objects become {}), the last key set to ``leaf``.

        Each level is named once in a LATERAL chain, so the SQL grows linearly with the depth.
        """
        levels = [_named("CASE WHEN jsonb_typeof(_s._c) = 'object' THEN _s._c ELSE '{}'::jsonb END", "_l0(_n0)")]
        for depth in range(1, len(path)):
            parent = f"_n{depth - 1} -> {literal(path[depth - 1])}::text"
            levels.append(_named(f"CASE WHEN jsonb_typeof({parent}) = 'object' THEN {parent} ELSE '{{}}'::jsonb END",
                                 f"_l{depth}(_n{depth})"))
        last = len(path) - 1
        value = leaf(f"(_n{last} -> {literal(path[last])}::text)")
        for depth in range(last, -1, -1):
            value = f"_n{depth} || jsonb_build_object({literal(path[depth])}::text, {value})"
        chain = " CROSS JOIN LATERAL ".join(levels)
        return f"(SELECT {value} FROM {_named(current, '_s(_c)')} CROSS JOIN LATERAL {chain})"

    @staticmethod
    def _delete_path(current: str, path: tuple[str, ...]) -> str:
        """Remove the key at ``path`` when every step to it is an object; a non-object becomes {}."""
        parent = "_w._d" + "".join(f" -> {literal(part)}::text" for part in path[:-1])
        keys = ", ".join(literal(part) for part in path)
        return (f"(SELECT CASE WHEN jsonb_typeof(_w._d) IS DISTINCT FROM 'object' THEN '{{}}'::jsonb "
                f"WHEN jsonb_typeof({parent}) = 'object' THEN _w._d #- ARRAY[{keys}]::text[] "
                f"ELSE _w._d END FROM {_named(current, '_w(_d)')})")
