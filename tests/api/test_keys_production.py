"""The keys in production: where each secret key is taken from (Parse Server 9's masterKeyIps,
readOnlyMasterKeyIps, maintenanceKeyIps), what the read-only master key and the maintenance key may
do, and the modes of the files that hold secrets.

A client from another address is made with ``--trust-proxy 127.0.0.1`` and an X-Forwarded-For
header: the test's own address (127.0.0.1) is the trusted proxy, the forwarded one the client's.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, create
from tests.conftest import ROOT, Server, make_class, running_server

FAR = "203.0.113.7"  # a client address outside the default lists
READ_ONLY = "ro-master-key"
MAINTENANCE = "maintenance-key"
UNAUTHORIZED = {"error": "unauthorized"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(own_server: None, request: pytest.FixtureRequest) -> Iterator[Server]:
    args = ["--trust-proxy", "127.0.0.1", "--read-only-master-key", READ_ONLY, "--maintenance-key", MAINTENANCE,
            "--cloud", str(ROOT / "tests" / "cloud_app")]
    with running_server(request.param, args) as server:
        yield server


def _client(srv: Server, key: str | None = None, header: str = "X-Parse-Master-Key", ip: str | None = None,
            **headers: str) -> httpx.Client:
    base = {"X-Parse-Application-Id": srv.app_id, "X-Parse-Javascript-Key": srv.javascript_key, **headers}
    if key:
        base[header] = key
    if ip:
        base["X-Forwarded-For"] = ip
    return httpx.Client(base_url=srv.url, headers=base, timeout=30)


def _log(srv: Server) -> str:
    return (srv.data_dir / "server.log").read_text(errors="replace")


# --- where each key is taken from ----------------------------------------------------------------


def test_master_key_only_from_loopback_by_default(srv: Server, class_name: str) -> None:
    with _client(srv, srv.master_key) as local, _client(srv, srv.master_key, ip=FAR) as far:
        make_class(local, class_name)
        # As Parse Server 9: the right master key from elsewhere is refused, not taken as no key.
        for response in (far.get(f"/classes/{class_name}"), far.post(f"/classes/{class_name}", json={"a": 1}),
                         far.get("/schemas"), far.post("/batch", json={"requests": []})):
            assert response.status_code == 403 and response.json() == UNAUTHORIZED, response.text
        assert local.get(f"/classes/{class_name}").json() == {"results": []}
    # The same client without the master key is served as any client.
    with _client(srv, ip=FAR) as plain:
        assert plain.get(f"/classes/{class_name}").status_code == 200
    # Logged once per address, however often it comes.
    with _client(srv, srv.master_key, ip="203.0.113.8") as far:
        for _ in range(3):
            assert far.get("/schemas").status_code == 403
    log = _log(srv)
    assert log.count("'203.0.113.8' is not in --master-key-ips") == 1, log[-2000:]


def test_master_key_in_the_js_sdk_body_is_checked_too(srv: Server, class_name: str) -> None:
    with _client(srv, srv.master_key) as local:
        make_class(local, class_name)
    body = {"_method": "GET", "_ApplicationId": srv.app_id, "_JavaScriptKey": srv.javascript_key,
            "_MasterKey": srv.master_key}
    url = f"{srv.url}/classes/{class_name}"
    text = {"Content-Type": "text/plain"}
    far = httpx.post(url, content=json.dumps(body), headers={**text, "X-Forwarded-For": FAR})
    assert far.status_code == 403 and far.json() == UNAUTHORIZED
    assert httpx.post(url, content=json.dumps(body), headers=text).json() == {"results": []}


def test_read_only_master_key_from_anywhere_by_default(srv: Server, class_name: str) -> None:
    with _client(srv, srv.master_key) as local, _client(srv, READ_ONLY, ip=FAR) as far:
        make_class(local, class_name)
        create(local, class_name, {"a": 1})
        assert len(far.get(f"/classes/{class_name}").json()["results"]) == 1


def test_master_key_ips_from_the_environment(own_server: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """BASTION_MASTER_KEY_IPS: here a network the forwarded address is in, and not loopback."""
    monkeypatch.setenv("BASTION_MASTER_KEY_IPS", "10.0.0.0/8, 2001:db8::/32")
    monkeypatch.setenv("BASTION_READ_ONLY_MASTER_KEY_IPS", "127.0.0.1")
    with running_server("sqlite", ["--trust-proxy", "127.0.0.1", "--read-only-master-key", READ_ONLY]) as server:
        with _client(server, server.master_key) as local, _client(server, server.master_key, ip="10.1.2.3") as lan:
            assert local.get("/schemas").status_code == 403
            assert lan.get("/schemas").status_code == 200
        with _client(server, server.master_key, ip="2001:db8::5") as lan6:
            assert lan6.get("/schemas").status_code == 200
        with _client(server, READ_ONLY, ip="10.1.2.3") as far, _client(server, READ_ONLY) as local:
            assert far.get("/schemas").status_code == 403
            assert local.get("/schemas").status_code == 200


def test_a_bad_address_list_stops_the_start_with_one_line(tmp_path: Any) -> None:
    result = subprocess.run([sys.executable, "-m", "bastion", "serve", "--data-dir", str(tmp_path),
                             "--master-key-ips", "127.0.0.1,10.0.0.0/33"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "'10.0.0.0/33' is not an IP address or a CIDR network" in result.stderr
    assert "Traceback" not in result.stderr


def test_livequery_connect_with_the_master_key_from_elsewhere(srv: Server) -> None:
    from websockets.asyncio.client import connect

    from tests.livequery.helpers import ws_url

    async def connect_as(headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        async with connect(ws_url(srv), additional_headers=headers) as ws:
            await ws.send(json.dumps({"op": "connect", "applicationId": srv.app_id,
                                      "javascriptKey": srv.javascript_key, **fields}))
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return answer

    far = asyncio.run(connect_as({"X-Forwarded-For": FAR}, masterKey=srv.master_key))
    assert far["op"] == "error" and far["code"] == 4 and far["error"] == "Key in request is not valid", far
    assert asyncio.run(connect_as({}, masterKey=srv.master_key))["op"] == "connected"
    assert asyncio.run(connect_as({"X-Forwarded-For": FAR}))["op"] == "connected"  # no master key: a client
    assert asyncio.run(connect_as({"X-Forwarded-For": FAR}, masterKey=READ_ONLY))["op"] == "connected"


# --- the read-only master key writes nothing ------------------------------------------------------


def test_read_only_master_key_cannot_log_in_as_a_user(srv: Server) -> None:
    with _client(srv) as api:
        user = api.post("/users", json={"username": "ro_target_" + os.urandom(4).hex(), "password": "pw"}).json()
    with _client(srv, READ_ONLY) as ro:
        # Parse Server 9: 119, sanitized ("read-only masterKey isn't allowed to login as another user.").
        assert_error(ro.post("/loginAs", json={"userId": user["objectId"]}), 400, 119, "Permission denied")
    with _client(srv, srv.master_key) as master:
        sessions = master.get("/classes/_Session", params={"where": json.dumps(
            {"user": {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}})}).json()["results"]
        assert len(sessions) == 1  # the sign-up's, no other
        logged_in = master.post("/loginAs", json={"userId": user["objectId"]})
        assert logged_in.status_code == 200 and logged_in.json()["sessionToken"].startswith("r:")


def test_read_only_master_key_writes_nothing_anywhere(srv: Server, class_name: str) -> None:
    with _client(srv, srv.master_key) as master:
        make_class(master, class_name)
        obj = create(master, class_name, {"a": 1})
        user = master.post("/users", json={"username": "ro_user_" + os.urandom(4).hex(), "password": "pw"}).json()
        before = _snapshot(master, class_name)
    oid, uid = obj["objectId"], user["objectId"]
    attempts: list[tuple[str, str, Any]] = [
        ("POST", f"/classes/{class_name}", {"a": 2}),
        ("PUT", f"/classes/{class_name}/{oid}", {"a": 2}),
        ("DELETE", f"/classes/{class_name}/{oid}", None),
        ("POST", "/users", {"username": "ro_new", "password": "pw"}),
        ("PUT", f"/users/{uid}", {"username": "renamed"}),
        ("DELETE", f"/users/{uid}", None),
        ("POST", "/classes/_Session", {"user": {"__type": "Pointer", "className": "_User", "objectId": uid}}),
        ("POST", "/installations", {"deviceType": "ios", "installationId": "0a8f3a5e-6b0c-4b3e-9d58-3f0e8f1c2d4b"}),
        ("POST", "/roles", {"name": "roRole", "ACL": {"*": {"read": True}}}),
        ("POST", f"/schemas/{class_name}X", {"className": f"{class_name}X"}),
        ("PUT", f"/schemas/{class_name}", {"fields": {"b": {"type": "String"}}}),
        ("DELETE", f"/schemas/{class_name}", None),
        ("DELETE", f"/purge/{class_name}", None),
        ("PUT", "/config", {"params": {"roParam": 1}}),
        ("POST", "/push_audiences", {"name": "ro", "query": "{}"}),
        ("POST", "/cloud_code/jobs", {"job_schedule": {"jobName": "jobEcho", "description": "ro"}}),
        ("POST", "/jobs/jobEcho", {}),
        ("POST", "/hooks/functions", {"functionName": "roHook", "url": "https://example.com/hook"}),
        ("POST", "/push", {"where": {}, "data": {"alert": "ro"}}),
        ("POST", "/loginAs", {"userId": uid}),
    ]
    with _client(srv, READ_ONLY) as ro:
        for method, path, body in attempts:
            response = ro.request(method, path, json=body)
            assert response.status_code in (400, 403), (method, path, response.text)
            assert response.json().get("error") in ("Permission denied", "unauthorized"), (method, path, response.text)
        # Files: 403 without a code, as Parse Server 9 answers.
        upload = ro.post("/files/ro.txt", content=b"hello", headers={"Content-Type": "text/plain"})
        assert upload.status_code == 403 and upload.json() == {"error": "Permission denied"}, upload.text
        # A batch of writes: each one refused inside the batch's answer.
        batch = ro.post("/batch", json={"requests": [
            {"method": "POST", "path": f"/parse/classes/{class_name}", "body": {"a": 3}},
            {"method": "PUT", "path": f"/parse/classes/{class_name}/{oid}", "body": {"a": 3}},
            {"method": "DELETE", "path": f"/parse/classes/{class_name}/{oid}"}]})
        assert batch.status_code == 200
        assert [item["error"]["code"] for item in batch.json()] == [119, 119, 119], batch.text
        # The SDK's body keys are the same key.
        sdk = httpx.post(f"{srv.url}/classes/{class_name}", headers={"Content-Type": "text/plain"},
                         content=json.dumps({"_ApplicationId": srv.app_id, "_JavaScriptKey": srv.javascript_key,
                                             "_MasterKey": READ_ONLY, "a": 4}))
        assert_error(sdk, 400, 119, "Permission denied")
        # Reads go on.
        assert len(ro.get(f"/classes/{class_name}").json()["results"]) == 1
    with _client(srv, srv.master_key) as master:
        after = _snapshot(master, class_name)
        assert set(after["schemas"]) ^ set(before["schemas"]) == set()
        assert after == before


def _snapshot(master: httpx.Client, class_name: str) -> dict[str, Any]:
    """What the writes above could have changed."""
    def results(path: str, **params: Any) -> Any:
        answer = master.get(path, params=params)
        assert answer.status_code == 200, (path, answer.text)
        return sorted(json.dumps(item, sort_keys=True) for item in answer.json()["results"])

    return {"objects": results(f"/classes/{class_name}"), "users": results("/users"),
            "sessions": len(results("/classes/_Session")), "installations": results("/installations"),
            "roles": results("/roles"), "schemas": [s["className"] for s in master.get("/schemas").json()["results"]],
            "schema": master.get(f"/schemas/{class_name}").json(), "config": master.get("/config").json(),
            "audiences": results("/push_audiences"), "jobs": master.get("/cloud_code/jobs").json(),
            "hooks": master.get("/hooks/functions").json(), "pushes": results("/classes/_PushStatus")}


def test_read_only_master_key_may_call_functions(srv: Server) -> None:
    """As Parse Server 9: a cloud function runs for it (request.master, with isReadOnly for webhooks);
    what the function writes with its own master key is the function's business."""
    with _client(srv, READ_ONLY) as ro:
        answer = ro.post("/functions/hello", json={})
        assert answer.status_code == 200, answer.text


