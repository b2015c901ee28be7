"""Query details where Parse clients' suites hold a server to Parse Server 9 on PostgreSQL: sort
aliases and repeated sort keys, closed polygons, ``\\Q…\\E`` in ``$regex``, the order of
``distinct``, fields differing only in case, and integers beyond 64 bits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, create, fetch
from tests.api.test_queries import seed


def find(client: httpx.Client, class_name: str, **params: Any) -> list[dict[str, Any]]:
    if "where" in params:
        params["where"] = json.dumps(params["where"])
    response = client.get(f"/classes/{class_name}", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def values(client: httpx.Client, class_name: str, key: str, **params: Any) -> list[Any]:
    return [obj.get(key) for obj in find(client, class_name, **params)]


# --- order ----------------------------------------------------------------------------------------


@pytest.fixture
def two(master: httpx.Client, class_name: str) -> str:
    """Two objects created in turn (a = 1 first): createdAt and updatedAt order them by a."""
    create(master, class_name, {"a": 1, "b": 2})
    create(master, class_name, {"a": 2, "b": 1})
    return class_name


@pytest.mark.parametrize(("order", "expected"), [
    ("_created_at", [1, 2]),
    ("-_created_at", [2, 1]),
    ("_updated_at", [1, 2]),
    ("-_updated_at", [2, 1]),
    # Parse Server reads order into a map: the alias becomes createdAt and moves last ...
    ("-_created_at,b", [2, 1]),
    ("-_updated_at,a", [1, 2]),
    # ... or takes the place of createdAt when that is given too, with its own direction.
    ("createdAt,-_created_at", [2, 1]),
    ("_created_at,-createdAt", [1, 2]),
    # A key given twice keeps its first place and its last direction.
    ("a,-a", [2, 1]),
    ("-a,b,a", [1, 2]),
])
def test_order_aliases_and_repeated_keys(api: httpx.Client, two: str, order: str, expected: list[int]) -> None:
    assert values(api, two, "a", order=order) == expected


# --- polygons -------------------------------------------------------------------------------------


def polygon(*points: tuple[float, float]) -> dict[str, Any]:
    return {"__type": "Polygon", "coordinates": [list(p) for p in points]}


OPEN = ((0, 0), (0, 1), (1, 1))


def test_polygons_are_stored_closed(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"p": polygon(*OPEN)})
    closed = polygon(*OPEN, (0, 0))
    assert fetch(master, class_name, created["objectId"])["p"] == closed
    master.put(f"/classes/{class_name}/{created['objectId']}", json={"p": polygon((0, 0), (2, 0), (2, 2))})
    assert fetch(master, class_name, created["objectId"])["p"] == polygon((0, 0), (2, 0), (2, 2), (0, 0))
    already = create(master, class_name, {"p": closed})
    assert fetch(master, class_name, already["objectId"])["p"] == closed


def test_polygon_default_values_are_closed(master: httpx.Client, class_name: str) -> None:
    response = master.post(f"/schemas/{class_name}", json={
        "className": class_name, "fields": {"p": {"type": "Polygon", "defaultValue": polygon(*OPEN)}}})
    assert response.status_code == 200, response.text
    # The schema keeps the default as given; the object gets it closed, and so does the answer.
    assert response.json()["fields"]["p"]["defaultValue"] == polygon(*OPEN)
    created = create(master, class_name, {"name": "d"})
    assert created["p"] == polygon(*OPEN, (0, 0))
    assert fetch(master, class_name, created["objectId"])["p"] == polygon(*OPEN, (0, 0))


TRIANGLES = [
    (OPEN, True),
    ((*OPEN, (0, 0)), True),
    (((0, 0), (1, 1), (0, 1)), True),  # the other direction (PostgreSQL's ~=)
    (((0, 0), (0, 1), (1, 1.0000005)), True),  # within 1e-6
    (((0, 1), (1, 1), (0, 0)), False),  # another first point: another closing point
    (((0, 0), (0, 2), (2, 2)), False),
]


@pytest.fixture
def triangles(master: httpx.Client, class_name: str) -> str:
    create(master, class_name, {"name": "tri", "p": polygon(*OPEN)})
    create(master, class_name, {"name": "big", "p": polygon((5, 5), (5, 6), (6, 6))})
    return class_name


@pytest.mark.parametrize(("query", "found"), TRIANGLES)
def test_polygon_equality(master: httpx.Client, triangles: str, query: tuple[tuple[float, float], ...],
                          found: bool) -> None:
    assert values(master, triangles, "name", where={"p": polygon(*query)}) == (["tri"] if found else [])


@pytest.mark.differs_from_parse_server("Parse Server on PostgreSQL answers $ne with a Polygon with a 500")
@pytest.mark.parametrize(("query", "found"), TRIANGLES)
def test_polygon_inequality(master: httpx.Client, triangles: str, query: tuple[tuple[float, float], ...],
                            found: bool) -> None:
    others = values(master, triangles, "name", where={"p": {"$ne": polygon(*query)}})
    assert others == (["big"] if found else ["tri", "big"])


def test_polygon_needs_three_distinct_vertices(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"p": polygon(*OPEN)})
    for points in (((0, 0), (0, 0), (1, 1)), ((0, 0), (1, 1), (0, 0))):
        response = master.post(f"/classes/{class_name}", json={"p": polygon(*points)})
        assert_error(response, 500, 1, "GeoJSON: Loop must have at least 3 different vertices")
        response = master.get(f"/classes/{class_name}", params={"where": json.dumps({"p": polygon(*points)})})
        assert_error(response, 500, 1, "GeoJSON: Loop must have at least 3 different vertices")


# --- $regex with \Q…\E ----------------------------------------------------------------------------

TEXTS = ["a.b", "axb", "ab", "abc", "a.b\\E.*", "a\\Eb", "\\E", "b", "xa.by", "a.b\\E$"]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("\\Qa.b\\E", ["a.b", "a.b\\E.*", "xa.by", "a.b\\E$"]),
    ("^\\Qa.b\\E", ["a.b", "a.b\\E.*", "a.b\\E$"]),
    ("\\Qa.b\\E$", ["a.b"]),
    # One literal section runs to a \E that ends the pattern, else to the end: here all is literal.
    ("\\Qa.b\\E.*", ["a.b\\E.*"]),
    ("^\\Qa.b\\E$", ["a.b\\E$"]),
    ("\\Qa.b", ["a.b", "a.b\\E.*", "xa.by", "a.b\\E$"]),
    ("x\\Qa.b\\Ey", []),
    # Without such a section, the first \E (and \Q) not after a backslash is dropped.
    ("a\\Eb", ["ab", "abc"]),
    ("a\\Qb", ["ab", "abc"]),
    ("\\Eb", ["a.b", "axb", "ab", "abc", "a.b\\E.*", "a\\Eb", "b", "xa.by", "a.b\\E$"]),
    ("^\\E\\Qa", ["a.b", "axb", "ab", "abc", "a.b\\E.*", "a\\Eb", "a.b\\E$"]),
    ("a\\\\E", ["a\\Eb"]),
])
def test_regex_quoted_sections(master: httpx.Client, class_name: str, pattern: str, expected: list[str]) -> None:
    seed(master, class_name, [{"name": text} for text in TEXTS])
    found = values(master, class_name, "name", where={"name": {"$regex": pattern}})
    assert sorted(found) == sorted(expected)


def test_regex_second_stray_e_is_refused(master: httpx.Client, class_name: str) -> None:
    seed(master, class_name, [{"name": "a"}])
    response = master.get(f"/classes/{class_name}", params={"where": json.dumps({"name": {"$regex": "a\\E\\E"}})})
    # Parse Server hands PostgreSQL the invalid expression and answers 500 (code 1); Bastion says why.
    assert response.status_code in (400, 500) and response.json()["code"] in (102, 1)


# --- distinct -------------------------------------------------------------------------------------


def distinct(master: httpx.Client, class_name: str, key: str, **params: Any) -> list[Any]:
    if "where" in params:
        params["where"] = json.dumps(params["where"])
    response = master.get(f"/aggregate/{class_name}", params={"distinct": key, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_distinct_order(master: httpx.Client, class_name: str) -> None:
    def pointer(object_id: str) -> dict[str, str]:
        return {"__type": "Pointer", "className": "Target", "objectId": object_id}

    def date(year: int) -> dict[str, str]:
        return {"__type": "Date", "iso": f"{year}-01-01T00:00:00.000Z"}

    seed(master, class_name, [
        {"num": 3, "str": "b", "ptr": pointer("zz9"), "when": date(2030), "obj": {"n": 2, "s": "z"}},
        {"num": 1, "str": "B", "ptr": pointer("AAA"), "when": date(2010), "obj": {"n": 10, "s": "a"}},
        {"num": -2.5, "str": "a", "ptr": pointer("_b1"), "when": date(2020), "obj": {"n": "t"}},
        {"num": 10, "str": "é", "ptr": pointer("mmm"), "obj": {"n": True}},
        {"num": 4, "str": "_x", "ptr": pointer("Abc"), "obj": {"n": [1]}},
        {"num": 0, "str": "10"},
        {"str": "9", "arr": [3, "x", 1, None]},
        {"arr": ["a", 2, {"k": 1}, True, 1.5]},
    ])
    # Parse Server's SELECT DISTINCT ON (column) sorts: by the column's type, text by code point.
    assert distinct(master, class_name, "num") == [-2.5, 0, 1, 3, 4, 10]
    assert distinct(master, class_name, "str") == ["10", "9", "B", "_x", "a", "b", "é"]
    assert [p["objectId"] for p in distinct(master, class_name, "ptr")] == ["AAA", "Abc", "_b1", "mmm", "zz9"]
    assert distinct(master, class_name, "when") == [
        "2010-01-01T00:00:00.000Z", "2020-01-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z"]
    # JSON values in PostgreSQL's jsonb order: string < number < boolean < array < object,
    # objects by their number of keys first.
    assert distinct(master, class_name, "obj") == [
        {"n": "t"}, {"n": True}, {"n": [1]}, {"n": 2, "s": "z"}, {"n": 10, "s": "a"}]
    # (Parse Server fails when an object lacks the key, and answers [1] as [null]: not asked here.)
    assert distinct(master, class_name, "obj.n", where={"num": {"$in": [3, 1, -2.5, 10]}}) == ["t", 2, 10, True]
    # Array elements: Parse Server answers them in hash order (none defined); Bastion sorts them as
    # jsonb, and leaves nulls out as Parse Server does.
    assert sorted(map(json.dumps, distinct(master, class_name, "arr"))) == sorted(
        map(json.dumps, ["a", "x", 1, 1.5, 2, 3, True, {"k": 1}]))


@pytest.mark.differs_from_parse_server("Array elements come in PostgreSQL's hash order there")
def test_distinct_array_elements_sorted_as_jsonb(master: httpx.Client, class_name: str) -> None:
    seed(master, class_name, [{"arr": [3, "x", 1, None]}, {"arr": ["a", 2, [1], {"k": 1}, True, 1.5]}])
    assert distinct(master, class_name, "arr") == ["a", "x", 1, 1.5, 2, 3, True, [1], {"k": 1}]


# --- integers beyond 64 bits ----------------------------------------------------------------------


BIG = 2**70  # JSON readers take it as a double, as JavaScript does


@pytest.fixture
def big(master: httpx.Client, class_name: str) -> tuple[str, str]:
    created = create(master, class_name, {"obj": {"n": BIG}, "num": BIG, "arr": [BIG]})
    create(master, class_name, {"obj": {"n": 1}, "num": 1, "arr": [1]})
    return class_name, created["objectId"]


def found_ids(master: httpx.Client, class_name: str, where: dict[str, Any]) -> list[str]:
    # json.dumps spells 2**70 as its digits: each query carries the integer itself.
    response = master.get(f"/classes/{class_name}", params={"where": json.dumps(where)})
    assert response.status_code == 200, (where, response.text)
    return [obj["objectId"] for obj in response.json()["results"]]


@pytest.mark.parametrize("where", [
    {"obj.n": BIG}, {"obj.n": float(BIG)}, {"obj.n": {"$gte": BIG}},
    {"num": BIG}, {"num": {"$in": [BIG]}}, {"arr": {"$all": [BIG]}},
])
def test_integers_beyond_64_bits(master: httpx.Client, big: tuple[str, str], where: dict[str, Any]) -> None:
    class_name, object_id = big
    assert found_ids(master, class_name, where) == [object_id]


@pytest.mark.differs_from_parse_server("Parse Server on PostgreSQL answers 119 to equality with a whole "
                                       "object or array, 500 to an array field equal to a number, and finds "
                                       "nothing for $in inside an object")
@pytest.mark.parametrize("where", [
    {"obj.n": {"$in": [BIG]}}, {"obj": {"n": BIG}}, {"obj": {"$in": [{"n": BIG}]}}, {"arr": BIG}, {"arr": [BIG]},
])
def test_integers_beyond_64_bits_in_whole_values(master: httpx.Client, big: tuple[str, str],
                                                  where: dict[str, Any]) -> None:
    class_name, object_id = big
    assert found_ids(master, class_name, where) == [object_id]
    assert found_ids(master, class_name, {"obj": {"n": 2**64}}) == []


def test_increment_beyond_64_bits(master: httpx.Client, big: tuple[str, str]) -> None:
    class_name, object_id = big
    response = master.put(f"/classes/{class_name}/{object_id}", json={"num": {"__op": "Increment", "amount": BIG}})
    assert response.status_code == 200, response.text
    assert fetch(master, class_name, object_id)["num"] == float(2 * BIG)


@pytest.mark.differs_from_parse_server("Bastion refuses 2**63 ... 2**64-1 as a query value (its hostile-input "
                                       "rule); Parse Server reads it as a double")
def test_unsigned_64_bit_integers_in_queries(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"obj": {"n": 2**63}})
    response = master.get(f"/classes/{class_name}", params={"where": json.dumps({"obj.n": 2**63})})
    assert_error(response, 400, 107)
    # Inside an object it is a double like any number past 64 signed bits, and never a 500.
    response = master.get(f"/classes/{class_name}", params={"where": json.dumps({"obj": {"n": 2**63}})})
    assert response.status_code == 200 and len(response.json()["results"]) == 1, response.text


# --- fields equal but for case --------------------------------------------------------------------


def test_fields_differing_only_in_case(master: httpx.Client, class_name: str) -> None:
    first = create(master, class_name, {"number": 1})["objectId"]
    second = create(master, class_name, {"number": 3, "Number": 4, "NUMBER": 5})["objectId"]
    third = create(master, class_name, {"Number": 6})["objectId"]
    assert {k: v for k, v in fetch(master, class_name, second).items() if k.lower() == "number"} == {
        "number": 3, "Number": 4, "NUMBER": 5}
    assert [o["objectId"] for o in find(master, class_name, order="-Number")] == [first, third, second]
    assert values(master, class_name, "number", order="number") == [1, 3, None]
    assert values(master, class_name, "NUMBER", where={"Number": 4}) == [5]
    assert values(master, class_name, "Number", where={"number": {"$exists": False}}) == [6]
    assert distinct(master, class_name, "Number") == [4, 6]
    response = master.put(f"/classes/{class_name}/{third}", json={"number": {"__op": "Increment", "amount": 7}})
    assert response.status_code == 200, response.text
    assert {k: v for k, v in fetch(master, class_name, third).items() if k.lower() == "number"} == {
        "number": 7, "Number": 6}
    # An index on one of them, then one deleted: the others keep their values.
    response = master.put(f"/schemas/{class_name}", json={"className": class_name, "indexes": {"ix": {"Number": 1}}})
    assert response.status_code == 200, response.text
    response = master.put(f"/schemas/{class_name}", json={"className": class_name,
                                                           "fields": {"NUMBER": {"__op": "Delete"}}})
    assert response.status_code == 200, response.text
    assert {k: v for k, v in fetch(master, class_name, second).items() if k.lower() == "number"} == {
        "number": 3, "Number": 4}
    response = master.put(f"/schemas/{class_name}", json={"className": class_name,
                                                           "fields": {"Number": {"__op": "Delete"}}})
    assert response.status_code == 200, response.text
    assert values(master, class_name, "number", order="number") == [1, 3, 7]
    assert values(master, class_name, "number", where={"number": 7}) == [7]


def test_field_equal_but_for_case_to_a_default_column(master: httpx.Client, class_name: str) -> None:
    created = create(master, class_name, {"objectid": "x", "CreatedAt": 2})
    got = fetch(master, class_name, created["objectId"])
    assert got["objectid"] == "x" and got["CreatedAt"] == 2 and got["objectId"] == created["objectId"]
    assert values(master, class_name, "CreatedAt", where={"objectid": "x"}) == [2]
