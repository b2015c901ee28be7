"""Geo queries over the wire: $nearSphere (and its $maxDistance...), $within.$box, $geoWithin
($polygon, $centerSphere) and $geoIntersects, with Parse Server 9 on PostgreSQL's answers.

Parse Server on PostgreSQL needs PostGIS for $nearSphere and $centerSphere (ST_DistanceSphere);
against an external Parse Server, give its database a stand-in for that function.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.api.test_queries import seed


def gp(lat: float, lng: float) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": lat, "longitude": lng}


# name -> (latitude, longitude); n cycles 0, 1, 2 in name order.
POINTS = {"a": (0, 0), "b": (1, 1), "c": (5, 5), "d": (10, 10), "e": (-5, 3), "f": (0, 10),
          "g": (40, -120), "h": (0.5, 0.2)}
NEAREST_TO_ORIGIN = ["a", "h", "b", "e", "c", "f", "d", "g"]
ORIGIN = gp(0, 0)


@pytest.fixture
def places(master: httpx.Client, class_name: str) -> str:
    objects: list[dict[str, Any]] = [
        {"name": name, "n": i % 3, "loc": gp(lat, lng)} for i, (name, (lat, lng)) in enumerate(sorted(POINTS.items()))]
    objects.append({"name": "noloc", "n": 1})
    # Stored polygons are [latitude, longitude] pairs.
    objects.append({"name": "sq", "area": {"__type": "Polygon", "coordinates": [[0, 0], [0, 10], [10, 10], [10, 0]]}})
    objects.append({"name": "tri", "area": {"__type": "Polygon", "coordinates": [[0, 0], [20, 0], [0, 5]]}})
    seed(master, class_name, objects)
    return class_name


def find(client: httpx.Client, class_name: str, where: Any, **params: Any) -> httpx.Response:
    return client.get(f"/classes/{class_name}", params={"where": json.dumps(where), **params})


def names(client: httpx.Client, class_name: str, where: Any, **params: Any) -> list[str]:
    """The names found, in the order the server answers them."""
    response = find(client, class_name, where, **params)
    assert response.status_code == 200, response.text
    return [obj.get("name") for obj in response.json()["results"]]


# --- $nearSphere ----------------------------------------------------------------------------------


def test_near_sphere_sorts_nearest_first_and_skips_objects_without_a_point(api: httpx.Client, places: str) -> None:
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN}}) == NEAREST_TO_ORIGIN


def test_near_sphere_max_distance_in_radians(api: httpx.Client, places: str) -> None:
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN, "$maxDistance": 0.1}}) == ["a", "h", "b"]
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN, "$maxDistance": 0}}) == ["a"]
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN, "$maxDistance": -1}}) == []


@pytest.mark.differs_from_parse_server("on PostgreSQL it ignores $maxDistanceIn... and matches any distance")
@pytest.mark.parametrize(("unit", "distance", "expected"), [
    ("$maxDistanceInRadians", 0.1, ["a", "h", "b"]),
    ("$maxDistanceInKilometers", 700, ["a", "h", "b", "e"]),  # e is 648 km away, c 786 km
    ("$maxDistanceInMiles", 500, ["a", "h", "b", "e", "c"]),  # 500 miles = 805 km
])
def test_near_sphere_max_distance_units(api: httpx.Client, places: str, unit: str, distance: float,
                                        expected: list[str]) -> None:
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN, unit: distance}}) == expected


def test_near_sphere_order_wins_over_the_requested_order(api: httpx.Client, places: str) -> None:
    # Parse Server on PostgreSQL replaces ORDER BY with the distance.
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN}}, order="-name") == NEAREST_TO_ORIGIN


def test_near_sphere_with_limit_skip_and_count(api: httpx.Client, places: str) -> None:
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN}}, limit=2, skip=1) == ["h", "b"]
    response = find(api, places, {"loc": {"$nearSphere": ORIGIN, "$maxDistance": 0.1}}, count=1, limit=0)
    assert response.json() == {"results": [], "count": 3}
    response = find(api, places, {"loc": {"$nearSphere": ORIGIN}}, count=1, limit=3)
    assert [o["name"] for o in response.json()["results"]] == ["a", "h", "b"]
    assert response.json()["count"] == 8


def test_near_sphere_with_another_constraint(api: httpx.Client, places: str) -> None:
    assert names(api, places, {"loc": {"$nearSphere": ORIGIN}, "n": 1}) == ["h", "b", "e"]
    assert names(api, places, {"loc": {"$nearSphere": gp(10, 10), "$maxDistance": 0.2}, "n": {"$in": [0, 2]}}) == [
        "d", "c", "f"]


def test_near_sphere_inside_or_and_constrains_without_sorting(api: httpx.Client, places: str) -> None:
    near = {"loc": {"$nearSphere": ORIGIN, "$maxDistance": 0.03}}
    assert names(api, places, {"$or": [near, {"name": "g"}]}, order="name") == ["a", "b", "g", "h"]
    assert names(api, places, {"$and": [near]}, order="-name") == ["h", "b", "a"]


def test_near_sphere_in_nor_drops_objects_without_a_point(api: httpx.Client, places: str) -> None:
    # As SQL's NOT over a NULL distance in Parse Server.
    where = {"$nor": [{"loc": {"$nearSphere": ORIGIN, "$maxDistance": 0.1}}]}
    assert names(api, places, where, order="name") == ["c", "d", "e", "f", "g"]


def test_near_sphere_and_center_sphere_together(api: httpx.Client, places: str) -> None:
    where = {"loc": {"$nearSphere": gp(5, 5), "$maxDistance": 0.2, "$geoWithin": {"$centerSphere": [[0, 0], 0.1]}}}
    assert names(api, places, where) == ["b", "h", "a"]


def test_near_sphere_on_a_field_the_class_lacks_matches_nothing(api: httpx.Client, places: str) -> None:
    assert names(api, places, {"nowhere": {"$nearSphere": ORIGIN}}) == []


def test_near_sphere_with_keys(api: httpx.Client, places: str) -> None:
    response = find(api, places, {"loc": {"$nearSphere": ORIGIN, "$maxDistance": 0.02}}, keys="name")
    results = response.json()["results"]
    assert [o["name"] for o in results] == ["a", "h"]
    assert all("loc" not in o for o in results)


# --- $within.$box, $geoWithin -------------------------------------------------------------------


@pytest.mark.parametrize(("box", "expected"), [
    ([gp(0, 0), gp(5, 5)], ["a", "b", "c", "h"]),
    ([gp(5, 5), gp(0, 0)], ["a", "b", "c", "h"]),  # corners swapped: PostgreSQL's box orders them
    ([gp(0, 0), gp(10, 10)], ["a", "b", "c", "d", "f", "h"]),  # edges count
    ([gp(-6, 2), gp(-4, 4)], ["e"]),
    ([gp(20, 20), gp(30, 30)], []),
])
def test_within_box(api: httpx.Client, places: str, box: list[Any], expected: list[str]) -> None:
    assert names(api, places, {"loc": {"$within": {"$box": box}}}, order="name") == expected


@pytest.mark.parametrize(("polygon", "expected"), [
    ([gp(-1, -1), gp(-1, 6), gp(6, 6), gp(6, -1)], ["a", "b", "c", "h"]),
    ([gp(0, 0), gp(0, 10), gp(10, 10), gp(10, 0)], ["a", "b", "c", "d", "f", "h"]),  # the boundary counts
    ([gp(-6, 2), gp(-6, 4), gp(-4, 4), gp(-4, 2)], ["e"]),
    # Pairs, bare or in a Polygon object, are [longitude, latitude] here (Parse Server on PostgreSQL).
    ([[2, -6], [4, -6], [4, -4], [2, -4]], ["e"]),
    ({"__type": "Polygon", "coordinates": [[2, -6], [4, -6], [4, -4], [2, -4]]}, ["e"]),
    ({"__type": "Polygon", "coordinates": [[-1, -1], [-1, 4], [2, 4], [2, -1], [-1, -1]]}, ["a", "b", "h"]),
])
def test_geo_within_polygon(api: httpx.Client, places: str, polygon: Any, expected: list[str]) -> None:
    assert names(api, places, {"loc": {"$geoWithin": {"$polygon": polygon}}}, order="name") == expected


@pytest.mark.parametrize("center", [[0, 0], ORIGIN])
def test_geo_within_center_sphere_does_not_sort(api: httpx.Client, places: str, center: Any) -> None:
    where = {"loc": {"$geoWithin": {"$centerSphere": [center, 0.1]}}}
    assert names(api, places, where, order="-name") == ["h", "b", "a"]
    assert names(api, places, {"loc": {"$geoWithin": {"$centerSphere": [[3, -5], 0.01]}}}) == ["e"]


@pytest.mark.parametrize(("point", "expected"), [
    (gp(1, 1), ["sq", "tri"]),
    (gp(15, 1), ["tri"]),  # stored polygons are [latitude, longitude]
    (gp(1, 15), []),
    (gp(10, 10), ["sq"]),  # a corner counts
])
def test_geo_intersects_point(api: httpx.Client, places: str, point: Any, expected: list[str]) -> None:
    assert names(api, places, {"area": {"$geoIntersects": {"$point": point}}}, order="name") == expected


def test_geo_constraints_in_or_and_count(api: httpx.Client, places: str) -> None:
    where = {"$or": [{"loc": {"$within": {"$box": [gp(-6, 2), gp(-4, 4)]}}},
                     {"area": {"$geoIntersects": {"$point": gp(15, 1)}}}]}
    assert names(api, places, where, order="name") == ["e", "tri"]
    response = find(api, places, where, count=1, limit=0)
    assert response.json()["count"] == 2


# --- validation -----------------------------------------------------------------------------------

BAD_JSON = 107


@pytest.mark.parametrize(("constraint", "message"), [
    ({"$geoWithin": {"$polygon": [gp(0, 0), gp(1, 1)]}},
     "bad $geoWithin value; $polygon should contain at least 3 GeoPoints"),
    ({"$geoWithin": {"$polygon": []}}, "bad $geoWithin value; $polygon should contain at least 3 GeoPoints"),
    ({"$geoWithin": {"$polygon": {"__type": "Polygon", "coordinates": [[0, 0], [1, 1]]}}},
     "bad $geoWithin value; Polygon.coordinates should contain at least 3 lon/lat pairs"),
    ({"$geoWithin": {"$polygon": 1234}},
     "bad $geoWithin value; $polygon should be Polygon object or Array of Parse.GeoPoint's"),
    ({"$geoWithin": {"$polygon": [{}, {}, {}]}}, "bad $geoWithin value"),
    ({"$geoWithin": {"$centerSphere": [[0, 0]]}},
     "bad $geoWithin value; $centerSphere should be an array of Parse.GeoPoint and distance"),
    ({"$geoWithin": {"$centerSphere": [5, 0.1]}}, "bad $geoWithin value; $centerSphere geo point invalid"),
    ({"$geoWithin": {"$centerSphere": [[0, 0], -1]}}, "bad $geoWithin value; $centerSphere distance invalid"),
    ({"$geoWithin": {"$centerSphere": [[0, 0], "x"]}}, "bad $geoWithin value; $centerSphere distance invalid"),
])
def test_bad_geo_within(api: httpx.Client, places: str, constraint: dict[str, Any], message: str) -> None:
    assert_error(find(api, places, {"loc": constraint}), 400, BAD_JSON, message)


def test_bad_geo_intersects(api: httpx.Client, places: str) -> None:
    response = find(api, places, {"area": {"$geoIntersects": {"$point": [1, 1]}}})
    assert_error(response, 400, BAD_JSON, "bad $geoIntersect value; $point should be GeoPoint")


@pytest.mark.parametrize("constraint", [
    {"$maxDistance": 0.1}, {"$within": {}}, {"$geoWithin": {}}, {"$geoIntersects": {}}, {"$within": 5}])
def test_geo_operator_without_its_argument_is_not_supported(api: httpx.Client, places: str,
                                                            constraint: dict[str, Any]) -> None:
    response = find(api, places, {"loc": constraint})
    assert response.status_code == 400
    assert response.json()["code"] == 119  # Parse Server: "Postgres doesn't support this query type yet ..."


@pytest.mark.differs_from_parse_server("it answers 500 (the SDK's GeoPoint check throws a TypeError)")
@pytest.mark.parametrize(("field", "constraint", "message"), [
    ("loc", {"$geoWithin": {"$polygon": [gp(0, 0), gp(91, 0), gp(0, 1)]}},
     "GeoPoint latitude out of bounds: 91 > 90.0."),
    ("loc", {"$geoWithin": {"$polygon": {"__type": "Polygon", "coordinates": [[0, 0], [181, 0], [0, 10]]}}},
     "GeoPoint longitude out of bounds: 181 > 180.0."),
    ("loc", {"$geoWithin": {"$centerSphere": [[0, -100], 0.1]}}, "GeoPoint latitude out of bounds: -100 < -90.0."),
    ("area", {"$geoIntersects": {"$point": gp(0, -180.5)}}, "GeoPoint longitude out of bounds: -180.5 < -180.0."),
    ("loc", {"$within": {"$box": [gp(0, 0)]}}, "malformatted $within arg"),
    ("loc", {"$within": {"$box": 5}}, "malformatted $within arg"),
    ("loc", {"$geoWithin": {"$polygon": [gp("0", 0), gp(1, 1), gp(1, 0)]}},
     "GeoPoint latitude and longitude must be valid numbers"),
])
def test_bad_coordinates_are_client_errors(api: httpx.Client, places: str, field: str, constraint: dict[str, Any],
                                           message: str) -> None:
    assert_error(find(api, places, {field: constraint}), 400, BAD_JSON, message)


@pytest.mark.differs_from_parse_server("it runs these unchecked: any point, any $maxDistance, any box corner")
@pytest.mark.parametrize(("constraint", "message"), [
    ({"$nearSphere": gp(100, 0)}, "GeoPoint latitude out of bounds: 100 > 90.0."),
    ({"$nearSphere": "x"}, "bad $nearSphere value; it should be a GeoPoint"),
    ({"$nearSphere": ORIGIN, "$maxDistance": "0.1"}, "bad $maxDistance value"),
    ({"$within": {"$box": [gp(0, 0), gp(100, 0)]}}, "GeoPoint latitude out of bounds: 100 > 90.0."),
])
def test_near_sphere_and_box_arguments_are_checked(api: httpx.Client, places: str, constraint: dict[str, Any],
                                                   message: str) -> None:
    assert_error(find(api, places, {"loc": constraint}), 400, BAD_JSON, message)


@pytest.mark.differs_from_parse_server("its SQL fails on the column type and it answers 500")
@pytest.mark.parametrize(("field", "constraint"), [
    ("name", {"$nearSphere": ORIGIN}),
    ("area", {"$within": {"$box": [gp(0, 0), gp(1, 1)]}}),
    ("loc", {"$geoIntersects": {"$point": ORIGIN}}),
])
def test_geo_operator_on_a_field_of_another_type(api: httpx.Client, places: str, field: str,
                                                 constraint: dict[str, Any]) -> None:
    assert_error(find(api, places, {field: constraint}), 400, 102)


# --- GeoPoint and Polygon values ------------------------------------------------------------------


def test_geo_values_read_back(api: httpx.Client, places: str) -> None:
    found = find(api, places, {"name": {"$in": ["h", "tri"]}}, order="name").json()["results"]
    assert found[0]["loc"] == {"__type": "GeoPoint", "latitude": 0.5, "longitude": 0.2}
    # Parse Server on PostgreSQL stores (and answers) a polygon closed.
    assert found[1]["area"] == {"__type": "Polygon", "coordinates": [[0, 0], [20, 0], [0, 5], [0, 0]]}
