"""Login, logout and file triggers used by tests/api/test_cloud_users_files.py.

Login and file triggers apply to every user and upload of the shared test server, so these act
only on usernames starting with ``cloudlogin_`` / ``cloudblocked_`` and on files named
``cloudfile_*``; what they saw is kept here and read back with the ``cloudUserFilesSeen`` function.
"""

from __future__ import annotations

from typing import Any

from bastion import cloud

SEEN: dict[str, list[dict[str, Any]]] = {}


def _record(key: str, event: dict[str, Any]) -> None:
    SEEN.setdefault(key, []).append(event)
    del SEEN[key][:-20]


def _watched(username: Any) -> bool:
    return isinstance(username, str) and username.startswith(("cloudlogin_", "cloudblocked_"))


@cloud.define("cloudUserFilesSeen")
def seen(request: cloud.Request) -> list[dict[str, Any]]:
    return SEEN.get(str(request.params.get("key")), [])


# --- log-in and log-out ---------------------------------------------------------------------------


@cloud.before_login
def before_login(request: cloud.Request) -> None:
    user = request.object
    name = user.get("username")
    if not _watched(name):
        return
    _record(name, {"trigger": request.trigger_name, "className": user.class_name, "id": user.id,
                   "email": user.get("email"), "hasSessionToken": bool(user.get_session_token()),
                   "hasPassword": user.get("password") is not None, "requestUser": request.user is not None,
                   "master": request.master, "header": request.headers.get("x-cloud-tag"),
                   "ip": request.ip, "context": dict(request.context), "authData": sorted(user.get("authData") or {})})
    user.set("changedByTrigger", True)  # ignored, as in Parse Server
    if name.startswith("cloudblocked_crash"):
        raise RuntimeError("a bug in before_login")
    if name.startswith("cloudblocked_"):
        raise cloud.Error(cloud.Error.OPERATION_FORBIDDEN, "Access denied, you have been banned.")


@cloud.after_login
def after_login(request: cloud.Request) -> None:
    user = request.object
    name = user.get("username")
    if not _watched(name):
        return
    _record(name, {"trigger": request.trigger_name, "id": user.id, "sessionToken": user.get_session_token(),
                   "sameUser": request.user is user, "header": request.headers.get("x-cloud-tag")})


@cloud.after_logout
def after_logout(request: cloud.Request) -> None:
    session = request.object
    name = request.user.get("username") if request.user is not None else None
    if not _watched(name):
        return
    user = session.get("user")
    _record(name, {"trigger": request.trigger_name, "className": session.class_name,
                   "sessionToken": session.get("sessionToken"), "sessionId": session.id,
                   "sessionUser": user.id if isinstance(user, cloud.Object) else None,
                   "requestUser": request.user.id, "header": request.headers.get("x-cloud-tag")})


# --- files ----------------------------------------------------------------------------------------


def _file_event(request: cloud.Request) -> dict[str, Any]:
    file = request.file
    return {"trigger": request.trigger_name, "name": file.name, "url": file.url,
            "contentType": file.content_type, "metadata": dict(file.metadata), "tags": dict(file.tags),
            "size": request.file_size, "data": file.data.decode("latin-1") if file.data is not None else None,
            "master": request.master, "user": request.user.id if request.user else None,
            "header": request.headers.get("x-cloud-tag")}


def _file_key(name: str) -> str | None:
    """The key events of a file are kept under: its name as the client gave it (a stored name has
    a 32-hex prefix and an underscore before it)."""
    base = name.split("_", 1)[1] if len(name) > 33 and name[32] == "_" else name
    return base if base.startswith("cloudfile_") else None


@cloud.before_save_file
def before_save_file(request: cloud.Request) -> Any:
    file = request.file
    key = _file_key(file.name)
    if key is None:
        return None
    _record(key, _file_event(request))
    if "refuse" in file.name:
        raise cloud.Error(cloud.Error.FILE_SAVE_ERROR, "no files like this one")
    if "crash" in file.name:
        raise RuntimeError("a bug in before_save_file")
    file.add_metadata("checkedBy", "cloud")
    file.add_tag("source", "trigger")
    if "rename" in file.name:
        file.name = file.name.replace("rename", "renamed")
    if "upper" in file.name and file.data is not None:
        file.data = file.data.upper()
    if "replace" in file.name:
        return cloud.File("cloudfile_replaced.txt", b"replaced by cloud code", "text/plain",
                          metadata={"replaced": True})
    if "elsewhere" in file.name:
        return cloud.File("elsewhere.txt", url="https://files.example.com/elsewhere.txt")
    return None


@cloud.after_save_file
def after_save_file(request: cloud.Request) -> None:
    key = _file_key(request.file.name)
    if key is not None:
        _record(key, _file_event(request))
    elif request.file.name == "elsewhere.txt":
        _record("elsewhere", _file_event(request))


@cloud.before_delete_file
def before_delete_file(request: cloud.Request) -> None:
    key = _file_key(request.file.name)
    if key is None:
        return
    _record(key, _file_event(request))
    if "keep" in request.file.name:
        raise cloud.Error(cloud.Error.FILE_DELETE_ERROR, "this file stays")


@cloud.after_delete_file
def after_delete_file(request: cloud.Request) -> None:
    key = _file_key(request.file.name)
    if key is not None:
        _record(key, _file_event(request))


@cloud.before_find_file
def before_find_file(request: cloud.Request) -> Any:
    key = _file_key(request.file.name)
    if key is None or "_find" not in key:
        return None
    _record(key, _file_event(request))
    if "findno" in key:
        raise cloud.Error(cloud.Error.OPERATION_FORBIDDEN, "not yours to read")
    if "findboom" in key:
        raise RuntimeError("a bug in before_find_file")
    if "findmissing" in key:
        return cloud.File(request.file.name.replace("findmissing", "nothing_here"))
    return None


@cloud.after_find(cloud.File)
def after_find_file(request: cloud.Request) -> Any:
    key = _file_key(request.file.name)
    if key is None or "_find" not in key:
        return None
    _record(key, _file_event(request) | {"forceDownload": request.force_download,
                                         "responseHeaders": dict(request.response_headers)})
    if "findforce" in key:
        request.force_download = True
        request.response_headers["Cache-Control"] = "private, max-age=60"
    if "findupper" in key and request.file.data is not None:
        request.file.data = request.file.data.upper()
    if "findswap" in key:
        return cloud.File("swapped.json", b'{"swapped": true}')
    if "findbadheader" in key:
        request.response_headers["Bad Name"] = "x"
    if "findframing" in key:  # framing stays the server's; a content type is taken
        request.response_headers.update({"Content-Length": "1", "Content-Type": "text/csv"})
    return None
