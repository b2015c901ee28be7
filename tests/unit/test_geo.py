"""core/geo.py: distances as the Parse SDK computes them, and PostgreSQL's polygon and box tests.

The polygon answers below are what PostgreSQL 15 answers to ``point(x, y) <@ polygon`` (x is the
longitude): its 1e-6 tolerance is not symmetric about an edge.
"""

from __future__ import annotations

import math

import pytest

from bastion.core import geo

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]  # (lat, lng)


def test_distance_is_the_sdk_haversine_in_radians() -> None:
    assert geo.distance((0, 0), (0, 0)) == 0
    assert geo.distance((0, 0), (0, 180)) == pytest.approx(math.pi)
    assert geo.distance((90, 0), (-90, 0)) == pytest.approx(math.pi)
    assert geo.distance((0, 0), (1, 1)) == 0.024682056391766436  # the SDK's radiansTo, to the bit
    # San Francisco to Los Angeles: the SDK's kilometersTo says 559.1205770615533.
    assert geo.distance((37.7749, -122.4194), (34.0522, -118.2437)) * geo.EARTH_RADIUS_KM == pytest.approx(
        559.1205770615533, rel=1e-12)


@pytest.mark.parametrize(("point", "inside"), [
    ((5.0, 5.0), True),
    ((5.0, 10.0), True),  # on an edge
    ((10.0, 10.0), True),  # a corner
    ((5.0, 10.0000001), True),  # within the tolerance
    ((5.0, 10.000002), False),
    ((5.0, -5e-7), False),  # the tolerance does not reach this side
    ((1e-7, 1e-7), True),
    ((20.0, 5.0), False),
])
def test_in_polygon_as_postgresql(point: tuple[float, float], inside: bool) -> None:
    assert geo.in_polygon(point, SQUARE) is inside


def test_in_box_is_exact_and_inclusive() -> None:
    assert geo.in_box((10.0, 5.0), (0.0, 0.0), (10.0, 10.0))
    assert not geo.in_box((10.0000001, 5.0), (0.0, 0.0), (10.0, 10.0))


def test_as_point() -> None:
    assert geo.as_point((1, 2)) == (1.0, 2.0)
    assert geo.as_point([1.5, -2]) == (1.5, -2.0)
    assert geo.as_point([True, 1]) is None
    assert geo.as_point("1,2") is None
    assert geo.as_point(None) is None
