"""Geo queries mean the same everywhere: SQLite, PostgreSQL and the in-memory matcher.

Hypothesis draws GeoPoints and Polygons from a small pool of coordinates (edges, poles, the
antimeridian, points a hair off a polygon's edge, where PostgreSQL's 1e-6 tolerance decides) and
geo constraints on them (polygon equality among them, PostgreSQL's ``~=``), alone or joined with a plain constraint by AND, $or and $nor. Every
adapter must return the objects the matcher accepts; with a top-level $nearSphere, nearest first
(the distance the adapter ordered by is recomputed with ``core/geo.py``), and count agrees.

Set ``BASTION_DIFF_EXAMPLES`` to run more (or fewer) than the default 150 examples.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bastion.core import geo
from bastion.core.query import ir
from bastion.core.query.geo_parse import distance_order
from bastion.core.query.matcher import matches
from bastion.core.query.parse import parse_where
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import ParseError
from bastion.ports.storage import MASTER, FindQuery, Record, StorageAdapter
from tests.differential.conftest import refill, with_classes

GEO = "DiffGeo"
SCHEMA = ClassSchema.new(GEO, {
    "loc": FieldType("GeoPoint"),
    "area": FieldType("Polygon"),
    "n": FieldType("Number"),
})
EXAMPLES = int(os.environ.get("BASTION_DIFF_EXAMPLES", "150"))


def lookup(class_name: str) -> ClassSchema | None:
    return SCHEMA if class_name == GEO else None


# --- values ------------------------------------------------------------------------------------

EPS = 1e-7  # inside PostgreSQL's polygon tolerance (1e-6)
NEAR_EPS = 3e-6  # just outside it
LATS = [-90.0, -45.5, -10.0, -1.0, -EPS, 0.0, EPS, NEAR_EPS, 0.5, 1.0, 1.0 + EPS, 5.0, 10.0, 10.0 - NEAR_EPS,
        45.0, 89.9, 90.0]
LNGS = [-180.0, -120.0, -10.0, -1.0, -EPS, 0.0, EPS, 0.5, 1.0, 1.0 - EPS, 5.0, 10.0, 10.0 + NEAR_EPS, 120.0,
        179.99, 180.0]

lats = st.sampled_from(LATS)
lngs = st.sampled_from(LNGS)
points = st.tuples(lats, lngs)
# Vertices from a coarse grid, so that edges pass through stored points (and a hair beside them).
GRID = [-10.0, -1.0, 0.0, 1.0, 5.0, 10.0, 45.0]
vertices = st.tuples(st.sampled_from(GRID), st.sampled_from(GRID))
polygons = st.lists(vertices, min_size=3, max_size=6)
numbers = st.sampled_from([0, 1, 2])
# Rings for polygon equality (PostgreSQL's ~=): one triangle turned, reversed, a hair off, and others.
RINGS = [[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
         [(0.0, 1.0), (1.0, 1.0), (0.0, 0.0)], [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0 + EPS)],
         [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0 + NEAR_EPS)], [(0.0, 0.0), (5.0, 5.0), (10.0, 0.0), (5.0, -5.0)]]
rings = st.sampled_from(RINGS)


def closed(ring: list[tuple[float, float]]) -> list[list[float]]:
    return [list(v) for v in (*ring, ring[0])]


@st.composite
def records(draw: st.DrawFn, index: int) -> Record:
    record: Record = {"objectId": f"g{index}", "_rperm": None, "_wperm": None}
    if draw(st.integers(0, 5)):
        record["loc"] = draw(points)
    if draw(st.booleans()):
        record["area"] = [list(v) for v in draw(polygons)]
    elif draw(st.booleans()):
        record["area"] = closed(draw(rings))  # as writes store a polygon
    if draw(st.booleans()):
        record["n"] = draw(numbers)
    return record


@st.composite
def datasets(draw: st.DrawFn) -> list[Record]:
    return [draw(records(i)) for i in range(draw(st.integers(0, 12)))]


# --- queries -----------------------------------------------------------------------------------


def gp(point: tuple[float, float]) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": point[0], "longitude": point[1]}


distances = st.sampled_from([0.0, 1e-6, 0.001, 0.0175, 0.02, 0.1, 0.5, 1.0, 3.2, -1.0])
units = st.sampled_from(["$maxDistance", "$maxDistanceInRadians", "$maxDistanceInKilometers", "$maxDistanceInMiles"])


@st.composite
def near(draw: st.DrawFn) -> dict[str, Any]:
    constraint: dict[str, Any] = {"$nearSphere": gp(draw(points))}
    if draw(st.integers(0, 3)):
        unit = draw(units)
        scale = {"$maxDistanceInKilometers": geo.EARTH_RADIUS_KM, "$maxDistanceInMiles": geo.EARTH_RADIUS_MILES}
        constraint[unit] = draw(distances) * scale.get(unit, 1.0)
    return {"loc": constraint}


def box(corners: tuple[tuple[float, float], tuple[float, float]]) -> dict[str, Any]:
    return {"loc": {"$within": {"$box": [gp(corners[0]), gp(corners[1])]}}}


def polygon(shape: tuple[str, list[tuple[float, float]]]) -> dict[str, Any]:
    kind, ring = shape
    if kind == "points":
        return {"loc": {"$geoWithin": {"$polygon": [gp(v) for v in ring]}}}
    pairs = [[lng, lat] for lat, lng in ring]  # a $polygon's pairs are [longitude, latitude]
    if kind == "pairs":
        return {"loc": {"$geoWithin": {"$polygon": pairs}}}
    return {"loc": {"$geoWithin": {"$polygon": {"__type": "Polygon", "coordinates": pairs}}}}


def center(arg: tuple[tuple[float, float], float]) -> dict[str, Any]:
    (lat, lng), radius = arg
    return {"loc": {"$geoWithin": {"$centerSphere": [[lng, lat], abs(radius)]}}}


geo_constraints = st.one_of(
    near(),
    st.tuples(st.one_of(points, vertices), st.one_of(points, vertices)).map(box),
    st.tuples(st.sampled_from(["points", "pairs", "object"]), polygons).map(polygon),
    st.tuples(points, distances).map(center),
    st.one_of(points, vertices).map(lambda p: {"area": {"$geoIntersects": {"$point": gp(p)}}}),
    rings.map(lambda r: {"area": {"__type": "Polygon", "coordinates": [list(v) for v in r]}}),
    rings.map(lambda r: {"area": {"$ne": {"__type": "Polygon", "coordinates": closed(r)}}}),
)
plain = st.one_of(numbers.map(lambda n: {"n": n}), numbers.map(lambda n: {"n": {"$gt": n}}),
                  st.just({"loc": {"$exists": False}}))


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    first = draw(geo_constraints)
    shape = draw(st.sampled_from(["alone", "and", "or", "nor", "and-or"]))
    if shape == "alone":
        return first
    other = draw(st.one_of(plain, geo_constraints))
    if shape == "and":
        return {**other, **first} if set(first).isdisjoint(other) else {"$and": [first, other]}
    if shape == "or":
        return {"$or": [first, other]}
    if shape == "nor":
        return {"$nor": [first]}
    return {**first, "$or": [draw(plain), draw(geo_constraints)]}


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage(adapter: tuple[Any, StorageAdapter]) -> tuple[Any, StorageAdapter]:
    return with_classes(adapter, [SCHEMA])


async def load(store: StorageAdapter, data: list[Record]) -> None:
    await refill(store, SCHEMA, data)


@settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(), batch=st.lists(queries(), min_size=4, max_size=12))
def test_geo_queries_agree_with_matcher(storage: tuple[Any, StorageAdapter], data: list[Record],
                                        batch: list[dict[str, Any]]) -> None:
    runner, store = storage
    runner.run(load(store, data))
    by_id = {record["objectId"]: record for record in data}
    for where in batch:
        try:
            node = parse_where(where, SCHEMA, GEO, lookup)
        except ParseError as exc:
            note(f"refused by the parser ({exc}): {where}")
            event(f"refused by the parser: {exc.code}")
            continue
        order = distance_order(where, SCHEMA)
        found = runner.run(store.find(SCHEMA, FindQuery(where=node, order=tuple(order)), MASTER))
        got = [row["objectId"] for row in found]
        want = {r["objectId"] for r in data if matches(node, r)}
        event("matches: " + ("none" if not want else "all" if len(want) == len(data) else "some"))
        context = f"\nwhere={where!r}\nIR={node!r}\nrecords:\n" + "\n".join(f"  {r}" for r in data)
        assert len(got) == len(set(got)), f"duplicate rows {got}{context}"
        assert set(got) == want, (f"{store.name} found {sorted(got)}, the matcher {sorted(want)}{context}")
        for key in order:
            assert isinstance(key, ir.DistanceOrder)
            far = [geo.distance(key.point, by_id[i]["loc"]) for i in got]
            assert far == sorted(far), f"{store.name} did not sort nearest first: {list(zip(got, far, strict=True))}{context}"
        counted = runner.run(store.count(SCHEMA, node, MASTER))
        assert counted == len(want), f"{store.name} counted {counted}, found {len(want)}{context}"
