"""SQLite storage: the embedded default. Parse Server's PostgreSQL layout, mirrored.

Tables are one per class with the same column names; arrays, objects and ``_rperm``/``_wperm`` are
JSON text, dates ISO-8601 text (which sorts as time does), booleans 0/1. Queries run on a small pool
of reader threads and every write on one writer thread, so the event loop never waits on SQLite
and writers never contend (WAL lets readers go on meanwhile).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import orjson

from bastion.adapters.storage.aggregate_sql import AggregateCompiler
from bastion.adapters.storage.base import (
    AUTH_PROVIDER,
    BASE_COLUMNS,
    HOOK_COLUMNS,
    MASTER,
    PUSH_QUEUE_COLUMNS,
    Access,
    DuplicateValue,
    FindQuery,
    Record,
    StorageAdapter,
    UpdateOp,
    apply_op,
    hook_key,
)
from bastion.adapters.storage.sql import Params, SqlDialect, balanced, quote
from bastion.adapters.storage.sqlite.aggregate import SqliteAggregateHooks
from bastion.adapters.storage.sqlite.columns import (
    NO_RENAMES,
    case_column,
    column_of,
    has_subquery,
    rename_fields,
    renamed_columns,
)
from bastion.domain import geo, text_search
from bastion.domain.aggregate import Plan
from bastion.domain.query import ir
from bastion.domain.query.matcher import compiled_regex
from bastion.domain.query.regex_guard import UnsafeRegex, regex_shape
from bastion.domain.schema import HIDDEN_COLUMNS, ClassSchema
from bastion.domain.types import FieldType, format_iso, is_number, parse_iso
from bastion.errors import Code, ParseError

T = TypeVar("T")

COLUMN_TYPES = {"String": "TEXT", "Number": "REAL", "Boolean": "INTEGER", "Date": "TEXT"}
JSON_TYPES = frozenset({"Object", "Array", "GeoPoint", "Polygon"})
INDEX_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}\Z")


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _in_int64(number: float) -> bool:
    return -(2**63) <= number < 2**63


def _canonical_json(value: Any) -> Any:
    """JSON as the matcher compares it: integral floats as integers (1.0 == 1), keys sorted.

    Integers beyond 64 bits are doubles, as JavaScript (and orjson, past 64 unsigned bits) reads
    them, so a value compares the same however it was spelled, and never overflows a binding."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and _in_int64(value) else value
    if isinstance(value, int) and not isinstance(value, bool) and not _in_int64(value):
        return float(value)
    if isinstance(value, list):
        return [_canonical_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _canonical_json(item) for key, item in value.items()}
    return value


def canonical_json_text(value: Any) -> str:
    return dumps(_canonical_json(value))


