"""cloud.Query's builders: the REST where, order, keys and include they produce (no server)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest

from bastion import cloud
from bastion.cloud._runtime.context import running
from bastion.cloud.query import quote
from bastion.domain.read import FindRequest

Q = cloud.Query
POINT = {"__type": "GeoPoint", "latitude": 1.0, "longitude": 2.0}


def test_class_name_from_a_string_an_object_class_or_an_object() -> None:
    assert Q("Game").class_name == "Game"
    assert Q(cloud.User).class_name == "_User"
    assert Q(cloud.Role).class_name == "_Role"
    assert Q(cloud.Object("Game")).class_name == "Game"
    with pytest.raises(ValueError):
        Q("")


def test_comparisons_and_values() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    owner = cloud.Object.pointer("Owner", "o1")
    q = (Q("T").equal_to("a", 1).not_equal_to("b", "x").less_than("c", 3).less_than_or_equal_to("d", 4)
         .greater_than("e", when).greater_than_or_equal_to("f", 6).equal_to("owner", owner))
    assert q.where == {
        "a": 1, "b": {"$ne": "x"}, "c": {"$lt": 3}, "d": {"$lte": 4},
        "e": {"$gt": {"__type": "Date", "iso": "2024-01-02T03:04:05.000Z"}}, "f": {"$gte": 6},
        "owner": {"__type": "Pointer", "className": "Owner", "objectId": "o1"},
    }


def test_conditions_on_one_key_combine_and_replace_an_equality() -> None:
    q = Q("T").greater_than("n", 1).less_than("n", 5)
    assert q.where == {"n": {"$gt": 1, "$lt": 5}}
    q = Q("T").equal_to("n", 3).greater_than("n", 1)
    assert q.where == {"n": {"$gt": 1}}
    q = Q("T").equal_to("p", cloud.Object.pointer("P", "x")).exists("p")
    assert q.where == {"p": {"$exists": True}}
    assert Q("T").equal_to({"a": 1, "b": None}).where == {"a": 1, "b": None}


def test_sets_and_arrays() -> None:
    q = (Q("T").contained_in("a", (1, 2)).not_contained_in("b", [3]).contains_all("c", ["x", "y"])
         .contained_by("d", ["z"]).contains_all_starting_with("e", "pre").exists("f").does_not_exist("g"))
    assert q.where == {
        "a": {"$in": [1, 2]}, "b": {"$nin": [3]}, "c": {"$all": ["x", "y"]}, "d": {"$containedBy": ["z"]},
        "e": {"$all": [{"$regex": "^\\Qpre\\E"}]}, "f": {"$exists": True}, "g": {"$exists": False},
    }


def test_strings_are_quoted_as_the_sdk_quotes_them() -> None:
    assert quote("a.b") == "\\Qa.b\\E"
    assert quote("x\\Ey") == "\\Qx\\E\\\\E\\Qy\\E"
    q = Q("T").starts_with("a", "Ap.").ends_with("b", "*z").contains("c", "(x)")
    assert q.where == {"a": {"$regex": "^\\QAp.\\E"}, "b": {"$regex": "\\Q*z\\E$"}, "c": {"$regex": "\\Q(x)\\E"}}
    assert Q("T").starts_with("a", "ap", "i").where == {"a": {"$regex": "^\\Qap\\E", "$options": "i"}}
    with pytest.raises(TypeError):
        Q("T").contains("a", 5)  # type: ignore[arg-type]


def test_regular_expressions() -> None:
    assert Q("T").matches("a", "^x").where == {"a": {"$regex": "^x"}}
    assert Q("T").matches("a", "^x", "im").where == {"a": {"$regex": "^x", "$options": "im"}}
    pattern = re.compile("^x.y", re.IGNORECASE | re.MULTILINE | re.DOTALL)
    assert Q("T").matches("a", pattern).where == {"a": {"$regex": "^x.y", "$options": "ims"}}


def test_full_text() -> None:
    assert Q("T").full_text("t", "fox").where == {"t": {"$text": {"$search": {"$term": "fox"}}}}
    q = Q("T").full_text("t", "fox", language="english", case_sensitive=False, diacritic_sensitive=True)
    assert q.where == {"t": {"$text": {"$search": {"$term": "fox", "$language": "english",
                                                   "$caseSensitive": False, "$diacriticSensitive": True}}}}
    q = Q("T").full_text("t", "fox").sort_by_text_score()
    assert q.order == "$score" and q.keys == ["$score"]
    with pytest.raises(ValueError):
        Q("T").full_text("t", "")


def test_geo() -> None:
    assert Q("T").near("p", (1.0, 2.0)).where == {"p": {"$nearSphere": POINT}}
    assert Q("T").within_radians("p", POINT, 0.5).where == {"p": {"$nearSphere": POINT, "$maxDistance": 0.5}}
    assert Q("T").within_radians("p", POINT, 0.5, sorted=False).where == {
        "p": {"$geoWithin": {"$centerSphere": [[2.0, 1.0], 0.5]}}}
    assert Q("T").within_kilometers("p", POINT, 6371.0).where["p"]["$maxDistance"] == 1.0
    assert Q("T").within_miles("p", POINT, 3958.8).where["p"]["$maxDistance"] == 1.0
    box = Q("T").within_geo_box("p", (0, 0), {"latitude": 5, "longitude": 6}).where
    assert box == {"p": {"$within": {"$box": [{"__type": "GeoPoint", "latitude": 0, "longitude": 0},
                                              {"__type": "GeoPoint", "latitude": 5, "longitude": 6}]}}}
    polygon = Q("T").within_polygon("p", [(0, 0), (0, 1), (1, 1)]).where["p"]["$geoWithin"]["$polygon"]
    assert [(p["latitude"], p["longitude"]) for p in polygon] == [(0, 0), (0, 1), (1, 1)]
    assert Q("T").polygon_contains("area", POINT).where == {"area": {"$geoIntersects": {"$point": POINT}}}
    with pytest.raises(TypeError):
        Q("T").near("p", "here")


def test_subqueries_and_relations() -> None:
    inner = Q("Owner").equal_to("rank", 1).set_limit(5)
    q = Q("T").matches_query("o", inner).does_not_match_query("p", inner)
    sub = {"where": {"rank": 1}, "limit": 5, "className": "Owner"}
    assert q.where == {"o": {"$inQuery": sub}, "p": {"$notInQuery": sub}}
    q = Q("T").matches_key_in_query("a", "rank", inner).does_not_match_key_in_query("b", "rank", inner)
    assert q.where == {"a": {"$select": {"key": "rank", "query": sub}},
                       "b": {"$dontSelect": {"key": "rank", "query": sub}}}
    parent = cloud.Object.pointer("Parent", "p1")
    assert Q("Item").related_to(parent, "likes").where == {
        "$relatedTo": {"object": {"__type": "Pointer", "className": "Parent", "objectId": "p1"}, "key": "likes"}}
    assert parent.relation("likes", "Item").query().where == Q("Item").related_to(parent, "likes").where


def test_or_and_nor() -> None:
    a, b = Q("T").equal_to("n", 1), Q("T").greater_than("n", 5)
    assert Q.or_(a, b).where == {"$or": [{"n": 1}, {"n": {"$gt": 5}}]}
    assert Q.and_([a, b]).where == {"$and": [{"n": 1}, {"n": {"$gt": 5}}]}
    assert Q.nor(a).where == {"$nor": [{"n": 1}]}
    assert Q.or_(a, b).class_name == "T"
    with pytest.raises(ValueError, match="same class"):
        Q.or_(a, Q("U"))
    combined = Q.or_(a, b)
    combined.where["$or"][0]["n"] = 2
    assert a.where == {"n": 1}  # the parts are copied


def test_order_keys_include_paging() -> None:
    q = Q("T").ascending("a", "b").add_descending("c").add_ascending("d,e")
    assert q.order == "a,b,-c,d,e"
    assert Q("T").ascending("x").descending("y", "z").order == "-y,-z"
    q = Q("T").select("a", "b").select(["c"]).exclude("d").include_key("owner", "owner.team").set_limit(7).set_skip(3)
    request = q.to_find_request()
    assert (request.keys, request.exclude_keys, request.include, request.limit, request.skip) == (
        ["a", "b", "c"], ["d"], ["owner", "owner.team"], 7, 3)
    assert Q("T").include_all().include == ["*"]
    with pytest.raises(TypeError):
        Q("T").set_skip(-1)
    with pytest.raises(TypeError):
        Q("T").set_limit("3")  # type: ignore[arg-type]


def test_find_request_round_trip_keeps_the_trigger_attributes() -> None:
    request = FindRequest(where={"a": 1}, order="-b", limit=3, skip=2, keys=["a"], exclude_keys=["c"],
                          include=["d"], count=True)
    q = Q.from_find_request("T", request)
    assert (q.where, q.order, q.limit, q.skip, q.keys, q.exclude_keys, q.include) == (
        {"a": 1}, "-b", 3, 2, ["a"], ["c"], ["d"])
    again = q.to_find_request(count=True)
    assert again == request
    assert q.to_json() == {"where": {"a": 1}, "include": "d", "excludeKeys": "c", "keys": "a", "limit": 3,
                           "skip": 2, "order": "-b"}


def test_copy_is_independent() -> None:
    q = Q("T").equal_to("a", {"x": 1}).include_key("o")
    other = q.copy().equal_to("b", 2).include_key("p")
    assert q.where == {"a": {"x": 1}} and q.include == ["o"]
    assert other.where == {"a": {"x": 1}, "b": 2} and other.include == ["o", "p"]


def test_the_data_api_outside_a_server_says_so() -> None:
    with running(None):
        with pytest.raises(RuntimeError, match="runs inside a Bastion server"):
            asyncio.run(Q("T").find())
        with pytest.raises(RuntimeError, match="runs inside a Bastion server"):
            asyncio.run(cloud.Object("T").save())
