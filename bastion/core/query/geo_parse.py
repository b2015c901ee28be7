"""Geo operators of a ``where`` as IR nodes: ``$nearSphere`` (with ``$maxDistance...``), ``$within``,
``$geoWithin`` and ``$geoIntersects``, validated as Parse Server on PostgreSQL validates them.

Where Parse Server answers a bad coordinate with a 500 (the SDK's GeoPoint validation throws a
TypeError), Bastion answers 400 with code 107 and the same message. Two more Parse Server quirks
are kept on purpose: ``$box`` corners may come in either order (PostgreSQL's box sorts them), and
the pairs of a ``$polygon`` (or of a Polygon object given to it) are ``[longitude, latitude]``,
unlike stored Polygons, which are ``[latitude, longitude]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.core.geo import EARTH_RADIUS_KM, EARTH_RADIUS_MILES, Point
from bastion.core.js import js_string
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.core.types import is_number
from bastion.errors import Code, ParseError

GEO_OPERATORS = frozenset({"$nearSphere", "$within", "$geoWithin", "$geoIntersects"})
# Modifiers of $nearSphere, with what one unit is in radians; alone they constrain nothing.
DISTANCE_UNITS = {
    "$maxDistance": 1.0,
    "$maxDistanceInRadians": 1.0,
    "$maxDistanceInKilometers": 1.0 / EARTH_RADIUS_KM,
    "$maxDistanceInMiles": 1.0 / EARTH_RADIUS_MILES,
}


def _bad(message: str) -> ParseError:
    return ParseError(Code.INVALID_JSON, message)


def check_point(lat: Any, lng: Any) -> Point:
    """(lat, lng) checked as the Parse SDK's ``GeoPoint._validate`` checks them, same messages."""
    if not is_number(lat) or not is_number(lng):
        raise _bad("GeoPoint latitude and longitude must be valid numbers")
    if lat < -90.0:
        raise _bad(f"GeoPoint latitude out of bounds: {js_string(lat)} < -90.0.")
    if lat > 90.0:
        raise _bad(f"GeoPoint latitude out of bounds: {js_string(lat)} > 90.0.")
    if lng < -180.0:
        raise _bad(f"GeoPoint longitude out of bounds: {js_string(lng)} < -180.0.")
    if lng > 180.0:
        raise _bad(f"GeoPoint longitude out of bounds: {js_string(lng)} > 180.0.")
    return float(lat), float(lng)


