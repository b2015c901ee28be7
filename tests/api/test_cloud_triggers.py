"""Object and find triggers seen through ordinary REST writes and queries.

The server runs tests/cloud_app; the CloudScore and CloudValidated triggers are in
tests/cloud_app/triggers.py.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error, fetch

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="runs Bastion's Python cloud code (tests/cloud_app)")


@pytest.fixture(autouse=True)
def classes(master: httpx.Client) -> Iterator[None]:
    for name in ("CloudScore", "CloudValidated"):
        master.post(f"/schemas/{name}", json={"className": name})  # 103 when it exists already: fine
    yield


def test_before_save_changes_a_create_and_the_answer_says_so(api: httpx.Client) -> None:
    response = api.post("/classes/CloudScore", json={"score": 3, "name": "shout", "dropMe": 1})
    assert response.status_code == 201, response.text
    body = response.json()
    # As Parse Server: fields the trigger changed come back with the answer; deleted ones as Delete.
    assert body["name"] == "SHOUT" and body["checked"] is True and body["existed"] is False
    assert body["dropMe"] == {"__op": "Delete"}
    assert "score" not in body  # unchanged by the trigger
    stored = fetch(api, "CloudScore", body["objectId"])
    assert stored["name"] == "SHOUT" and stored["checked"] is True and "dropMe" not in stored


def test_before_save_refusal_stores_nothing(api: httpx.Client, master: httpx.Client) -> None:
    marker = secrets.token_hex(4)
    assert_error(api.post("/classes/CloudScore", json={"score": -1, "marker": marker}), 400, 142,
                 "score must be >= 0")
    found = master.get("/classes/CloudScore", params={"where": json.dumps({"marker": marker})}).json()
    assert found["results"] == []


def test_a_crashing_trigger_answers_141_with_its_message(api: httpx.Client) -> None:
    # As Parse Server answers a beforeSave that throws new Error("boom"): 141, not 142.
    response = api.post("/classes/CloudScore", json={"score": 1, "crash": True})
    assert_error(response, 400, 141, "boom")
    assert "Traceback" not in response.text


def test_before_save_on_update_sees_original_and_merges_operations(api: httpx.Client) -> None:
    created = api.post("/classes/CloudScore", json={"score": 3, "bumps": 1}).json()
    response = api.put(f"/classes/CloudScore/{created['objectId']}",
                       json={"score": 5, "bump": True, "bumps": {"__op": "Increment", "amount": 2}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sawOriginal"] == 3 and body["existed"] is True
    assert body["bumps"] == 13  # the client's Increment of 2 and the trigger's 10, applied atomically
    stored = fetch(api, "CloudScore", created["objectId"])
    assert stored["score"] == 5 and stored["bumps"] == 13 and stored["sawOriginal"] == 3


def test_update_of_an_invisible_object_is_not_found(api: httpx.Client, master: httpx.Client) -> None:
    response = master.post("/classes/CloudScore", json={"score": 1, "ACL": {}})
    assert response.status_code == 201, response.text
    created = response.json()
    assert_error(api.put(f"/classes/CloudScore/{created['objectId']}", json={"score": 2}), 404, 101,
                 "Object not found.")


def test_master_and_context_reach_the_trigger(api: httpx.Client, master: httpx.Client) -> None:
    assert master.post("/classes/CloudScore", json={"score": 1}).json()["sawMaster"] is True
    response = api.post("/classes/CloudScore", json={"score": 1},
                        headers={"X-Parse-Cloud-Context": json.dumps({"tag": "from-header"})})
    assert response.json()["contextTag"] == "from-header"


def test_after_save_failure_is_only_logged(api: httpx.Client) -> None:
    response = api.post("/classes/CloudScore", json={"score": 1, "failAfter": True})
    assert response.status_code == 201, response.text


def test_before_find_rewrites_the_query_and_after_find_changes_results(api: httpx.Client) -> None:
    marker = secrets.token_hex(4)
    visible = api.post("/classes/CloudScore", json={"score": 1, "marker": marker}).json()
    hidden = api.post("/classes/CloudScore", json={"score": 2, "marker": marker, "hidden": True}).json()
    found = api.get("/classes/CloudScore", params={"where": json.dumps({"marker": marker})}).json()["results"]
    assert [o["objectId"] for o in found] == [visible["objectId"]]
    assert found[0]["decorated"] is True
    # A get is a find of one object: the same triggers apply.
    assert fetch(api, "CloudScore", visible["objectId"])["decorated"] is True
    assert_error(api.get(f"/classes/CloudScore/{hidden['objectId']}"), 404, 101, "Object not found.")


def test_before_find_caps_the_limit(master: httpx.Client) -> None:
    master.post("/batch", json={"requests": [
        {"method": "POST", "path": "/parse/classes/CloudScore", "body": {"score": i, "bulk": True}}
        for i in range(50)]})
    master.post("/batch", json={"requests": [
        {"method": "POST", "path": "/parse/classes/CloudScore", "body": {"score": i, "bulk": True}}
        for i in range(10)]})
    found = master.get("/classes/CloudScore", params={"where": '{"bulk": true}', "limit": 1000}).json()["results"]
    assert len(found) == 50


def test_triggers_run_inside_batch(api: httpx.Client) -> None:
    response = api.post("/batch", json={"requests": [
        {"method": "POST", "path": "/parse/classes/CloudScore", "body": {"score": 1, "name": "shout"}},
        {"method": "POST", "path": "/parse/classes/CloudScore", "body": {"score": -5}},
    ]})
    first, second = response.json()
    assert first["success"]["name"] == "SHOUT"
    assert second == {"error": {"code": 142, "error": "score must be >= 0"}}


def test_before_delete_can_refuse_and_after_delete_errors_reach_the_client(api: httpx.Client) -> None:
    kept = api.post("/classes/CloudScore", json={"score": 1, "protected": True}).json()
    assert_error(api.delete(f"/classes/CloudScore/{kept['objectId']}"), 400, 119, "this score is protected")
    assert fetch(api, "CloudScore", kept["objectId"])["protected"] is True
    gone = api.post("/classes/CloudScore", json={"score": 1, "failAfterDelete": True}).json()
    assert_error(api.delete(f"/classes/CloudScore/{gone['objectId']}"), 400, 141, "after delete failure")
    assert_error(api.get(f"/classes/CloudScore/{gone['objectId']}"), 404, 101, "Object not found.")
    plain = api.post("/classes/CloudScore", json={"score": 1}).json()
    assert api.delete(f"/classes/CloudScore/{plain['objectId']}").json() == {}


def test_delete_of_a_missing_object_with_triggers(api: httpx.Client) -> None:
    assert_error(api.delete("/classes/CloudScore/doesNotExist"), 404, 101, "Object not found for delete.")


def test_trigger_validators(api: httpx.Client) -> None:
    assert_error(api.post("/classes/CloudValidated", json={}), 400, 142,
                 "Validation failed. Please specify data for title.")
    created = api.post("/classes/CloudValidated", json={"title": "t", "status": "published"})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft"  # constant: the client may not choose it
    object_id = created.json()["objectId"]
    response = api.put(f"/classes/CloudValidated/{object_id}", json={"status": "published"})
    assert response.status_code == 200, response.text
    assert fetch(api, "CloudValidated", object_id)["status"] == "draft"
