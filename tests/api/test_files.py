"""/files over the wire: uploads (raw body and the JS SDK's JSON), downloads with ranges, metadata,
deletes, the fileUpload rules and file fields on objects, on both databases.

The server of the ``server`` fixture keeps files in <data-dir>/files; ``pg_files`` runs two servers
sharing files through PostgreSQL, ``ruled`` one with other fileUpload options, and the memory test
one of its own.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import assert_error, create, fetch
from tests.conftest import (
    PG_ADMIN_URL,
    Server,
    create_pg_database,
    drop_pg_database,
    postgres_available,
    start_server,
    stop_server,
)

UNIQUE = re.compile(r"^[0-9a-f]{32}_")
differs = pytest.mark.differs_from_parse_server


def upload(client: httpx.Client, name: str, data: bytes, content_type: str | None = "text/plain",
           **headers: str) -> httpx.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(f"/files/{name}", content=data, headers=headers)


def uploaded(client: httpx.Client, name: str, data: bytes, content_type: str | None = "text/plain") -> dict[str, str]:
    response = upload(client, name, data, content_type)
    assert response.status_code == 201, response.text
    return response.json()


def sign_up(api: httpx.Client) -> str:
    response = api.post("/users", json={"username": "u" + secrets.token_hex(6), "password": "pw"})
    assert response.status_code == 201, response.text
    return str(response.json()["sessionToken"])


def file_path(server: Server, name: str) -> str:
    return f"/files/{server.app_id}/{name}"


def anonymous(server: Server) -> httpx.Client:
    return httpx.Client(timeout=30)


# --- uploads --------------------------------------------------------------------------------------


def test_raw_upload_answers_url_and_unique_name(server: Server, master: httpx.Client) -> None:
    response = upload(master, "hello.txt", b"hello world")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"url", "name"}
    assert UNIQUE.match(body["name"]) and body["name"].endswith("_hello.txt")
    assert body["url"] == f"{server.url}/files/{server.app_id}/{body['name']}"
    assert response.headers["location"] == body["url"]
    again = uploaded(master, "hello.txt", b"hello world")
    assert again["name"] != body["name"]
    with anonymous(server) as web:
        got = web.get(body["url"])
    assert got.status_code == 200 and got.content == b"hello world"
    assert got.headers["content-type"].startswith("text/plain")


def test_users_may_upload_the_public_may_not(server: Server, api: httpx.Client) -> None:
    assert_error(upload(api, "public.txt", b"x"), 400, 130, "File upload by public is disabled.")
    token = sign_up(api)
    with server.client(**{"X-Parse-Session-Token": token}) as user:
        assert uploaded(user, "mine.txt", b"x")["name"].endswith("_mine.txt")


def test_anonymous_users_may_not_upload(api: httpx.Client) -> None:
    response = api.post("/users", json={"authData": {"anonymous": {"id": secrets.token_hex(8)}}})
    assert response.status_code == 201, response.text
    token = response.json()["sessionToken"]
    assert_error(upload(api, "anon.txt", b"x", **{"X-Parse-Session-Token": token}), 400, 130,
                 "File upload by anonymous user is disabled.")


def test_wrong_keys(server: Server, api: httpx.Client) -> None:
    assert_error(upload(api, "a.txt", b"x", **{"X-Parse-Session-Token": "r:nope"}), 400, 209, "Invalid session token")
    with anonymous(server) as web:
        # No app id in the headers: the body must be the SDK's JSON naming the app.
        response = web.post(f"{server.url}/files/a.txt", content=b"not json", headers={"Content-Type": "text/plain"})
        assert_error(response, 403, None, "unauthorized")
        response = web.post(f"{server.url}/files/a.txt", json={"base64": "eA=="})
        assert_error(response, 403, None, "unauthorized")


def test_sdk_json_upload(server: Server) -> None:
    """What Parse.File#save sends: keys, base64, _ContentType and fileData in a text/plain JSON body."""
    data = os.urandom(3000)
    body = {"base64": base64.b64encode(data).decode(), "_ContentType": "image/png",
            "fileData": {"metadata": {"owner": "me"}, "tags": {"kind": "avatar"}},
            "_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key,
            "_MasterKey": server.master_key, "_ClientVersion": "js7.1.2", "_InstallationId": "inst"}
    with anonymous(server) as web:
        response = web.post(f"{server.url}/files/avatar", json=body, headers={"Content-Type": "text/plain"})
        assert response.status_code == 201, response.text
        name = response.json()["name"]
        # A name without extension takes the content type's.
        assert UNIQUE.match(name) and name.endswith("_avatar.png")
        got = web.get(f"{server.url}{file_path(server, name)}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png"


@differs  # Parse Server's fs adapter keeps no metadata: its metadata route answers {}
def test_metadata_and_tags(server: Server, master: httpx.Client) -> None:
    body = {"base64": base64.b64encode(b"meta").decode(), "fileData": {"metadata": {"a": 1}, "tags": {"t": "x"}},
            "_ApplicationId": server.app_id, "_MasterKey": server.master_key}
    with anonymous(server) as web:
        name = web.post(f"{server.url}/files/m.txt", json=body).json()["name"]
        answer = web.get(f"{server.url}/files/{server.app_id}/metadata/{name}")
        assert answer.status_code == 200 and answer.json() == {"metadata": {"a": 1}, "tags": {"t": "x"}}
        plain = uploaded(master, "plain.txt", b"p")["name"]
        assert web.get(f"{server.url}/files/{server.app_id}/metadata/{plain}").json() == {"metadata": {}}
        assert web.get(f"{server.url}/files/{server.app_id}/metadata/missing.txt").json() == {}
        assert web.get(f"{server.url}/files/other-app/metadata/{name}").json() == {}


def test_metadata_of_missing_file(server: Server) -> None:
    with anonymous(server) as web:
        answer = web.get(f"{server.url}/files/{server.app_id}/metadata/{secrets.token_hex(16)}_none.txt")
    assert answer.status_code == 200 and answer.json() == {}


def test_content_type_and_extension(server: Server, master: httpx.Client) -> None:
    assert uploaded(master, "notes", b"n", "text/plain")["name"].endswith("_notes.txt")
    # A known extension decides the type, whatever the client said.
    name = uploaded(master, "pic.png", b"\x89PNG", "text/html")["name"]
    with anonymous(server) as web:
        assert web.get(f"{server.url}{file_path(server, name)}").headers["content-type"] == "image/png"
    # Unknown type and no extension: the name stays as it is.
    assert uploaded(master, "blob", b"b", "application/x-bastion-test")["name"].endswith("_blob")


@pytest.mark.parametrize(("name", "message"), [
    ("a$b.txt", "Filename contains invalid characters."),
    (".hidden", "Filename contains invalid characters."),
    ("-dash.txt", "Filename contains invalid characters."),
    ("x" * 129, "Filename too long."),
    ("%2e%2e%5cx.txt", "Filename contains invalid characters."),
    ("caf%C3%A9.txt", "Filename contains invalid characters."),
    ("tab%09.txt", "Filename contains invalid characters."),
])
def test_invalid_names(master: httpx.Client, name: str, message: str) -> None:
    assert_error(upload(master, name, b"x"), 400, 122, message)


def test_names_with_spaces_and_symbols(server: Server, master: httpx.Client) -> None:
    body = uploaded(master, "My%20File%20@2x~v1.txt", b"ok")
    assert body["name"].endswith("_My File @2x~v1.txt")
    assert body["url"].endswith("_My%20File%20%402x~v1.txt")
    with anonymous(server) as web:
        assert web.get(body["url"]).content == b"ok"


def test_filename_not_provided(master: httpx.Client) -> None:
    assert_error(master.post("/files", content=b"x"), 400, 122, "Filename not provided.")


def test_empty_upload(master: httpx.Client) -> None:
    assert_error(upload(master, "empty.txt", b""), 400, 130, "Invalid file upload.")


@pytest.mark.parametrize(("name", "content_type", "message"), [
    ("page.html", "text/html", "File upload of extension html is disabled."),
    ("page.HTM", "text/plain", "File upload of extension HTM is disabled."),
    ("image.svg", "image/png", "File upload of extension svg is disabled."),
    ("doc.xhtml", None, "File upload of extension xhtml is disabled."),
    ("data.xml", None, "File upload of extension xml is disabled."),
    # No or an unknown extension: the content type the file would be served with is checked.
    ("noext", "text/html", "File upload of extension html is disabled."),
    ("data.qqq", "image/svg+xml", "File upload of extension svg+xml is disabled."),
    ("data.qqq", "image/svg+xml; charset=utf-8", "File upload of extension svg+xml is disabled."),
    ("data.qqq", "svg", "File upload of extension svg is disabled."),
    ("data.qqq", "garbage", "Invalid Content-Type."),
    ("data.qqq", "text/", "Invalid Content-Type."),
])
def test_refused_extensions(api: httpx.Client, name: str, content_type: str | None, message: str) -> None:
    token = sign_up(api)
    assert_error(upload(api, name, b"<b>x</b>", content_type, **{"X-Parse-Session-Token": token}), 400, 130, message)


def test_master_key_may_upload_any_extension_served_safely(server: Server, master: httpx.Client) -> None:
    name = uploaded(master, "page.html", b"<script>alert(1)</script>", "text/html")["name"]
    with anonymous(server) as web:
        got = web.get(f"{server.url}{file_path(server, name)}")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/html")
    assert got.headers["x-content-type-options"] == "nosniff"
    if server.backend != "external":  # Bastion's own defence; Parse Server relies on the extension rule
        assert got.headers["content-disposition"] == "attachment"
        assert "sandbox" in got.headers["content-security-policy"]


def test_read_only_master_may_not_upload_or_delete(ruled: Server) -> None:
    with ruled.client(**{"X-Parse-Master-Key": READ_ONLY_MASTER}) as client:
        assert_error(upload(client, "ro.txt", b"x"), 403, None, "Permission denied")
        assert_error(client.delete("/files/whatever.txt"), 403, None, "Permission denied")


# --- downloads ------------------------------------------------------------------------------------


DATA = bytes(range(256)) * 4  # 1 024 bytes


@pytest.fixture
def stored(server: Server, master: httpx.Client) -> Iterator[tuple[httpx.Client, str]]:
    name = uploaded(master, "bytes.bin", DATA, "application/octet-stream")["name"]
    with httpx.Client(base_url=server.url, timeout=30) as web:
        yield web, file_path(server, name)


def test_download_headers(stored: tuple[httpx.Client, str]) -> None:
    web, path = stored
    got = web.get(path)
    assert got.status_code == 200 and got.content == DATA
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == "1024"
    assert got.headers["x-content-type-options"] == "nosniff"


@differs  # Parse Server's fs adapter ignores Range (200, the whole file)
def test_single_ranges(stored: tuple[httpx.Client, str]) -> None:
    web, path = stored
    assert web.get(path).headers["accept-ranges"] == "bytes"
    for header, start, end in [("bytes=0-9", 0, 10), ("bytes=1000-", 1000, 1024), ("bytes=-24", 1000, 1024),
                               ("bytes=500-99999", 500, 1024), ("bytes=1023-1023", 1023, 1024),
                               ("bytes=-5000", 0, 1024)]:
        got = web.get(path, headers={"Range": header})
        assert got.status_code == 206, header
        assert got.content == DATA[start:end], header
        assert got.headers["content-range"] == f"bytes {start}-{end - 1}/1024", header
        assert got.headers["content-length"] == str(end - start)


@differs
def test_multiple_ranges(stored: tuple[httpx.Client, str]) -> None:
    web, path = stored
    got = web.get(path, headers={"Range": "bytes=0-3, 100-103, -2"})
    assert got.status_code == 206
    kind = got.headers["content-type"]
    assert kind.startswith("multipart/byteranges; boundary=")
    boundary = kind.split("boundary=", 1)[1]
    assert int(got.headers["content-length"]) == len(got.content)
    parts = got.content.split(f"--{boundary}".encode())
    assert parts[-1] == b"--\r\n"
    bodies = []
    for part in parts[1:-1]:
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: application/octet-stream" in head
        bodies.append((head.split(b"Content-Range: ")[1].split(b"\r\n")[0], data[:-2]))
    assert bodies == [(b"bytes 0-3/1024", DATA[0:4]), (b"bytes 100-103/1024", DATA[100:104]),
                      (b"bytes 1022-1023/1024", DATA[1022:])]


@differs
def test_unsatisfiable_and_ignored_ranges(stored: tuple[httpx.Client, str]) -> None:
    web, path = stored
    got = web.get(path, headers={"Range": "bytes=1024-2000"})
    assert got.status_code == 416 and got.headers["content-range"] == "bytes */1024"
    # Malformed, another unit, or overlapping: the header is ignored and the whole file sent.
    for header in ("bytes=abc", "items=0-1", "bytes=5-1", "bytes=0-10,5-20", "bytes=" + ",".join(["1-2"] * 20)):
        got = web.get(path, headers={"Range": header})
        assert got.status_code == 200 and got.content == DATA, header


def test_head(stored: tuple[httpx.Client, str]) -> None:
    web, path = stored
    got = web.head(path)
    assert got.status_code == 200 and got.content == b""
    assert got.headers["content-length"] == "1024"


def test_missing_file_and_wrong_app(server: Server) -> None:
    with anonymous(server) as web:
        got = web.get(f"{server.url}/files/{server.app_id}/{secrets.token_hex(16)}_none.txt")
        assert got.status_code == 404 and got.text == "File not found."
        assert got.headers["content-type"].startswith("text/plain")
        got = web.get(f"{server.url}/files/not-{server.app_id}/x.txt")
        assert_error(got, 403, None, "Permission denied")


# --- delete ---------------------------------------------------------------------------------------


def test_delete_needs_the_master_key(server: Server, api: httpx.Client, master: httpx.Client) -> None:
    name = uploaded(master, "doomed.txt", b"bye")["name"]
    assert_error(api.delete(f"/files/{name}"), 403, None, "Permission denied")
    response = master.delete(f"/files/{name}")
    assert response.status_code == 200 and response.content == b""
    with anonymous(server) as web:
        assert web.get(f"{server.url}{file_path(server, name)}").status_code == 404
    # Parse Server's filesystem adapter puts its ENOENT message (with its path) here.
    assert_error(master.delete(f"/files/{name}"), 400, 153,
                 None if server.backend == "external" else "Could not delete file.")


# --- file fields ----------------------------------------------------------------------------------


def test_file_fields_on_objects(server: Server, master: httpx.Client, class_name: str) -> None:
    file = uploaded(master, "attached.txt", b"attached")
    obj = create(master, class_name, {"doc": {"__type": "File", "name": file["name"], "url": "ignored"}})
    got = fetch(master, class_name, obj["objectId"])
    assert got["doc"] == {"__type": "File", "name": file["name"], "url": file["url"]}
    # (Parse Server 9 on PostgreSQL answers equality with a File 119 "doesn't support this query type".)
    found = master.get(f"/classes/{class_name}", params={"where": '{"doc": {"$exists": true}}'}).json()["results"]
    assert [r["objectId"] for r in found] == [obj["objectId"]]
    assert found[0]["doc"]["url"] == file["url"]
    with anonymous(server) as web:
        assert web.get(got["doc"]["url"]).content == b"attached"


# --- other settings -------------------------------------------------------------------------------


READ_ONLY_MASTER = "read-only-master"


@pytest.fixture(scope="module")
def ruled(own_server: None) -> Iterator[Server]:
    server = start_server("sqlite", None, [
        "--file-upload-enable-for-public", "--no-file-upload-enable-for-authenticated-user",
        "--file-upload-enable-for-anonymous-user", "--file-extensions", '["^(txt|html)$"]',
        "--max-upload-bytes", "1000", "--read-only-master-key", READ_ONLY_MASTER])
    try:
        yield server
    finally:
        stop_server(server)


def test_upload_rules(ruled: Server) -> None:
    with ruled.client() as api:
        assert uploaded(api, "open.txt", b"public may")["name"].endswith("_open.txt")
        assert uploaded(api, "page.html", b"<p>allowed here</p>", "text/html")["name"].endswith("_page.html")
        assert_error(upload(api, "pic.png", b"x", "image/png"), 400, 130, "File upload of extension png is disabled.")
        token = sign_up(api)
        assert_error(upload(api, "user.txt", b"x", **{"X-Parse-Session-Token": token}), 400, 130,
                     "File upload by authenticated user is disabled.")
        anon = api.post("/users", json={"authData": {"anonymous": {"id": secrets.token_hex(8)}}}).json()
    with ruled.client(**{"X-Parse-Session-Token": anon["sessionToken"]}) as user:
        assert uploaded(user, "anon.txt", b"ok")


def test_too_large_uploads_leave_nothing(ruled: Server) -> None:
    before = set((ruled.data_dir / "files").iterdir())
    with ruled.client() as api:
        assert uploaded(api, "fits.txt", b"x" * 1000)
        # As Parse Server's body parser, 413 "request entity too large", with Parse's code 130 added.
        assert_error(upload(api, "big.txt", b"x" * 1001), 413, 130, "request entity too large")
        # Parse Server's streaming mode answers 130; without Content-Length (chunked) the upload is
        # refused when the stream passes the limit.
        def body() -> Iterator[bytes]:
            for _ in range(10):
                yield b"y" * 300

        response = api.post("/files/chunked.txt", content=body(),
                            headers={"Content-Type": "text/plain", "X-Parse-Upload-Mode": "stream"})
        assert_error(response, 400, 130, "File size exceeds maximum allowed: 1000 bytes.")
        response = api.post("/files/chunked.txt", content=body(), headers={"Content-Type": "text/plain"})
        assert_error(response, 413, 130, "request entity too large")
        sdk = {"_ApplicationId": ruled.app_id, "base64": base64.b64encode(b"z" * 1001).decode()}
        assert_error(api.post("/files/json.txt", json=sdk, headers={"X-Parse-Application-Id": ""}), 413, 130,
                     "request entity too large")
    after = set((ruled.data_dir / "files").iterdir())
    assert len(after - before) == 1  # fits.txt only
    assert list((ruled.data_dir / "files" / ".tmp").iterdir()) == []


def test_stream_mode_metadata_headers(server: Server, master: httpx.Client) -> None:
    response = upload(master, "s.txt", b"streamed", **{"X-Parse-Upload-Mode": "stream",
                                                        "X-Parse-File-Metadata": '{"a": 1}',
                                                        "X-Parse-File-Tags": '{"t": "x"}'})
    assert response.status_code == 201, response.text
    response = upload(master, "s.txt", b"x", **{"X-Parse-Upload-Mode": "stream", "X-Parse-File-Metadata": "[1]"})
    assert_error(response, 400, 107, "Invalid JSON in X-Parse-File-Metadata header.")
    response = upload(master, "s.txt", b"x", **{"X-Parse-Upload-Mode": "stream",
                                                 "X-Parse-File-Tags": '{"a": {"__proto__": 1}}'})
    assert_error(response, 400, 105, 'Prohibited keyword in request data: {"key":"__proto__"}.')


# --- PostgreSQL files, shared by two servers ------------------------------------------------------


@pytest.fixture(scope="module")
def pg_files(own_server: None) -> Iterator[tuple[Server, Server]]:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    name = create_pg_database()
    database = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    first = start_server("postgres", database, ["--files", "postgres"])
    second = start_server("postgres", database, ["--files", "postgres", "--app-id", first.app_id,
                                                 "--master-key", first.master_key])
    second.app_id, second.master_key = first.app_id, first.master_key
    try:
        yield first, second
    finally:
        stop_server(first)
        stop_server(second)
        drop_pg_database(name)


def test_postgres_files_are_shared_between_servers(pg_files: tuple[Server, Server]) -> None:
    first, second = pg_files
    data = os.urandom(600_000)  # more than two chunks
    with first.client(master=True) as one, second.client(master=True) as two:
        body = uploaded(one, "shared.bin", data, "application/octet-stream")
        assert not list((first.data_dir / "files").glob("*_shared.bin"))  # not on disk: in the database
        path = f"/files/{first.app_id}/{body['name']}"
        got = two.get(path)
        assert got.status_code == 200 and got.content == data
        got = two.get(path, headers={"Range": "bytes=262140-262150"})
        assert got.status_code == 206 and got.content == data[262140:262151]
        assert two.delete(f"/files/{body['name']}").status_code == 200
        assert one.get(path).status_code == 404


# --- memory -------------------------------------------------------------------------------------


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_big_upload_and_download_stream(own_server: None, tmp_path: Path) -> None:
    """200 MB up and down through the API while the server's peak memory stays far below it."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    size, piece = 200 * 1024 * 1024, os.urandom(1024 * 1024)
    server = start_server("sqlite", None, ["--max-upload-bytes", str(size)])
    try:
        before = _rss_peak_kib(server.process.pid)

        def body() -> Iterator[bytes]:
            for _ in range(size // len(piece)):
                yield piece

        with server.client(master=True) as client:
            client.timeout = httpx.Timeout(300)
            started = time.monotonic()
            response = client.post("/files/big.bin", content=body(),
                                   headers={"Content-Type": "application/octet-stream"})
            assert response.status_code == 201, response.text
            name = response.json()["name"]
            received = 0
            with client.stream("GET", f"/files/{server.app_id}/{name}") as download:
                assert download.status_code == 200
                assert download.headers["content-length"] == str(size)
                for chunk in download.iter_bytes():
                    received += len(chunk)
            assert received == size
            assert time.monotonic() - started < 240
        peak = _rss_peak_kib(server.process.pid)
        assert peak < 100 * 1024, f"server peak RSS {peak} KiB (was {before} KiB before the transfer)"
        assert peak - before < 40 * 1024, f"the transfer grew the server by {peak - before} KiB"
    finally:
        stop_server(server)



def test_download_rules(own_server: None) -> None:
    """Parse Server's fileDownload options: who may download, by the session's user (keys are not
    read on downloads, so the master key lifts nothing)."""
    server = start_server("sqlite", None, ["--no-file-download-enable-for-public",
                                           "--no-file-download-enable-for-anonymous-user"])
    try:
        with server.client(master=True) as master, server.client() as api, anonymous(server) as web:
            stored = uploaded(master, "private.txt", b"members only")["name"]
            path = server.url + file_path(server, stored)
            assert_error(web.get(path), 400, 119, "File download by public is disabled.")
            assert_error(web.get(path, headers={"X-Parse-Master-Key": server.master_key,
                                                "X-Parse-Application-Id": server.app_id}),
                         400, 119, "File download by public is disabled.")
            member = web.get(path, headers={"X-Parse-Session-Token": sign_up(api)})
            assert member.status_code == 200 and member.content == b"members only"
            ghost = api.post("/users", json={"authData": {"anonymous": {"id": secrets.token_hex(8)}}})
            assert ghost.status_code == 201, ghost.text
            assert_error(web.get(path, headers={"X-Parse-Session-Token": ghost.json()["sessionToken"]}),
                         400, 119, "File download by anonymous user is disabled.")
            assert_error(web.get(path, headers={"X-Parse-Session-Token": "r:not-a-session"}), 400, 209)
    finally:
        stop_server(server)
    server = start_server("sqlite", None, ["--no-file-download-enable-for-authenticated-user"])
    try:
        with server.client(master=True) as master, server.client() as api, anonymous(server) as web:
            path = server.url + file_path(server, uploaded(master, "open.txt", b"for all")["name"])
            assert web.get(path).content == b"for all"
            assert_error(web.get(path, headers={"X-Parse-Session-Token": sign_up(api)}),
                         400, 119, "File download by authenticated user is disabled.")
    finally:
        stop_server(server)