def _is_geopoint(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type") == "GeoPoint"


def _unsupported(op: str) -> ParseError:
    return ParseError(Code.OPERATION_FORBIDDEN, f"This query type is not supported: {op}")


NodeFor = Callable[[ir.Field], ir.Node]


def geo_constraint(field: ir.Field | None, op: str, arg: Any, constraints: dict[str, Any]) -> ir.Node:
    """The node of one geo operator on ``field`` (None when the class lacks the field).

    The arguments are checked first, as Parse Server checks them even for a field it lacks.
    """
    builders = {"$nearSphere": _near, "$within": _within, "$geoWithin": _geo_within, "$geoIntersects": _intersects}
    nodes = builders[op](arg, constraints)
    if field is None:
        return ir.FALSE
    return ir.conjoin([node_for(field) for node_for in nodes])


def _near(arg: Any, constraints: dict[str, Any]) -> list[NodeFor]:
    point, max_distance = _near_point(arg), _max_distance(constraints)
    return [lambda f: ir.GeoNear(_geopoint_field(f, "$nearSphere"), point, max_distance)]


def _within(arg: Any, _constraints: dict[str, Any]) -> list[NodeFor]:
    box = arg.get("$box") if isinstance(arg, dict) else None
    if box is None:
        raise _unsupported("$within")
    south_west, north_east = _box(box)
    return [lambda f: ir.GeoWithinBox(_geopoint_field(f, "$within"), south_west, north_east)]


def _geo_within(arg: Any, _constraints: dict[str, Any]) -> list[NodeFor]:
    within = arg if isinstance(arg, dict) else {}
    sphere, polygon = within.get("$centerSphere"), within.get("$polygon")
    if sphere is None and polygon is None:
        raise _unsupported("$geoWithin")
    nodes: list[NodeFor] = []
    if sphere is not None:
        center, radius = _center_sphere(sphere)
        nodes.append(lambda f: ir.GeoNear(_geopoint_field(f, "$geoWithin"), center, radius))
    if polygon is not None:
        vertices = _polygon(polygon)
        nodes.append(lambda f: ir.GeoWithinPolygon(_geopoint_field(f, "$geoWithin"), vertices))
    return nodes


def _intersects(arg: Any, _constraints: dict[str, Any]) -> list[NodeFor]:
    point = arg.get("$point") if isinstance(arg, dict) else None
    if point is None:
        raise _unsupported("$geoIntersects")
    if not _is_geopoint(point):
        raise _bad("bad $geoIntersect value; $point should be GeoPoint")
    lat_lng = check_point(point.get("latitude"), point.get("longitude"))
    return [lambda f: ir.PolygonContains(_typed(f, "Polygon", "$geoIntersects"), lat_lng)]


def _geopoint_field(field: ir.Field, op: str) -> ir.Field:
    return _typed(field, "GeoPoint", op)


def _typed(field: ir.Field, kind: str, op: str) -> ir.Field:
    """The field, refused (102) when it is not a top-level field of that type."""
    if field.type != kind or field.path:
        raise ParseError(Code.INVALID_QUERY, f"bad {op}: {field.column} is not a {kind}")
    return field


def _near_point(arg: Any) -> Point:
    if not isinstance(arg, dict) or arg.get("__type", "GeoPoint") != "GeoPoint":
        raise _bad("bad $nearSphere value; it should be a GeoPoint")
    return check_point(arg.get("latitude"), arg.get("longitude"))


def _max_distance(constraints: dict[str, Any]) -> float | None:
    """The last ``$maxDistance...`` given, in radians; None (any distance) without one."""
    found: float | None = None
    for key, value in constraints.items():
        unit = DISTANCE_UNITS.get(key)
        if unit is None:
            continue
        if not is_number(value):
            raise _bad(f"bad {key} value")
        found = float(value) * unit
    return found


def _box(box: Any) -> tuple[Point, Point]:
    if not isinstance(box, list) or len(box) < 2 or not all(isinstance(c, dict) for c in box[:2]):
        raise _bad("malformatted $within arg")
    first = check_point(box[0].get("latitude"), box[0].get("longitude"))
    second = check_point(box[1].get("latitude"), box[1].get("longitude"))
    # PostgreSQL's box orders its corners, so swapped corners name the same box.
    return ((min(first[0], second[0]), min(first[1], second[1])),
            (max(first[0], second[0]), max(first[1], second[1])))


def _center_sphere(arg: Any) -> tuple[Point, float]:
    if not isinstance(arg, list) or len(arg) < 2:
        raise _bad("bad $geoWithin value; $centerSphere should be an array of Parse.GeoPoint and distance")
    point, radius = arg[0], arg[1]
    if isinstance(point, list) and len(point) == 2:
        center = check_point(point[1], point[0])  # [longitude, latitude]
    elif _is_geopoint(point):
        center = check_point(point.get("latitude"), point.get("longitude"))
    else:
        raise _bad("bad $geoWithin value; $centerSphere geo point invalid")
    if not is_number(radius) or radius < 0:
        raise _bad("bad $geoWithin value; $centerSphere distance invalid")
    return center, float(radius)


def _polygon(arg: Any) -> tuple[Point, ...]:
    if isinstance(arg, dict) and arg.get("__type") == "Polygon":
        points = arg.get("coordinates")
        if not isinstance(points, list) or len(points) < 3:
            raise _bad("bad $geoWithin value; Polygon.coordinates should contain at least 3 lon/lat pairs")
    elif isinstance(arg, list):
        if len(arg) < 3:
            raise _bad("bad $geoWithin value; $polygon should contain at least 3 GeoPoints")
        points = arg
    else:
        raise _bad("bad $geoWithin value; $polygon should be Polygon object or Array of Parse.GeoPoint's")
    vertices: list[Point] = []
    for point in points:
        if isinstance(point, list) and len(point) == 2:
            vertices.append(check_point(point[1], point[0]))  # [longitude, latitude], as Parse Server reads it
        elif _is_geopoint(point):
            vertices.append(check_point(point.get("latitude"), point.get("longitude")))
        else:
            raise _bad("bad $geoWithin value")
    return tuple(vertices)


def distance_order(where: Any, schema: ClassSchema | None) -> list[ir.Order]:
    """Nearest first for each top-level ``$nearSphere`` (in the order of the where's keys).

    Parse Server on PostgreSQL sorts by these instead of the request's ``order``; a ``$nearSphere``
    inside ``$or``/``$and`` constrains without sorting. Call after the where was parsed (validated).
    """
    if not isinstance(where, dict) or schema is None:
        return []
    orders: list[ir.Order] = []
    for key, value in where.items():
        if not isinstance(value, dict) or "$nearSphere" not in value:
            continue
        ft = schema.fields.get(key)
        if ft is None or ft.type != "GeoPoint":
            continue
        near = value["$nearSphere"]
        orders.append(ir.DistanceOrder(ir.Field(key, "GeoPoint"), (float(near["latitude"]), float(near["longitude"]))))
    return orders
