"""Cloud code's login, logout and file triggers, and triggers on _User, over the wire, on both databases.

The shared test server runs tests/cloud_app/users_files.py: its login triggers act on usernames
starting with ``cloudlogin_`` / ``cloudblocked_`` only, its file triggers on files named
``cloudfile_*``; the ``cloudUserFilesSeen`` function answers what they saw. _User's before_save
runs on a server of its own (``pw_server``), so that other tests' users are not touched.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.conftest import (
    Server,
    running_server,
)

UNIQUE = re.compile(r"^[0-9a-f]{32}_")


def seen(client: httpx.Client, key: str) -> list[dict[str, Any]]:
    response = client.post("/functions/cloudUserFilesSeen", json={"key": key})
    assert response.status_code == 200, response.text
    return list(response.json()["result"])


def sign_up(api: httpx.Client, prefix: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    username = prefix + secrets.token_hex(5)
    response = api.post("/users", json={"username": username, "password": "pw-" + username, **fields})
    assert response.status_code == 201, response.text
    return username, response.json()


def log_in(api: httpx.Client, username: str, **headers: str) -> httpx.Response:
    return api.post("/login", json={"username": username, "password": "pw-" + username}, headers=headers)


def sessions_of(master: httpx.Client, user_id: str) -> int:
    where = {"user": {"__type": "Pointer", "className": "_User", "objectId": user_id}}
    response = master.get("/classes/_Session", params={"where": json.dumps(where), "count": 1, "limit": 0})
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


# --- log-in and log-out ---------------------------------------------------------------------------


def test_before_and_after_login_see_the_user_and_the_request(api: httpx.Client) -> None:
    username, created = sign_up(api, "cloudlogin_", email=f"{secrets.token_hex(4)}@example.com")
    assert seen(api, username) == []  # a sign-up is no log-in, as in Parse Server
    context = json.dumps({"from": "test"})
    response = log_in(api, username, **{"X-Cloud-Tag": "t1", "X-Parse-Cloud-Context": context})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "changedByTrigger" not in body  # a before_login's changes are ignored
    before, after = seen(api, username)
    assert before["trigger"] == "beforeLogin" and before["className"] == "_User"
    assert before["id"] == created["objectId"] and before["email"].endswith("@example.com")
    assert before["hasSessionToken"] is False and before["hasPassword"] is False
    assert before["requestUser"] is False and before["master"] is False
    assert before["header"] == "t1" and before["context"] == {"from": "test"} and before["ip"]
    assert after == {"trigger": "afterLogin", "id": created["objectId"], "sessionToken": body["sessionToken"],
                     "sameUser": True, "header": "t1"}


def test_before_login_refuses_and_no_session_is_made(api: httpx.Client, master: httpx.Client) -> None:
    username, created = sign_up(api, "cloudblocked_")  # sign-ups are not log-ins: allowed
    assert sessions_of(master, created["objectId"]) == 1
    assert_error(log_in(api, username), 400, 119, "Access denied, you have been banned.")
    assert sessions_of(master, created["objectId"]) == 1
    events = seen(api, username)
    assert [e["trigger"] for e in events] == ["beforeLogin"]  # no after_login
    # The credentials are checked first: a wrong password never reaches cloud code.
    wrong = api.post("/login", json={"username": username, "password": "nope"})
    assert_error(wrong, 404, 101, "Invalid username/password.")
    assert len(seen(api, username)) == 1


def test_a_crashing_before_login_answers_141_with_its_message(api: httpx.Client) -> None:
    username, _ = sign_up(api, "cloudblocked_crash")
    assert_error(log_in(api, username), 400, 141, "a bug in before_login")


def test_after_logout_gets_the_session(api: httpx.Client, master: httpx.Client, as_user: Any) -> None:
    username, created = sign_up(api, "cloudlogin_")
    token = log_in(api, username).json()["sessionToken"]
    response = as_user(token).post("/logout", json={}, headers={"X-Cloud-Tag": "bye"})
    assert response.status_code == 200 and response.json() == {}
    event = seen(api, username)[-1]
    assert event["trigger"] == "afterLogout" and event["className"] == "_Session"
    assert event["sessionToken"] == token and event["sessionId"]
    assert event["sessionUser"] == event["requestUser"] == created["objectId"]
    assert event["header"] == "bye"
    assert sessions_of(master, created["objectId"]) == 1  # the sign-up's session only


def test_auth_data_log_in_runs_before_login_only(api: httpx.Client, master: httpx.Client) -> None:
    # As Parse Server: POST /users with known authData is a log-in, which runs before_login but not
    # after_login; the sign-up that created the user runs neither.
    auth_data = {"anonymous": {"id": secrets.token_hex(8)}}
    username = "cloudlogin_" + secrets.token_hex(5)
    created = api.post("/users", json={"username": username, "authData": auth_data})
    assert created.status_code == 201, created.text
    assert seen(api, username) == []
    again = api.post("/users", json={"authData": auth_data})
    assert again.status_code == 200, again.text
    events = seen(api, username)
    assert [e["trigger"] for e in events] == ["beforeLogin"]
    assert events[0]["authData"] == ["anonymous"] and events[0]["id"] == created.json()["objectId"]
    # A refused authData log-in makes no session.
    blocked_data = {"anonymous": {"id": secrets.token_hex(8)}}
    blocked = "cloudblocked_" + secrets.token_hex(5)
    made = api.post("/users", json={"username": blocked, "authData": blocked_data})
    assert made.status_code == 201, made.text
    assert_error(api.post("/users", json={"authData": blocked_data}), 400, 119, "Access denied, you have been banned.")
    assert sessions_of(master, made.json()["objectId"]) == 1


def test_refused_password_log_in_stores_no_auth_data(api: httpx.Client, master: httpx.Client) -> None:
    # As Parse Server: extra providers of a password log-in are validated, then before_login runs,
    # and only then are they stored.
    username, created = sign_up(api, "cloudblocked_")
    response = api.post("/login", json={"username": username, "password": "pw-" + username,
                                        "authData": {"anonymous": {"id": secrets.token_hex(8)}}})
    assert_error(response, 400, 119, "Access denied, you have been banned.")
    user = master.get(f"/users/{created['objectId']}").json()
    assert "authData" not in user


def test_log_in_as_runs_no_login_trigger(api: httpx.Client, master: httpx.Client) -> None:
    username, created = sign_up(api, "cloudblocked_")
    response = master.post("/loginAs", json={"userId": created["objectId"]})
    assert response.status_code == 200, response.text  # Parse Server runs no hook on /loginAs
    assert seen(api, username) == []


# --- files ----------------------------------------------------------------------------------------


def upload(client: httpx.Client, name: str, data: bytes, content_type: str = "text/plain",
           **headers: str) -> httpx.Response:
    return client.post(f"/files/{name}", content=data, headers={"Content-Type": content_type, **headers})


def sdk_upload(server: Server, name: str, data: bytes, token: str | None = None) -> httpx.Response:
    body = {"base64": base64.b64encode(data).decode(), "_ContentType": "text/plain",
            "fileData": {"metadata": {"owner": "me"}, "tags": {"kind": "note"}},
            "_ApplicationId": server.app_id, "_JavaScriptKey": server.javascript_key}
    if token:
        body["_SessionToken"] = token
    with httpx.Client(timeout=30) as web:
        return web.post(f"{server.url}/files/{name}", content=json.dumps(body),
                        headers={"Content-Type": "text/plain"})


def download(server: Server, name: str) -> bytes:
    with httpx.Client(timeout=30) as web:
        response = web.get(f"{server.url}/files/{server.app_id}/{name}")
    assert response.status_code == 200, response.text
    return response.content


def file_metadata(master: httpx.Client, server: Server, name: str) -> dict[str, Any]:
    response = master.get(f"/files/{server.app_id}/metadata/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_raw_upload_runs_before_and_after_save_file(server: Server, api: httpx.Client,
                                                    master: httpx.Client, as_user: Any) -> None:
    _, user = sign_up(api, "filer_")
    name = f"cloudfile_{secrets.token_hex(4)}.txt"
    response = upload(as_user(user["sessionToken"]), name, b"hello cloud", **{"X-Cloud-Tag": "up"})
    assert response.status_code == 201, response.text
    stored = response.json()["name"]
    assert UNIQUE.match(stored) and stored.endswith("_" + name)
    before, after = seen(api, name)
    # A raw upload streams into the store after the trigger: its bytes are not there yet.
    assert before == {"trigger": "beforeSave", "name": name, "url": None, "contentType": "text/plain",
                      "metadata": {}, "tags": {}, "size": 11, "data": None, "master": False,
                      "user": user["objectId"], "header": "up"}
    assert after["trigger"] == "afterSave" and after["name"] == stored and after["url"] == response.json()["url"]
    assert after["metadata"] == {"checkedBy": "cloud"} and after["tags"] == {"source": "trigger"}
    assert after["size"] == 11
    assert download(server, stored) == b"hello cloud"
    assert file_metadata(master, server, stored) == {"metadata": {"checkedBy": "cloud"}, "tags": {"source": "trigger"}}


def test_sdk_upload_gives_the_bytes_and_the_trigger_may_change_them(server: Server, api: httpx.Client,
                                                                   master: httpx.Client) -> None:
    _, user = sign_up(api, "filer_")
    name = f"cloudfile_upper_{secrets.token_hex(4)}.txt"
    response = sdk_upload(server, name, b"shout this", user["sessionToken"])
    assert response.status_code == 201, response.text
    stored = response.json()["name"]
    before, after = seen(api, name)
    assert before["data"] == "shout this" and before["size"] == 10
    assert before["metadata"] == {"owner": "me"} and before["tags"] == {"kind": "note"}
    assert after["data"] == "SHOUT THIS" and after["size"] == 10
    assert download(server, stored) == b"SHOUT THIS"
    assert file_metadata(master, server, stored) == {"metadata": {"owner": "me", "checkedBy": "cloud"},
                                                     "tags": {"kind": "note", "source": "trigger"}}


def test_stream_mode_upload_passes_header_metadata(master: httpx.Client, api: httpx.Client) -> None:
    name = f"cloudfile_{secrets.token_hex(4)}.txt"
    response = upload(master, name, b"streamed", **{"X-Parse-Upload-Mode": "stream",
                                                    "X-Parse-File-Metadata": '{"a": 1}'})
    assert response.status_code == 201, response.text
    before = seen(api, name)[0]
    assert before["metadata"] == {"a": 1} and before["master"] is True and before["size"] == 8


def test_before_save_file_refuses(server: Server, master: httpx.Client, api: httpx.Client) -> None:
    _, user = sign_up(api, "filer_")
    name = f"cloudfile_refuse_{secrets.token_hex(4)}.txt"
    assert_error(upload(master, name, b"x"), 400, 130, "no files like this one")
    assert [e["trigger"] for e in seen(api, name)] == ["beforeSave"]
    crash = f"cloudfile_crash_{secrets.token_hex(4)}.txt"
    # As Parse Server: the upload's code (130) with the exception's message.
    assert_error(upload(master, crash, b"x"), 400, 130, "a bug in before_save_file")
    refused_sdk = sdk_upload(server, f"cloudfile_refuse_{secrets.token_hex(4)}.txt", b"x", user["sessionToken"])
    assert_error(refused_sdk, 400, 130, "no files like this one")


def test_before_save_file_renames_replaces_or_points_elsewhere(server: Server, master: httpx.Client,
                                                               api: httpx.Client) -> None:
    tag = secrets.token_hex(4)
    renamed = upload(master, f"cloudfile_rename_{tag}.txt", b"r")
    assert renamed.status_code == 201, renamed.text
    assert renamed.json()["name"].endswith(f"_cloudfile_renamed_{tag}.txt")
    assert download(server, renamed.json()["name"]) == b"r"

    replaced = upload(master, f"cloudfile_replace_{tag}.txt", b"the client's bytes")
    assert replaced.status_code == 201, replaced.text
    stored = replaced.json()["name"]
    assert stored.endswith("_cloudfile_replaced.txt")
    assert download(server, stored) == b"replaced by cloud code"
    assert file_metadata(master, server, stored)["metadata"] == {"replaced": True}

    elsewhere = upload(master, f"cloudfile_elsewhere_{tag}.txt", b"not kept")
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json() == {"url": "https://files.example.com/elsewhere.txt", "name": "elsewhere.txt"}
    assert elsewhere.headers["location"] == "https://files.example.com/elsewhere.txt"
    after = seen(api, "elsewhere")[-1]
    assert after["trigger"] == "afterSave" and after["size"] is None


def test_delete_file_triggers(server: Server, master: httpx.Client, api: httpx.Client) -> None:
    name = f"cloudfile_{secrets.token_hex(4)}.txt"
    stored = upload(master, name, b"bye").json()["name"]
    response = master.delete(f"/files/{stored}", headers={"X-Cloud-Tag": "del"})
    assert response.status_code == 200, response.text
    before, after = seen(api, name)[-2:]
    assert before["trigger"] == "beforeDelete" and after["trigger"] == "afterDelete"
    for event in (before, after):
        assert event["name"] == stored and event["master"] is True and event["size"] is None
        assert event["url"] == f"{server.url}/files/{server.app_id}/{stored}" and event["header"] == "del"
    with httpx.Client(timeout=30) as web:
        assert web.get(f"{server.url}/files/{server.app_id}/{stored}").status_code == 404


def test_before_delete_file_refuses_and_missing_files_still_run_it(server: Server, master: httpx.Client,
                                                                    api: httpx.Client) -> None:
    name = f"cloudfile_keep_{secrets.token_hex(4)}.txt"
    stored = upload(master, name, b"kept").json()["name"]
    assert_error(master.delete(f"/files/{stored}"), 400, 153, "this file stays")
    assert download(server, stored) == b"kept"
    missing = f"{secrets.token_hex(16)}_cloudfile_gone.txt"
    assert_error(master.delete(f"/files/{missing}"), 400, 153, "Could not delete file.")
    assert [e["trigger"] for e in seen(api, "cloudfile_gone.txt")][-1:] == ["beforeDelete"]


# --- _User's before_save sees the password (a server of its own) ------------------------------------

PASSWORD_CLOUD = textwrap.dedent('''
    from bastion import cloud


    @cloud.before_save(cloud.User)
    def see_password(request):
        user = request.object
        password = user.get("password")
        user.set("sawPassword", password)
        if password == "weak":
            raise cloud.Error(142, "weak password")
        if password and password.startswith("change-"):
            user.set("password", "changed-" + password)


    SEEN_AFTER_SAVE = []


    @cloud.after_save(cloud.User)
    def after(request):
        # What after_save saw of the password, its hash or any other hidden column.
        SEEN_AFTER_SAVE.extend(key for key in request.object._server
                               if key.startswith("_") or key == "password")
        SEEN_AFTER_SAVE.append("after_save ran")


    @cloud.define("afterSaveSaw")
    def after_save_saw(request):
        return SEEN_AFTER_SAVE


    @cloud.before_save(cloud.Installation)
    def installations_take_triggers(request):
        return None
''')


@pytest.fixture(scope="module")
def pw_server(server: Server, own_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cloud_file = tmp_path_factory.mktemp("pwcloud") / "main.py"
    cloud_file.write_text(PASSWORD_CLOUD)
    with running_server(server.backend, ["--cloud", str(cloud_file)]) as srv:
        yield srv


def test_user_before_save_sees_the_password_which_is_never_stored(pw_server: Server) -> None:
    with pw_server.client() as api, pw_server.client(master=True) as master:
        response = api.post("/users", json={"username": "pat", "password": "secret-1"})
        assert response.status_code == 201, response.text
        user_id, token = response.json()["objectId"], response.json()["sessionToken"]
        stored = master.get(f"/users/{user_id}").json()
        assert "password" not in stored and stored["sawPassword"] == "secret-1"
        # Not a field: no stored user has a "password" value.
        found = master.get("/users", params={"where": json.dumps({"password": {"$exists": True}}), "count": 1})
        assert found.status_code == 200 and found.json()["count"] == 0, found.text
        assert api.post("/login", json={"username": "pat", "password": "secret-1"}).status_code == 200

        assert_error(api.post("/users", json={"username": "weak", "password": "weak"}), 400, 142, "weak password")
        assert_error(api.post("/login", json={"username": "weak", "password": "weak"}), 404, 101)

        # The trigger may change the password: it is hashed after it.
        changed = api.post("/users", json={"username": "chris", "password": "change-me"})
        assert changed.status_code == 201, changed.text
        assert api.post("/login", json={"username": "chris", "password": "changed-change-me"}).status_code == 200
        assert_error(api.post("/login", json={"username": "chris", "password": "change-me"}), 404, 101)

        # An update sees the new password too; other updates see none.
        with pw_server.client(**{"X-Parse-Session-Token": token}) as pat:
            update = pat.put(f"/users/{user_id}", json={"password": "secret-2"})
            assert update.status_code == 200, update.text
            assert master.get(f"/users/{user_id}").json()["sawPassword"] == "secret-2"
        assert api.post("/login", json={"username": "pat", "password": "secret-2"}).status_code == 200
        assert master.put(f"/users/{user_id}", json={"city": "Lyon"}).status_code == 200
        assert "sawPassword" not in master.get(f"/users/{user_id}").json()  # set to None: no password given
        saw = api.post("/functions/afterSaveSaw", json={}).json()["result"]
        assert saw and set(saw) == {"after_save ran"}, saw


def test_session_class_takes_only_after_logout(tmp_path: Path) -> None:
    from bastion.cloud._runtime.loader import CloudLoadError, load_cloud

    bad = tmp_path / "sessions.py"
    bad.write_text("from bastion import cloud\n\n\n@cloud.before_save(cloud.Session)\ndef f(request):\n    pass\n")
    with pytest.raises(CloudLoadError) as error:
        load_cloud(bad)
    assert f"{bad}:4" in str(error.value)
    assert "Only the after_logout trigger is allowed for the _Session class." in str(error.value)
    good = tmp_path / "installations.py"
    good.write_text("from bastion import cloud\n\n\n@cloud.after_save(cloud.Installation)\ndef f(request):\n"
                    "    pass\n\n\n@cloud.before_save(cloud.File)\ndef g(request):\n    pass\n")
    registry = load_cloud(good)
    assert registry.has_trigger("afterSave", "_Installation") and registry.has_trigger("beforeSave", "@File")


def test_find_file_triggers_see_the_download(server: Server, api: httpx.Client, master: httpx.Client) -> None:
    _, user = sign_up(api, "finder_")
    token = user["sessionToken"]
    name = f"cloudfile_find_{secrets.token_hex(4)}.txt"
    stored = upload(master, name, b"read me").json()["name"]
    with httpx.Client(timeout=30) as web:
        response = web.get(f"{server.url}/files/{server.app_id}/{stored}",
                           headers={"X-Parse-Session-Token": token, "X-Parse-Master-Key": server.master_key})
    assert response.status_code == 200 and response.content == b"read me"
    assert response.headers["x-content-type-options"] == "nosniff"
    before, after = [e for e in seen(api, name) if e["trigger"] in ("beforeFind", "afterFind")]
    # The caller is the session's user; downloads read no keys, so the master key counts for nothing.
    assert before == {"trigger": "beforeFind", "name": stored, "url": after["url"], "contentType": "text/plain",
                      "metadata": {}, "tags": {}, "size": None, "data": None, "master": False,
                      "user": user["objectId"], "header": None}
    assert after["data"] == "read me" and after["size"] == 7 and after["user"] == user["objectId"]
    assert after["forceDownload"] is False and after["responseHeaders"] == {"X-Content-Type-Options": "nosniff"}
    # A range streams: the trigger runs without the bytes.
    with httpx.Client(timeout=30) as web:
        ranged = web.get(f"{server.url}/files/{server.app_id}/{stored}", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"read"
    assert seen(api, name)[-1]["data"] is None and seen(api, name)[-1]["user"] is None


def test_find_file_triggers_change_the_answer(server: Server, api: httpx.Client, master: httpx.Client) -> None:
    def get(stored: str) -> httpx.Response:
        with httpx.Client(timeout=30) as web:
            return web.get(f"{server.url}/files/{server.app_id}/{stored}")

    def stored_as(kind: str) -> str:
        return str(upload(master, f"cloudfile_{kind}_{secrets.token_hex(4)}.txt", b"some text").json()["name"])

    forced = get(stored_as("findforce"))
    assert forced.status_code == 200 and forced.content == b"some text"
    assert forced.headers["content-disposition"].startswith("attachment;filename=")
    assert forced.headers["cache-control"] == "private, max-age=60"
    upper = get(stored_as("findupper"))
    assert upper.content == b"SOME TEXT" and upper.headers["content-length"] == "9"
    swapped = get(stored_as("findswap"))
    assert swapped.content == b'{"swapped": true}' and swapped.headers["content-type"].startswith("application/json")
    missing = stored_as("findmissing")
    assert get(missing).status_code == 404  # before_find named a file that is not there
    assert [e["name"] for e in seen(api, missing.split("_", 1)[1])][-1] == missing  # only before_find ran
    assert_error(get(stored_as("findno")), 403, 119, "not yours to read")
    assert_error(get(stored_as("findboom")), 403, 141, "a bug in before_find_file")  # Parse: the exception's message
    assert_error(get(stored_as("findbadheader")), 403, 141)
    framed = get(stored_as("findframing"))
    assert framed.content == b"some text" and framed.headers["content-length"] == "9"
    assert framed.headers["content-type"] == "text/csv"
