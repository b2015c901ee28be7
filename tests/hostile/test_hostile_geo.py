"""Hostile geo queries through the wire: coordinates JSON cannot hold or that are not numbers at all,
huge and NaN-like values, wrong shapes in every geo operator, giant polygons, names with SQL in
them. Each refusal is a Parse error (4xx, ``{"code", "error"}``, nothing leaked); a giant polygon
the size limits let through is answered, and quickly. The seeded geo class is compared after every
test.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.hostile.test_hostile_input import SQL, assert_error, assert_ok, find, listing

BAD_NUMBERS: list[Any] = ["0", "NaN", "Infinity", "-Infinity", None, True, [], {}, [1, 2], {"$numberDouble": "1"},
                         1e308, -1e308, 181, -180.000001, 2**64]


def gp(lat: Any, lng: Any) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": lat, "longitude": lng}


@pytest.fixture(scope="module")
def geo_class(server: Server) -> Iterator[tuple[str, Any]]:
    cls = "HostileGeo" + str(int(time.time() * 1000) % 10**8)
    with server.client(master=True) as master:
        fields = {"name": {"type": "String"}, "loc": {"type": "GeoPoint"}, "area": {"type": "Polygon"}}
        assert master.post(f"/schemas/{cls}", json={"className": cls, "fields": fields}).status_code == 200
        for i in range(30):
            body = {"name": f"p{i}", "loc": gp(i - 15, 2 * i - 30),
                    "area": {"__type": "Polygon", "coordinates": [[0, 0], [i + 1, 0], [0, i + 1]]}}
            assert master.post(f"/classes/{cls}", json=body).status_code == 201
        yield cls, listing(master, cls)


@pytest.fixture(autouse=True)
def geo_data_unchanged(geo_class: tuple[str, Any], server: Server) -> Iterator[None]:
    yield
    with server.client(master=True) as master:
        assert listing(master, geo_class[0]) == geo_class[1], "hostile input changed data"


def constraints_with(bad: Any) -> list[tuple[str, dict[str, Any], bool]]:
    """Every geo operator with ``bad`` where a coordinate (False) or a distance (True) belongs."""
    return [
        ("loc", {"$nearSphere": gp(bad, 0)}, False),
        ("loc", {"$nearSphere": gp(0, bad)}, False),
        ("loc", {"$nearSphere": gp(0, 0), "$maxDistance": bad}, True),
        ("loc", {"$nearSphere": gp(0, 0), "$maxDistanceInKilometers": bad}, True),
        ("loc", {"$within": {"$box": [gp(bad, 0), gp(1, 1)]}}, False),
        ("loc", {"$geoWithin": {"$polygon": [gp(0, 0), gp(1, bad), gp(1, 0)]}}, False),
        ("loc", {"$geoWithin": {"$polygon": [[0, 0], [bad, 1], [1, 0]]}}, False),
        ("loc", {"$geoWithin": {"$polygon": {"__type": "Polygon", "coordinates": [[0, 0], [1, bad], [1, 0]]}}}, False),
        ("loc", {"$geoWithin": {"$centerSphere": [[bad, 0], 0.1]}}, False),
        ("loc", {"$geoWithin": {"$centerSphere": [[0, 0], bad]}}, True),
        ("area", {"$geoIntersects": {"$point": gp(0, bad)}}, False),
    ]


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
@pytest.mark.parametrize("via", ["url", "body"])
def test_bad_coordinates_and_distances(geo_class: tuple[str, Any], api: httpx.Client, bad: Any, via: str) -> None:
    for field, constraint, is_distance in constraints_with(bad):
        response = find(api, geo_class[0], {field: constraint}, via)
        number = isinstance(bad, (int, float)) and not isinstance(bad, bool)
        if is_distance and number and response.status_code == 200:
            continue  # any number is a distance (a negative one matches nothing, a radius below 0 is refused)
        assert_error(response, (107, 102, 119))


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "NaN", "Infinity", "1" * 400])
def test_numbers_json_cannot_hold(geo_class: tuple[str, Any], api: httpx.Client, raw: str) -> None:
    near = '{"loc": {"$nearSphere": {"__type": "GeoPoint", "latitude": RAW, "longitude": 0}}}'
    assert_error(api.get(f"/classes/{geo_class[0]}", params={"where": near.replace("RAW", raw)}), None)
    box = ('{"_method": "GET", "where": {"loc": {"$within": {"$box": [{"latitude": 0, "longitude": RAW}, '
           '{"latitude": 1, "longitude": 1}]}}}}')
    body = box.replace("RAW", raw)
    assert_error(api.post(f"/classes/{geo_class[0]}", content=body, headers={"Content-Type": "application/json"}), None)


@pytest.mark.parametrize("shape", [
    {"$nearSphere": [0, 0]}, {"$nearSphere": None}, {"$nearSphere": {"__type": "Polygon"}},
    {"$within": {"$box": {"0": gp(0, 0), "1": gp(1, 1)}}}, {"$within": {"$box": [1, 2]}}, {"$within": []},
    {"$geoWithin": {"$polygon": "abc"}}, {"$geoWithin": {"$polygon": {"__type": "Polygon", "coordinates": "abc"}}},
    {"$geoWithin": {"$polygon": [[0, 0, 0], [1, 1, 1], [1, 0, 1]]}}, {"$geoWithin": {"$centerSphere": {"a": 1}}},
    {"$geoWithin": {"$centerSphere": [[[0, 0]], 1]}}, {"$geoIntersects": {"$point": "0,0"}},
    {"$geoIntersects": {"$point": {"__type": "GeoPoint"}}}, {"$geoWithin": []}, {"$geoIntersects": 5},
])
def test_wrong_shapes(geo_class: tuple[str, Any], api: httpx.Client, shape: dict[str, Any]) -> None:
    field = "area" if "$geoIntersects" in shape else "loc"
    assert_error(find(api, geo_class[0], {field: shape}, "body"), (107, 102, 119))


@pytest.mark.parametrize("name", SQL)
def test_sql_in_the_field_name(geo_class: tuple[str, Any], api: httpx.Client, name: str) -> None:
    assert_error(find(api, geo_class[0], {name: {"$nearSphere": gp(0, 0)}}, "body"), 105)
    assert_error(find(api, geo_class[0], {"loc": {"$nearSphere": gp(0, 0)}}, "url", order=name), (105, 102))


def test_polygons_too_large_for_the_query_limits(geo_class: tuple[str, Any], api: httpx.Client) -> None:
    points = [gp(0, i / 1000) for i in range(1000)]  # keys of the GeoPoint objects count
    assert_error(find(api, geo_class[0], {"loc": {"$geoWithin": {"$polygon": points}}}, "body"), 102)
    pairs = [[i / 10000, 0] for i in range(20_000)]
    assert_error(find(api, geo_class[0], {"loc": {"$geoWithin": {"$polygon": pairs}}}, "body"), 102)


def test_giant_polygon_within_the_limits_is_answered_quickly(geo_class: tuple[str, Any], api: httpx.Client) -> None:
    # 6000 vertices ([longitude, latitude]) on an ellipse around the origin that holds every point.
    ring = [[round(50 * math.cos(2 * math.pi * k / 6000), 6), round(40 * math.sin(2 * math.pi * k / 6000), 6)]
            for k in range(6000)]
    started = time.monotonic()
    response = find(api, geo_class[0], {"loc": {"$geoWithin": {"$polygon": ring}}}, "body", limit=1000)
    body = assert_ok(response)
    assert time.monotonic() - started < 10
    inside = [o["name"] for o in body["results"]]
    assert len(inside) == 30, json.dumps(inside)
