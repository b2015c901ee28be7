"""POST /batch with ``transaction: true``: all of it or nothing, on both backends.

Parse Server 9 answers a transactional batch in which a request fails with a bare 500
``{"code": 1, "message": "Internal server error."}`` and writes nothing of it.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, count, create, fetch

FAILED = {"code": 1, "message": "Internal server error."}


def request(client: httpx.Client, method: str, path: str, body: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"method": method, "path": client.base_url.path.rstrip("/") + path}
    if body is not None:
        item["body"] = body
    return item


def batch(client: httpx.Client, requests: list[dict[str, Any]], timeout: float = 30) -> httpx.Response:
    return client.post("/batch", json={"requests": requests, "transaction": True}, timeout=timeout)


def fields(master: httpx.Client, class_name: str) -> set[str]:
    response = master.get(f"/schemas/{class_name}")
    return set(response.json()["fields"]) if response.status_code == 200 else set()


def test_all_succeed(master: httpx.Client, class_name: str) -> None:
    kept = create(master, class_name, {"n": 1})["objectId"]
    gone = create(master, class_name, {"n": 2})["objectId"]
    response = batch(master, [
        request(master, "POST", f"/classes/{class_name}", {"n": 3}),
        request(master, "PUT", f"/classes/{class_name}/{kept}", {"n": {"__op": "Increment", "amount": 10}}),
        request(master, "DELETE", f"/classes/{class_name}/{gone}"),
    ])
    assert response.status_code == 200, response.text
    created, updated, deleted = response.json()
    assert set(created["success"]) == {"objectId", "createdAt"}
    assert updated["success"]["n"] == 11
    assert deleted == {"success": {}}
    assert count(master, class_name) == 2
    assert fetch(master, class_name, kept)["n"] == 11


@pytest.mark.differs_from_parse_server("it runs a batch's requests at once, its reads outside the transaction")
def test_reads_inside_see_the_batch(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    kept = create(master, class_name, {"n": 1})["objectId"]
    response = batch(api, [
        request(api, "POST", f"/classes/{class_name}", {"n": 3}),
        request(api, "PUT", f"/classes/{class_name}/{kept}", {"n": {"__op": "Increment", "amount": 10}}),
        request(api, "GET", f"/classes/{class_name}", {"where": {"n": {"$gte": 3}}, "order": "n"}),
    ])
    assert response.status_code == 200, response.text
    assert [obj["n"] for obj in response.json()[2]["success"]["results"]] == [3, 11]


def test_one_fails_nothing_is_written(master: httpx.Client, class_name: str) -> None:
    kept = create(master, class_name, {"n": 1, "tags": ["a"]})["objectId"]
    doomed = create(master, class_name, {"n": 2})["objectId"]
    response = batch(master, [
        request(master, "POST", f"/classes/{class_name}", {"n": 3}),
        request(master, "PUT", f"/classes/{class_name}/{kept}",
                {"n": {"__op": "Increment", "amount": 10}, "tags": {"__op": "Add", "objects": ["b"]}}),
        request(master, "DELETE", f"/classes/{class_name}/{doomed}"),
        request(master, "POST", f"/classes/{class_name}", {"n": "not a number"}),  # 111
    ])
    assert response.status_code == 500
    assert response.json() == FAILED
    assert count(master, class_name) == 2
    assert {k: v for k, v in fetch(master, class_name, kept).items() if k in ("n", "tags")} == {"n": 1, "tags": ["a"]}
    assert fetch(master, class_name, doomed)["n"] == 2


def test_a_missing_object_fails_the_batch(master: httpx.Client, class_name: str) -> None:
    response = batch(master, [
        request(master, "POST", f"/classes/{class_name}", {"n": 1}),
        request(master, "PUT", f"/classes/{class_name}/nothere123", {"n": 2}),
    ])
    assert response.status_code == 500
    assert response.json() == FAILED
    assert fields(master, class_name) == set()  # the class the first request created is gone too


def test_schema_changes_are_rolled_back(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"n": 1})
    before = fields(master, class_name)
    response = batch(master, [
        request(master, "POST", f"/classes/{class_name}", {"n": 2, "fresh": "text", "rel": {
            "__op": "AddRelation", "objects": [{"__type": "Pointer", "className": class_name + "B", "objectId": "x"}]}}),
        request(master, "POST", f"/classes/{class_name}B", {"other": True}),
        request(master, "POST", f"/classes/{class_name}", {"n": "wrong"}),
    ])
    assert response.status_code == 500
    assert fields(master, class_name) == before
    assert master.get(f"/schemas/{class_name}B").status_code == 400
    # The cache forgot the fields as well: they take another type now.
    create(master, class_name, {"fresh": 5, "rel": True})
    assert master.get(f"/schemas/{class_name}").json()["fields"]["fresh"] == {"type": "Number"}


def test_schema_changes_are_kept_on_commit(master: httpx.Client, class_name: str) -> None:
    response = batch(master, [
        request(master, "POST", f"/classes/{class_name}", {"n": 1, "fresh": "text"}),
        request(master, "POST", f"/classes/{class_name}", {"n": 2, "fresh": "more", "later": [1]}),
    ])
    assert response.status_code == 200, response.text
    assert {"n", "fresh", "later"} <= fields(master, class_name)
    found = master.get(f"/classes/{class_name}", params={"where": json.dumps({"later": 1})}).json()["results"]
    assert [obj["fresh"] for obj in found] == ["more"]


def test_relations_are_rolled_back(master: httpx.Client, class_name: str) -> None:
    item = create(master, class_name + "I", {})["objectId"]
    owner = create(master, class_name, {"n": 1})["objectId"]
    target = {"__type": "Pointer", "className": class_name + "I", "objectId": item}
    response = batch(master, [
        request(master, "PUT", f"/classes/{class_name}/{owner}", {"rel": {"__op": "AddRelation", "objects": [target]}}),
        request(master, "PUT", f"/classes/{class_name}/{owner}", {"n": "x"}),
    ])
    assert response.status_code == 500
    where = {"$relatedTo": {"object": {"__type": "Pointer", "className": class_name, "objectId": owner},
                            "key": "rel"}}
    found = master.get(f"/classes/{class_name}I", params={"where": json.dumps(where)}).json()["results"]
    assert found == []


def test_without_transaction_each_request_answers(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"n": 0})
    requests = [request(master, "POST", f"/classes/{class_name}", {"n": 1}),
                request(master, "POST", f"/classes/{class_name}", {"n": "x"})]
    for extra in ({"transaction": False}, {"transaction": "true"}, {}):
        response = master.post("/batch", json={"requests": requests, **extra})
        assert response.status_code == 200, response.text
        ok, failed = response.json()
        assert "success" in ok
        assert failed["error"]["code"] == 111
    assert count(master, class_name) == 4


def test_empty_transaction(master: httpx.Client) -> None:
    response = batch(master, [])
    assert response.status_code == 200
    assert response.json() == []


def test_client_keys_and_acl(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    locked = create(master, class_name, {"n": 1, "ACL": {}})["objectId"]
    response = batch(api, [
        request(api, "POST", f"/classes/{class_name}", {"n": 2}),
        request(api, "PUT", f"/classes/{class_name}/{locked}", {"n": 3}),  # 101: the ACL refuses it
    ])
    assert response.status_code == 500
    assert count(master, class_name) == 1
    response = batch(api, [request(api, "POST", f"/classes/{class_name}", {"n": 2}),
                           request(api, "POST", f"/classes/{class_name}", {"n": 3})])
    assert response.status_code == 200, response.text
    assert count(master, class_name) == 3


@pytest.mark.differs_from_parse_server("its batchRequestLimit is off (-1) by default; Bastion's is 50")
def test_request_limit(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    requests = [request(api, "POST", f"/classes/{class_name}", {"n": i}) for i in range(51)]
    assert_error(batch(api, requests), 400, 107, "Batch request contains 51 sub-requests, which exceeds the limit of 50.")
    assert_error(api.post("/batch", json={"requests": requests}), 400, 107)
    assert count(master, class_name) == 0
    # The master key is not limited, as in Parse Server.
    response = batch(master, requests)
    assert response.status_code == 200, response.text
    assert count(master, class_name) == 51


def test_concurrent_writes_while_a_batch_runs(server: Any, master: httpx.Client, class_name: str) -> None:
    """Plain writes (some adding fields) beside transactional batches (some failing): no deadlock,
    every plain write lands, every batch is all or nothing."""
    create(master, class_name, {"n": 0})

    def run_batch(i: int) -> int:
        with server.client(master=True) as client:
            requests = [request(client, "POST", f"/classes/{class_name}", {"n": 100 + i, f"b{i}": i})
                        for _ in range(20)]
            if i % 2:
                requests.append(request(client, "POST", f"/classes/{class_name}", {"n": "bad"}))
            return batch(client, requests, timeout=60).status_code

    def run_plain(i: int) -> int:
        with server.client(master=True) as client:
            return client.post(f"/classes/{class_name}", json={"n": 1000 + i, f"p{i}": i}, timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        batches = [pool.submit(run_batch, i) for i in range(4)]
        plain = [pool.submit(run_plain, i) for i in range(12)]
        assert [f.result(timeout=90) for f in batches] == [200, 500, 200, 500]
        assert [f.result(timeout=90) for f in plain] == [201] * 12
    assert count(master, class_name) == 1 + 2 * 20 + 12
    names = fields(master, class_name)
    assert {"b0", "b2"} <= names and not {"b1", "b3"} & names
    assert {f"p{i}" for i in range(12)} <= names


def test_a_find_on_a_missing_class_does_not_fail(master: httpx.Client, class_name: str) -> None:
    create(master, class_name, {"n": 0})
    response = batch(master, [request(master, "GET", f"/classes/{class_name}Nope"),
                              request(master, "POST", f"/classes/{class_name}", {"n": 1})])
    assert response.status_code == 200, response.text
    assert response.json()[0] == {"success": {"results": []}}
    assert count(master, class_name) == 2
