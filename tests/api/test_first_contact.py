"""The first calls a Parse client or tool makes: /serverInfo, routes with a trailing slash, paths and
requests nothing serves (always a JSON Parse error, never an HTML page), Parse routes Bastion lacks."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx

import bastion
from tests.api.helpers import assert_error
from tests.conftest import Server, make_class

FEATURES = {
    "globalConfig": {"create": True, "read": True, "update": True, "delete": True},
    "hooks": {"create": True, "read": True, "update": True, "delete": True},
    "cloudCode": {"jobs": True},
    "logs": {"level": True, "size": True, "order": True, "until": True, "from": True},
    "push": {"immediatePush": True, "scheduledPush": True, "storedPushData": True, "pushAudiences": True,
             "localization": True},
    "schemas": {"addField": True, "removeField": True, "addClass": True, "removeClass": True,
                "clearAllDataFromClass": True, "exportClass": False, "editClassLevelPermissions": True,
                "editPointerPermissions": True},
    "settings": {"securityCheck": False},
}


def test_server_info_with_the_master_key(master: httpx.Client) -> None:
    response = master.get("/serverInfo")
    assert response.status_code == 200
    body = response.json()
    assert body == {"features": FEATURES, "parseServerVersion": "9.10.0", "bastionVersion": bastion.__version__}
    assert master.get("/serverInfo/").json() == body  # the Dashboard's spelling works too


def test_server_info_needs_the_master_key(server: Server, api: httpx.Client) -> None:
    response = api.get("/serverInfo")
    assert response.status_code == 403
    assert response.json() == {"error": "Permission denied"}
    assert httpx.get(f"{server.url}/serverInfo").status_code == 403  # no keys at all


def test_server_info_with_the_js_sdk_body(server: Server) -> None:
    # Browsers (the Dashboard) send the keys in a text/plain JSON body with _method.
    body = {"_method": "GET", "_ApplicationId": server.app_id, "_MasterKey": server.master_key}
    response = httpx.post(f"{server.url}/serverInfo", json=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert response.json()["parseServerVersion"] == "9.10.0"


def test_a_trailing_slash_is_the_same_route(master: httpx.Client, class_name: str) -> None:
    make_class(master, class_name, {"n": {"type": "Number"}})
    names = {entry["className"] for entry in master.get("/schemas/").json()["results"]}
    assert class_name in names
    created = master.post(f"/classes/{class_name}/", json={"n": 1})
    assert created.status_code == 201, created.text
    object_id = created.json()["objectId"]
    assert master.get(f"/classes/{class_name}/{object_id}/").json()["n"] == 1
    assert master.get(f"/classes/{class_name}/").json()["results"][0]["objectId"] == object_id
    # Only one slash is forgiven, as Express's non-strict routing.
    assert master.get(f"/classes/{class_name}//").status_code == 404


def test_paths_outside_the_mount_answer_json(server: Server) -> None:
    root = server.url.rsplit("/parse", 1)[0]
    for path in ("/", "/favicon.ico", "/parsex/classes/A"):
        response = httpx.get(root + path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json()["code"] == 107


def test_parse_routes_bastion_lacks_say_so(master: httpx.Client, api: httpx.Client) -> None:
    for method, path in (("GET", "/security"), ("POST", "/validate_purchase"),
                         ("GET", "/graphql-config"), ("PUT", "/graphql-config")):
        response = master.request(method, path, json={})
        assert response.status_code == 400, path
        body = response.json()
        assert body["code"] == 108, path
        assert body["error"].startswith(f"{method} {path} is not available: "), body
    assert_error(api.post("/validate_purchase", json={}), 400, 108,
                 "POST /validate_purchase is not available: Bastion does not validate in-app purchases.")


def _raw_request(server: Server, data: bytes) -> bytes:
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_malformed_http_request_gets_a_json_error(server: Server) -> None:
    for garbage in (b"NOT A REQUEST\r\n\r\n", b"GET /parse/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"GET /parse/health HTTP/1.1\r\nContent-Length: nope\r\n\r\n"):
        answer = _raw_request(server, garbage)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), answer
        assert b"content-type: application/json; charset=utf-8" in head.lower()
        assert httpx.Response(400, content=body).json() == {"code": 107, "error": "Invalid HTTP request received."}