def _sqlite_json_canon(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        return canonical_json_text(orjson.loads(text))
    except orjson.JSONDecodeError:
        return None


def _sqlite_jkey(value: Any, kind: str, unwrap_pointer: int) -> str | None:
    """The canonical typed text of a value, for comparisons that must tell JSON types apart.

    ``kind`` is a SQLite JSON type (of a path or an array element) or a field type; with
    ``unwrap_pointer`` a Pointer object stands for its objectId, as the matcher reads arrays.
    """
    if value is None or kind == "null":
        return None
    if kind in ("true", "false"):
        return kind
    if kind == "Boolean":
        return "true" if value else "false"
    if kind == "Date":
        return "date:" + str(value)
    if kind in ("object", "array", "Object", "Array"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if unwrap_pointer and isinstance(parsed, dict) and parsed.get("__type") == "Pointer":
            parsed = parsed.get("objectId")
            if parsed is None:
                return None
        return canonical_json_text(parsed)
    return canonical_json_text(value)


# Python's re cannot be interrupted, so a match runs only when its worst case on the value is
# affordable (regex_guard), and one statement may spend this long in regular expressions in all.
REGEX_SECONDS = 2.0
_regex_clock = threading.local()
_TOO_COMPLEX = re.compile(r"too (large|many|big|complex)|stack overflow|too deep", re.IGNORECASE)


def _sqlite_regex(pattern: str, flags: int, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    ignore_case, multiline, extended = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    try:
        affordable = regex_shape(pattern, ignore_case, multiline, extended).affordable(len(value))
    except UnsafeRegex:
        affordable = False
    spent = getattr(_regex_clock, "spent", 0.0)
    if not affordable or spent > REGEX_SECONDS:
        _regex_clock.refused = "The regular expression is too costly to run on the stored values."
        raise RuntimeError("regular expression refused")  # SQLite aborts the statement
    started = time.perf_counter()
    found = compiled_regex(pattern, ignore_case, multiline, extended).search(value)
    _regex_clock.spent = spent + time.perf_counter() - started
    return 1 if found else 0


# --- full-text search: PostgreSQL's, as modelled in domain/text_search.py (the matcher's too) ----


def _timed(fn: Callable[[], T]) -> T:
    """Run a text search function within the statement's budget of Python time (as regexes)."""
    spent = getattr(_regex_clock, "spent", 0.0)
    if spent > REGEX_SECONDS:
        _regex_clock.refused = "The text search is too costly to run on the stored values."
        raise RuntimeError("text search refused")  # SQLite aborts the statement
    started = time.perf_counter()
    try:
        return fn()
    except text_search.RankTooCostly:
        _regex_clock.refused = "The text search is too costly to rank the stored values."
        raise
    finally:
        _regex_clock.spent = spent + time.perf_counter() - started


def _sqlite_ts_match(language: str, term: str, value: Any) -> int:
    return _timed(lambda: 1 if text_search.matches(language, term, value) else 0)


def _sqlite_ts_rank(language: str, term: str, value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    return _timed(lambda: text_search.rank(language, term, value))


# --- geo: the matcher's arithmetic (domain/geo.py) as SQL functions -----------------------------


def _stored_point(text: Any) -> geo.Point | None:
    if not isinstance(text, str):
        return None
    try:
        return geo.as_point(orjson.loads(text))
    except orjson.JSONDecodeError:
        return None


def _sqlite_geo_distance(point_text: Any, lat0: float, lng0: float, cos0: float) -> float | None:
    point = _stored_point(point_text)
    return None if point is None else geo.distance_from_terms((lat0, lng0, cos0), point[0], point[1])


# Beyond PostgreSQL's 1e-6 tolerance a point outside a polygon's bounding box is outside it, so
# the box spares the full test for most rows.
_BOX_MARGIN = 1e-5


@lru_cache(maxsize=64)
def _query_polygon(text: str) -> tuple[tuple[geo.Point, ...], tuple[float, float, float, float]]:
    vertices = tuple((float(lat), float(lng)) for lat, lng in orjson.loads(text))
    lats, lngs = [v[0] for v in vertices], [v[1] for v in vertices]
    return vertices, (min(lats) - _BOX_MARGIN, max(lats) + _BOX_MARGIN,
                      min(lngs) - _BOX_MARGIN, max(lngs) + _BOX_MARGIN)


def _sqlite_geo_in_polygon(point_text: Any, vertices_text: str) -> int:
    point = _stored_point(point_text)
    if point is None:
        return 0
    vertices, (south, north, west, east) = _query_polygon(vertices_text)
    if not (south <= point[0] <= north and west <= point[1] <= east):
        return 0
    return 1 if geo.in_polygon(point, vertices) else 0


def _sqlite_polygon_same(polygon_text: Any, other_text: str) -> int:
    if not isinstance(polygon_text, str):
        return 0
    return 1 if geo.same_polygon(orjson.loads(polygon_text), orjson.loads(other_text)) else 0


def _sqlite_polygon_contains(polygon_text: Any, lat: float, lng: float) -> int:
    if not isinstance(polygon_text, str):
        return 0
    try:
        polygon = orjson.loads(polygon_text)
    except orjson.JSONDecodeError:
        return 0
    return 1 if isinstance(polygon, list) and geo.in_polygon((lat, lng), polygon) else 0


def _run_guarded(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """Run one storage call; a regex refused or a statement SQLite finds too complex is a 102."""
    _regex_clock.spent = 0.0
    _regex_clock.refused = None
    try:
        return fn(conn)
    except sqlite3.OperationalError as exc:
        if _regex_clock.refused:
            raise ParseError(Code.INVALID_QUERY, _regex_clock.refused) from None
        if _TOO_COMPLEX.search(str(exc)):
            raise ParseError(Code.INVALID_QUERY, "The query is too complex.") from None
        if str(exc).startswith("no such table"):
            raise MissingTable(str(exc)) from None
        raise
    except OverflowError:  # an integer beyond 64 bits reached a parameter
        raise ParseError(Code.INVALID_QUERY, "A number in the query is out of range.") from None


class MissingTable(Exception):
    """The class's table is gone (dropped by another process after this one cached the schema):
    reads find nothing and writes touch nothing, as on PostgreSQL."""


async def _or_missing(call: Awaitable[T], default: T) -> T:
    try:
        return await call
    except MissingTable:
        return default


def _hidden_type(schema: ClassSchema, column: str) -> FieldType | None:
    kind = HIDDEN_COLUMNS.get(schema.class_name, {}).get(column)
    return FieldType(kind) if kind else None


# The SQLite storage whose transaction the current task is inside (see SqliteStorage.transaction).
_TRANSACTION: ContextVar[SqliteStorage | None] = ContextVar("bastion_sqlite_transaction", default=None)


def _in_savepoint(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """One storage call inside a transaction: undone alone when it fails, as outside one."""
    conn.execute('SAVEPOINT "bastion_call"')
    try:
        result = _run_guarded(fn, conn)
    except BaseException:
        conn.execute('ROLLBACK TO "bastion_call"')
        conn.execute('RELEASE "bastion_call"')
        raise
    conn.execute('RELEASE "bastion_call"')
    return result


def json_path(path: tuple[str, ...]) -> str:
    # Path keys go inside an SQL string literal: the query parser refuses quotes, backslashes and
    # NUL in them, and this refuses them again rather than trust it.
    if any(c in part for part in path for c in "'\"\\\x00"):
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid key name.")
    return "$" + "".join('."' + part + '"' for part in path)


class SqliteDialect(SqlDialect):
    def placeholder(self, index: int) -> str:
        return "?"

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

    def _perm_predicate(self, column: str, access: Access, params: Params, table: str | None) -> str:
        if access.acting_as is None:
            return "1"
        col = f"{table}.{quote(column)}" if table else quote(column)
        marks = ", ".join(params.add(entry) for entry in access.acting_as)
        if not marks:
            return f"({col} IS NULL)"
        return f"({col} IS NULL OR EXISTS (SELECT 1 FROM json_each({col}) WHERE json_each.value IN ({marks})))"

    def read_access(self, access: Access, params: Params, table: str | None = None) -> str:
        return self._perm_predicate("_rperm", access, params, table)

    def write_access(self, access: Access, params: Params) -> str:
        return self._perm_predicate("_wperm", access, params, None)

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

    def leaf(self, node: ir.Node, params: Params, schema_lookup: Any, access: Access) -> str:
        if isinstance(node, ir.Compare):
            return self.compare(node, params)
        if isinstance(node, ir.In):
            return self.in_values(node, params)
        if isinstance(node, ir.ArrayContains):
            return self.array_any(node.field, (node.value,), params)
        if isinstance(node, ir.ArrayStartsWith):
            col = quote(node.field.column)
            first, second = params.add(node.prefix), params.add(node.prefix)
            return (f"(json_type({col}) IS 'array' AND EXISTS (SELECT 1 FROM json_each({col}) j "
                    f"WHERE j.type = 'text' AND substr(j.value, 1, length({first})) = {second}))")
        if isinstance(node, ir.ContainsAll):
            checks = [self.array_any(node.field, (value,), params) for value in node.values]
            return balanced([f"json_type({quote(node.field.column)}) IS 'array'", *checks], "AND")
        if isinstance(node, ir.ContainedBy):
            col = quote(node.field.column)
            inside = self.json_item_in("j", node.values, params)
            return f"(json_type({col}) IS 'array' AND NOT EXISTS (SELECT 1 FROM json_each({col}) j WHERE NOT {inside}))"
        if isinstance(node, ir.Exists):
            if node.field.path:
                jt = self.json_type_expr(node.field, params)
                return f"({jt} IS NOT NULL AND {jt} != 'null')"
            return f"({quote(node.field.column)} IS NOT NULL)"
        if isinstance(node, ir.Regex):
            flags = (1 if node.ignore_case else 0) | (2 if node.multiline else 0) | (4 if node.extended else 0)
            value = self.value_expr(node.field)
            guard = f"{self.json_type_expr(node.field, params)} = 'text' AND " if node.field.path else ""
            return f"({guard}bastion_regex({params.add(node.pattern)}, {flags}, {value}) = 1)"
        if isinstance(node, (ir.GeoNear, ir.GeoWithinBox, ir.GeoWithinPolygon, ir.PolygonContains)):
            return self.geo_leaf(node, params)
        if isinstance(node, ir.TextSearch):
            return (f"(bastion_ts_match({params.add(node.language)}, {params.add(node.term)}, "
                    f"{quote(node.field.column)}) = 1)")
        raise ParseError(Code.INVALID_QUERY, f"unsupported query node {type(node).__name__}")

    def text_rank(self, search: ir.TextSearch, params: Params) -> str:
        return f"bastion_ts_rank({params.add(search.language)}, {params.add(search.term)}, {quote(search.field.column)})"

    def distance(self, field: ir.Field, point: tuple[float, float], params: Params) -> str:
        """Radians from ``point`` to the GeoPoint column (NULL without one)."""
        terms = ", ".join(params.add(term) for term in geo.reference_terms(point))
        return f"bastion_geo_distance({quote(field.column)}, {terms})"

    def geo_leaf(self, node: ir.Node, params: Params) -> str:
        if isinstance(node, ir.GeoNear):
            if node.max_distance is None:
                return f"({quote(node.field.column)} IS NOT NULL)"
            distance = self.distance(node.field, node.point, params)
            return f"COALESCE({distance} <= {params.add(node.max_distance)}, 0)"
        if isinstance(node, ir.GeoWithinBox):
            col = quote(node.field.column)
            (south, west), (north, east) = node.south_west, node.north_east
            return (f"COALESCE(json_extract({col}, '$[0]') BETWEEN {params.add(south)} AND {params.add(north)} "
                    f"AND json_extract({col}, '$[1]') BETWEEN {params.add(west)} AND {params.add(east)}, 0)")
        if isinstance(node, ir.GeoWithinPolygon):
            vertices = params.add(dumps([list(v) for v in node.vertices]))
            return f"(bastion_geo_in_polygon({quote(node.field.column)}, {vertices}) = 1)"
        assert isinstance(node, ir.PolygonContains)
        lat, lng = node.point
        return f"(bastion_polygon_contains({quote(node.field.column)}, {params.add(lat)}, {params.add(lng)}) = 1)"

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

    def in_subquery(self, node: ir.InSubQuery, params: Params, schema_lookup: Any, access: Access,
                    depth: int) -> str:
        # Scalar columns of one kind compare as they are stored. Anything involving JSON (an
        # Object path, an Array's elements, a whole Object or Array) compares as canonical typed
        # text, so that "1" never equals 1, true never equals 1, and 1.0 equals 1, as in the matcher.
        sub = node.sub
        source = self.subquery_source(sub, params, schema_lookup, access, depth)
        field = node.field
        scalar = _scalar(field) and _scalar(sub.key)
        key_sql = self.value_expr(sub.key) if scalar else self.typed_key(sub.key)
        select_sql = f"SELECT {key_sql} FROM {source} AND {key_sql} IS NOT NULL"
        if scalar:
            return self.membership(field, select_sql, params)
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


class SqliteStorage(StorageAdapter):
    name = "sqlite"

    def __init__(self, path: str | Path, readers: int = 4) -> None:
        self.path = str(path)
        self.dialect = SqliteDialect()
        self._readers = readers
        self._read_pool: ThreadPoolExecutor | None = None
        self._write_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._tx_lock = asyncio.Lock()  # held by a transaction for its whole life (see transaction())
        self.schema_lookup: Callable[[str], ClassSchema | None] = lambda _name: None

    # --- threads and connections ----------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.create_function("bastion_regex", 3, _sqlite_regex, deterministic=True)
            conn.create_function("bastion_json_canon", 1, _sqlite_json_canon, deterministic=True)
            conn.create_function("bastion_jkey", 3, _sqlite_jkey, deterministic=True)
            conn.create_function("bastion_geo_distance", 4, _sqlite_geo_distance, deterministic=True)
            conn.create_function("bastion_geo_in_polygon", 2, _sqlite_geo_in_polygon, deterministic=True)
            conn.create_function("bastion_polygon_contains", 3, _sqlite_polygon_contains, deterministic=True)
            conn.create_function("bastion_polygon_same", 2, _sqlite_polygon_same, deterministic=True)
            conn.create_function("bastion_ts_match", 3, _sqlite_ts_match, deterministic=True)
            conn.create_function("bastion_ts_rank", 3, _sqlite_ts_rank, deterministic=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._read_pool is not None, "storage is not open"
        loop = asyncio.get_running_loop()
        if _TRANSACTION.get() is self:  # on the transaction's connection, to see its own writes
            return await self._on_writer(lambda conn: _run_guarded(fn, conn))
        return await loop.run_in_executor(self._read_pool, lambda: _run_guarded(fn, self._connection()))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._write_pool is not None, "storage is not open"
        if _TRANSACTION.get() is self:
            return await self._on_writer(lambda conn: _in_savepoint(fn, conn))
        if self._tx_lock.locked():
            # Another task's transaction holds the writer: wait for its end. Nothing awaits between
            # the release and the submission below, so no new transaction can begin in between.
            async with self._tx_lock:
                pass

        def run() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = _run_guarded(fn, conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, run)

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._write_pool is not None, "storage is not open"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, lambda: fn(self._connection()))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One SQLite transaction on the writer thread (BEGIN IMMEDIATE ... COMMIT), held across this
        task's calls; other tasks' writes wait for it to end, their reads see the last commit."""
        if _TRANSACTION.get() is self:
            yield
            return
        async with self._tx_lock:
            await self._on_writer(lambda conn: conn.execute("BEGIN IMMEDIATE"))
            token = _TRANSACTION.set(self)
            try:
                yield
            except BaseException:
                _TRANSACTION.reset(token)
                await self._on_writer(lambda conn: conn.execute("ROLLBACK"))
                raise
            _TRANSACTION.reset(token)
            try:
                await self._on_writer(lambda conn: conn.execute("COMMIT"))
            except BaseException:
                await self._on_writer(lambda conn: conn.execute("ROLLBACK") if conn.in_transaction else None)
                raise

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._read_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="sqlite-read")
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")

        def init(conn: sqlite3.Connection) -> None:
            conn.execute('CREATE TABLE IF NOT EXISTS "_SCHEMA" ("className" TEXT PRIMARY KEY, '
                         '"schema" TEXT, "isParseClass" INTEGER)')
            conn.execute('CREATE TABLE IF NOT EXISTS "_GlobalConfig" ("objectId" TEXT PRIMARY KEY, '
                         '"params" TEXT, "masterKeyOnly" TEXT)')
            conn.execute('CREATE TABLE IF NOT EXISTS "_Hooks" ("functionName" TEXT, "className" TEXT, '
                         '"triggerName" TEXT, "url" TEXT)')
            conn.execute('CREATE TABLE IF NOT EXISTS "_PushQueue" ("id" TEXT PRIMARY KEY, "pushId" TEXT, '
                         '"kind" TEXT, "body" TEXT, "attempts" INTEGER, "notBefore" INTEGER, "claimedBy" TEXT, '
                         '"claimedUntil" INTEGER)')
            conn.execute('CREATE INDEX IF NOT EXISTS "_PushQueue_due" ON "_PushQueue" ("notBefore")')
            conn.execute('CREATE TABLE IF NOT EXISTS "_ScriptLog" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, '
                         '"time" INTEGER NOT NULL, "level" TEXT NOT NULL, "entry" TEXT NOT NULL)')
            conn.execute('CREATE INDEX IF NOT EXISTS "_ScriptLog_time" ON "_ScriptLog" ("time")')

        await self._write(init)

    async def close(self) -> None:
        for pool in (self._read_pool, self._write_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # --- encoding -------------------------------------------------------------------------------

    def _encode_record(self, schema: ClassSchema, record: Record) -> dict[str, Any]:
        """Column -> SQLite value of a record's fields."""
        out: dict[str, Any] = {}
        renames = renamed_columns(schema)
        for column, value in record.items():
            if column in ("_rperm", "_wperm"):
                out[column] = dumps(value) if value is not None else None
            elif column in ("createdAt", "updatedAt"):
                out[column] = self.dialect.column_value("Date", value)
            else:
                ft = schema.fields.get(column) or _hidden_type(schema, column)
                out[column_of(renames, column)] = self.dialect.column_value(ft.type if ft else "String", value)
        return out

    def _decode_row(self, schema: ClassSchema, columns: list[str], row: tuple[Any, ...]) -> Record:
        record: Record = {}
        for column, value in zip(columns, row, strict=True):
            if value is None:
                record[column] = None
            elif column in ("_rperm", "_wperm"):
                record[column] = orjson.loads(value)
            elif column in ("createdAt", "updatedAt"):
                record[column] = parse_iso(value)
            else:
                ft = schema.fields.get(column) or _hidden_type(schema, column)
                record[column] = self._decode_value(ft, value)
        return record

    @staticmethod
    def _decode_value(ft: FieldType | None, value: Any) -> Any:
        kind = ft.type if ft else "String"
        if kind == "Date":
            return parse_iso(value)
        if kind == "Boolean":
            return bool(value)
        if kind == "GeoPoint":
            lat, lng = orjson.loads(value)
            return (lat, lng)
        if kind in JSON_TYPES:
            return orjson.loads(value)
        return value

    def _columns(self, schema: ClassSchema) -> list[str]:
        cols = list(BASE_COLUMNS)
        cols.extend(name for name, ft in schema.fields.items()
                    if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL"))
        return cols

    # --- fields equal but for case (sqlite_columns) ---------------------------------------------

    def _renamed(self, schema: ClassSchema, node: Any) -> Any:
        """An IR node or order with its fields naming their columns (mostly: ``node`` itself)."""
        renames = renamed_columns(schema)
        if not renames and not (isinstance(node, ir.Node) and has_subquery(node)):
            return node
        return rename_fields(node, renames, self.schema_lookup)

    def _query_renamed(self, schema: ClassSchema, query: FindQuery) -> FindQuery:
        where, order = self._renamed(schema, query.where), self._renamed(schema, query.order)
        if where is query.where and order is query.order:
            return query
        score = self._renamed(schema, query.score) if query.score is not None else None
        return replace(query, where=where, order=order, score=score)

    @staticmethod
    def _reconcile_columns(conn: sqlite3.Connection, schema: ClassSchema) -> None:
        """Rename the columns whose field's column changed as a case sibling came or went."""
        renames = renamed_columns(schema)
        actual = {row[1] for row in conn.execute(f"PRAGMA table_info({quote(schema.class_name)})")}
        stored = [name for name, ft in schema.fields.items()
                  if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL")]
        # Plain names are given up before any is taken, so no two columns are ever equal but for case.
        for name in sorted(stored, key=lambda n: n not in renames):
            wanted = column_of(renames, name)
            other = case_column(name) if wanted == name else name
            if wanted not in actual and other in actual:
                conn.execute(f"ALTER TABLE {quote(schema.class_name)} RENAME COLUMN {quote(other)} TO {quote(wanted)}")

    # --- schema ---------------------------------------------------------------------------------

    async def load_schemas(self) -> list[dict[str, Any]]:
        rows = await self._read(lambda c: c.execute('SELECT "schema" FROM "_SCHEMA"').fetchall())
        return [orjson.loads(row[0]) for row in rows]

    @staticmethod
    def _column_ddl(name: str, ft: FieldType) -> str:
        return f"{quote(name)} {COLUMN_TYPES.get(ft.type, 'TEXT')}"

    @staticmethod
    def _join_ddl(class_name: str, key: str, target: str | None) -> str:
        table = quote(f"_Join:{key}:{class_name}")
        return (f'CREATE TABLE IF NOT EXISTS {table} ("relatedId" TEXT NOT NULL, "owningId" TEXT NOT NULL, '
                f'PRIMARY KEY ("relatedId", "owningId"))')

    async def create_class(self, schema: ClassSchema) -> None:
        columns = ['"objectId" TEXT PRIMARY KEY', '"createdAt" TEXT', '"updatedAt" TEXT',
                   '"_rperm" TEXT', '"_wperm" TEXT']
        renames = renamed_columns(schema)
        for name, ft in schema.fields.items():
            if name in BASE_COLUMNS or ft.type in ("Relation", "ACL"):
                continue
            columns.append(self._column_ddl(column_of(renames, name), ft))
        for name, kind in HIDDEN_COLUMNS.get(schema.class_name, {}).items():
            if name not in schema.fields:
                columns.append(self._column_ddl(name, FieldType(kind)))
        doc = dumps(schema.to_storage())

        def run(conn: sqlite3.Connection) -> None:
            exists = conn.execute('SELECT 1 FROM "_SCHEMA" WHERE "className" = ?', (schema.class_name,)).fetchone()
            if exists:
                raise ParseError(Code.INVALID_CLASS_NAME, f"Class {schema.class_name} already exists.")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(schema.class_name)} ({', '.join(columns)})")
            for name, ft in schema.relation_fields().items():
                conn.execute(self._join_ddl(schema.class_name, name, ft.target_class))
            conn.execute('INSERT INTO "_SCHEMA" ("className", "schema", "isParseClass") VALUES (?, ?, 1)',
                         (schema.class_name, doc))

        await self._write(run)

    async def add_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        doc = dumps(schema.to_storage())

        renames = renamed_columns(schema)

        def run(conn: sqlite3.Connection) -> None:
            self._reconcile_columns(conn, schema)  # a sibling that sorts first takes the plain name
            existing = {row[1] for row in conn.execute(f"PRAGMA table_info({quote(schema.class_name)})")}
            for name, ft in fields.items():
                column = column_of(renames, name)
                if ft.type == "Relation":
                    conn.execute(self._join_ddl(schema.class_name, name, ft.target_class))
                elif ft.type != "ACL" and column not in existing:
                    conn.execute(f"ALTER TABLE {quote(schema.class_name)} ADD COLUMN {self._column_ddl(column, ft)}")
            conn.execute('UPDATE "_SCHEMA" SET "schema" = ? WHERE "className" = ?', (doc, schema.class_name))

        await self._write(run)

    async def delete_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        doc = dumps(schema.to_storage())

        def run(conn: sqlite3.Connection) -> None:
            table = quote(schema.class_name)
            actual = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, ft in fields.items():
                if ft.type == "Relation":
                    conn.execute(f"DROP TABLE IF EXISTS {quote(f'_Join:{name}:{schema.class_name}')}")
                    continue
                # The field's column is its name, or its case column when a sibling came first.
                column = name if name in actual else case_column(name)
                for (index_name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND instr(sql, ?) > 0",
                    (schema.class_name, quote(column)),
                ).fetchall():
                    conn.execute(f"DROP INDEX IF EXISTS {quote(index_name)}")
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {quote(column)}")
            self._reconcile_columns(conn, schema)
            conn.execute('UPDATE "_SCHEMA" SET "schema" = ? WHERE "className" = ?', (doc, schema.class_name))

        await self._write(run)

    async def save_schema(self, schema: ClassSchema) -> None:
        doc = dumps(schema.to_storage())
        await self._write(lambda c: c.execute('UPDATE "_SCHEMA" SET "schema" = ? WHERE "className" = ?',
                                              (doc, schema.class_name)))

    async def create_index(self, class_name: str, name: str, spec: dict[str, Any], unique: bool = False) -> None:
        if not INDEX_NAME.match(name):
            raise ParseError(Code.INVALID_QUERY, f"Invalid index name: {name[:64]}")
        terms = []
        schema = self.schema_lookup(class_name)
        renames = renamed_columns(schema) if schema is not None else NO_RENAMES
        for column, direction in spec.items():
            if direction == "text":
                continue
            terms.append(f"{quote(column_of(renames, column))} {'DESC' if direction == -1 else 'ASC'}")
        if not terms:
            return
        kind = "UNIQUE INDEX" if unique else "INDEX"
        sql = (f"CREATE {kind} IF NOT EXISTS {quote(class_name + '_' + name)} "
               f"ON {quote(class_name)} ({', '.join(terms)})")

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql)
            except sqlite3.IntegrityError:
                raise ParseError(Code.DUPLICATE_VALUE,
                                 "A duplicate value for a field with unique values was provided") from None

        await self._write(run)

    async def drop_index(self, class_name: str, name: str) -> None:
        await self._write(lambda c: c.execute(f"DROP INDEX IF EXISTS {quote(class_name + '_' + name)}"))

    async def ensure_auth_data_uniqueness(self, provider: str) -> None:
        if not AUTH_PROVIDER.fullmatch(provider):
            raise ValueError(f"invalid auth provider name {provider!r}")
        # DDL takes no parameters: the provider is a checked identifier-like literal.
        key = f"json_extract(\"authData\", '$.\"{provider}\".id')"
        index = quote(f"_User_unique_authData_{provider}_id")

        def run(conn: sqlite3.Connection) -> None:
            with suppress(sqlite3.IntegrityError):  # ids already duplicated: no index, as Parse
                conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS {index} ON "_User" ({key}) WHERE {key} IS NOT NULL')

        await self._write(run)

    async def delete_class(self, class_name: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f"DROP TABLE IF EXISTS {quote(class_name)}")
            prefix = "_Join:"
            suffix = ":" + class_name
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                if table.startswith(prefix) and table.endswith(suffix):
                    conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            conn.execute('DELETE FROM "_SCHEMA" WHERE "className" = ?', (class_name,))

        await self._write(run)

    async def purge(self, class_name: str) -> None:
        await _or_missing(self._write(lambda c: c.execute(f"DELETE FROM {quote(class_name)}")), None)

    # --- objects --------------------------------------------------------------------------------

    async def insert(self, schema: ClassSchema, record: Record) -> None:
        row = self._encode_record(schema, record)
        cols = list(row)
        sql = (f"INSERT INTO {quote(schema.class_name)} ({', '.join(quote(c) for c in cols)}) "
               f"VALUES ({', '.join('?' for _ in cols)})")
        values = tuple(row.values())

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql, values)
            except sqlite3.IntegrityError as exc:
                raise DuplicateValue(str(exc)) from None

        await self._write(run)

    async def update(self, schema: ClassSchema, object_id: str, ops: list[UpdateOp], access: Access,
                     where: ir.Node = ir.TRUE) -> Record | None:
        columns = self._columns(schema)
        renames = renamed_columns(schema)
        params = Params(self.dialect)
        object_mark = params.add(object_id)
        predicate = self.dialect.where(self._renamed(schema, where), params, self.schema_lookup, access)
        acl = self.dialect.write_access(access, params)
        select = (f"SELECT {', '.join(quote(column_of(renames, c)) for c in columns)} FROM {quote(schema.class_name)} "
                  f'WHERE "objectId" = {object_mark} AND {predicate} AND {acl}')
        select_params = tuple(params.values)

        def run(conn: sqlite3.Connection) -> Record | None:
            row = conn.execute(select, select_params).fetchone()
            if row is None:
                return None
            record = self._decode_row(schema, columns, row)
            changed: dict[str, Any] = {}
            for op in ops:
                record[op.column] = apply_op(record.get(op.column), op)
                changed[op.column] = record[op.column]
            if changed:
                encoded = self._encode_record(schema, changed)
                sets = ", ".join(f"{quote(c)} = ?" for c in encoded)
                try:
                    conn.execute(f'UPDATE {quote(schema.class_name)} SET {sets} WHERE "objectId" = ?',
                                 (*encoded.values(), object_id))
                except sqlite3.IntegrityError as exc:
                    raise DuplicateValue(str(exc)) from None
            return record

        return await _or_missing(self._write(run), None)

    async def delete(self, schema: ClassSchema, object_id: str, access: Access, where: ir.Node = ir.TRUE) -> bool:
        params = Params(self.dialect)
        mark = params.add(object_id)
        predicate = self.dialect.where(self._renamed(schema, where), params, self.schema_lookup, access)
        acl = self.dialect.write_access(access, params)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE "objectId" = {mark} AND {predicate} AND {acl}'
        values = tuple(params.values)
        return bool(await _or_missing(self._write(lambda c: c.execute(sql, values).rowcount), 0))

    async def delete_matching(self, schema: ClassSchema, where: ir.Node) -> int:
        params = Params(self.dialect)
        predicate = self.dialect.where(where, params, self.schema_lookup, MASTER)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE {predicate}'
        values = tuple(params.values)
        return int(await _or_missing(self._write(lambda c: c.execute(sql, values).rowcount), 0))

    async def find(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[Record]:
        columns = self._columns(schema) if query.columns is None else list(query.columns)
        renames = renamed_columns(schema)
        selected = [column_of(renames, c) for c in columns] if renames else columns
        sql, values = self.dialect.select(schema, self._query_renamed(schema, query), access, self.schema_lookup,
                                          selected)
        rows = await _or_missing(self._read(lambda c: c.execute(sql, values).fetchall()), [])
        return [self._decode_row(schema, columns, row) for row in rows]

    async def count(self, schema: ClassSchema, where: ir.Node, access: Access) -> int:
        sql, values = self.dialect.count(schema, self._renamed(schema, where), access, self.schema_lookup)
        row = await _or_missing(self._read(lambda c: c.execute(sql, values).fetchone()), (0,))
        return int(row[0])

    async def distinct(self, schema: ClassSchema, field: ir.Field, where: ir.Node, access: Access) -> list[Any]:
        params = Params(self.dialect)
        predicate = self.dialect.where(self._renamed(schema, where), params, self.schema_lookup, access)
        acl = self.dialect.read_access(access, params)
        table = quote(schema.class_name)
        ft = schema.fields.get(field.column)
        field = self._renamed(schema, field)
        expr = self.dialect.value_expr(field)
        if field.type == "Array" and not field.path:
            sql = (f"SELECT DISTINCT j.value, j.type FROM {table}, json_each({table}.{quote(field.column)}) j "
                   f"WHERE {predicate} AND {acl}")
        elif field.path:
            sql = (f"SELECT DISTINCT {expr}, json_type({quote(field.column)}, '{json_path(field.path)}') "
                   f"FROM {table} WHERE {predicate} AND {acl} AND {expr} IS NOT NULL")
        else:
            sql = f"SELECT DISTINCT {expr} FROM {table} WHERE {predicate} AND {acl} AND {expr} IS NOT NULL"
        values = params.values
        rows = await _or_missing(self._read(lambda c: c.execute(sql, values).fetchall()), [])
        if field.type == "Array" or field.path:
            return [_json_cell(value, kind) for value, kind in rows]
        return [self._decode_value(ft, row[0]) for row in rows]

    # --- relations ------------------------------------------------------------------------------

    async def add_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                            related_ids: list[str]) -> None:
        table = quote(f"_Join:{key}:{owning_class}")
        rows = [(related, owning_id) for related in related_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(self._join_ddl(owning_class, key, target_class))
            conn.executemany(f'INSERT OR IGNORE INTO {table} ("relatedId", "owningId") VALUES (?, ?)', rows)

        await self._write(run)

    async def remove_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                               related_ids: list[str]) -> None:
        table = quote(f"_Join:{key}:{owning_class}")
        rows = [(related, owning_id) for related in related_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(self._join_ddl(owning_class, key, target_class))
            conn.executemany(f'DELETE FROM {table} WHERE "relatedId" = ? AND "owningId" = ?', rows)

        await self._write(run)

    # --- config ---------------------------------------------------------------------------------

    async def get_config(self) -> dict[str, Any] | None:
        row = await self._read(lambda c: c.execute(
            'SELECT "params", "masterKeyOnly" FROM "_GlobalConfig" WHERE "objectId" = \'1\'').fetchone())
        if row is None:
            return None
        return {"params": orjson.loads(row[0] or "{}"), "masterKeyOnly": orjson.loads(row[1] or "{}")}

    async def set_config(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> None:
        values = (dumps(params), dumps(master_key_only))
        await self._write(lambda c: c.execute(
            'INSERT INTO "_GlobalConfig" ("objectId", "params", "masterKeyOnly") VALUES (\'1\', ?, ?) '
            'ON CONFLICT ("objectId") DO UPDATE SET "params" = excluded."params", '
            '"masterKeyOnly" = excluded."masterKeyOnly"', values))

    async def delete_config(self) -> bool:
        return bool(await self._write(
            lambda c: c.execute('DELETE FROM "_GlobalConfig" WHERE "objectId" = \'1\'').rowcount))

    # --- webhooks -------------------------------------------------------------------------------

    async def load_hooks(self) -> list[dict[str, Any]]:
        rows = await self._read(lambda c: c.execute(
            'SELECT "functionName", "className", "triggerName", "url" FROM "_Hooks" ORDER BY rowid').fetchall())
        return [dict(zip(HOOK_COLUMNS, row, strict=True)) for row in rows]

    async def save_hook(self, hook: dict[str, str]) -> None:
        key = hook_key(hook)
        match = " AND ".join(f'"{column}" = ?' for column in key)
        columns = (*key, "url")
        names = ", ".join(f'"{column}"' for column in columns)
        places = ", ".join("?" for _ in columns)

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute(f'UPDATE "_Hooks" SET "url" = ? WHERE {match}',
                            (hook["url"], *(hook[c] for c in key))).rowcount == 0:
                conn.execute(f'INSERT INTO "_Hooks" ({names}) VALUES ({places})', tuple(hook[c] for c in columns))

        await self._write(run)

    async def delete_hooks(self, hook: dict[str, str]) -> int:
        key = hook_key(hook)
        match = " AND ".join(f'"{column}" = ?' for column in key)
        return await self._write(lambda c: c.execute(f'DELETE FROM "_Hooks" WHERE {match}',
                                                     tuple(hook[col] for col in key)).rowcount)

    # --- the push queue -------------------------------------------------------------------------

    async def push_enqueue(self, rows: list[dict[str, Any]]) -> None:
        names = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
        places = ", ".join("?" for _ in PUSH_QUEUE_COLUMNS)
        values = [tuple(row.get(c) for c in PUSH_QUEUE_COLUMNS) for row in rows]
        await self._write(lambda c: c.executemany(f'INSERT INTO "_PushQueue" ({names}) VALUES ({places})', values))

    async def push_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
        names = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
        # The writer's BEGIN IMMEDIATE serialises this against every other process's claim.
        rows = await self._write(lambda c: c.execute(
            f'UPDATE "_PushQueue" SET "claimedBy" = ?, "claimedUntil" = ? WHERE "id" IN (SELECT "id" FROM '
            '"_PushQueue" WHERE "notBefore" <= ? AND ("claimedUntil" IS NULL OR "claimedUntil" < ?) '
            f'ORDER BY "notBefore", "id" LIMIT ?) RETURNING {names}',
            (worker, now + lease_ms, now, now, limit)).fetchall())
        return sorted((dict(zip(PUSH_QUEUE_COLUMNS, row, strict=True)) for row in rows),
                      key=lambda r: (r["notBefore"], r["id"]))

    async def push_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> bool:
        return bool(await self._write(lambda c: c.execute(
            'UPDATE "_PushQueue" SET "body" = ?, "attempts" = ?, "notBefore" = ?, "claimedBy" = NULL, '
            '"claimedUntil" = NULL WHERE "id" = ? AND "claimedBy" = ?',
            (body, attempts, not_before, row_id, worker)).rowcount))

    async def push_done(self, row_id: str, worker: str) -> bool:
        return bool(await self._write(lambda c: c.execute(
            'DELETE FROM "_PushQueue" WHERE "id" = ? AND "claimedBy" = ?', (row_id, worker)).rowcount))

    async def push_rows(self, push_id: str | None = None) -> list[dict[str, Any]]:
        names = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
        where, values = ('WHERE "pushId" = ?', (push_id,)) if push_id is not None else ("", ())
        rows = await self._read(lambda c: c.execute(
            f'SELECT {names} FROM "_PushQueue" {where} ORDER BY "notBefore", "id"', values).fetchall())
        return [dict(zip(PUSH_QUEUE_COLUMNS, row, strict=True)) for row in rows]

    # --- the script log ---------------------------------------------------------------------------

    async def log_append(self, rows: list[tuple[int, str, str]]) -> None:
        await self._write(lambda c: c.executemany(
            'INSERT INTO "_ScriptLog" ("time", "level", "entry") VALUES (?, ?, ?)', rows))

    async def log_read(self, since: int, until: int, level: str | None, limit: int, descending: bool) -> list[str]:
        direction = "DESC" if descending else "ASC"
        where, values = ('AND "level" = ?', (level,)) if level is not None else ("", ())
        rows = await self._read(lambda c: c.execute(
            f'SELECT "entry" FROM "_ScriptLog" WHERE "time" >= ? AND "time" <= ? {where} '
            f'ORDER BY "time" {direction}, "id" {direction} LIMIT ?', (since, until, *values, limit)).fetchall())
        return [row[0] for row in rows]

    async def log_trim(self, before: int, keep: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute('DELETE FROM "_ScriptLog" WHERE "time" < ?', (before,))
            conn.execute('DELETE FROM "_ScriptLog" WHERE "id" <= (SELECT "id" FROM "_ScriptLog" '
                         'ORDER BY "id" DESC LIMIT 1 OFFSET ?)', (keep,))

        await self._write(run)

    # --- aggregation pipelines ------------------------------------------------------------------

    async def aggregate(self, schema: ClassSchema, plan: Plan, access: Access) -> list[Record]:
        compiler = AggregateCompiler(self.dialect, SqliteAggregateHooks(), self.schema_lookup)
        renames = renamed_columns(schema)
        sql, values = compiler.compile(plan, schema, access, renames,
                                       lambda node: self._renamed(schema, node))
        rows = await self._read(lambda c: c.execute(sql, values).fetchall())
        decoders = [(c.name, self._aggregate_decoder(c.type)) for c in plan.columns]
        return [{name: None if value is None else decode(value) for (name, decode), value in zip(decoders, row,
                                                                                               strict=True)}
                for row in rows]

    def _aggregate_decoder(self, ft: FieldType) -> Callable[[Any], Any]:
        if ft.type == "Json":
            return orjson.loads
        if ft.type == "Number":
            return lambda v: v
        return lambda v: self._decode_value(ft, v)


def _json_cell(value: Any, kind: str) -> Any:
    if kind in ("object", "array"):
        return orjson.loads(value)
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind == "integer" or kind == "real":
        return value
    return value
