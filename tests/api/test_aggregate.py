"""GET /aggregate/:className with a pipeline: every stage and accumulator, group keys (fields,
several fields, date parts, pointers, null), $match with Parse query syntax, result encoding,
errors, the master key, hostile names.

Parse Server on PostgreSQL compiles a pipeline into one flat SELECT: it ignores stages and
accumulators it does not know and applies the others in a fixed order. Bastion runs the stages in
order; the tests where that gives another answer than Parse Server are marked."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.helpers import ISO_DATE, OBJECT_ID, assert_error, count
from tests.api.test_queries import seed
from tests.conftest import make_class

WHEN = [{"__type": "Date", "iso": "2020-01-15T10:20:30.000Z"}, {"__type": "Date", "iso": "2020-02-15T10:20:30.000Z"},
        {"__type": "Date", "iso": "2021-02-16T11:00:00.000Z"}]
ITEMS: list[dict[str, Any]] = [
    {"name": "foo", "score": 10, "views": 900, "sender": {"group": "A"}, "size": ["S", "M"], "when": WHEN[0],
     "flag": True},
    {"name": "foo", "score": 10, "views": 800, "sender": {"group": "A"}, "size": ["M", "L"], "when": WHEN[1],
     "flag": False},
    {"name": "bar", "score": 10, "views": 700, "sender": {"group": "B"}, "size": ["S"], "when": WHEN[2]},
    {"name": "dpl", "score": 20, "views": 700, "sender": {"group": "B"}, "size": ["S"]},
    {"name": "nos"},
]


def run(client: httpx.Client, class_name: str, pipeline: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/aggregate/{class_name}", params={"pipeline": json.dumps(pipeline), **params})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def unordered(results: list[Any]) -> list[Any]:
    return sorted(results, key=lambda r: json.dumps(r, sort_keys=True))


def refused(client: httpx.Client, class_name: str, pipeline: Any, code: int, message: str | None = None) -> None:
    response = client.get(f"/aggregate/{class_name}", params={"pipeline": json.dumps(pipeline)})
    assert_error(response, 400, code, message)


@pytest.fixture
def items(master: httpx.Client, class_name: str) -> str:
    seed(master, class_name, ITEMS)
    return class_name


# --- access and pipeline forms --------------------------------------------------------------------


def test_master_key_required(api: httpx.Client, items: str) -> None:
    response = api.get(f"/aggregate/{items}", params={"pipeline": json.dumps([{"$group": {"_id": "$name"}}])})
    assert_error(response, 403, None, "Permission denied")


def test_pipeline_forms(master: httpx.Client, server: Any, items: str) -> None:
    expected = [{"objectId": 10}, {"objectId": 20}, {"objectId": None}]
    group = {"$group": {"_id": "$score"}}
    assert unordered(run(master, items, [group])) == unordered(expected)
    assert unordered(run(master, items, group)) == unordered(expected)  # an object of stages
    # Stages as options of their own, as Parse Server reads a body without "pipeline".
    response = master.get(f"/aggregate/{items}", params={"$group": json.dumps(group["$group"])})
    assert unordered(response.json()["results"]) == unordered(expected)
    # The JS SDK's POST-as-GET, keys in the body.
    body = {"_method": "GET", "_ApplicationId": server.app_id, "_MasterKey": server.master_key, "pipeline": [group]}
    response = httpx.post(f"{server.url}/aggregate/{items}", content=json.dumps(body),
                          headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    assert unordered(response.json()["results"]) == unordered(expected)


def test_class_that_does_not_exist_has_no_results(master: httpx.Client, class_name: str) -> None:
    assert run(master, class_name, [{"$group": {"_id": None, "total": {"$sum": "$score"}}}]) == []


# --- $group ---------------------------------------------------------------------------------------


def test_group_accumulators(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$group": {
        "_id": "$name", "total": {"$sum": "$score"}, "n": {"$sum": 1}, "most": {"$max": "$views"},
        "least": {"$min": "$views"}, "mean": {"$avg": "$views"}, "last": {"$max": "$when"}}}])
    # A null accumulator (no score, no dates) is left out, as every null in Parse Server's answer.
    assert unordered(results) == unordered([
        {"objectId": "foo", "total": 20, "n": 2, "most": 900, "least": 800, "mean": 850, "last": WHEN[1]},
        {"objectId": "bar", "total": 10, "n": 1, "most": 700, "least": 700, "mean": 700, "last": WHEN[2]},
        {"objectId": "dpl", "total": 20, "n": 1, "most": 700, "least": 700, "mean": 700},
        {"objectId": "nos", "n": 1},
    ])


def test_group_by_null_and_other_constants(master: httpx.Client, items: str) -> None:
    assert run(master, items, [{"$group": {"_id": None, "total": {"$sum": "$score"}, "n": {"$sum": 1}}}]) == [
        {"objectId": None, "total": 50, "n": 5}]
    for constant in ("", {}, []):
        assert run(master, items, [{"$group": {"_id": constant, "n": {"$sum": 1}}}]) == [{"objectId": None, "n": 5}]


def test_group_on_an_empty_class(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"score": {"type": "Number"}})
    # One row, as Parse Server's SELECT SUM(...) without GROUP BY answers (its null left out).
    assert run(master, class_name, [{"$group": {"_id": None, "total": {"$sum": "$score"}}}]) == [{"objectId": None}]


def test_group_by_several_fields(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$group": {"_id": {"s": "$score", "v": "$views"}, "c": {"$sum": 1}}}])
    # Missing values are left out of the key: the object without either has an empty one.
    assert unordered(results) == unordered([
        {"objectId": {"s": 10, "v": 900}, "c": 1}, {"objectId": {"s": 10, "v": 800}, "c": 1},
        {"objectId": {"s": 10, "v": 700}, "c": 1}, {"objectId": {"s": 20, "v": 700}, "c": 1},
        {"objectId": {}, "c": 1},
    ])


def test_group_by_date_parts(master: httpx.Client, items: str) -> None:
    parts = {"year": "$year", "month": "$month", "day": "$dayOfMonth", "hour": "$hour", "minute": "$minute",
             "second": "$second", "ms": "$millisecond", "dow": "$dayOfWeek", "isodow": "$isoDayOfWeek",
             "doy": "$dayOfYear", "week": "$week", "isoyear": "$isoWeekYear"}
    pipeline = [{"$match": {"name": "bar"}},
                {"$group": {"_id": {k: {op: "$when"} for k, op in parts.items()}, "c": {"$sum": 1}}}]
    # 2021-02-16T11:00:00Z, a Tuesday. PostgreSQL's EXTRACT units, as Parse Server uses them: the
    # week is ISO's, days of the week count from Sunday = 0, milliseconds include the seconds.
    assert run(master, items, pipeline) == [{"objectId": {
        "year": 2021, "month": 2, "day": 16, "hour": 11, "minute": 0, "second": 0, "ms": 0, "dow": 2, "isodow": 2,
        "doy": 47, "week": 7, "isoyear": 2021}, "c": 1}]
    pipeline[0] = {"$match": {"views": 900}}  # 2020-01-15T10:20:30Z, a Wednesday
    assert run(master, items, pipeline)[0]["objectId"] == {
        "year": 2020, "month": 1, "day": 15, "hour": 10, "minute": 20, "second": 30, "ms": 30000, "dow": 3,
        "isodow": 3, "doy": 15, "week": 3, "isoyear": 2020}


def test_group_by_date_parts_of_created_at(master: httpx.Client, items: str) -> None:
    created = master.get(f"/classes/{items}", params={"limit": 1}).json()["results"][0]["createdAt"]
    results = run(master, items, [{"$group": {
        "_id": {"y": {"$year": "$_created_at"}, "m": {"$month": "$createdAt"}, "d": {"$dayOfMonth": "$_updated_at"}},
        "c": {"$sum": 1}}}])
    year, month, day = (int(p) for p in created[:10].split("-"))
    assert sum(r["c"] for r in results) == 5
    assert {"y": year, "m": month, "d": day} in [r["objectId"] for r in results]


def test_group_by_date_boolean_and_object(master: httpx.Client, items: str) -> None:
    assert unordered(run(master, items, [{"$group": {"_id": "$when"}}])) == unordered(
        [{"objectId": w} for w in WHEN] + [{"objectId": None}])
    assert unordered(run(master, items, [{"$group": {"_id": "$flag", "c": {"$sum": 1}}}])) == unordered(
        [{"objectId": True, "c": 1}, {"objectId": False, "c": 1}, {"objectId": None, "c": 3}])
    assert unordered(run(master, items, [{"$group": {"_id": "$sender"}}])) == unordered(
        [{"objectId": {"group": "A"}}, {"objectId": {"group": "B"}}, {"objectId": None}])


def test_group_by_pointer(master: httpx.Client, class_name: str) -> None:
    target = class_name + "P"
    ids = seed(master, target, [{"v": 1}, {"v": 2}])
    pointers = [{"__type": "Pointer", "className": target, "objectId": i} for i in ids]
    seed(master, class_name, [{"p": pointers[0]}, {"p": pointers[1]}, {"p": pointers[0]}, {"n": 1}])
    # Grouped pointers come back as their bare object ids, as Parse Server on PostgreSQL answers.
    results = run(master, class_name, [{"$group": {"_id": "$p", "c": {"$sum": 1}}}])
    assert unordered(results) == unordered([{"objectId": ids[0], "c": 2}, {"objectId": ids[1], "c": 1},
                                            {"objectId": None, "c": 1}])
    # Parse Server on PostgreSQL has no _p_ columns.
    refused(master, class_name, [{"$group": {"_id": "$_p_p"}}], 105, "Invalid field name: _p_p")
    # $match takes the pointer's bare object id.
    matched = run(master, class_name, [{"$match": {"p": ids[0]}}])
    assert [r["p"] for r in matched] == [pointers[0], pointers[0]]


@pytest.mark.differs_from_parse_server("its $match compares a pointer (or a date) object as JSON text")
def test_match_pointer_and_date_objects(master: httpx.Client, class_name: str) -> None:
    target = class_name + "P"
    pointer = {"__type": "Pointer", "className": target, "objectId": seed(master, target, [{"v": 1}])[0]}
    seed(master, class_name, [{"p": pointer, "when": WHEN[2]}, {"n": 1}])
    assert [r["p"] for r in run(master, class_name, [{"$match": {"p": pointer}}])] == [pointer]
    assert [r["when"] for r in run(master, class_name, [{"$match": {"when": WHEN[2]}}])] == [WHEN[2]]
    assert run(master, class_name, [{"$match": {"when": WHEN[0]}}]) == []


@pytest.mark.differs_from_parse_server("it ignores $first, $last, $push and $addToSet")
def test_order_dependent_accumulators(master: httpx.Client, items: str) -> None:
    results = run(master, items, [
        {"$sort": {"views": -1, "name": 1}},
        {"$group": {"_id": "$score", "first": {"$first": "$name"}, "last": {"$last": "$name"},
                    "views": {"$push": "$views"}, "dates": {"$push": "$when"}, "names": {"$addToSet": "$name"},
                    "flags": {"$addToSet": "$flag"}}},
        {"$sort": {"_id": 1}}])
    assert results[0]["objectId"] == 10
    assert results[0]["first"] == "foo" and results[0]["last"] == "bar"
    assert results[0]["views"] == [900, 800, 700]
    assert results[0]["dates"] == WHEN
    assert sorted(results[0]["names"]) == ["bar", "foo"]
    assert sorted(results[0]["flags"]) == [False, True]
    assert results[1] == {"objectId": 20, "first": "dpl", "last": "dpl", "views": [700], "dates": [],
                          "names": ["dpl"], "flags": []}
    assert results[2] == {"objectId": None, "first": "nos", "last": "nos", "views": [], "dates": [],
                          "names": ["nos"], "flags": []}


@pytest.mark.differs_from_parse_server("it counts the objects for any number")
def test_sum_of_a_constant(master: httpx.Client, items: str) -> None:
    assert run(master, items, [{"$group": {"_id": None, "twice": {"$sum": 2}, "half": {"$sum": 0.5}}}]) == [
        {"objectId": None, "twice": 10, "half": 2.5}]


def test_group_errors(master: httpx.Client, items: str) -> None:
    refused(master, items, [{"$group": {}}], 102, "Invalid parameter for query: group. Missing key _id")
    refused(master, items, [{"$group": {"objectId": "$name"}}], 102,
            "Cannot use 'objectId' in aggregation stage $group.")
    refused(master, items, [{"$group": {"_id": "$nope"}}], 102, 'column "nope" does not exist')
    refused(master, items, [{"$group": {"_id": "$name", "x": {"$sum": "$nope"}}}], 102,
            'column "nope" does not exist')
    refused(master, items, [{"$group": {"_id": "name"}}], 105, "Invalid field name: name")


@pytest.mark.differs_from_parse_server("it ignores what it does not know, or fails in SQL")
def test_group_errors_parse_server_ignores(master: httpx.Client, items: str) -> None:
    refused(master, items, [{"$group": {"_id": "$name", "x": {"$median": "$score"}}}], 102)
    refused(master, items, [{"$group": {"_id": "$name", "x": 5}}], 102)
    refused(master, items, [{"$group": {"_id": "$name", "x": {"$sum": "$name"}}}], 102)
    refused(master, items, [{"$group": {"_id": {"y": {"$year": "$name"}}}}], 102)


# --- $match ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("match", "expected"), [
    ({"score": {"$gt": 15}}, ["dpl"]),
    ({"score": {"$gt": 5, "$lt": 15}}, ["bar", "foo", "foo"]),
    ({"score": {"$gt": 5, "$lt": 15}, "views": {"$gt": 850, "$lt": 1000}}, ["foo"]),
    ({"score": {"$gt": 5, "$lt": 15}, "views": 900}, ["foo"]),
    ({"$or": [{"score": {"$gt": 15, "$lt": 25}}, {"views": {"$gt": 750, "$lt": 850}}]}, ["dpl", "foo"]),
    ({"name": "bar"}, ["bar"]),
    ({"when": {"$lt": {"__type": "Date", "iso": "2021-01-01T00:00:00.000Z"}}}, ["foo", "foo"]),
])
def test_match(master: httpx.Client, items: str, match: dict[str, Any], expected: list[str]) -> None:
    assert sorted(r["name"] for r in run(master, items, [{"$match": match}])) == expected


@pytest.mark.differs_from_parse_server("its $match knows comparisons and equality only")
@pytest.mark.parametrize(("match", "expected"), [
    ({"name": {"$in": ["bar", "dpl"]}}, ["bar", "dpl"]),
    ({"score": {"$exists": False}}, ["nos"]),
    ({"name": {"$regex": "^f"}}, ["foo", "foo"]),
    ({"size": "L"}, ["foo"]),
    ({"sender.group": "B", "score": {"$ne": 20}}, ["bar"]),
])
def test_match_any_query(master: httpx.Client, items: str, match: dict[str, Any], expected: list[str]) -> None:
    assert sorted(r["name"] for r in run(master, items, [{"$match": match}])) == expected


def test_match_object_id(master: httpx.Client, items: str) -> None:
    object_id = master.get(f"/classes/{items}", params={"where": json.dumps({"name": "bar"})}).json()["results"][0][
        "objectId"]
    for key in ("_id", "objectId"):
        assert [r["objectId"] for r in run(master, items, [{"$match": {key: object_id}}])] == [object_id]
    assert run(master, items, [{"$match": {"_id": "nomatch0000"}}]) == []


def test_match_created_at(master: httpx.Client, items: str) -> None:
    assert len(run(master, items, [{"$match": {"createdAt": {"$gte": {"__type": "Date",
                                                                      "iso": "2020-01-01T00:00:00.000Z"}}}}])) == 5
    assert run(master, items, [{"$match": {"updatedAt": {"$gt": {"__type": "Date",
                                                                 "iso": "2999-01-01T00:00:00.000Z"}}}}]) == []


@pytest.mark.differs_from_parse_server("it applies every $match before grouping, on the class's columns")
def test_match_after_group(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$group": {"_id": "$name", "c": {"$sum": 1}}}, {"$match": {"c": {"$gt": 1}}}])
    assert results == [{"objectId": "foo", "c": 2}]
    results = run(master, items, [{"$group": {"_id": "$score", "c": {"$sum": 1}}}, {"$match": {"_id": 20}}])
    assert results == [{"objectId": 20, "c": 1}]
    refused(master, items, [{"$group": {"_id": "$name"}}, {"$match": {"score": 10}}], 102,
            'column "score" does not exist')


@pytest.mark.differs_from_parse_server("it fails on a where beside a pipeline")
def test_where_is_a_leading_match(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$group": {"_id": "$score"}}], where=json.dumps({"name": "dpl"}))
    assert results == [{"objectId": 20}]


# --- documents, $project, $sort, $limit, $skip ----------------------------------------------------


def test_whole_documents_are_encoded_as_find_does(master: httpx.Client, class_name: str) -> None:
    target = class_name + "P"
    pointer = {"__type": "Pointer", "className": target, "objectId": seed(master, target, [{"v": 1}])[0]}
    make_class(master, class_name, {"rel": {"type": "Relation", "targetClass": target}, "other": {"type": "String"}})
    seed(master, class_name, [{"name": "a", "when": WHEN[0], "p": pointer, "ACL": {"*": {"read": True}}}])
    results = run(master, class_name, [{"$match": {"name": "a"}}])
    assert len(results) == 1
    found = results[0]
    assert OBJECT_ID.match(found["objectId"]) and ISO_DATE.match(found["createdAt"])
    assert ISO_DATE.match(found["updatedAt"])
    assert found["when"] == WHEN[0] and found["p"] == pointer
    assert found["rel"] == {"__type": "Relation", "className": target}
    assert "other" not in found and "ACL" not in found and "_rperm" not in found


def test_project(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$project": {"name": 1, "score": 1}}])
    # objectId is there, null, unless projected (Parse Server on PostgreSQL).
    assert unordered(results) == unordered(
        [{"objectId": None, "name": n, "score": s} for n, s in (("foo", 10), ("foo", 10), ("bar", 10), ("dpl", 20))]
        + [{"objectId": None, "name": "nos"}])
    results = run(master, items, [{"$match": {"name": "bar"}},
                                  {"$project": {"when": 1, "createdAt": 1, "objectId": 1}}])
    assert results[0]["when"] == WHEN[2] and ISO_DATE.match(results[0]["createdAt"])
    assert OBJECT_ID.match(results[0]["objectId"]) and set(results[0]) == {"objectId", "when", "createdAt"}


def test_project_with_group(master: httpx.Client, items: str) -> None:
    results = run(master, items, {"$project": {"score": 1}, "$group": {"_id": "$score", "score": {"$sum": "$score"}}})
    assert unordered(results) == unordered([{"objectId": 10, "score": 30}, {"objectId": 20, "score": 20},
                                            {"objectId": None}])


@pytest.mark.differs_from_parse_server("its $project only includes fields")
def test_project_renames_and_excludes(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$match": {"name": "bar"}}, {"$project": {"label": "$name", "score": 1}}])
    assert results == [{"objectId": None, "label": "bar", "score": 10}]
    results = run(master, items, [{"$match": {"name": "bar"}},
                                  {"$project": {"size": 0, "sender": 0, "when": 0, "createdAt": 0, "updatedAt": 0,
                                                "objectId": 0}}])
    assert results == [{"objectId": None, "name": "bar", "score": 10, "views": 700}]
    refused(master, items, [{"$project": {"name": 1, "score": 0}}], 102)
    refused(master, items, [{"$group": {"_id": "$score"}}, {"$project": {"objectId": 0}}], 102,
            "$project leaves no field.")
    results = run(master, items, [{"$match": {"name": "bar"}}, {"$project": {"_id": 1}}])  # Mongo's name
    assert OBJECT_ID.match(results[0]["objectId"])


def test_sort_and_limit(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$sort": {"views": -1}}, {"$limit": 2}, {"$project": {"name": 1, "views": 1}}])
    # Nulls first when descending, as PostgreSQL sorts them.
    assert results == [{"objectId": None, "name": "nos"}, {"objectId": None, "name": "foo", "views": 900}]
    results = run(master, items, [{"$sort": {"name": 1}}])
    assert [r["name"] for r in results] == ["bar", "dpl", "foo", "foo", "nos"]
    results = run(master, items, [{"$group": {"_id": "$name", "c": {"$sum": 1}}}, {"$sort": {"c": -1, "objectId": 1}}])
    assert results == [{"objectId": "foo", "c": 2}, {"objectId": "bar", "c": 1}, {"objectId": "dpl", "c": 1},
                       {"objectId": "nos", "c": 1}]
    assert len(run(master, items, [{"$limit": 2}])) == 2
    assert len(run(master, items, [{"$skip": 2}])) == 3
    assert len(run(master, items, [{"$limit": 0}])) == 5  # 0: no limit, as Parse Server reads it


@pytest.mark.differs_from_parse_server("its SQL puts OFFSET before ORDER BY; _id is no column there")
def test_sort_skip_limit_in_order(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$match": {"score": {"$gt": 5}}}, {"$sort": {"views": -1, "name": 1}},
                                  {"$skip": 1}, {"$limit": 2}, {"$project": {"name": 1}}])
    assert results == [{"objectId": None, "name": "foo"}, {"objectId": None, "name": "bar"}]
    results = run(master, items, [{"$group": {"_id": {"s": "$score", "v": "$views"}}},
                                  {"$sort": {"_id.v": 1, "_id.s": -1}}, {"$limit": 2}])
    assert results == [{"objectId": {"s": 20, "v": 700}}, {"objectId": {"s": 10, "v": 700}}]


# --- $unwind, $count ------------------------------------------------------------------------------


@pytest.mark.differs_from_parse_server("it ignores $unwind and $count")
def test_unwind_and_count(master: httpx.Client, items: str) -> None:
    results = run(master, items, [{"$unwind": "$size"}, {"$group": {"_id": "$size", "c": {"$sum": 1}}},
                                  {"$sort": {"c": -1, "_id": 1}}])
    assert results == [{"objectId": "S", "c": 3}, {"objectId": "M", "c": 2}, {"objectId": "L", "c": 1}]
    results = run(master, items, [{"$match": {"name": "foo"}}, {"$sort": {"views": 1}}, {"$unwind": "$size"},
                                  {"$project": {"size": 1}}])
    assert [r["size"] for r in results] == ["M", "L", "S", "M"]
    kept = run(master, items, [{"$unwind": {"path": "$size", "preserveNullAndEmptyArrays": True}}, {"$count": "n"}])
    assert kept == [{"objectId": None, "n": 7}]
    assert run(master, items, [{"$count": "total"}]) == [{"objectId": None, "total": 5}]
    assert run(master, items, [{"$match": {"name": "zzz"}}, {"$count": "total"}]) == []
    refused(master, items, [{"$unwind": "$name"}], 102)


# --- errors and hostile input ---------------------------------------------------------------------


def test_stage_errors(master: httpx.Client, items: str) -> None:
    refused(master, items, [{"$group": {"_id": "$name"}, "$limit": 1}], 102,
            "Pipeline stages should only have one key but found $group, $limit.")
    refused(master, items, [{"group": {"_id": "$name"}}], 102, "Invalid aggregate stage 'group'.")
    refused(master, items, [{"$limit": -1}], 102)
    refused(master, items, [{"$skip": "x"}], 102)


@pytest.mark.differs_from_parse_server("it ignores unknown stages and sorts descending by any value but 1")
def test_unknown_stage(master: httpx.Client, items: str) -> None:
    refused(master, items, [{"$lookup": {"from": "x"}}], 102, "Invalid aggregate stage '$lookup'.")
    refused(master, items, [{"$out": "Other"}], 102, "Invalid aggregate stage '$out'.")
    refused(master, items, [{"$sort": {"name": "up"}}], 102)


HOSTILE_REFERENCES = [
    [{"$group": {"_id": '$na"me'}}],
    [{"$project": {'name" FROM x; --': 1}}],
    [{"$sort": {"name; DROP TABLE x": 1}}],
    [{"$group": {"_id": "$_rperm"}}],
    [{"$group": {"_id": "$_hashed_password"}}],
]
# Names Parse Server quotes and accepts as output names (or stages it ignores); Bastion accepts
# valid field names only.
HOSTILE_NAMES = [
    [{"$group": {"_id": "$name", 'x"; DROP TABLE x; --': {"$sum": 1}}}],
    [{"$group": {"_id": {'a"b': "$name"}}}],
    [{"$unwind": "$size\x00"}],
    [{"$count": 'n"'}],
]


def _refused_unchanged(master: httpx.Client, class_name: str, pipeline: Any) -> None:
    response = master.get(f"/aggregate/{class_name}", params={"pipeline": json.dumps(pipeline)})
    assert response.status_code == 400, response.text
    assert response.json()["code"] in (102, 105)
    assert count(master, class_name) == 5


@pytest.mark.parametrize("pipeline", HOSTILE_REFERENCES)
def test_hostile_references_are_refused(master: httpx.Client, items: str, pipeline: Any) -> None:
    _refused_unchanged(master, items, pipeline)


@pytest.mark.differs_from_parse_server("it quotes any output name")
@pytest.mark.parametrize("pipeline", HOSTILE_NAMES)
def test_hostile_output_names_are_refused(master: httpx.Client, items: str, pipeline: Any) -> None:
    _refused_unchanged(master, items, pipeline)


def test_hostile_values_are_bound(master: httpx.Client, items: str) -> None:
    assert run(master, items, [{"$match": {"name": "x'; DROP TABLE y; --"}}]) == []
    assert run(master, items, [{"$limit": 1}, {"$match": {"name": {"$regex": "'\""}}}]) == []
    assert count(master, items) == 5
