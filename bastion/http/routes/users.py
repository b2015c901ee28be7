"""/users, /login, /logout, /users/me, /verifyPassword, /loginAs, and /classes/_User as Parse routes it."""

from __future__ import annotations

from typing import Any

from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes

USER_CLASS = "_User"


def _credentials(req: RequestContext) -> dict[str, Any]:
    """Username, email and password from the body, or from the URL when the body lacks them (GET)."""
    body = req.data
    if (not body.get("username") and req.query.get("username")) or (not body.get("email") and req.query.get("email")):
        return dict(req.query)
    return body


async def sign_up(req: RequestContext) -> Response:
    auth_data = req.services.users.auth_data
    if auth_data is not None and isinstance(req.data, dict) and "authData" in req.data:
        # Sign-up (201) or log-in (200) with a provider.
        result = await auth_data.sign_up(req.data, req.auth, req.call_info())
        response, object_id, status = result.response, result.object_id, 201 if result.created else 200
    else:
        (response, object_id), status = await req.services.users.sign_up(req.data, req.auth, info=req.call_info()), 201
    location = f"{req.services.settings.public_url}/users/{object_id}"
    return Response(response, status=status, headers=[(b"location", location.encode())])


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
    req.path_params = {"className": USER_CLASS}
    return await classes.find(req)


async def get(req: RequestContext) -> Response:
    req.path_params = {"className": USER_CLASS, "objectId": req.path_params["objectId"]}
    return await classes.get(req)


async def update(req: RequestContext) -> Response:
    return Response(await req.services.users.update(req.path_params["objectId"], req.data, req.auth, req.call_info()))


async def delete(req: RequestContext) -> Response:
    await req.services.users.delete(req.path_params["objectId"], req.auth, req.call_info())
    return Response({})


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
