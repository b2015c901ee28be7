"""SQL functions SQLite lacks, registered on every connection: canonical JSON and typed keys,
Python's regular expressions (time-boxed), PostgreSQL's full-text search and the matcher's geo.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import orjson

from bastion.core import geo, text_search
from bastion.core.query.matcher import compiled_regex
from bastion.core.query.regex_guard import UnsafeRegex, regex_shape

T = TypeVar("T")

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
regex_clock = threading.local()
TOO_COMPLEX = re.compile(r"too (large|many|big|complex)|stack overflow|too deep", re.IGNORECASE)


def _sqlite_regex(pattern: str, flags: int, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    ignore_case, multiline, extended = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    try:
        affordable = regex_shape(pattern, ignore_case, multiline, extended).affordable(len(value))
    except UnsafeRegex:
        affordable = False
    spent = getattr(regex_clock, "spent", 0.0)
    if not affordable or spent > REGEX_SECONDS:
        regex_clock.refused = "The regular expression is too costly to run on the stored values."
        raise RuntimeError("regular expression refused")  # SQLite aborts the statement
    started = time.perf_counter()
    found = compiled_regex(pattern, ignore_case, multiline, extended).search(value)
    regex_clock.spent = spent + time.perf_counter() - started
    return 1 if found else 0


# --- full-text search: PostgreSQL's, as modelled in core/text_search/ (the matcher's too) -----


def _timed(fn: Callable[[], T]) -> T:
    """Run a text search function within the statement's budget of Python time (as regexes)."""
    spent = getattr(regex_clock, "spent", 0.0)
    if spent > REGEX_SECONDS:
        regex_clock.refused = "The text search is too costly to run on the stored values."
        raise RuntimeError("text search refused")  # SQLite aborts the statement
    started = time.perf_counter()
    try:
        return fn()
    except text_search.RankTooCostly:
        regex_clock.refused = "The text search is too costly to rank the stored values."
        raise
    finally:
        regex_clock.spent = spent + time.perf_counter() - started


def _sqlite_ts_match(language: str, term: str, value: Any) -> int:
    return _timed(lambda: 1 if text_search.matches(language, term, value) else 0)


def _sqlite_ts_rank(language: str, term: str, value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    return _timed(lambda: text_search.rank(language, term, value))


# --- geo: the matcher's arithmetic (core/geo.py) as SQL functions -----------------------------


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


def register_functions(conn: sqlite3.Connection) -> None:
    """The functions the dialect's SQL calls, on one connection."""
    conn.create_function("bastion_regex", 3, _sqlite_regex, deterministic=True)
    conn.create_function("bastion_json_canon", 1, _sqlite_json_canon, deterministic=True)
    conn.create_function("bastion_jkey", 3, _sqlite_jkey, deterministic=True)
    conn.create_function("bastion_geo_distance", 4, _sqlite_geo_distance, deterministic=True)
    conn.create_function("bastion_geo_in_polygon", 2, _sqlite_geo_in_polygon, deterministic=True)
    conn.create_function("bastion_polygon_contains", 3, _sqlite_polygon_contains, deterministic=True)
    conn.create_function("bastion_polygon_same", 2, _sqlite_polygon_same, deterministic=True)
    conn.create_function("bastion_ts_match", 3, _sqlite_ts_match, deterministic=True)
    conn.create_function("bastion_ts_rank", 3, _sqlite_ts_rank, deterministic=True)
