"""/users, /login, /logout, /users/me, /verifyPassword, /loginAs, and /classes/_User as Parse routes it."""

from __future__ import annotations

from typing import Any

from bastion.core.system_classes import USER
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes


def _credentials(req: RequestContext) -> dict[str, Any]:
    """Username, email and password from the body, or from the URL when the body lacks them (GET)."""
    body = req.data
    if (not body.get("username") and req.query.get("username")) or (not body.get("email") and req.query.get("email")):
        return dict(req.query)
    return body


async def sign_up(req: RequestContext) -> Response:
    # With a password, or with a provider's authData: a sign-up (201) or a log-in (200).
    saved = await req.services.objects.for_class(USER).create(req.data, req.auth, req.call_info())
    location = f"{req.services.settings.public_url}/users/{saved.object_id}"
    return Response(saved.response, status=201 if saved.created else 200, headers=[(b"location", location.encode())])


async def log_in(req: RequestContext) -> Response:
    return Response(await req.services.users.log_in(_credentials(req), req.auth, req.call_info()))


async def verify_password(req: RequestContext) -> Response:
    return Response(await req.services.users.verify_password(_credentials(req), req.auth))


async def log_in_as(req: RequestContext) -> Response:
    user_id = req.data.get("userId") or req.query.get("userId")
    return Response(await req.services.users.log_in_as(user_id, req.auth))


async def log_out(req: RequestContext) -> Response:
    await req.services.users.log_out(req.keys.session_token if req.keys else None, req.auth, req.call_info())
    return Response({})


async def me(req: RequestContext) -> Response:
    return Response(await req.services.users.me(req.keys.session_token if req.keys else None))


async def find(req: RequestContext) -> Response:
    req.path_params = {"className": USER}
    return await classes.find(req)


async def get(req: RequestContext) -> Response:
    req.path_params = {"className": USER, "objectId": req.path_params["objectId"]}
    return await classes.get(req)


async def update(req: RequestContext) -> Response:
    users = req.services.objects.for_class(USER)
    return Response(await users.update(req.path_params["objectId"], req.data, req.auth, req.call_info()))


async def delete(req: RequestContext) -> Response:
    await req.services.objects.for_class(USER).delete(req.path_params["objectId"], req.auth, req.call_info())
    return Response({})


async def challenge(req: RequestContext) -> Response:
    auth_data = req.services.users.auth_data
    if auth_data is None:
        raise ParseError(Code.OTHER_CAUSE, "Nothing to challenge.")
    return Response(await auth_data.challenge(req.data, req.auth, req.call_info()))


def register(router: Router) -> None:
    for prefix in ("/users", "/classes/_User"):
        router.add("GET", prefix, find)
        router.add("POST", prefix, sign_up, idempotent=True, new_identity=True)
        router.add("GET", f"{prefix}/me", me)
        router.add("GET", f"{prefix}/:objectId", get)
        router.add("PUT", f"{prefix}/:objectId", update, idempotent=True)
        router.add("DELETE", f"{prefix}/:objectId", delete)
    router.add("GET", "/login", log_in, new_identity=True)
    router.add("POST", "/login", log_in, new_identity=True)
    router.add("POST", "/logout", log_out)
    router.add("GET", "/verifyPassword", verify_password)
    router.add("POST", "/verifyPassword", verify_password)
    router.add("POST", "/loginAs", log_in_as)
    router.add("POST", "/challenge", challenge)
