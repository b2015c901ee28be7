"""Geometry of geo queries, shared by the in-memory matcher and SQLite's registered functions.

PostgreSQL answers the same questions in SQL (``adapters/storage/postgres/dialect.py``); each function here
says which PostgreSQL expression it mirrors, step by step, so that both agree to the last bit on
the same machine (both call the C library's sin, cos, asin and sqrt).

Points are (latitude, longitude) in degrees. On PostgreSQL a GeoPoint is a ``point`` whose x is the
longitude and y the latitude (Parse Server's layout), and the planar tests below use that x and y.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import asin, cos, radians, sin, sqrt
from typing import Any

from bastion.core.types import is_number

# The radii the Parse SDKs divide by (withinKilometers, withinMiles) to turn distances into radians.
EARTH_RADIUS_KM = 6371.0
EARTH_RADIUS_MILES = 3958.8

Point = tuple[float, float]


def as_point(value: Any) -> Point | None:
    """A stored GeoPoint (a tuple, or a list when it came through JSON) as (lat, lng), else None."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_number(v) for v in value):
        return float(value[0]), float(value[1])
    return None


def reference_terms(point: Point) -> tuple[float, float, float]:
    """(latitude, longitude, cos latitude) of the reference point in radians, computed once per query;
    PostgreSQL receives the same three numbers as parameters."""
    lat = radians(point[0])
    return lat, radians(point[1]), cos(lat)


def distance_from_terms(terms: tuple[float, float, float], lat: float, lng: float) -> float:
    """Great-circle distance in radians (haversine, as the Parse SDK's ``radiansTo``).

    Mirrors PostgreSQL's ``2 * asin(sqrt(least(1, s*s + c0 * cos(radians(y)) * t*t)))`` with
    ``s = sin((lat0 - radians(y)) / 2)`` and ``t = sin((lng0 - radians(x)) / 2)``.
    """
    lat0, lng0, cos0 = terms
    rlat = radians(lat)
    s = sin((lat0 - rlat) / 2)
    t = sin((lng0 - radians(lng)) / 2)
    a = s * s + cos0 * cos(rlat) * t * t
    return 2 * asin(sqrt(min(1.0, a)))


def distance(a: Point, b: Point) -> float:
    """Radians between two (lat, lng) points."""
    return distance_from_terms(reference_terms(a), b[0], b[1])


def in_box(point: Point, south_west: Point, north_east: Point) -> bool:
    """``point <@ box``: PostgreSQL compares exactly, edges included."""
    lat, lng = point
    return south_west[0] <= lat <= north_east[0] and south_west[1] <= lng <= north_east[1]


# --- PostgreSQL's point-in-polygon test (geo_ops.c point_inside), with its 1e-6 tolerance ------------

_EPSILON = 1.0e-06
_ON_POLYGON = object()


def _zero(a: float) -> bool:
    return abs(a) <= _EPSILON


def _lt(a: float, b: float) -> bool:
    return a + _EPSILON < b


def _le(a: float, b: float) -> bool:
    return a <= b + _EPSILON


def _gt(a: float, b: float) -> bool:
    return a > b + _EPSILON


def _ge(a: float, b: float) -> bool:
    return a + _EPSILON >= b


def _crossing(x: float, y: float, prev_x: float, prev_y: float) -> int | object:
    """How the segment (prev -> current), relative to the tested point, crosses the positive x axis:
    +-2 across, +-1 touching, 0 not at all, or _ON_POLYGON when it passes through the point."""
    if _zero(y):
        if _zero(x):
            return _ON_POLYGON
        if _gt(x, 0):
            if _zero(prev_y):
                return 0 if _gt(prev_x, 0.0) else _ON_POLYGON
            return 1 if _lt(prev_y, 0.0) else -1
        if _zero(prev_y):
            return 0 if _lt(prev_x, 0.0) else _ON_POLYGON
        return 0
    y_sign = 1 if _gt(y, 0.0) else -1
    if _zero(prev_y):
        return 0 if _lt(prev_x, 0.0) else y_sign
    if (y_sign < 0 and _lt(prev_y, 0.0)) or (y_sign > 0 and _gt(prev_y, 0.0)):
        return 0
    if _ge(x, 0.0) and _gt(prev_x, 0.0):
        return 2 * y_sign
    if _lt(x, 0.0) and _le(prev_x, 0.0):
        return 0
    z = (x - prev_x) * y - (y - prev_y) * x
    if _zero(z):
        return _ON_POLYGON
    if (y_sign < 0 and _lt(z, 0.0)) or (y_sign > 0 and _gt(z, 0.0)):
        return 0
    return 2 * y_sign


def in_polygon(point: Point, vertices: Sequence[Sequence[float]]) -> bool:
    """``point <@ polygon`` (and ``polygon @> point``) as PostgreSQL decides it: inside, or on the
    boundary within 1e-6. ``vertices`` are (lat, lng) pairs; the test runs on x = lng, y = lat."""
    if not vertices:
        return False
    px, py = point[1], point[0]
    x0, y0 = vertices[0][1] - px, vertices[0][0] - py
    prev_x, prev_y = x0, y0
    total = 0
    for vertex in vertices[1:]:
        x, y = vertex[1] - px, vertex[0] - py
        cross = _crossing(x, y, prev_x, prev_y)
        if cross is _ON_POLYGON:
            return True
        total += cross  # type: ignore[operator]
        prev_x, prev_y = x, y
    cross = _crossing(x0, y0, prev_x, prev_y)
    if cross is _ON_POLYGON:
        return True
    return total + cross != 0  # type: ignore[operator]


def same_polygon(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> bool:
    """``a ~= b`` as PostgreSQL decides it for polygons (geo_ops.c poly_same): as many points,
    each equal within 1e-6, in the same cyclic order read forwards or backwards."""
    if not isinstance(a, (list, tuple)) or not isinstance(b, (list, tuple)):
        return False
    count = len(a)
    if count != len(b):
        return False

    def same(p: Sequence[float], q: Sequence[float]) -> bool:
        return all(x == y or abs(x - y) <= _EPSILON for x, y in zip(p, q, strict=True))

    for start in range(count):
        if not same(b[start], a[0]):
            continue
        if all(same(b[(start + i) % count], a[i]) for i in range(1, count)):
            return True
        if all(same(b[(start - i) % count], a[i]) for i in range(1, count)):
            return True
    return False
