"""Cloud functions through POST /functions/:name: results, errors, validators and rate limits.

The server runs tests/cloud_app (``--cloud``); its functions are in tests/cloud_app/functions.py.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="runs Bastion's Python cloud code (tests/cloud_app)")


def call(client: httpx.Client, name: str, body: Any = None) -> httpx.Response:
    return client.post(f"/functions/{name}", json=body if body is not None else {})


def sign_up(api: httpx.Client) -> dict[str, Any]:
    name = "cloudfn_" + secrets.token_hex(4)
    response = api.post("/users", json={"username": name, "password": "pw"})
    assert response.status_code == 201, response.text
    return {**response.json(), "username": name}


def test_sync_and_async_functions_answer_with_result(api: httpx.Client) -> None:
    assert call(api, "hello", {"name": "Ada"}).json() == {"result": "Hello Ada"}
    assert call(api, "hello").json() == {"result": "Hello world"}
    assert call(api, "asyncHello", {"n": 3}).json() == {"result": {"greeting": "hi", "n": 3}}
    assert call(api, "nothing").json() == {"result": None}


def test_a_function_that_returns_nothing_answers_without_result(api: httpx.Client) -> None:
    # Parse Server answers a JS function returning undefined with {}, one returning null with
    # {"result": null}; in Python, no `return <value>` in the function's code is the undefined.
    assert call(api, "noReturn").json() == {}
    assert call(api, "bareReturn").json() == {}
    assert call(api, "nothing").json() == {"result": None}
    assert call(api, "maybeNone").json() == {"result": None}
    assert call(api, "maybeNone", {"give": True}).json() == {"result": 7}
    assert call(api, "lambdaNone").json() == {"result": None}


def test_url_query_parameters_are_params_too(api: httpx.Client) -> None:
    assert api.post("/functions/hello?name=Query", json={}).json() == {"result": "Hello Query"}


def test_the_js_sdk_transport_reaches_functions(server: Any) -> None:
    body = {"_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key, "name": "SDK"}
    response = httpx.post(f"{server.url}/functions/hello", content=__import__("json").dumps(body),
                          headers={"Content-Type": "text/plain"})
    assert response.json() == {"result": "Hello SDK"}


def test_params_are_decoded_and_results_encoded(api: httpx.Client) -> None:
    answer = call(api, "echoTypes", {
        "when": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"},
        "pointer": {"__type": "Pointer", "className": "CloudThing", "objectId": "abc123"},
    }).json()["result"]
    assert answer["whenIsDatetime"] is True
    assert answer["when"] == {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}
    assert (answer["pointerClass"], answer["pointerId"]) == ("CloudThing", "abc123")
    assert answer["object"] == {"objectId": "thing1", "a": 1, "__type": "Object", "className": "CloudThing"}
    # As the Parse SDK encodes: an object with unsaved changes goes as a pointer.
    assert answer["dirty"] == {"__type": "Pointer", "className": "CloudThing", "objectId": "thing2"}
    assert answer["now"] == {"__type": "Date", "iso": "2020-01-02T03:04:05.678Z"}
    assert answer["bytes"] == {"__type": "Bytes", "base64": "aGk="}


def test_request_carries_the_caller(api: httpx.Client, master: httpx.Client, as_user: Any) -> None:
    public = call(api, "whoAmI").json()["result"]
    assert public["user"] is None and public["master"] is False and public["ip"] == "127.0.0.1"
    assert call(master, "whoAmI").json()["result"]["master"] is True
    user = sign_up(api)
    client = as_user(user["sessionToken"])
    client.headers["X-Parse-Installation-Id"] = "inst-1"
    client.headers["X-Custom"] = "seen"
    client.headers["X-Parse-Cloud-Context"] = '{"tag": "ctx"}'
    mine = call(client, "whoAmI").json()["result"]
    assert mine["user"] == user["objectId"] and mine["username"] == user["username"]
    assert mine["installationId"] == "inst-1" and mine["header"] == "seen"
    assert mine["context"] == {"tag": "ctx"}


def test_unknown_function(api: httpx.Client) -> None:
    assert_error(call(api, "noSuchFunction"), 400, 141, 'Invalid function: "noSuchFunction"')


def test_cloud_errors_reach_the_client_as_raised(api: httpx.Client) -> None:
    assert_error(call(api, "fail"), 400, 141, "custom failure")
    assert_error(call(api, "fail", {"validation": True}), 400, 142, "custom failure")


def test_other_exceptions_answer_141_with_their_message(api: httpx.Client, server: Any) -> None:
    # As Parse Server answers `throw new Error("…")` and `throw "…"`: 141 and the message.
    response = call(api, "crash")
    assert_error(response, 400, 141, "secret internals")
    assert "Traceback" not in response.text
    assert_error(call(api, "plainError"), 400, 141, "plain message")
    assert_error(call(api, "typeError"), 400, 141, "'NoneType' object has no attribute 'missing'")
    assert_error(call(api, "emptyError"), 400, 141, "Script failed.")  # Parse's `throw ""`
    assert_error(call(api, "unserializable"), 400, 141, "Script failed.")
    deadline = time.monotonic() + 5
    log = ""
    while time.monotonic() < deadline and "secret internals" not in log:
        time.sleep(0.05)
        log = (server.data_dir / "server.log").read_text()
    assert "secret internals" in log and "Traceback" in log  # the server keeps the traceback


def test_require_user_and_master(api: httpx.Client, master: httpx.Client, as_user: Any) -> None:
    assert_error(call(api, "needsUser"), 400, 142, "Validation failed. Please login to continue.")
    user = sign_up(api)
    assert call(as_user(user["sessionToken"]), "needsUser").json() == {"result": user["objectId"]}
    assert_error(call(api, "needsMaster"), 400, 142,
                 "Validation failed. Master key is required to complete this request.")
    assert call(master, "needsMaster").json() == {"result": "ok"}


def test_field_validation_messages_match_parse(api: httpx.Client) -> None:
    assert_error(call(api, "typed"), 400, 142, "Validation failed. Please specify data for n.")
    assert_error(call(api, "typed", {"n": "x"}), 400, 142, "Validation failed. Invalid type for n. Expected: number")
    assert_error(call(api, "typed", {"n": 1, "size": "XL"}), 400, 142,
                 "Validation failed. Invalid option for size. Expected: S, M, L")
    assert_error(call(api, "typed", {"n": 1, "even": 3}), 400, 142, "n must be even")
    # Defaults are filled into the params the function sees.
    assert call(api, "typed", {"n": 1, "size": "M", "even": 4}).json() == {
        "result": {"n": 1, "size": "M", "even": 4, "flag": True}}
    assert_error(call(api, "listed", {"a": 1}), 400, 142, "Validation failed. Please specify data for b.")
    assert call(api, "listed", {"a": 1, "b": 2}).json() == {"result": "ok"}


def test_the_master_key_skips_validation(master: httpx.Client) -> None:
    assert call(master, "typed").json() == {"result": {}}


def test_custom_validator(api: httpx.Client) -> None:
    assert_error(call(api, "customValidator", {"n": 3}), 400, 142, "odd numbers are refused")
    # A validator's plain exception: 142 with its message, "Validation failed." without one.
    assert_error(call(api, "plainValidatorError", {"say": True}), 400, 142, "validator says no")
    assert_error(call(api, "plainValidatorError"), 400, 142, "Validation failed.")
    assert call(api, "customValidator", {"n": 4}).json() == {"result": "even"}


def test_required_roles(api: httpx.Client, master: httpx.Client, as_user: Any) -> None:
    user = sign_up(api)
    client = as_user(user["sessionToken"])
    assert_error(call(client, "adminsOnly"), 400, 142, "Validation failed. User does not match the required roles.")
    role = master.post("/roles", json={
        "name": "CloudAdmins" + secrets.token_hex(3), "ACL": {"*": {"read": True}},
        "users": {"__op": "AddRelation", "objects": [
            {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}]}})
    assert role.status_code == 201, role.text
    # The function wants the role named exactly CloudAdmins: a role of another name does not do.
    assert_error(call(client, "adminsOnly"), 400, 142, "Validation failed. User does not match the required roles.")
    existing = master.get("/roles", params={"where": '{"name":"CloudAdmins"}'}).json()["results"]
    if existing:
        role_id = existing[0]["objectId"]
        master.put(f"/roles/{role_id}", json={"users": {"__op": "AddRelation", "objects": [
            {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}]}})
    else:
        assert master.post("/roles", json={"name": "CloudAdmins", "ACL": {"*": {"read": True}}, "users": {
            "__op": "AddRelation", "objects": [
                {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}]}}).status_code == 201
    deadline = time.monotonic() + 10
    while True:
        response = call(client, "adminsOnly")
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.json() == {"result": "welcome"}


def test_rate_limit_answers_429(server: Any) -> None:
    # A client address of its own (the limit counts per IP): X-Forwarded-For is not trusted, so
    # the window is shared by this test's calls only because no other test calls "limited".
    with server.client() as client:
        answers = [call(client, "limited") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_error(answers[2], 429, 100, "Too many requests.")
    with server.client(master=True) as master:
        assert call(master, "limited").status_code == 200  # the master key is not limited


@pytest.mark.parametrize(("trusted", "seen"), [(None, "127.0.0.1"), ("127.0.0.0/8,10.0.0.0/8", "203.0.113.7"),
                                              ("10.1.2.3", "127.0.0.1")])
def test_forwarded_addresses_count_only_from_trusted_proxies(own_server: None, trusted: str | None,
                                                            seen: str) -> None:
    """As Parse Server's trustProxy: unset, X-Forwarded-For is ignored (a client could name any
    address); with --trust-proxy, a trusted proxy's forwarded address is the client's."""
    from tests.conftest import ROOT, running_server

    args = ["--cloud", str(ROOT / "tests" / "cloud_app")] + (["--trust-proxy", trusted] if trusted else [])
    with running_server("sqlite", args) as srv, srv.client() as client:
        answer = client.post("/functions/whoAmI", json={}, headers={"X-Forwarded-For": "203.0.113.7"})
        assert answer.json()["result"]["ip"] == seen
        assert client.post("/functions/whoAmI", json={}).json()["result"]["ip"] == "127.0.0.1"
