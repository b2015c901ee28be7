"""The wire: keys and where they come from, CORS, /health, session tokens, unknown routes, /batch."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error, count, create
from tests.conftest import Server, make_class, start_server, stop_server

# Parse Server 9's CORS answer, header for header.
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET,PUT,POST,DELETE,OPTIONS",
    "access-control-allow-headers": "X-Parse-Master-Key, X-Parse-REST-API-Key, X-Parse-Javascript-Key, "
                                    "X-Parse-Application-Id, X-Parse-Client-Version, X-Parse-Session-Token, "
                                    "X-Requested-With, X-Parse-Revocable-Session, X-Parse-Request-Id, "
                                    "Content-Type, Pragma, Cache-Control",
    "access-control-expose-headers": "X-Parse-Job-Status-Id, X-Parse-Push-Status-Id",
}
UNAUTHORIZED = {"error": "unauthorized"}


def assert_cors(response: httpx.Response) -> None:
    for name, value in CORS.items():
        assert response.headers.get(name) == value, name


# --- keys -----------------------------------------------------------------------------------------


def test_application_id_and_javascript_key_headers(server: Server, master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Javascript-Key": server.javascript_key}
    assert httpx.get(f"{server.url}/classes/{class_name}", headers=headers).json() == {"results": []}
    lower = {k.lower(): v for k, v in headers.items()}
    assert httpx.get(f"{server.url}/classes/{class_name}", headers=lower).status_code == 200


@pytest.mark.parametrize("headers", [
    {},
    {"X-Parse-Application-Id": "wrong"},
    {"X-Parse-Application-Id": "wrong", "X-Parse-Javascript-Key": "{js}"},
    {"X-Parse-Application-Id": "{app}"},
    {"X-Parse-Application-Id": "{app}", "X-Parse-Javascript-Key": "wrong"},
    {"X-Parse-Application-Id": "{app}", "X-Parse-REST-API-Key": "{js}"},
    {"X-Parse-Application-Id": "{app}", "X-Parse-Master-Key": "wrong"},
    {"X-Parse-Application-Id": "wrong", "X-Parse-Master-Key": "{master}"},
])
def test_wrong_keys_are_403_unauthorized(server: Server, master: httpx.Client, class_name: str,
                                         headers: dict[str, str]) -> None:
    make_class(master, class_name)
    values = {"{app}": server.app_id, "{js}": server.javascript_key, "{master}": server.master_key}
    sent = {k: values.get(v, v) for k, v in headers.items()}
    for method, path in (("GET", f"/classes/{class_name}"), ("POST", f"/classes/{class_name}"),
                         ("GET", "/schemas"), ("GET", "/config"), ("GET", "/nothing/here")):
        response = httpx.request(method, f"{server.url}{path}", headers=sent, json={} if method == "POST" else None)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == UNAUTHORIZED
        assert_cors(response)
    assert count(master, class_name) == 0


def test_master_key_header_needs_no_client_key(server: Server, class_name: str) -> None:
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Master-Key": server.master_key}
    response = httpx.post(f"{server.url}/schemas/{class_name}", headers=headers, json={})
    assert response.status_code == 200, response.text
    assert httpx.get(f"{server.url}/schemas/{class_name}", headers=headers).json()["className"] == class_name


def test_keys_in_a_text_plain_body(server: Server, master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)

    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{server.url}/classes/{class_name}", content=json.dumps(body),
                          headers={"Content-Type": "text/plain"})

    created = post({"_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key, "a": 1})
    assert created.status_code == 201, created.text
    # The keys do not become fields.
    got = master.get(f"/classes/{class_name}/{created.json()['objectId']}").json()
    assert {k: v for k, v in got.items() if k not in ("objectId", "createdAt", "updatedAt")} == {"a": 1}
    assert post({"_ApplicationId": server.app_id, "a": 1}).json() == UNAUTHORIZED
    assert post({"_ApplicationId": "wrong", "_JavaScriptKey": server.javascript_key}).json() == UNAUTHORIZED
    with_master = post({"_ApplicationId": server.app_id, "_MasterKey": server.master_key, "_method": "GET"})
    assert with_master.status_code == 200 and len(with_master.json()["results"]) == 1


@pytest.fixture(scope="module")
def keyless(own_server: None) -> Iterator[Server]:
    """A Bastion with no client key configured."""
    srv = start_server("sqlite", None, ["--javascript-key", ""])
    try:
        yield srv
    finally:
        stop_server(srv)


def test_client_keys_are_not_required_when_none_is_set(keyless: Server, class_name: str) -> None:
    app = {"X-Parse-Application-Id": keyless.app_id}
    with keyless.client(master=True) as master:
        make_class(master, class_name)
    assert httpx.get(f"{keyless.url}/classes/{class_name}", headers=app).json() == {"results": []}
    # Any client key is accepted then.
    anything = {**app, "X-Parse-Javascript-Key": "whatever", "X-Parse-REST-API-Key": "x"}
    assert httpx.get(f"{keyless.url}/classes/{class_name}", headers=anything).status_code == 200
    assert httpx.get(f"{keyless.url}/classes/{class_name}", headers={"X-Parse-Application-Id": "no"}).json() == UNAUTHORIZED


@pytest.fixture(scope="module")
def keyed(own_server: None) -> Iterator[Server]:
    """A Bastion with a REST API key and a client key (and no JavaScript key), and a read-only master key."""
    srv = start_server("sqlite", None, ["--javascript-key", "", "--rest-key", "rest-k", "--client-key", "client-k",
                                        "--read-only-master-key", "ro-master"])
    try:
        yield srv
    finally:
        stop_server(srv)


def test_each_client_key_header(keyed: Server, class_name: str) -> None:
    app = {"X-Parse-Application-Id": keyed.app_id}
    master = httpx.Client(base_url=keyed.url, headers={**app, "X-Parse-Master-Key": keyed.master_key})
    make_class(master, class_name)
    url = f"{keyed.url}/classes/{class_name}"
    assert httpx.get(url, headers={**app, "X-Parse-REST-API-Key": "rest-k"}).status_code == 200
    assert httpx.get(url, headers={**app, "X-Parse-Client-Key": "client-k"}).status_code == 200
    # One matching key is enough, whatever the others say.
    assert httpx.get(url, headers={**app, "X-Parse-Client-Key": "client-k", "X-Parse-REST-API-Key": "no"}).status_code == 200
    for headers in ({}, {"X-Parse-REST-API-Key": "client-k"}, {"X-Parse-Javascript-Key": "rest-k"},
                    {"X-Parse-Client-Key": "wrong"}):
        response = httpx.get(url, headers={**app, **headers})
        assert response.status_code == 403 and response.json() == UNAUTHORIZED, headers


def test_read_only_master_key(keyed: Server, class_name: str) -> None:
    app = {"X-Parse-Application-Id": keyed.app_id}
    master = httpx.Client(base_url=keyed.url, headers={**app, "X-Parse-Master-Key": keyed.master_key})
    make_class(master, class_name)
    created = create(master, class_name, {"a": 1})
    ro = httpx.Client(base_url=keyed.url, headers={**app, "X-Parse-Master-Key": "ro-master"})
    assert len(ro.get(f"/classes/{class_name}").json()["results"]) == 1
    assert ro.get(f"/schemas/{class_name}").json()["className"] == class_name
    # Writes are refused with a sanitized 119 (Parse Server: "Permission denied").
    assert_error(ro.post(f"/classes/{class_name}", json={"a": 2}), 400, 119, "Permission denied")
    assert_error(ro.put(f"/classes/{class_name}/{created['objectId']}", json={"a": 2}), 400, 119, "Permission denied")
    assert_error(ro.delete(f"/classes/{class_name}/{created['objectId']}"), 400, 119, "Permission denied")
    assert_error(ro.put(f"/schemas/{class_name}", json={"fields": {"b": {"type": "String"}}}), 400, 119,
                 "Permission denied")
    assert_error(ro.put("/config", json={"params": {"x": 1}}), 400, 119, "Permission denied")
    assert master.get(f"/classes/{class_name}/{created['objectId']}").json()["a"] == 1


# --- sessions ---------------------------------------------------------------------------------------


def test_invalid_session_token_is_209(server: Server, api: httpx.Client, master: httpx.Client,
                                      class_name: str) -> None:
    make_class(master, class_name)
    response = api.get(f"/classes/{class_name}", headers={"X-Parse-Session-Token": "r:nosuchsession"})
    assert_error(response, 400, 209, "Invalid session token")
    body = {"_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key, "_SessionToken": "r:nope",
            "_method": "GET"}
    response = httpx.post(f"{server.url}/classes/{class_name}", content=json.dumps(body),
                          headers={"Content-Type": "text/plain"})
    assert_error(response, 400, 209, "Invalid session token")
    # The master key wins over a session token.
    response = master.get(f"/classes/{class_name}", headers={"X-Parse-Session-Token": "r:nosuchsession"})
    assert response.status_code == 200
    # An empty token is no token.
    assert api.get(f"/classes/{class_name}", headers={"X-Parse-Session-Token": ""}).status_code == 200


# --- CORS, health, unknown routes -------------------------------------------------------------------


def test_cors_preflight(server: Server) -> None:
    response = httpx.options(f"{server.url}/classes/Anything", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-Parse-Application-Id, Content-Type"})
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert_cors(response)
    # Without any key, on any path under the mount.
    assert httpx.options(f"{server.url}/no/such/route").status_code == 200


def test_cors_headers_on_answers(server: Server, api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name)
    response = api.get(f"/classes/{class_name}", headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert_cors(response)
    assert_cors(api.get(f"/classes/{class_name}/missing000"))


def test_health(server: Server) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = httpx.request(method, f"{server.url}/health")
        assert response.status_code == 200, method
        assert response.json() == {"status": "ok"}
    # Keys do not matter there.
    assert httpx.get(f"{server.url}/health", headers={"X-Parse-Application-Id": "wrong"}).json() == {"status": "ok"}


def test_unknown_route_is_404_after_the_keys(server: Server, api: httpx.Client) -> None:
    # Parse Server checks keys first: a stranger gets 403, a client a 404 (Express's words, as JSON).
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"code": 107, "error": "Cannot GET /parse/no/such/route"}
    response = api.request("PATCH", "/classes/Anything")
    assert response.status_code == 404
    assert response.json() == {"code": 107, "error": "Cannot PATCH /parse/classes/Anything"}
    assert httpx.get(f"{server.url}/no/such/route").json() == UNAUTHORIZED


# --- /batch -----------------------------------------------------------------------------------------


def test_batch_answers_success_and_error_entries(api: httpx.Client, master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"n": {"type": "Number"}})
    existing = create(master, class_name, {"n": 1})
    path = f"/parse/classes/{class_name}"
    response = api.post("/batch", json={"requests": [
        {"method": "POST", "path": path, "body": {"n": 2}},
        {"method": "PUT", "path": f"{path}/{existing['objectId']}", "body": {"n": {"__op": "Increment", "amount": 5}}},
        {"method": "PUT", "path": f"{path}/missing000", "body": {"n": 3}},
        {"method": "POST", "path": path, "body": {"n": "text"}},
        {"method": "GET", "path": f"{path}/{existing['objectId']}"},
        {"method": "DELETE", "path": f"{path}/missing000"},
        {"method": "GET", "path": "/parse/schemas"},
    ]})
    assert response.status_code == 200, response.text
    results = response.json()
    assert len(results) == 7
    assert set(results[0]["success"]) == {"objectId", "createdAt"}
    assert set(results[1]["success"]) == {"updatedAt", "n"} and results[1]["success"]["n"] == 6
    assert results[2] == {"error": {"code": 101, "error": "Object not found."}}
    assert results[3] == {"error": {"code": 111, "error": f"schema mismatch for {class_name}.n; expected Number but got String"}}
    assert results[4]["success"]["objectId"] == existing["objectId"]
    assert results[5] == {"error": {"code": 101, "error": "Object not found."}}
    # A refusal at the HTTP level comes back without a code.
    assert results[6] == {"error": {"error": "Permission denied"}}
    assert count(master, class_name) == 2


def test_batch_with_the_master_key(master: httpx.Client, class_name: str) -> None:
    # Independent requests: Parse Server runs a batch's requests concurrently.
    make_class(master, class_name, {"a": {"type": "String"}})
    response = master.post("/batch", json={"requests": [
        {"method": "GET", "path": f"/parse/schemas/{class_name}"},
        {"method": "POST", "path": f"/parse/classes/{class_name}", "body": {"a": "x"}},
        {"method": "DELETE", "path": f"/parse/purge/{class_name}Other"},
    ]})
    assert response.status_code == 200, response.text
    results = response.json()
    assert results[0]["success"]["className"] == class_name
    assert set(results[1]["success"]) == {"objectId", "createdAt"}
    assert results[2] == {"success": {}}


@pytest.mark.parametrize(("requests", "message"), [
    ("nope", "requests must be an array"),
    (None, "requests must be an array"),
    ([{"method": "GET"}], "batch request path must be a string"),
    ([1], "batch request path must be a string"),
    ([{"method": "GET", "path": "/classes/X"}], "cannot route batch path /classes/X"),
    ([{"method": "GET", "path": "/other/classes/X"}], "cannot route batch path /other/classes/X"),
    ([{"method": "POST", "path": "/parse/batch", "body": {"requests": []}}], "nested batch requests are not allowed"),
    ([{"method": "PATCH", "path": "/parse/classes/X"}], "cannot route PATCH /classes/X"),
    ([{"path": "/parse/classes/X"}], "cannot route undefined /classes/X"),
])
def test_batch_refused_as_a_whole(api: httpx.Client, master: httpx.Client, class_name: str, requests: Any,
                                  message: str) -> None:
    make_class(master, class_name)
    good = {"method": "POST", "path": f"/parse/classes/{class_name}", "body": {"a": 1}}
    # The bad request first: Parse Server starts the requests before it finds an unroutable method.
    body = {"requests": [*requests, good]} if isinstance(requests, list) else {"requests": requests}
    assert_error(api.post("/batch", json=body), 400, 107, message)
    # Nothing ran.
    assert count(master, class_name) == 0


def test_a_batch_body_of_an_empty_list_is_an_empty_object(master: httpx.Client, class_name: str) -> None:
    """PHP encodes {} as []: Parse Server reads such a body as an object with no keys."""
    make_class(master, class_name)
    path = f"{urlsplit(str(master.base_url)).path}/classes/{class_name}"
    response = master.post("/batch", json={"requests": [
        {"method": "POST", "path": path, "body": []},
        {"method": "GET", "path": path, "body": []},
    ]})
    assert response.status_code == 200, response.text
    created, found = response.json()
    assert set(created["success"]) == {"objectId", "createdAt"}
    assert [obj["objectId"] for obj in found["success"]["results"]] == [created["success"]["objectId"]]
    assert count(master, class_name) == 1


def raw_header_names(server: Server, method: str, path: str, body: Any = None) -> list[str]:
    """The header names of an answer as they are spelled on the wire."""
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Master-Key": server.master_key,
                   "Content-Type": "application/json"}
        connection.request(method, url.path + path, body=json.dumps(body) if body is not None else None,
                           headers=headers)
        response = connection.getresponse()
        response.read()
        return [name for name, _value in response.getheaders()]
    finally:
        connection.close()


def test_header_names_are_spelled_as_parse_server_spells_them(server: Server, master: httpx.Client,
                                                              class_name: str) -> None:
    """Some SDKs look headers up case-sensitively: the names go out as Parse Server (Express) sets
    them, not lowercased."""
    cors = ["Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
            "Access-Control-Expose-Headers"]
    names = raw_header_names(server, "POST", f"/classes/{class_name}", {"a": 1})
    assert {"Content-Type", "Content-Length", "Location", *cors} <= set(names), names
    names = raw_header_names(server, "POST", "/push", {"where": {"deviceType": "none-" + class_name},
                                                      "data": {"alert": "x"}})
    assert "X-Parse-Push-Status-Id" in names, names
    if not EXTERNAL:  # a job of Bastion's tests/cloud_app
        names = raw_header_names(server, "POST", "/jobs/jobEcho", {})
        assert "X-Parse-Job-Status-Id" in names, names
    names = raw_header_names(server, "GET", f"/classes/{class_name}/nope")
    assert {"Content-Type", "Content-Length", *cors} <= set(names), names
    assert all(name[0].isupper() for name in names), names
