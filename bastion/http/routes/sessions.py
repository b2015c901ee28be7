"""/sessions, /sessions/me and /upgradeToRevocableSession (and /classes/_Session as Parse routes it).

The rules of sessions are the sessions object service's (``domain/session_objects.py``); these
handlers read the request and answer. Its checks of the caller also run here first, before the
body or the query options are read, so that a request without a session is refused first.
"""

from __future__ import annotations

from bastion.core.system_classes import SESSION
from bastion.domain.session_objects import require_session, require_user
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes


async def me(req: RequestContext) -> Response:
    token = req.keys.session_token if req.keys else None
    if not token:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Session token required.")
    session = await req.services.sessions.resolve(token)
    if session is None:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Session token not found.")
    req.path_params = {"className": SESSION, "objectId": session.object_id}
    return await classes.get(req)


async def find(req: RequestContext) -> Response:
    require_user(req.auth)
    req.path_params = {"className": SESSION}
    return await classes.find(req)


async def get(req: RequestContext) -> Response:
    require_user(req.auth)
    req.path_params = {"className": SESSION, "objectId": req.path_params["objectId"]}
    return await classes.get(req)


async def create(req: RequestContext) -> Response:
    """A client with a session may open another one for itself (``createdWith: create``)."""
    require_session(req.auth)
    saved = await req.services.objects.for_class(SESSION).create(req.data, req.auth, req.call_info())
    # The master key's sessions are plain objects, located as /classes answers them.
    path = f"classes/{SESSION}" if req.auth.is_master else "sessions"
    location = f"{req.services.settings.public_url}/{path}/{saved.object_id}"
    return Response(saved.response, status=201, headers=[(b"location", location.encode())])


async def update(req: RequestContext) -> Response:
    require_user(req.auth)
    sessions = req.services.objects.for_class(SESSION)
    return Response(await sessions.update(req.path_params["objectId"], req.data, req.auth, req.call_info()))


async def delete(req: RequestContext) -> Response:
    require_user(req.auth)
    await req.services.objects.for_class(SESSION).delete(req.path_params["objectId"], req.auth, req.call_info())
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