# --- the maintenance key ----------------------------------------------------------------------------


def test_maintenance_key(srv: Server, class_name: str) -> None:
    with _client(srv, srv.master_key) as master:
        make_class(master, class_name)
        hidden = create(master, class_name, {"a": 1, "ACL": {}})  # nobody may read it but the master key
    with _client(srv, MAINTENANCE, header="X-Parse-Maintenance-Key") as maintenance:
        # Past ACLs, as Parse Server's isMaintenance...
        assert maintenance.get(f"/classes/{class_name}/{hidden['objectId']}").json()["a"] == 1
        assert maintenance.put(f"/classes/{class_name}/{hidden['objectId']}", json={"a": 2}).status_code == 200
        # ...but not the master key on master-only routes: 403, sanitized.
        for response in (maintenance.get("/schemas"), maintenance.post("/loginAs", json={"userId": "x"}),
                         maintenance.put("/config", json={"params": {"m": 1}})):
            assert response.status_code in (400, 403) and response.json()["error"] == "Permission denied", response.text
    # The maintenance key from elsewhere: 403 unauthorized (maintenanceKeyIps: loopback by default).
    with _client(srv, MAINTENANCE, header="X-Parse-Maintenance-Key", ip=FAR) as far:
        response = far.get(f"/classes/{class_name}")
        assert response.status_code == 403 and response.json() == UNAUTHORIZED
    # Sent as the master key, it is no key at all.
    with _client(srv, MAINTENANCE) as wrong:
        assert wrong.get(f"/classes/{class_name}").json() == {"results": []}


