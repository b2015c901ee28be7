"""Webhooks: /hooks/functions and /hooks/triggers (master key), and the calls they make.

The registration tests run on the session server (and against Parse Server itself with
BASTION_API_EXTERNAL). The call tests start a Bastion of their own with ``--webhook-key`` and point
webhooks at a small HTTP server in this module, which checks the X-Parse-Webhook-Key header and
answers as a real webhook does (``{"success": …}`` or ``{"error": …}``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.conftest import (
    ROOT,
    Server,
    backend_database,
    free_port,
    start_server,
    stop_server,
)

WEBHOOK_KEY = "hook-key-" + secrets.token_hex(4)


def name(prefix: str = "hook") -> str:
    return prefix + secrets.token_hex(4)


# --- registration (master key) ---------------------------------------------------------------------


def test_hooks_need_the_master_key(api: httpx.Client) -> None:
    url = "http://127.0.0.1:9/x"
    requests = [("GET", "/hooks/functions", None), ("GET", "/hooks/triggers", None),
                ("GET", "/hooks/functions/x", None), ("GET", "/hooks/triggers/A/beforeSave", None),
                ("POST", "/hooks/functions", {"functionName": "x", "url": url}),
                ("POST", "/hooks/triggers", {"className": "A", "triggerName": "beforeSave", "url": url}),
                ("PUT", "/hooks/functions/x", {"__op": "Delete"}),
                ("PUT", "/hooks/triggers/A/beforeSave", {"__op": "Delete"})]
    for method, path, body in requests:
        # A connection each: Parse Server (node) drops a connection whose refused body it did not read.
        response = api.request(method, path, json=body, headers={"Connection": "close"})
        assert_error(response, 403, None, "Permission denied")


def test_function_hooks_are_created_read_changed_and_deleted(master: httpx.Client) -> None:
    fn = name("fn")
    url = f"http://127.0.0.1:9/{fn}"
    created = master.post("/hooks/functions", json={"functionName": fn, "url": url})
    assert created.status_code == 200, created.text
    assert created.json() == {"functionName": fn, "url": url}
    assert_error(master.post("/hooks/functions", json={"functionName": fn, "url": url}), 400, 143,
                 f"function name: {fn} already exists")
    assert master.get(f"/hooks/functions/{fn}").json() == {"functionName": fn, "url": url}
    listed = master.get("/hooks/functions").json()
    assert {"functionName": fn, "url": url} in listed
    assert all(set(hook) == {"functionName", "url"} for hook in listed)

    changed = master.put(f"/hooks/functions/{fn}", json={"url": url + "b"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"functionName": fn, "url": url + "b"}
    assert_error(master.put(f"/hooks/functions/{fn}", json={}), 400, 143, "invalid hook declaration")
    missing = name("missing")
    assert_error(master.put(f"/hooks/functions/{missing}", json={"url": url}), 400, 143,
                 f"no function named: {missing} is defined")
    assert_error(master.get(f"/hooks/functions/{missing}"), 400, 143, f"no function named: {missing} is defined")

    deleted = master.put(f"/hooks/functions/{fn}", json={"__op": "Delete"})
    assert deleted.status_code == 200 and deleted.json() == {}
    assert_error(master.get(f"/hooks/functions/{fn}"), 400, 143, f"no function named: {fn} is defined")
    assert_error(master.put(f"/hooks/functions/{fn}", json={"__op": "Delete"}), 404, 101, "Object not found.")
    assert {"functionName": fn, "url": url + "b"} not in master.get("/hooks/functions").json()


@pytest.mark.differs_from_parse_server("Parse Server on PostgreSQL stores a changed URL as a second row and "
                                       "goes on answering (and calling) the first")
def test_a_changed_url_is_the_one_served(master: httpx.Client) -> None:
    fn, cls = name("fn"), name("Hooked")
    master.post("/hooks/functions", json={"functionName": fn, "url": "http://127.0.0.1:9/a"})
    master.post("/hooks/triggers", json={"className": cls, "triggerName": "afterSave", "url": "http://127.0.0.1:9/a"})
    master.put(f"/hooks/functions/{fn}", json={"url": "http://127.0.0.1:9/b"})
    master.put(f"/hooks/triggers/{cls}/afterSave", json={"url": "http://127.0.0.1:9/b"})
    assert master.get(f"/hooks/functions/{fn}").json()["url"] == "http://127.0.0.1:9/b"
    assert master.get(f"/hooks/triggers/{cls}/afterSave").json()["url"] == "http://127.0.0.1:9/b"
    assert [h for h in master.get("/hooks/functions").json() if h["functionName"] == fn] == [
        {"functionName": fn, "url": "http://127.0.0.1:9/b"}]
    master.put(f"/hooks/functions/{fn}", json={"__op": "Delete"})
    master.put(f"/hooks/triggers/{cls}/afterSave", json={"__op": "Delete"})


def test_trigger_hooks_are_created_read_changed_and_deleted(master: httpx.Client) -> None:
    cls = name("Hooked")
    url = f"http://127.0.0.1:9/{cls}"
    hook = {"className": cls, "triggerName": "beforeSave", "url": url}
    created = master.post("/hooks/triggers", json=hook)
    assert created.status_code == 200, created.text
    assert created.json() == hook
    assert_error(master.post("/hooks/triggers", json=hook), 400, 143, f"class {cls} already has trigger beforeSave")
    assert master.get(f"/hooks/triggers/{cls}/beforeSave").json() == hook
    assert_error(master.get(f"/hooks/triggers/{cls}/afterSave"), 400, 143, f"class {cls} does not exist")
    assert hook in master.get("/hooks/triggers").json()
    assert hook not in master.get("/hooks/functions").json()

    changed = master.put(f"/hooks/triggers/{cls}/beforeSave", json={"url": url + "b"})
    assert changed.json() == {**hook, "url": url + "b"}
    assert_error(master.put(f"/hooks/triggers/{cls}/afterSave", json={"url": url}), 400, 143,
                 f"class {cls} does not exist")
    assert_error(master.put(f"/hooks/triggers/{cls}/beforeSave", json={"nope": 1}), 400, 143,
                 "invalid hook declaration")

    assert master.put(f"/hooks/triggers/{cls}/beforeSave", json={"__op": "Delete"}).json() == {}
    assert_error(master.get(f"/hooks/triggers/{cls}/beforeSave"), 400, 143, f"class {cls} does not exist")
    assert_error(master.put(f"/hooks/triggers/{cls}/beforeSave", json={"__op": "Delete"}), 404, 101,
                 "Object not found.")


def test_either_path_registers_either_kind(master: httpx.Client) -> None:
    # As Parse Server: both POST routes take the same declarations.
    fn, cls = name("fn"), name("Hooked")
    assert master.post("/hooks/triggers", json={"functionName": fn, "url": "http://127.0.0.1:9/f"}).status_code == 200
    assert master.post("/hooks/functions", json={"className": cls, "triggerName": "afterSave",
                                                 "url": "http://127.0.0.1:9/t"}).status_code == 200
    assert master.get(f"/hooks/functions/{fn}").status_code == 200
    assert master.get(f"/hooks/triggers/{cls}/afterSave").status_code == 200
    master.put(f"/hooks/functions/{fn}", json={"__op": "Delete"})
    master.put(f"/hooks/triggers/{cls}/afterSave", json={"__op": "Delete"})


def test_invalid_declarations_are_refused(master: httpx.Client) -> None:
    for body in ({"functionName": name()}, {"url": "http://127.0.0.1:9/x"}, {},
                 {"className": name("C"), "url": "http://127.0.0.1:9/x"},
                 {"className": name("C"), "triggerName": "beforeNothing", "url": "http://127.0.0.1:9/x"},
                 {"triggerName": "beforeSave", "url": "http://127.0.0.1:9/x"}):
        assert_error(master.post("/hooks/functions", json=body), 400, 143, "invalid hook declaration")
    assert_error(master.put(f"/hooks/functions/{name()}", json={"url": ""}), 400, 143, "invalid hook declaration")


@pytest.mark.differs_from_parse_server("Parse Server stores any URL (each call then fails) and answers "
                                       "500 for a trigger its class may not have")
def test_unusable_declarations_are_refused_when_made(master: httpx.Client) -> None:
    for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "http://", "not a url"):
        assert_error(master.post("/hooks/functions", json={"functionName": name(), "url": url}), 400, 143,
                     "invalid hook declaration")
    assert_error(master.post("/hooks/triggers", json={"className": "_PushStatus", "triggerName": "beforeSave",
                                                      "url": "http://127.0.0.1:9/x"}),
                 400, 143, "Only afterSave is allowed on _PushStatus")
    assert_error(master.post("/hooks/triggers", json={"className": name("C"), "triggerName": "beforeLogin",
                                                      "url": "http://127.0.0.1:9/x"}),
                 400, 143, "Only the _User class is allowed for the beforeLogin, afterLogin, and "
                           "beforePasswordResetRequest triggers")


# --- a webhook server ------------------------------------------------------------------------------


class Webhook:
    """A webhook endpoint: records each call and answers per path (see ``answer``)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"null")
                with hook.lock:
                    hook.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.headers.get("X-Parse-Webhook-Key") != WEBHOOK_KEY:
                    status, answer = 200, json.dumps({"error": "Unauthorized webhook request"}).encode()
                else:
                    status, answer = hook.answer(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(path: str, body: Any) -> tuple[int, bytes]:
        kind = path.strip("/").split("/")[0]
        if kind == "echo":  # a function answering what it was given
            result = {"params": body["params"], "master": body["master"], "functionName": body["functionName"],
                      "user": (body.get("user") or {}).get("objectId"), "installationId": body.get("installationId")}
            return 200, json.dumps({"success": result}).encode()
        if kind == "fail":
            return 200, json.dumps({"error": "the webhook says no"}).encode()
        if kind == "fail400":
            return 400, json.dumps({"error": "refused with a 400"}).encode()
        if kind == "garbage":
            return 200, b"<html>not json</html>"
        if kind == "status500":
            return 500, b""
        if kind == "double":  # a beforeSave doubling score and marking the object
            obj = dict(body["object"])
            if isinstance(obj.get("score"), (int, float)):
                obj["score"] = obj["score"] * 2
            obj["byWebhook"] = True
            return 200, json.dumps({"success": obj}).encode()
        if kind == "same":  # a beforeSave answering the object unchanged
            return 200, json.dumps({"success": body["object"]}).encode()
        if kind == "noop":
            return 200, json.dumps({"success": True}).encode()
        return 404, b'{"error": "no such webhook"}'

    def calls_to(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [call for call in self.calls if call["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hooked(request: pytest.FixtureRequest, own_server: None) -> Iterator[Server]:
    """A Bastion with --webhook-key (and the test cloud code, which webhooks may override)."""
    with backend_database(request.param) as database:
        srv = start_server(request.param, database, ["--webhook-key", WEBHOOK_KEY,
                                                     "--cloud", str(ROOT / "tests" / "cloud_app")])
        srv.database = database or f"sqlite:///{srv.data_dir / 'bastion.db'}"  # type: ignore[attr-defined]
        try:
            yield srv
        finally:
            stop_server(srv)


@pytest.fixture
def hmaster(hooked: Server) -> Iterator[httpx.Client]:
    with hooked.client(master=True) as client:
        yield client


@pytest.fixture
def hapi(hooked: Server) -> Iterator[httpx.Client]:
    with hooked.client() as client:
        yield client


def register_function(client: httpx.Client, fn: str, url: str) -> None:
    response = client.post("/hooks/functions", json={"functionName": fn, "url": url})
    assert response.status_code == 200, response.text


def register_trigger(client: httpx.Client, cls: str, trigger: str, url: str) -> None:
    response = client.post("/hooks/triggers", json={"className": cls, "triggerName": trigger, "url": url})
    assert response.status_code == 200, response.text


def make_class(client: httpx.Client) -> str:
    cls = name("Hooked")
    assert client.post(f"/schemas/{cls}", json={"className": cls, "fields": {
        "score": {"type": "Number"}, "byWebhook": {"type": "Boolean"}, "title": {"type": "String"}}}).status_code == 200
    return cls


# --- calls -----------------------------------------------------------------------------------------


def test_a_webhook_function_is_called_with_a_signed_request(hmaster: httpx.Client, hapi: httpx.Client,
                                                            hooked: Server, webhook: Webhook) -> None:
    fn = name("fn")
    register_function(hmaster, fn, f"{webhook.url}/echo/{fn}")
    username = name("u")
    signed_up = hapi.post("/users", json={"username": username, "password": "pw"}).json()
    with hooked.client(**{"X-Parse-Session-Token": signed_up["sessionToken"],
                          "X-Parse-Installation-Id": "inst-1"}) as user:
        response = user.post(f"/functions/{fn}", json={"n": 3, "when": {"__type": "Date",
                                                                        "iso": "2020-01-01T00:00:00.000Z"}})
    assert response.status_code == 200, response.text
    # As Parse Server sends them: the decoded parameters through JSON.stringify (a date as its ISO text).
    assert response.json() == {"result": {
        "params": {"n": 3, "when": "2020-01-01T00:00:00.000Z"},
        "master": False, "functionName": fn, "user": signed_up["objectId"], "installationId": "inst-1"}}
    (call,) = webhook.calls_to(f"/echo/{fn}")
    assert call["headers"]["X-Parse-Webhook-Key"] == WEBHOOK_KEY
    assert call["headers"]["Content-Type"] == "application/json"
    body = call["body"]
    assert body["user"]["username"] == username
    assert "x-parse-session-token" in body["headers"]
    # The master key is never forwarded.
    hmaster.post(f"/functions/{fn}", json={})
    forwarded = webhook.calls_to(f"/echo/{fn}")[-1]["body"]
    assert forwarded["master"] is True
    assert not any(k.lower() == "x-parse-master-key" for k in forwarded["headers"])


def test_webhook_errors_are_parse_errors(hmaster: httpx.Client, hapi: httpx.Client, webhook: Webhook) -> None:
    cases = {"fail": (400, 141, "the webhook says no"), "fail400": (400, 141, "refused with a 400"),
             "garbage": (400, 141, "Malformed response"), "status500": (400, 141, "Webhook request failed.")}
    for kind, (status, code, message) in cases.items():
        fn = name("fn")
        register_function(hmaster, fn, f"{webhook.url}/{kind}/{fn}")
        assert_error(hapi.post(f"/functions/{fn}", json={}), status, code, message)


def test_a_dead_url_is_a_parse_error(hmaster: httpx.Client, hapi: httpx.Client) -> None:
    fn = name("fn")
    register_function(hmaster, fn, f"http://127.0.0.1:{free_port()}/gone")
    assert_error(hapi.post(f"/functions/{fn}", json={}), 400, 141, "Webhook request failed.")


def test_a_webhook_replaces_a_python_function_until_deleted(hmaster: httpx.Client, hapi: httpx.Client,
                                                            webhook: Webhook) -> None:
    assert hapi.post("/functions/hello", json={"name": "Ada"}).json() == {"result": "Hello Ada"}
    register_function(hmaster, "hello", f"{webhook.url}/echo/hello")
    try:
        assert hapi.post("/functions/hello", json={"name": "Ada"}).json()["result"]["params"] == {"name": "Ada"}
    finally:
        assert hmaster.put("/hooks/functions/hello", json={"__op": "Delete"}).json() == {}
    assert hapi.post("/functions/hello", json={"name": "Ada"}).json() == {"result": "Hello Ada"}


def test_before_save_webhook_changes_the_object(hmaster: httpx.Client, hapi: httpx.Client,
                                                webhook: Webhook) -> None:
    cls = make_class(hmaster)
    register_trigger(hmaster, cls, "beforeSave", f"{webhook.url}/double/{cls}")
    created = hapi.post(f"/classes/{cls}", json={"score": 2, "title": "t"})
    assert created.status_code == 201, created.text
    assert created.json()["score"] == 4 and created.json()["byWebhook"] is True
    object_id = created.json()["objectId"]
    stored = hapi.get(f"/classes/{cls}/{object_id}").json()
    assert (stored["score"], stored["byWebhook"], stored["title"]) == (4, True, "t")
    (call,) = webhook.calls_to(f"/double/{cls}")
    assert call["body"]["triggerName"] == "beforeSave"
    assert call["body"]["object"] == {"score": 2, "title": "t", "className": cls}
    assert "original" not in call["body"]

    # An update: the object has its stored fields and the change, operations as they are.
    updated = hapi.put(f"/classes/{cls}/{object_id}", json={"score": {"__op": "Increment", "amount": 1}})
    assert updated.status_code == 200, updated.text
    assert hapi.get(f"/classes/{cls}/{object_id}").json()["score"] == 5  # 4 + 1; an op is not doubled
    body = webhook.calls_to(f"/double/{cls}")[-1]["body"]
    assert body["object"]["score"] == {"__op": "Increment", "amount": 1}
    assert body["object"]["objectId"] == object_id and body["object"]["title"] == "t"
    assert body["original"]["score"] == 4 and body["original"]["className"] == cls


def test_before_save_webhook_answering_the_object_unchanged(hmaster: httpx.Client, hapi: httpx.Client,
                                                            webhook: Webhook) -> None:
    cls = make_class(hmaster)
    register_trigger(hmaster, cls, "beforeSave", f"{webhook.url}/same/{cls}")
    object_id = hapi.post(f"/classes/{cls}", json={"score": 1, "title": "a"}).json()["objectId"]
    assert hapi.put(f"/classes/{cls}/{object_id}", json={"title": "b"}).status_code == 200
    stored = hapi.get(f"/classes/{cls}/{object_id}").json()
    assert (stored["score"], stored["title"]) == (1, "b")


def test_before_save_webhook_refuses_a_save(hmaster: httpx.Client, hapi: httpx.Client, webhook: Webhook) -> None:
    cls = make_class(hmaster)
    register_trigger(hmaster, cls, "beforeSave", f"{webhook.url}/fail/{cls}")
    assert_error(hapi.post(f"/classes/{cls}", json={"score": 1}), 400, 141, "the webhook says no")
    assert hmaster.get(f"/classes/{cls}").json()["results"] == []


def test_after_save_and_delete_webhooks_are_called(hmaster: httpx.Client, hapi: httpx.Client,
                                                   webhook: Webhook) -> None:
    cls = make_class(hmaster)
    register_trigger(hmaster, cls, "afterSave", f"{webhook.url}/noop/after/{cls}")
    register_trigger(hmaster, cls, "beforeDelete", f"{webhook.url}/fail/delete/{cls}")
    created = hapi.post(f"/classes/{cls}", json={"score": 7})
    assert created.status_code == 201, created.text
    (call,) = webhook.calls_to(f"/noop/after/{cls}")
    assert call["body"]["triggerName"] == "afterSave"
    assert call["body"]["object"]["objectId"] == created.json()["objectId"]
    assert call["body"]["object"]["score"] == 7
    assert call["headers"]["X-Parse-Webhook-Key"] == WEBHOOK_KEY
    object_id = created.json()["objectId"]
    assert_error(hapi.delete(f"/classes/{cls}/{object_id}"), 400, 141, "the webhook says no")
    assert hapi.get(f"/classes/{cls}/{object_id}").status_code == 200
    # A failing afterSave only reaches the log.
    assert hmaster.put(f"/hooks/triggers/{cls}/afterSave", json={"url": f"{webhook.url}/fail/{cls}"}).status_code \
        == 200
    assert hapi.post(f"/classes/{cls}", json={"score": 8}).status_code == 201


def test_webhooks_are_shared_by_processes_on_one_database(hooked: Server, hmaster: httpx.Client,
                                                          webhook: Webhook) -> None:
    other = start_server(hooked.backend, hooked.database,  # type: ignore[attr-defined]
                         ["--webhook-key", WEBHOOK_KEY, "--master-key", hooked.master_key])
    other.master_key = hooked.master_key  # the last --master-key given is the one it serves
    try:
        with other.client(master=True) as other_master, other.client() as other_api:
            fn = name("fn")
            register_function(hmaster, fn, f"{webhook.url}/echo/{fn}")
            # Registered by another process a moment ago: found at the first call.
            response = other_api.post(f"/functions/{fn}", json={"x": 1})
            assert response.status_code == 200, response.text
            assert response.json()["result"]["params"] == {"x": 1}
            assert other_master.get(f"/hooks/functions/{fn}").json()["functionName"] == fn
            # A trigger registered elsewhere is served within a few seconds.
            cls = make_class(hmaster)
            register_trigger(hmaster, cls, "beforeSave", f"{webhook.url}/double/{cls}")
            deadline = time.monotonic() + 15
            while True:
                score = other_api.post(f"/classes/{cls}", json={"score": 1}).json().get("score")
                if score == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert score == 2
    finally:
        stop_server(other)
