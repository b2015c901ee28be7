"""PostgreSQL storage: Parse Server's table layout, served through an asyncpg pool.

A database written by Parse Server is served as it is: a table per class with typed columns
(``point`` for GeoPoints, ``polygon``, ``jsonb`` for objects, arrays and bytes, ``text[]`` for
``_rperm``/``_wperm``), the ``_SCHEMA`` table, ``_Join:<field>:<class>`` tables and ``_GlobalConfig``.

Every call is one statement with bound parameters, textually stable per query shape so asyncpg's
per-connection prepared statement cache serves it. Pooled connections are not reset on release
(one round trip saved per request), so nothing here may leave session state behind: no SET, no
LISTEN, no temporary objects; transactions are always closed by ``async with``.

PostgreSQL cannot hold the NUL character in ``text`` or ``jsonb``. Strings are therefore escaped on
their way in and out (by the connection's text and jsonb codecs): U+0001 becomes U+0001 U+0002 and
U+0000 becomes U+0001 U+0001. The escape preserves code point order, so equality, ``$in``, ranges and
sorting still mean what the matcher means; only a regular expression sees the escaped form, and
only for strings holding U+0000 or U+0001. Other strings are stored unchanged, as Parse Server
stores them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from datetime import datetime
from typing import Any, cast

import asyncpg
import orjson

from bastion.adapters.storage.aggregate_sql import AggregateCompiler
from bastion.adapters.storage.base import (
    AUTH_PROVIDER,
    BASE_COLUMNS,
    HOOK_COLUMNS,
    MASTER,
    PUSH_QUEUE_COLUMNS,
    Access,
    AddItems,
    DuplicateValue,
    FindQuery,
    Increment,
    Record,
    RemoveItems,
    Set,
    SetPath,
    StorageAdapter,
    UpdateOp,
    hook_key,
)
from bastion.adapters.storage.postgres import lateral, object_json
from bastion.adapters.storage.postgres.aggregate import PostgresAggregateHooks
from bastion.adapters.storage.postgres.batched_reads import BatchedReads
from bastion.adapters.storage.postgres.pool import ConnectionPool
from bastion.adapters.storage.sql import Params, SqlDialect, quote
from bastion.domain import geo
from bastion.domain.acl import perms_to_acl
from bastion.domain.aggregate import Plan
from bastion.domain.query import ir
from bastion.domain.schema import HIDDEN_COLUMNS, ClassSchema
from bastion.domain.types import FieldType, is_number, parse_iso
from bastion.errors import Code, ParseError

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


# --- U+0000, which PostgreSQL cannot store: an order-preserving escape ----------------------------


def encode_text(text: str) -> str:
    if "\x00" in text or "\x01" in text:
        return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")
    return text


# What the connection's text codec does to a value, done to array elements (which bypass it).
_ARRAY_ENCODERS: dict[str, Callable[[Any], Any]] = {"text": encode_text}


def decode_text(text: str) -> str:
    # Left to right, the two replacements meet the escapes exactly where encode_text put them;
    # a lone U+0001 (from another writer) is left as it is.
    if "\x01" in text:
        return text.replace("\x01\x01", "\x00").replace("\x01\x02", "\x01")
    return text


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(k): _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_strings(v, fn) for v in value]
    return value


def literal(text: str) -> str:
    """A SQL string literal, for names that belong to a statement's shape (JSON keys)."""
    return "'" + encode_text(text).replace("'", "''") + "'"


def is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


# --- regular expressions: Python's syntax (the matcher's) in PostgreSQL's ARE dialect -------------

_LEADING_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


def pg_regex(pattern: str, ignore_case: bool, multiline: bool, extended: bool) -> str:
    """Translate what differs: word boundaries, ``$`` before a final newline, ``\\xhh``, flags.

    Python's DOTALL (always on in the matcher) is PostgreSQL's default; Python's MULTILINE is
    PostgreSQL's ``w`` ("weird") mode: ``^``/``$`` at lines while ``.`` still matches a newline.
    Whatever PostgreSQL still refuses surfaces as ParseError(102) when the query runs.
    """
    while match := _LEADING_FLAGS.match(pattern):
        letters = match.group(1)
        ignore_case = ignore_case or "i" in letters
        multiline = multiline or "m" in letters
        extended = extended or "x" in letters
        pattern = pattern[match.end():]
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if d == "x" and _HEX2.match(pattern, i + 2):
                out.append("\\u00" + pattern[i + 2:i + 4])  # PostgreSQL's \x eats every hex digit
                i += 4
                continue
            if not in_class and d in "bB":
                out.append("\\y" if d == "b" else "\\Y")  # \b is a backspace in PostgreSQL
            else:
                out.append(c + d)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            start = i + 1
            if pattern.startswith("^", start):
                start += 1
            if pattern.startswith("]", start):  # a leading ] is literal in both dialects
                start += 1
            out.append(pattern[i:start])
            i = start
            continue
        if c == "$" and not multiline:
            out.append("(?=\\n?$)")  # Python's $ also matches before a final newline
        elif c == "#" and extended:
            end = pattern.find("\n", i)
            end = n if end < 0 else end
            out.append(pattern[i:end])
            i = end
            continue
        elif pattern.startswith("(?P<", i):
            close = pattern.find(">", i)
            if close < 0:
                raise ParseError(Code.INVALID_QUERY, "Invalid regular expression")
            out.append("(")  # named groups become plain groups; their numbers stay the same
            i = close + 1
            continue
        else:
            out.append(c)
        i += 1
    options = ("i" if ignore_case else "") + ("w" if multiline else "") + ("x" if extended else "")
    body = "".join(out)
    return f"(?{options}){body}" if options else body


# --- the dialect ---------------------------------------------------------------------------------