# --- files that hold secrets ----------------------------------------------------------------------


def test_database_and_data_dir_are_private(srv: Server) -> None:
    assert stat.S_IMODE((srv.data_dir / "keys.json").stat().st_mode if (srv.data_dir / "keys.json").exists()
                        else 0o600) == 0o600
    if srv.backend != "sqlite":
        return
    with _client(srv, srv.master_key) as master:
        create(master, "PrivateFiles", {"a": 1})  # the WAL has been written
    for name in ("bastion.db", "bastion.db-wal", "bastion.db-shm"):
        path = srv.data_dir / name
        assert path.exists(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


def test_a_new_data_dir_is_0700_and_a_loose_one_is_warned_of(tmp_path: Any) -> None:
    from tests.conftest import free_port

    def start(data_dir: Any) -> str:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "bastion", "serve", "--data-dir", str(data_dir),
                                    "--port", str(port), "--log-level", "warning"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/parse/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    break
                asyncio.run(asyncio.sleep(0.1))
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=10)
        return output

    data = tmp_path / "new" / "data"
    output = start(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert "open to other users" not in output
    for name in ("bastion.db", "keys.json"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    # A database an older version left readable by others is tightened; a loose directory is warned of.
    (data / "bastion.db").chmod(0o644)
    data.chmod(0o755)
    output = start(data)
    assert "is open to other users (mode 755)" in output, output
    assert stat.S_IMODE((data / "bastion.db").stat().st_mode) == 0o600
