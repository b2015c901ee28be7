"""GET /scriptlog, Parse Dashboard's Logs page: the cloud-code lines and errors of every process of a
deployment, read back from the database with Parse Server's parameters (level, size, n, from,
until, order), master key only, secrets masked.

The servers here run at ``--log-level info`` (the suite's default ``warning`` logs no INFO line, and
so keeps none, as Parse Server's logLevel) with the cloud code of tests/cloud_app/analytics.py.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.conftest import ROOT, Server, backend_database, running_server, start_server, stop_server

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="starts Bastions of its own")

CLOUD = ["--cloud", str(ROOT / "tests" / "cloud_app"), "--log-level", "info"]
READ_ONLY_KEY = "read-only-" + secrets.token_hex(6)
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def logged(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running_server(request.param, [*CLOUD, "--read-only-master-key", READ_ONLY_KEY]) as srv:
        yield srv


def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """``check()``'s first truthy value, polled for at most ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {within} s")
        time.sleep(0.1)


def read_log(server: Server, **params: Any) -> list[dict[str, Any]]:
    with server.client(master=True) as master:
        response = master.get("/scriptlog", params=params)
    assert response.status_code == 200, response.text
    entries = response.json()
    assert isinstance(entries, list)
    return entries


def call(server: Server, name: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    with server.client(**headers) as api:
        return api.post(f"/functions/{name}", json=body)


def with_text(entries: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if text in entry["message"]]


def test_master_key_only(logged: Server) -> None:
    with httpx.Client(base_url=logged.url, timeout=10) as stranger:
        response = stranger.get("/scriptlog", headers={"X-Parse-Application-Id": logged.app_id})
        assert response.status_code == 403 and response.json() == {"error": "unauthorized"}
    with logged.client() as api:
        response = api.get("/scriptlog")
        assert response.status_code == 403
        assert response.json() == {"error": "Permission denied"}
    with logged.client(**{"X-Parse-Master-Key": READ_ONLY_KEY}) as read_only:
        assert read_only.get("/scriptlog").status_code == 200
    with logged.client(master=True) as master:
        assert master.post("/scriptlog", json={}).status_code == 404


def test_cloud_function_runs_and_request_log_lines(logged: Server) -> None:
    text = "run-" + secrets.token_hex(5)
    assert call(logged, "logLines", {"text": text, "levels": ["info", "warning"]}).status_code == 200
    entries = with_text(read_log(logged, n=100), text)
    ran = [e for e in entries if e["message"].startswith("Ran cloud function logLines")]
    assert len(ran) == 1, entries
    assert re.fullmatch(r'Ran cloud function logLines for user undefined with:\n  Input: '
                        + re.escape(f'{{"text":"{text}","levels":["info","warning"]}}') + r'\n  Result: '
                        + re.escape(f'{{"echo":"{text}","pid":') + r'\d+\}', ran[0]["message"]), ran[0]["message"]
    assert ran[0]["functionName"] == "logLines"
    assert ran[0]["params"] == {"text": text, "levels": ["info", "warning"]}
    assert ran[0]["level"] == "info" and "user" not in ran[0]
    assert ISO_MS.match(ran[0]["timestamp"])
    assert list(ran[0]) == sorted(ran[0])  # keys in order, as Parse Server's JSON lines
    own = {e["level"]: e for e in entries if e["message"].startswith("logLines")}
    assert own["info"]["message"] == f"logLines info says {text}"
    assert own["warn"]["message"] == f"logLines warning says {text}"
    assert set(own["info"]) == {"level", "message", "timestamp"}


def test_failures_are_errors_and_level_error_keeps_only_them(logged: Server) -> None:
    text = "fail-" + secrets.token_hex(5)
    response = call(logged, "logFails", {"text": text})
    assert_error(response, 400, 141, f"logFails refused: {text}")
    [failed] = with_text(read_log(logged, n=50), f'"text":"{text}"')
    assert failed["level"] == "error"
    assert failed["message"] == (f'Failed running cloud function logFails for user undefined with:\n  Input: '
                                 f'{{"text":"{text}"}}\n  Error: {{"message":"logFails refused: {text}","code":141}}')
    assert failed["error"] == {"code": 141, "message": f"logFails refused: {text}"}
    assert failed["functionName"] == "logFails" and failed["params"] == {"text": text}
    errors = read_log(logged, level="error", n=1000)
    assert errors and all(entry["level"] == "error" for entry in errors)
    assert with_text(errors, f'"text":"{text}"')
    # Any other level is the whole log, as Parse Server reads it.
    assert {e["level"] for e in read_log(logged, level="warn", n=1000)} >= {"info", "error"}


def test_triggers_with_the_user(logged: Server) -> None:
    marker = secrets.token_hex(5)
    with logged.client(master=True) as master:  # creates the class
        kept = master.post("/classes/CloudLogged", json={"marker": marker, "keep": True}).json()["objectId"]
    with logged.client() as api:
        signed = api.post("/users", json={"username": "log_" + secrets.token_hex(4), "password": "pw"}).json()
        user = {"X-Parse-Session-Token": signed["sessionToken"]}
        created = api.post("/classes/CloudLogged", json={"marker": marker}, headers=user)
        assert created.status_code == 201, created.text
        assert_error(api.delete(f"/classes/CloudLogged/{kept}"), 400, 141, "kept by beforeDelete")
    entries = with_text(read_log(logged, n=100), marker)
    before = [e for e in entries if e["message"].startswith("beforeSave triggered for CloudLogged")
              and "for user undefined" not in e["message"]]
    assert before[-1]["message"] == (f"beforeSave triggered for CloudLogged for user {signed['objectId']}:\n"
                                     f'  Input: {{"marker":"{marker}"}}\n  Result: {{"object":{{"marker":"{marker}",'
                                     '"seen":true}}')
    assert len(before) == 1 and before[-1]["className"] == "CloudLogged" and before[-1]["triggerType"] == "beforeSave"
    assert before[-1]["user"] == signed["objectId"]
    after = [e for e in entries if e["message"].startswith("afterSave triggered for CloudLogged")]
    assert len(after) == 2 and all("Result" not in e["message"] for e in after)
    [refused] = [e for e in entries if e["message"].startswith("beforeDelete failed for CloudLogged")]
    assert refused["level"] == "error" and refused["error"] == {"code": 141, "message": "kept by beforeDelete"}
    assert refused["message"].endswith('Error: {"message":"kept by beforeDelete","code":141}')


def test_secrets_are_never_written(logged: Server) -> None:
    password = "pw-" + secrets.token_hex(8)
    username = "sec_" + secrets.token_hex(4)
    with logged.client() as api:
        signed = api.post("/users", json={"username": username, "password": password}).json()
        # after_login's and after_logout's inputs hold the new session's token.
        login = api.post("/login", json={"username": username, "password": password}).json()
        assert api.post("/logout", headers={"X-Parse-Session-Token": login["sessionToken"]}).status_code == 200
    token = signed["sessionToken"]
    text = "sec-" + secrets.token_hex(5)
    # A function given a password and a session token, and a log line holding the master key.
    call(logged, "logLines", {"text": f"{text} {logged.master_key} {token}", "password": password,
                              "sessionToken": token, "nested": {"authData": {"x": {"access_token": "t0k"}}}})
    call(logged, "logFails", {"text": text, "password": password}, **{"X-Parse-Session-Token": token})
    with logged.client(master=True) as master:
        raw = master.get("/scriptlog", params={"n": 1000}).text
    assert text in raw
    for secret in (password, token, login["sessionToken"], logged.master_key, "t0k"):
        assert secret not in raw
    after_login = [e for e in json.loads(raw) if e["message"].startswith("afterLogin triggered for _User for user "
                                                                          + signed["objectId"])]
    assert len(after_login) == 1 and '"sessionToken":"********"' in after_login[0]["message"]
    entries = with_text(json.loads(raw), text)
    ran = [e for e in entries if e["message"].startswith("Ran cloud function")][0]
    assert ran["params"]["password"] == "********" and ran["params"]["sessionToken"] == "********"
    assert ran["params"]["nested"] == {"authData": "********"}


def test_size_n_order_from_until(logged: Server) -> None:
    texts = ["order-" + secrets.token_hex(4) for _ in range(4)]
    for text in texts:
        call(logged, "logLines", {"text": text, "levels": ["info"]})
        time.sleep(0.01)  # distinct milliseconds
    own = [e for e in read_log(logged, n=200) if e["message"].startswith("logLines info says order-")
           and e["message"].rsplit(" ", 1)[-1] in texts]
    assert [e["message"].rsplit(" ", 1)[-1] for e in own] == texts[::-1]  # newest first by default
    first, last = own[-1]["timestamp"], own[0]["timestamp"]

    def window(**params: Any) -> list[str]:
        entries = read_log(logged, **{"from": first, "until": last, **params})
        return [e["message"].rsplit(" ", 1)[-1] for e in entries if e["message"].startswith("logLines info says")]

    assert window(n=100) == texts[::-1]
    assert window(n=100, order="asc") == texts
    assert window(n=100, order="bogus") == texts  # only "desc" is newest first
    in_window = read_log(logged, **{"from": first, "until": last, "n": 100})
    assert len(read_log(logged, **{"from": first, "until": last, "size": 2})) == 2
    assert len(read_log(logged, **{"from": first, "until": last, "size": 2, "n": 3})) == 3  # n wins
    assert len(read_log(logged, **{"from": first, "until": last, "size": "1.7"})) == 1
    for unreadable in ("abc", "0", "-4", ""):
        assert len(read_log(logged, **{"from": first, "until": last, "size": unreadable})) == min(10, len(in_window))
    assert read_log(logged, **{"from": first, "until": first, "n": 100, "order": "asc"})[0]["timestamp"] == first
    # Dates that do not read are the defaults: a week ago, and now.
    assert len(read_log(logged, **{"from": "yesterday-ish", "until": "soon", "n": 3})) == 3
    assert read_log(logged, **{"until": "2000-01-01T00:00:00Z"}) == []
    assert read_log(logged, n=1)[0]["timestamp"] >= last


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_retention_keeps_the_newest_lines(backend: str, own_server: None) -> None:
    with running_server(backend, [*CLOUD, "--script-log-max-entries", "5"]) as small:
        texts = ["keep-" + secrets.token_hex(4) for _ in range(12)]
        for text in texts:
            call(small, "logLines", {"text": text, "levels": []})
        entries = eventually(lambda: (found := read_log(small, n=100)) and len(found) == 5 and found)
        assert entries[0]["message"].startswith("Ran cloud function logLines")
        assert texts[-1] in entries[0]["message"]


def test_nothing_is_kept_with_zero_entries(own_server: None) -> None:
    with running_server("sqlite", [*CLOUD, "--script-log-max-entries", "0"]) as none:
        call(none, "logLines", {"text": "x"})
        assert read_log(none, n=100) == []


def test_log_level_warning_keeps_warnings_and_failures_not_runs(own_server: None) -> None:
    with running_server("sqlite", ["--cloud", str(ROOT / "tests" / "cloud_app")]) as quiet:  # --log-level warning
        text = "quiet-" + secrets.token_hex(4)
        call(quiet, "logLines", {"text": text, "levels": ["info", "warning"]})
        entries = with_text(read_log(quiet, n=100), text)
        assert [e["message"] for e in entries] == [f"logLines warning says {text}"]
        # Failures are errors: logged, and kept, at warning too.
        call(quiet, "logFails", {"text": text})
        [failed] = with_text(read_log(quiet, level="error"), text)
        assert failed["message"].startswith("Failed running cloud function logFails")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_log_level_verbose_keeps_every_request_and_answer(backend: str, own_server: None) -> None:
    # Parse Server's verbose: "REQUEST for [GET] …" lines with method, url, headers and body; the
    # Logs page's own request is the newest line of its answer (the PHP SDK's suite reads it).
    with running_server(backend, [*CLOUD[:2], "--log-level", "verbose"]) as verbose:
        token = "r:" + "a" * 32
        with verbose.client(**{"X-Parse-Session-Token": token}) as api:
            api.post("/login", json={"username": "nobody", "password": "hunter2-secret"})
        [newest] = read_log(verbose, n=1)
        assert newest["method"] == "GET" and newest["url"].startswith("/parse/scriptlog?")
        assert newest["message"].startswith("REQUEST for [GET] /parse/scriptlog?")
        assert newest["level"] == "verbose"
        assert newest["headers"]["x-parse-master-key"] == "********"
        entries = read_log(verbose, n=20, order="asc")
        [login] = [e for e in entries if e["message"].startswith("REQUEST for [POST] /parse/login")]
        assert login["body"] == {"username": "nobody", "password": "********"}
        assert login["headers"]["x-parse-session-token"] == "********"
        [answer] = [e for e in entries if e["message"].startswith("RESPONSE from [POST] /parse/login")]
        assert answer["result"] == {"status": 404, "response": {"code": 101, "error": "Invalid username/password."}}
        text = str(entries)
        assert "hunter2-secret" not in text and token not in text and verbose.master_key not in text
        # --log-level info records no request lines.
    with running_server(backend, CLOUD) as info:
        with info.client() as api:
            api.get("/classes/Anything")
        assert not [e for e in read_log(info, n=100) if "REQUEST for" in e["message"]]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def two_workers(request: pytest.FixtureRequest, own_server: None) -> Iterator[Server]:
    with backend_database(request.param) as database:
        server = start_server(request.param, database, [*CLOUD, "--workers", "2"])
        try:
            yield server
        finally:
            stop_server(server)


def test_every_process_lines_are_read_from_any_process(two_workers: Server) -> None:
    """Requests land on either worker: lines logged by both are read back whichever answers."""
    texts: dict[str, int] = {}
    deadline = time.monotonic() + 30
    while len(set(texts.values())) < 2 and time.monotonic() < deadline:
        text = "mp-" + secrets.token_hex(5)
        with two_workers.client() as api:  # a new connection, so another worker may take it
            response = api.post("/functions/logLines", json={"text": text})
        assert response.status_code == 200, response.text
        texts[text] = response.json()["result"]["pid"]
    assert len(set(texts.values())) == 2, "every request went to one worker"

    def all_seen() -> bool:
        for _ in range(4):  # whichever worker answers
            messages = " ".join(e["message"] for e in read_log(two_workers, n=1000))
            if not all(f"logLines info says {text}" in messages for text in texts):
                return False
        return True

    eventually(all_seen)
