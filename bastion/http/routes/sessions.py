"""/sessions, /sessions/me and /upgradeToRevocableSession (and /classes/_Session as Parse routes it).

Sessions are ``_Session`` objects that only their user may read or write (their ACL); clients
reach them only with a session token, and never set the fields the server owns.
"""

from __future__ import annotations

from datetime import timedelta

from bastion.core.types import format_iso, now_ms
from bastion.domain.sessions import SESSION_CLASS, new_token
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes


def _require_user(req: RequestContext) -> None:
    if not req.auth.is_master and not req.auth.user_id:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Permission denied")  # sanitized, as Parse Server 9


async def me(req: RequestContext) -> Response:
    token = req.keys.session_token if req.keys else None
    if not token:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Session token required.")
    session = await req.services.sessions.resolve(token)
    if session is None:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Session token not found.")
    req.path_params = {"className": SESSION_CLASS, "objectId": session.object_id}
    return await classes.get(req)


async def find(req: RequestContext) -> Response:
    _require_user(req)
    req.path_params = {"className": SESSION_CLASS}
    return await classes.find(req)


async def get(req: RequestContext) -> Response:
    _require_user(req)
    req.path_params = {"className": SESSION_CLASS, "objectId": req.path_params["objectId"]}
    return await classes.get(req)


async def create(req: RequestContext) -> Response:
    """A client with a session may open another one for itself (``createdWith: create``)."""
    if not req.auth.is_master and not req.auth.user_id:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Session token required.")
    if "ACL" in req.data:
        raise ParseError(Code.INVALID_KEY_NAME, "Cannot set ACL on a Session.")
    if req.auth.is_master:
        req.path_params = {"className": SESSION_CLASS}
        return await classes.create(req)
    user_id = req.auth.user_id
    assert user_id is not None
    extra = {k: v for k, v in req.data.items()
             if k not in ("objectId", "user", "sessionToken", "expiresAt", "createdWith")}
    token = new_token()
    expires = now_ms() + timedelta(seconds=req.services.sessions.session_length)
    body = {**extra, "user": {"__type": "Pointer", "className": "_User", "objectId": user_id},
            "sessionToken": token, "createdWith": {"action": "create"},
            "expiresAt": {"__type": "Date", "iso": format_iso(expires)},
            "ACL": {user_id: {"read": True, "write": True}}}
    result = await req.services.writer.create(SESSION_CLASS, body, req.auth, trusted=True)
    answer = {k: v for k, v in body.items() if k != "ACL"}
    answer["objectId"] = result.object_id
    location = f"{req.services.settings.public_url}/sessions/{result.object_id}"
    return Response(answer, status=201, headers=[(b"location", location.encode())])


async def update(req: RequestContext) -> Response:
    _require_user(req)
    if "ACL" in req.data:
        raise ParseError(Code.INVALID_KEY_NAME, "Cannot set ACL on a Session.")
    data = req.data
    if "user" in data and not req.auth.is_master and (
            not isinstance(data["user"], dict) or data["user"].get("objectId") != req.auth.user_id):
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid key name: user")
    for key in ("installationId", "sessionToken"):
        if key in data:
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key}")
    for key in ("expiresAt", "createdWith"):
        if key in data and not req.auth.is_master:
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key}")
    result = await req.services.writer.update(SESSION_CLASS, req.path_params["objectId"], req.data, req.auth, trusted=True)
    req.services.sessions.forget()
    return Response(result.response)


async def delete(req: RequestContext) -> Response:
    _require_user(req)
    await req.services.writer.delete(SESSION_CLASS, req.path_params["objectId"], req.auth, trusted=True)
    req.services.sessions.forget()
    return Response({})


async def upgrade(req: RequestContext) -> Response:
    return Response(await req.services.users.upgrade_session(req.auth))


def register(router: Router) -> None:
    for prefix in ("/sessions", "/classes/_Session"):
        # As Parse Server: /classes/_Session writes take part in idempotency, /sessions ones do not.
        idempotent = prefix.startswith("/classes/")
        router.add("GET", f"{prefix}/me", me)
        router.add("GET", prefix, find)
        router.add("POST", prefix, create, idempotent=idempotent)
        router.add("GET", f"{prefix}/:objectId", get)
        router.add("PUT", f"{prefix}/:objectId", update, idempotent=idempotent)
        router.add("DELETE", f"{prefix}/:objectId", delete)
    router.add("POST", "/upgradeToRevocableSession", upgrade)