def _elements(array_sql: str) -> str:
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
    def __init__(self, collate: str = ' COLLATE "C"') -> None:
        # Strings compare by code point everywhere; empty when the database's collation is C.
        self.collate = collate

    def placeholder(self, index: int) -> str:
        return f"${index}"

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

    def _perm_predicate(self, column: str, access: Access, params: Params, table: str | None) -> str:
        if access.acting_as is None:
            return "TRUE"
        col = f"{table}.{quote(column)}" if table else quote(column)
        # One array parameter whatever the number of roles, so the statement text stays the same.
        entries = [encode_text(entry) for entry in access.acting_as]
        return f"({col} IS NULL OR {col} && {params.add(entries)}::text[])"

    def read_access(self, access: Access, params: Params, table: str | None = None) -> str:
        return self._perm_predicate("_rperm", access, params, table)

    def write_access(self, access: Access, params: Params) -> str:
        return self._perm_predicate("_wperm", access, params, None)

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

    def leaf(self, node: ir.Node, params: Params, schema_lookup: Any, access: Access) -> str:
        if isinstance(node, ir.Compare):
            return self.compare_json(node, params) if node.field.path else self.compare(node, params)
        if isinstance(node, ir.In):
            return self.in_values(node, params)
        if isinstance(node, ir.ArrayContains):
            return self.contains_all(node.field, (node.value,), params)
        if isinstance(node, ir.ContainsAll):
            return self.contains_all(node.field, node.values, params)
        if isinstance(node, ir.ArrayStartsWith):
            prefix = params.add(node.prefix)
            return (f"EXISTS (SELECT 1 FROM {_elements(self.array_sql(node.field))} AS _e(_v) "
                    f"WHERE jsonb_typeof(_e._v) = 'string' AND starts_with(_e._v #>> '{{}}', {prefix}::text))")
        if isinstance(node, ir.ContainedBy):
            return self.contained_by(node.field, node.values, params)
        if isinstance(node, ir.Exists):
            if node.field.path:
                return f"(COALESCE(jsonb_typeof({self.json_expr(node.field)}), 'null') <> 'null')"
            return f"({quote(node.field.column)} IS NOT NULL)"
        if isinstance(node, ir.Regex):
            regex = params.add(pg_regex(node.pattern, node.ignore_case, node.multiline, node.extended))
            if node.field.path:
                v = self.json_expr(node.field)
                return f"(CASE WHEN jsonb_typeof({v}) = 'string' THEN ({v} #>> '{{}}') ~ {regex}::text ELSE FALSE END)"
            col = quote(node.field.column)
            return f"({col} IS NOT NULL AND {col} ~ {regex}::text)"
        if isinstance(node, (ir.GeoNear, ir.GeoWithinBox, ir.GeoWithinPolygon, ir.PolygonContains)):
            return self.geo_leaf(node, params)
        if isinstance(node, ir.TextSearch):
            vector, query = self.text_search_terms(node, params)
            return f"COALESCE({vector} @@ {query}, FALSE)"
        raise ParseError(Code.INVALID_QUERY, f"unsupported query node {type(node).__name__}")

    # --- full-text search: Parse Server's SQL (the language reaches regconfig as bound text) -----

    def text_search_terms(self, search: ir.TextSearch, params: Params) -> tuple[str, str]:
        language = f"{params.add(search.language)}::text::regconfig"
        return (f"to_tsvector({language}, {quote(search.field.column)})",
                f"to_tsquery({language}, {params.add(search.term)}::text)")

    def text_rank(self, search: ir.TextSearch, params: Params) -> str:
        vector, query = self.text_search_terms(search, params)
        return f"ts_rank_cd({vector}, {query}, 32)"

    # --- geo: built-in operators and math, no PostGIS (same steps as domain/geo.py) ------------

    def distance(self, field: ir.Field, point: tuple[float, float], params: Params) -> str:
        """Radians from ``point`` to the GeoPoint column (x longitude, y latitude), by haversine."""
        lat0, lng0, cos0 = (f"{params.add(term)}::float8" for term in geo.reference_terms(point))
        col = quote(field.column)
        lat = f"radians(({col})[1])"
        s = f"sin(({lat0} - {lat}) / 2)"
        t = f"sin(({lng0} - radians(({col})[0])) / 2)"
        return f"(2 * asin(sqrt(least(1, {s} * {s} + {cos0} * cos({lat}) * {t} * {t}))))"

    def geo_leaf(self, node: ir.Node, params: Params) -> str:
        col = quote(node.field.column)  # type: ignore[attr-defined]
        if isinstance(node, ir.GeoNear):
            if node.max_distance is None:
                return f"({col} IS NOT NULL)"
            distance = self.distance(node.field, node.point, params)
            return f"({col} IS NOT NULL AND {distance} <= {params.add(node.max_distance)}::float8)"
        if isinstance(node, ir.GeoWithinBox):
            (south, west), (north, east) = node.south_west, node.north_east
            corners = [f"{params.add(float(v))}::float8" for v in (west, south, east, north)]
            return (f"({col} IS NOT NULL AND {col} <@ box(point({corners[0]}, {corners[1]}), "
                    f"point({corners[2]}, {corners[3]})))")
        if isinstance(node, ir.GeoWithinPolygon):
            return f"({col} IS NOT NULL AND {col} <@ {self.bind(params, 'Polygon', node.vertices)})"
        assert isinstance(node, ir.PolygonContains)
        lat, lng = node.point
        return (f"({col} IS NOT NULL AND {col} @> point({params.add(float(lng))}::float8, "
                f"{params.add(float(lat))}::float8))")

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
            return (f"EXISTS (SELECT 1 FROM {_elements(a)} AS _e(_v) "
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
                parts.append(f"EXISTS (SELECT 1 FROM {_elements(a)} AS _e(_v) WHERE _e._v = {params.add(value)}::jsonb)")
        return "(" + " AND ".join(parts) + ")"

    def contained_by(self, field: ir.Field, values: Sequence[Any], params: Params) -> str:
        a = self.array_sql(field)
        kept = list(values)
        if all(is_scalar(v) for v in kept):
            return f"({a} IS NOT NULL AND jsonb_typeof({a}) = 'array' AND {params.add(kept)}::jsonb @> {a})"
        return (f"({_is_array(a)} AND NOT EXISTS (SELECT 1 FROM {_elements(a)} AS _e(_v) WHERE NOT EXISTS "
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

    def in_subquery(self, node: ir.InSubQuery, params: Params, schema_lookup: Any, access: Access,
                    depth: int) -> str:
        """``field IN (SELECT key FROM sub WHERE ... AND read access)``: one statement, no NULLs."""
        sub, field, key = node.sub, node.field, node.sub.key
        table = quote(sub.class_name)
        source = self.subquery_source(sub, params, schema_lookup, access, depth)
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
            return (f"EXISTS (SELECT 1 FROM {_elements(quote(field.column))} AS _e(_v) "
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


# --- decoding ------------------------------------------------------------------------------------


def _decode_date(value: datetime) -> datetime:
    # Parse keeps milliseconds; a database written elsewhere may hold microseconds.
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if value.microsecond % 1000 else value


def _decode_geopoint(value: Any) -> tuple[float, float]:
    return (value[1], value[0])


def _decode_polygon(value: Any) -> list[list[float]]:
    return [[point[1], point[0]] for point in value.points]


def _decode_bytes(value: Any) -> Any:
    return value.get("base64") if isinstance(value, dict) else value


def _decode_perms(value: list[str]) -> list[str]:
    return [decode_text(entry) for entry in value]


DECODERS: dict[str, Callable[[Any], Any]] = {
    "Date": _decode_date,
    "GeoPoint": _decode_geopoint,
    "Polygon": _decode_polygon,
    "Bytes": _decode_bytes,
    "Perms": _decode_perms,
}


def _json_dumps(value: Any) -> bytes:
    text = orjson.dumps(value)
    if b"\\u0000" in text or b"\\u0001" in text:  # rare: escape, then serialise again
        text = orjson.dumps(_map_strings(value, encode_text))
    return text


def _json_loads(data: str) -> Any:
    value = orjson.loads(data)
    return _map_strings(value, decode_text) if "\\u0001" in data else value


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + _json_dumps(value)  # binary jsonb: a version byte, then the text


def _jsonb_decode(data: bytes) -> Any:
    value = orjson.loads(memoryview(data)[1:])
    # PostgreSQL writes U+0001 as \u0001 in JSON text; only then can an escape be inside.
    return _map_strings(value, decode_text) if data.find(b"\\u0001", 1) >= 0 else value


# What CREATE … IF NOT EXISTS raises when another process creates the same thing at the same
# moment: the catalog's unique indexes (on the relation, or on the table's row type) catch it.
_CREATED_CONCURRENTLY = (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError, asyncpg.DuplicateObjectError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")
    await conn.set_type_codec("json", encoder=lambda v: _json_dumps(v).decode(), decoder=_json_loads,
                              schema="pg_catalog", format="text")
    for text_type in ("text", "varchar"):
        await conn.set_type_codec(text_type, encoder=encode_text, decoder=decode_text,
                                  schema="pg_catalog", format="text")


@contextmanager
def _errors(missing: Callable[[], Exception] | None = None) -> Iterator[None]:
    """PostgreSQL errors a request can cause, as ParseErrors instead of 500s."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateValue(str(exc)) from None
    except asyncpg.UndefinedTableError:
        raise (missing() if missing else ParseError(Code.INVALID_CLASS_NAME, "Class does not exist.")) from None
    except asyncpg.UndefinedColumnError:  # a schema that names a field its table lacks
        raise ParseError(Code.INVALID_KEY_NAME, "A field of this class does not exist.") from None
    except asyncpg.InvalidRegularExpressionError:
        raise ParseError(Code.INVALID_QUERY, "Invalid regular expression") from None
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        raise ParseError(Code.INVALID_JSON, "A value holds a character PostgreSQL cannot store.") from None
    except asyncpg.NumericValueOutOfRangeError:
        raise ParseError(Code.INVALID_JSON, "Number is out of range.") from None
    except asyncpg.StringDataRightTruncationError:
        raise ParseError(Code.INVALID_JSON, "Value is too long.") from None
    except asyncpg.StatementTooComplexError:
        raise ParseError(Code.INVALID_QUERY, "Query is too complex.") from None
    except asyncpg.QueryCanceledError:  # statement_timeout, when the deployment sets one
        raise ParseError(Code.TIMEOUT, "Query took too long.") from None
    except asyncpg.ProgramLimitExceededError:  # e.g. a value too large for a btree index
        raise ParseError(Code.OBJECT_TOO_LARGE, "A value is too large for this database.") from None
    except asyncpg.DataError:  # a value the driver could not encode, or PostgreSQL could not read
        raise ParseError(Code.INCORRECT_TYPE, "A value does not fit its field's type.") from None


class _Missing(Exception):
    """The class table does not exist: the caller answers as for an empty class."""


def _missing() -> Exception:
    return _Missing()


class _Transaction:
    """A transaction's connection behind the pool's methods. Statements run one at a time (asyncpg
    allows one per connection), each in a savepoint: an error the adapter handles (a table not there
    yet) is undone alone instead of aborting the whole transaction."""

    def __init__(self, storage: PostgresStorage, conn: asyncpg.Connection) -> None:
        self.storage = storage
        self.conn = conn
        self.lock = asyncio.Lock()

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.lock, self.conn.transaction():
            return cast(str, await self.conn.execute(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.lock, self.conn.transaction():
            return cast(list[Any], await self.conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        async with self.lock, self.conn.transaction():
            return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.lock, self.conn.transaction():
            return await self.conn.fetchval(sql, *args)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.lock:
            yield self.conn


# The transaction the current task is inside (see PostgresStorage.transaction).
_TRANSACTION: ContextVar[_Transaction | None] = ContextVar("bastion_pg_transaction", default=None)


def _check_identifier(name: str, code: int) -> None:
    if len(name.encode()) > MAX_IDENTIFIER:
        raise ParseError(code, f"{name[:80]} is too long for PostgreSQL (63 bytes at most).")


class PostgresStorage(StorageAdapter):
    name = "postgres"

    def __init__(self, url: str, min_size: int = 2, max_size: int = 10, statement_cache_size: int = 1024,
                 server_settings: dict[str, str] | None = None) -> None:
        self.url = url
        self.dialect = PostgresDialect()
        self._min_size = min_size
        self._max_size = max_size
        self._statement_cache_size = statement_cache_size
        # Set once per connection at start-up (e.g. statement_timeout), so never left over by a request.
        self._server_settings = server_settings
        self._pool: ConnectionPool | None = None
        self._acl_suffixes: dict[tuple[tuple[str, ...] | None, tuple[str, ...] | None], str] = {}
        # Concurrent reads that one statement can answer share it (batched_reads.py).
        self._gets: BatchedReads[str, list[str] | None] = BatchedReads(max_batch=256)
        self._queries: BatchedReads[list[Any], list[str] | None] = BatchedReads(max_batch=64)
        self.schema_lookup: Callable[[str], ClassSchema | None] = lambda _name: None

    @property
    def pool(self) -> ConnectionPool:
        """The pool, or inside this task's transaction its connection (with the pool's methods)."""
        current = _TRANSACTION.get()
        if current is not None and current.storage is self:
            return cast(ConnectionPool, current)
        assert self._pool is not None, "storage is not open"
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One pooled connection in one transaction, used by every call of this task inside."""
        current = _TRANSACTION.get()
        if current is not None and current.storage is self:
            yield
            return
        async with self.pool.acquire() as conn, conn.transaction():
            token = _TRANSACTION.set(_Transaction(self, conn))
            try:
                yield
            finally:
                _TRANSACTION.reset(token)

    async def open(self) -> None:
        async def connect() -> asyncpg.Connection:
            conn = await asyncpg.connect(self.url, statement_cache_size=self._statement_cache_size,
                                         server_settings=self._server_settings)
            try:
                await _init_connection(conn)
            except BaseException:
                conn.terminate()
                raise
            return conn

        pool = ConnectionPool(connect, min_size=self._min_size, max_size=self._max_size)
        await pool.open()
        self._pool = pool
        async with self.pool.acquire() as conn:
            collation = await conn.fetchval(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()")
            self.dialect.collate = "" if collation in ("C", "POSIX") else ' COLLATE "C"'
            for ddl in ('CREATE TABLE IF NOT EXISTS "_SCHEMA" ("className" varchar(120), "schema" jsonb, '
                        '"isParseClass" bool, PRIMARY KEY ("className"))',
                        'CREATE TABLE IF NOT EXISTS "_GlobalConfig" ("objectId" text, "params" jsonb, '
                        '"masterKeyOnly" jsonb, PRIMARY KEY ("objectId"))',
                        'CREATE TABLE IF NOT EXISTS "_Hooks" ("functionName" text, "className" text, '
                        '"triggerName" text, "url" text)',
                        'CREATE TABLE IF NOT EXISTS "_PushQueue" ("id" text PRIMARY KEY, "pushId" text, '
                        '"kind" text, "body" text, "attempts" integer, "notBefore" bigint, "claimedBy" text, '
                        '"claimedUntil" bigint)',
                        'CREATE INDEX IF NOT EXISTS "_PushQueue_due" ON "_PushQueue" ("notBefore")',
                        'CREATE TABLE IF NOT EXISTS "_ScriptLog" ("id" bigserial PRIMARY KEY, "time" bigint NOT NULL, '
                        '"level" text NOT NULL, "entry" text NOT NULL)',
                        'CREATE INDEX IF NOT EXISTS "_ScriptLog_time" ON "_ScriptLog" ("time")'):
                # Another process may create it at the same moment.
                with suppress(*_CREATED_CONCURRENTLY):
                    await conn.execute(ddl)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # --- columns and values ---------------------------------------------------------------------

    @staticmethod
    def _kind(schema: ClassSchema, column: str) -> str:
        kind = BASE_TYPES.get(column)
        if kind:
            return kind
        ft = schema.fields.get(column)
        if ft is not None:
            return ft.type
        if schema.class_name == "_User" and column in USER_INTERNAL_COLUMNS:
            return USER_INTERNAL_COLUMNS[column]
        return "String"

    def _columns(self, schema: ClassSchema) -> list[str]:
        return list(schema.derive("columns", lambda: (*BASE_COLUMNS, *(
            name for name, ft in schema.fields.items() if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL")))))

    def _decoder(self, schema: ClassSchema, columns: list[str]) -> Callable[[Any], Record]:
        return schema.derive(("decoder", tuple(columns)), lambda: self._new_decoder(schema, columns))

    def _new_decoder(self, schema: ClassSchema, columns: list[str]) -> Callable[[Any], Record]:
        decoders = [(column, DECODERS.get(self._kind(schema, column))) for column in columns]

        def decode(row: Any) -> Record:
            record: Record = {}
            for (column, fn), value in zip(decoders, row, strict=True):
                record[column] = fn(value) if fn is not None and value is not None else value
            return record

        return decode

    @staticmethod
    def _column_ddl(name: str, kind: str) -> str:
        return f"{quote(name)} {COLUMN_TYPES.get(kind, 'text')}"

    @staticmethod
    def _join_ddl(class_name: str, key: str) -> str:
        table = quote(f"_Join:{key}:{class_name}")
        return (f'CREATE TABLE IF NOT EXISTS {table} ("relatedId" varchar(120), "owningId" varchar(120), '
                f'PRIMARY KEY ("relatedId", "owningId"))')

    # --- schema ---------------------------------------------------------------------------------

    async def load_schemas(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch('SELECT "schema" FROM "_SCHEMA"')
        return [row[0] for row in rows]

    async def create_class(self, schema: ClassSchema) -> None:
        schema.derived.clear()  # statements built for the old columns
        name = schema.class_name
        _check_identifier(name, Code.INVALID_CLASS_NAME)
        columns = ['"objectId" text', '"createdAt" timestamp with time zone',
                   '"updatedAt" timestamp with time zone', '"_rperm" text[]', '"_wperm" text[]']
        for field, ft in schema.fields.items():
            if field in BASE_COLUMNS or ft.type in ("Relation", "ACL"):
                continue
            _check_identifier(field, Code.INVALID_KEY_NAME)
            columns.append(self._column_ddl(field, ft.type))
        if name == "_User":
            columns.extend(self._column_ddl(c, kind) for c, kind in USER_INTERNAL_COLUMNS.items()
                           if c not in schema.fields)
        columns.append('PRIMARY KEY ("objectId")')
        relations = list(schema.relation_fields())
        for key in relations:
            _check_identifier(f"_Join:{key}:{name}", Code.INVALID_KEY_NAME)
        exists = ParseError(Code.INVALID_CLASS_NAME, f"Class {name} already exists.")
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if await conn.fetchval('SELECT 1 FROM "_SCHEMA" WHERE "className" = $1::text', name):
                    raise exists
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(columns)})")
                for key in relations:
                    await conn.execute(self._join_ddl(name, key))
                await conn.execute('INSERT INTO "_SCHEMA" ("className", "schema", "isParseClass") '
                                   'VALUES ($1::text, $2::jsonb, TRUE)', name, schema.to_storage())
        except _CREATED_CONCURRENTLY:
            raise exists from None  # a concurrent create of the same class won

    async def add_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        schema.derived.clear()  # statements built for the old columns
        table = quote(schema.class_name)
        with _errors():
            async with self.pool.acquire() as conn, conn.transaction():
                for name, ft in fields.items():
                    if ft.type == "Relation":
                        _check_identifier(f"_Join:{name}:{schema.class_name}", Code.INVALID_KEY_NAME)
                        await conn.execute(self._join_ddl(schema.class_name, name))
                    elif ft.type != "ACL" and name not in BASE_COLUMNS:
                        _check_identifier(name, Code.INVALID_KEY_NAME)
                        await conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "
                                           f"{self._column_ddl(name, ft.type)}")
                await conn.execute('UPDATE "_SCHEMA" SET "schema" = $1::jsonb WHERE "className" = $2::text',
                                   schema.to_storage(), schema.class_name)

    async def delete_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        schema.derived.clear()  # statements built for the old columns
        table = quote(schema.class_name)
        with _errors():
            async with self.pool.acquire() as conn, conn.transaction():
                for name, ft in fields.items():
                    if ft.type == "Relation":
                        await conn.execute(f"DROP TABLE IF EXISTS {quote(f'_Join:{name}:{schema.class_name}')}")
                    elif ft.type != "ACL" and name not in BASE_COLUMNS:
                        # Indexes on the column go with it, as in SQLite.
                        await conn.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {quote(name)}")
                await conn.execute('UPDATE "_SCHEMA" SET "schema" = $1::jsonb WHERE "className" = $2::text',
                                   schema.to_storage(), schema.class_name)

    async def save_schema(self, schema: ClassSchema) -> None:
        await self.pool.execute('UPDATE "_SCHEMA" SET "schema" = $1::jsonb WHERE "className" = $2::text',
                                schema.to_storage(), schema.class_name)

    @staticmethod
    def _index_name(class_name: str, name: str) -> str:
        if not INDEX_NAME.match(name):
            raise ParseError(Code.INVALID_QUERY, f"Invalid index name: {name[:64]}")
        full = f"{class_name}_{name}"  # index names are per schema, not per table
        _check_identifier(full, Code.INVALID_QUERY)
        return full

    async def create_index(self, class_name: str, name: str, spec: dict[str, Any], unique: bool = False) -> None:
        index = self._index_name(class_name, name)
        terms = [f"{quote(column)} {'DESC' if direction == -1 else 'ASC'}"
                 for column, direction in spec.items() if direction != "text"]
        if not terms:
            return
        kind = "UNIQUE INDEX" if unique else "INDEX"
        sql = f"CREATE {kind} IF NOT EXISTS {quote(index)} ON {quote(class_name)} ({', '.join(terms)})"
        try:
            await self.pool.execute(sql)
        except asyncpg.UniqueViolationError:
            raise ParseError(Code.DUPLICATE_VALUE,
                             "A duplicate value for a field with unique values was provided") from None
        except asyncpg.UndefinedColumnError as exc:
            raise ParseError(Code.INVALID_QUERY, f"{exc}, cannot add index.") from None
        except asyncpg.UndefinedTableError:
            raise ParseError(Code.INVALID_CLASS_NAME, f"Class {class_name} does not exist.") from None

    async def drop_index(self, class_name: str, name: str) -> None:
        index = self._index_name(class_name, name)
        async with self.pool.acquire() as conn, conn.transaction():
            # Ours carry the class prefix; Parse Server names indexes as given. Only this table's.
            found = await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = $1::text AND indexname = ANY($2::text[])", class_name, [index, name])
            for row in found:
                try:
                    await conn.execute(f"DROP INDEX IF EXISTS {quote(row[0])}")
                except asyncpg.DependentObjectsStillExistError:
                    raise ParseError(Code.INVALID_QUERY, f"Index {name} cannot be dropped.") from None

    async def ensure_auth_data_uniqueness(self, provider: str) -> None:
        if not AUTH_PROVIDER.fullmatch(provider):
            raise ValueError(f"invalid auth provider name {provider!r}")
        # Parse Server's own index, expression for expression, so both servers share it. DDL takes
        # no parameters: the provider is a checked identifier-like literal.
        key = f"((\"authData\" -> '{provider}'::text) ->> 'id'::text)"
        index = quote(f"_User_unique_authData_{provider}_id")
        with suppress(*_CREATED_CONCURRENTLY):
            await self.pool.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS {index} ON "_User" ({key}) '
                                    f"WHERE {key} IS NOT NULL")

    async def delete_class(self, class_name: str) -> None:
        suffix = ":" + class_name
        async with self.pool.acquire() as conn, conn.transaction():
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND starts_with(tablename::text, '_Join:')")
            await conn.execute(f"DROP TABLE IF EXISTS {quote(class_name)}")
            for (table,) in tables:
                if table.endswith(suffix):
                    await conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            await conn.execute('DELETE FROM "_SCHEMA" WHERE "className" = $1::text', class_name)

    async def purge(self, class_name: str) -> None:
        with suppress(asyncpg.UndefinedTableError):
            await self.pool.execute(f"DELETE FROM {quote(class_name)}")

    # --- objects --------------------------------------------------------------------------------

    async def insert(self, schema: ClassSchema, record: Record) -> None:
        kinds = tuple(self._kind(schema, column) for column in record)
        encode = self.dialect.encode
        values = [encode(kind, value) for kind, value in zip(kinds, record.values(), strict=True)]

        def make() -> str:
            marks = [f"${i}::{CASTS.get(kind, 'text')}" for i, kind in enumerate(kinds, 1)]
            return (f"INSERT INTO {quote(schema.class_name)} ({', '.join(quote(c) for c in record)}) "
                    f"VALUES ({', '.join(marks)})")

        # The statement's text depends on the columns and their types only: built once per schema.
        sql = schema.derive(("insert", tuple(record), kinds), make)
        with _errors(lambda: ParseError(Code.INVALID_CLASS_NAME, f"Class {schema.class_name} does not exist.")):
            await self.pool.execute(sql, *values)

    async def update(self, schema: ClassSchema, object_id: str, ops: list[UpdateOp], access: Access,
                     where: ir.Node = ir.TRUE) -> Record | None:
        columns = self._columns(schema)
        params = Params(self.dialect)
        object_mark = params.add(object_id)
        assignments: dict[str, str] = {}
        for op in ops:
            current = assignments.get(op.column, quote(op.column))
            assignments[op.column] = self.dialect.op_sql(self._kind(schema, op.column), op, current, params)
        predicate = self.dialect.where(where, params, self.schema_lookup, access)
        acl = self.dialect.write_access(access, params)
        table = quote(schema.class_name)
        condition = f'"objectId" = {object_mark}::text AND {predicate} AND {acl}'
        returning = ", ".join(quote(c) for c in columns)
        if assignments:
            sets = ", ".join(f"{quote(c)} = {expr}" for c, expr in assignments.items())
            sql = f"UPDATE {table} SET {sets} WHERE {condition} RETURNING {returning}"
        else:
            sql = f"SELECT {returning} FROM {table} WHERE {condition}"
        try:
            with _errors(_missing):
                row = await self.pool.fetchrow(sql, *params.values)
        except _Missing:
            return None
        return None if row is None else self._decoder(schema, columns)(row)

    async def delete(self, schema: ClassSchema, object_id: str, access: Access, where: ir.Node = ir.TRUE) -> bool:
        params = Params(self.dialect)
        mark = params.add(object_id)
        predicate = self.dialect.where(where, params, self.schema_lookup, access)
        acl = self.dialect.write_access(access, params)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE "objectId" = {mark}::text AND {predicate} AND {acl}'
        try:
            with _errors(_missing):
                status = await self.pool.execute(sql, *params.values)
        except _Missing:
            return False
        return status != "DELETE 0"

    async def delete_matching(self, schema: ClassSchema, where: ir.Node) -> int:
        params = Params(self.dialect)
        predicate = self.dialect.where(where, params, self.schema_lookup, MASTER)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE {predicate}'
        try:
            with _errors(_missing):
                status = await self.pool.execute(sql, *params.values)
        except _Missing:
            return 0
        return int(status.rsplit(" ", 1)[-1])

    async def find(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[Record]:
        columns = self._columns(schema) if query.columns is None else list(query.columns)
        sql, values = self.dialect.select(schema, query, access, self.schema_lookup, columns)
        rows = await self._class_rows(sql, *values)
        decode = self._decoder(schema, columns)
        return [decode(row) for row in rows]

    async def find_json(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[str] | None:
        columns = self._columns(schema) if query.columns is None else list(query.columns)
        expr = self._object_json(schema, columns)
        if expr is None:
            return None
        select_list = f'{expr}, "_rperm", "_wperm"'
        batching = _TRANSACTION.get() is None  # a transaction's reads use its one connection, in turn
        object_id = _point_read(query)
        if object_id is not None and batching:
            # Concurrent gets of this class, for this reader, share one statement (batched_reads.py).
            key = (id(schema), tuple(columns), None if access.is_master else tuple(access.acting_as or ()))
            return await self._gets.read(
                key, object_id,
                lambda: self._json_rows(*self.dialect.select(schema, query, access, self.schema_lookup, columns,
                                                             select_list)),
                lambda ids: self._json_by_ids(schema, ids, access, columns, expr))
        sql, values = self.dialect.select(schema, query, access, self.schema_lookup, columns, select_list)
        plan = lateral.lateral_plan(sql, len(values)) if batching else None
        shared = plan.shared_key(values) if plan is not None else None
        if plan is None or shared is None:
            return await self._json_rows(sql, values)
        # Concurrent queries of this statement, for this reader, run as one (lateral.py).
        return await self._queries.read((sql, shared), values, lambda: self._json_rows(sql, values),
                                        lambda runs: self._json_rows_lateral(plan, runs))

    async def _json_rows_lateral(self, plan: lateral.LateralPlan,
                                 runs: list[list[Any]]) -> list[list[str] | None]:
        """What ``_json_rows`` answers for each run's values, by one statement."""
        rows = await self._class_rows(plan.sql, *plan.arguments(runs, _ARRAY_ENCODERS))
        grouped: list[list[Any]] = [[] for _ in runs]
        for row in rows:
            grouped[row[0] - 1].append(row[1:])
        return [self._texts(group) for group in grouped]

    async def _class_rows(self, sql: str, *values: Any) -> list[asyncpg.Record]:
        """A read's rows; none when the class's table does not exist (an empty class)."""
        try:
            with _errors(_missing):
                return await self.pool.fetch(sql, *values)
        except _Missing:
            return []

    async def _json_rows(self, sql: str, values: list[Any]) -> list[str] | None:
        """The objects' JSON of a find_json statement (None: only the ordinary path can decode one)."""
        rows = await self._class_rows(sql, *values)
        return self._texts(rows)

    async def _json_by_ids(self, schema: ClassSchema, ids: list[str], access: Access, columns: list[str],
                           expr: str) -> list[list[str] | None]:
        """The answer of a get of each of ``ids`` (an id may come twice), by one statement."""
        query = FindQuery(ir.In(ir.Field("objectId", "String"), tuple(dict.fromkeys(ids))))
        sql, values = self.dialect.select(schema, query, access, self.schema_lookup, columns,
                                          select_list=f'"objectId", {expr}, "_rperm", "_wperm"')
        rows = await self._class_rows(sql, *values)
        found = {row[0]: self._texts([row[1:]]) for row in rows}
        return [found.get(object_id, []) for object_id in ids]

    def _texts(self, rows: Sequence[Sequence[Any]]) -> list[str] | None:
        """Rows of (object JSON, _rperm, _wperm) as the objects' JSON texts (None: one holds what
        only the ordinary path can decode)."""
        out = []
        for text, rperm, wperm in rows:
            text = self._object_text(text, rperm, wperm)
            if text is None:
                return None
            out.append(text)
        return out

    def _object_text(self, text: str, rperm: list[str] | None, wperm: list[str] | None) -> str | None:
        """A row's object JSON with its ACL (None: only the ordinary path can decode it)."""
        if "\\u0001" in text:  # an escaped U+0000/U+0001 inside
            return None
        if rperm is not None or wperm is not None:
            suffix = self._acl_suffix(rperm, wperm)
            if suffix:
                return text[:-1] + suffix
        return text

    def _acl_suffix(self, rperm: list[str] | None, wperm: list[str] | None) -> str:
        """``,"ACL":{...}}``, the end of an object's JSON with these permissions ("" for no ACL).
        Objects share few distinct permissions, so the text is kept per pair."""
        key = (tuple(rperm) if rperm is not None else None, tuple(wperm) if wperm is not None else None)
        suffix = self._acl_suffixes.get(key)
        if suffix is None:
            acl = perms_to_acl(rperm and _decode_perms(rperm), wperm and _decode_perms(wperm))
            suffix = "" if acl is None else ',"ACL":' + orjson.dumps(acl).decode() + "}"
            if len(self._acl_suffixes) >= 4096:
                self._acl_suffixes.clear()
            self._acl_suffixes[key] = suffix
        return suffix

    def _object_json(self, schema: ClassSchema, columns: list[str]) -> str | None:
        """The select-list expression writing these columns as REST JSON (None: not expressible)."""
        def make() -> str | None:
            described = [(c, self._kind(schema, c), self._target(schema, c)) for c in columns
                         if c not in ("_rperm", "_wperm")]
            relations = [(name, ft.target_class or "") for name, ft in schema.fields.items()
                         if ft.type == "Relation"]
            return object_json.object_json(described, relations)

        return schema.derive(("object_json", tuple(columns)), make)

    @staticmethod
    def _target(schema: ClassSchema, column: str) -> str | None:
        ft = schema.fields.get(column)
        return ft.target_class if ft is not None else None

    async def count(self, schema: ClassSchema, where: ir.Node, access: Access) -> int:
        sql, values = self.dialect.count(schema, where, access, self.schema_lookup)
        try:
            with _errors(_missing):
                return int(await self.pool.fetchval(sql, *values))
        except _Missing:
            return 0

    async def distinct(self, schema: ClassSchema, field: ir.Field, where: ir.Node, access: Access) -> list[Any]:
        params = Params(self.dialect)
        predicate = self.dialect.where(where, params, self.schema_lookup, access)
        acl = self.dialect.read_access(access, params)
        table = quote(schema.class_name)
        col = f"{table}.{quote(field.column)}"
        decode: Callable[[Any], Any] | None = None
        if field.type == "Array" and not field.path:
            sql = (f"SELECT DISTINCT _e._v FROM {table} CROSS JOIN LATERAL {_elements(col)} AS _e(_v) "
                   f"WHERE {predicate} AND {acl}")
        elif field.path:
            expr = self.dialect.json_expr(field, table)
            sql = (f"SELECT DISTINCT {expr} FROM {table} WHERE {predicate} AND {acl} "
                   f"AND COALESCE(jsonb_typeof({expr}), 'null') <> 'null'")
        else:
            kind = self._kind(schema, field.column)
            decode = DECODERS.get(kind)
            # Geometric types have no equality operator; their exact text stands in for DISTINCT.
            distinct = f"DISTINCT ON (({col})::text)" if kind in ("GeoPoint", "Polygon") else "DISTINCT"
            sql = f"SELECT {distinct} {col} FROM {table} WHERE {predicate} AND {acl} AND {col} IS NOT NULL"
        rows = await self._class_rows(sql, *params.values)
        return [decode(row[0]) if decode else row[0] for row in rows]

    # --- relations ------------------------------------------------------------------------------

    async def add_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                            related_ids: list[str]) -> None:
        if not related_ids:
            return
        sql = (f'INSERT INTO {quote(f"_Join:{key}:{owning_class}")} ("relatedId", "owningId") '
               'SELECT unnest($1::text[]), $2::text ON CONFLICT DO NOTHING')
        ids = [encode_text(i) for i in related_ids]  # text[] elements bypass the text codec
        with _errors():
            try:
                await self.pool.execute(sql, ids, owning_id)
            except asyncpg.UndefinedTableError:
                # The join table goes with the relation field; create it when data came first.
                async with self.pool.acquire() as conn:
                    await conn.execute(self._join_ddl(owning_class, key))
                    await conn.execute(sql, ids, owning_id)

    async def remove_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                               related_ids: list[str]) -> None:
        if not related_ids:
            return
        sql = (f'DELETE FROM {quote(f"_Join:{key}:{owning_class}")} '
               'WHERE "owningId" = $1::text AND "relatedId" = ANY($2::text[])')
        try:
            with _errors(_missing):
                await self.pool.execute(sql, owning_id, [encode_text(i) for i in related_ids])
        except _Missing:
            pass

    # --- config ---------------------------------------------------------------------------------

    async def get_config(self) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            'SELECT "params", "masterKeyOnly" FROM "_GlobalConfig" WHERE "objectId" = \'1\'')
        if row is None:
            return None
        return {"params": row[0] or {}, "masterKeyOnly": row[1] or {}}

    async def set_config(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> None:
        with _errors():
            await self.pool.execute(
                'INSERT INTO "_GlobalConfig" ("objectId", "params", "masterKeyOnly") VALUES (\'1\', $1::jsonb, '
                '$2::jsonb) ON CONFLICT ("objectId") DO UPDATE SET "params" = excluded."params", '
                '"masterKeyOnly" = excluded."masterKeyOnly"', params, master_key_only)

    async def delete_config(self) -> bool:
        with _errors():
            done = await self.pool.execute('DELETE FROM "_GlobalConfig" WHERE "objectId" = \'1\'')
        return done.rsplit(" ", 1)[-1] != "0"

    # --- webhooks -------------------------------------------------------------------------------

    async def load_hooks(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch('SELECT "functionName", "className", "triggerName", "url" FROM "_Hooks"')
        return [dict(zip(HOOK_COLUMNS, row, strict=True)) for row in rows]

    async def save_hook(self, hook: dict[str, str]) -> None:
        key = hook_key(hook)
        match = " AND ".join(f'"{column}" = ${i}' for i, column in enumerate(key, start=2))
        columns = (*key, "url")
        names = ", ".join(f'"{column}"' for column in columns)
        places = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(f'UPDATE "_Hooks" SET "url" = $1 WHERE {match}', hook["url"],
                                      *(hook[c] for c in key))
            if done == "UPDATE 0":
                await conn.execute(f'INSERT INTO "_Hooks" ({names}) VALUES ({places})',
                                   *(hook[c] for c in columns))

    async def delete_hooks(self, hook: dict[str, str]) -> int:
        key = hook_key(hook)
        match = " AND ".join(f'"{column}" = ${i}' for i, column in enumerate(key, start=1))
        done = await self.pool.execute(f'DELETE FROM "_Hooks" WHERE {match}', *(hook[c] for c in key))
        return int(done.rsplit(" ", 1)[-1])

    # --- the push queue -------------------------------------------------------------------------

    async def push_enqueue(self, rows: list[dict[str, Any]]) -> None:
        names = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
        places = ", ".join(f"${i}" for i in range(1, len(PUSH_QUEUE_COLUMNS) + 1))
        async with self.pool.acquire() as conn:  # inside a transaction: its connection
            await conn.executemany(f'INSERT INTO "_PushQueue" ({names}) VALUES ({places})',
                                   [tuple(row.get(c) for c in PUSH_QUEUE_COLUMNS) for row in rows])

    async def push_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
        names = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
        # Rows another claim has locked are skipped, not waited for: each row goes to one process.
        rows = await self.pool.fetch(
            f'UPDATE "_PushQueue" SET "claimedBy" = $1, "claimedUntil" = $2 WHERE "id" IN (SELECT "id" FROM '
            '"_PushQueue" WHERE "notBefore" <= $3 AND ("claimedUntil" IS NULL OR "claimedUntil" < $3) '
            f'ORDER BY "notBefore", "id" LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING {names}',
            worker, now + lease_ms, now, limit)
        return sorted((dict(zip(PUSH_QUEUE_COLUMNS, row, strict=True)) for row in rows),
                      key=lambda r: (r["notBefore"], r["id"]))

    async def push_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> bool:
        done = await self.pool.execute(
            'UPDATE "_PushQueue" SET "body" = $1, "attempts" = $2, "notBefore" = $3, "claimedBy" = NULL, '
            '"claimedUntil" = NULL WHERE "id" = $4 AND "claimedBy" = $5', body, attempts, not_before, row_id, worker)
        return done != "UPDATE 0"

    async def push_done(self, row_id: str, worker: str) -> bool:
        done = await self.pool.execute('DELETE FROM "_PushQueue" WHERE "id" = $1 AND "claimedBy" = $2',
                                       row_id, worker)
        return done != "DELETE 0"

    async def push_rows(self, push_id: str | None = None) -> list[dict[str, Any]]:
        names = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
        if push_id is None:
            rows = await self.pool.fetch(f'SELECT {names} FROM "_PushQueue" ORDER BY "notBefore", "id"')
        else:
            rows = await self.pool.fetch(f'SELECT {names} FROM "_PushQueue" WHERE "pushId" = $1 '
                                         'ORDER BY "notBefore", "id"', push_id)
        return [dict(zip(PUSH_QUEUE_COLUMNS, row, strict=True)) for row in rows]

    # --- the script log ---------------------------------------------------------------------------

    async def log_append(self, rows: list[tuple[int, str, str]]) -> None:
        async with self.pool.acquire() as conn:
            await conn.executemany('INSERT INTO "_ScriptLog" ("time", "level", "entry") VALUES ($1, $2, $3)', rows)

    async def log_read(self, since: int, until: int, level: str | None, limit: int, descending: bool) -> list[str]:
        direction = "DESC" if descending else "ASC"
        where, values = ('AND "level" = $4', (level,)) if level is not None else ("", ())
        rows = await self.pool.fetch(
            f'SELECT "entry" FROM "_ScriptLog" WHERE "time" >= $1 AND "time" <= $2 {where} '
            f'ORDER BY "time" {direction}, "id" {direction} LIMIT $3', since, until, limit, *values)
        return [row[0] for row in rows]

    async def log_trim(self, before: int, keep: int) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute('DELETE FROM "_ScriptLog" WHERE "time" < $1', before)
            await conn.execute('DELETE FROM "_ScriptLog" WHERE "id" <= (SELECT "id" FROM "_ScriptLog" '
                               'ORDER BY "id" DESC LIMIT 1 OFFSET $1)', keep)

    # --- aggregation pipelines ------------------------------------------------------------------

    async def aggregate(self, schema: ClassSchema, plan: Plan, access: Access) -> list[Record]:
        hooks = PostgresAggregateHooks(self.dialect.collate)
        sql, values = AggregateCompiler(self.dialect, hooks, self.schema_lookup).compile(plan, schema, access)
        rows = await self._class_rows(sql, *values)
        decoders = [(c.name, DECODERS.get(c.type.type)) for c in plan.columns]
        return [{name: fn(value) if fn is not None and value is not None else value
                 for (name, fn), value in zip(decoders, row, strict=True)} for row in rows]


def _point_read(query: FindQuery) -> str | None:
    """The id a query reads when it is a plain read of one object by id (a get), else None."""
    where = query.where
    if (type(where) is ir.Compare and where.op == ir.EQ and type(where.value) is str
            and where.field.column == "objectId" and not where.field.path and not query.order
            and not query.skip and query.score is None and (query.limit is None or query.limit > 0)):
        return where.value
    return None
