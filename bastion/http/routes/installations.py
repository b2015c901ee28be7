"""/installations, and /classes/_Installation as Parse Server routes it (same rules on both).

Clients may create, get and update installations (their ACLs apply); finding and deleting them
takes the master key. A create that matches an existing installation updates it (200).
"""

from __future__ import annotations

from bastion.domain.installations import INSTALLATION_CLASS
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes


async def find(req: RequestContext) -> Response:
    req.services.installations.check_find(req.auth)
    req.path_params = {"className": INSTALLATION_CLASS}
    return await classes.find(req)


async def get(req: RequestContext) -> Response:
    req.path_params = {"className": INSTALLATION_CLASS, "objectId": req.path_params["objectId"]}
    return await classes.get(req)


async def create(req: RequestContext) -> Response:
    result = await req.services.installations.save(req.data, req.auth, info=req.call_info())
    if not result.created:
        return Response(result.response)
    # Parse Server's Location names the class route, whichever route created the object.
    location = f"{req.services.settings.public_url}/classes/{INSTALLATION_CLASS}/{result.object_id}"
    return Response(result.response, status=201, headers=[(b"location", location.encode())])


async def update(req: RequestContext) -> Response:
    result = await req.services.installations.save(req.data, req.auth, req.path_params["objectId"], req.call_info())
    return Response(result.response)


async def delete(req: RequestContext) -> Response:
    await req.services.installations.delete(req.path_params["objectId"], req.auth, req.call_info())
    return Response({})


def register(router: Router) -> None:
    for prefix in ("/installations", f"/classes/{INSTALLATION_CLASS}"):
        router.add("GET", prefix, find)
        router.add("POST", prefix, create, idempotent=True)
        router.add("GET", f"{prefix}/:objectId", get)
        router.add("PUT", f"{prefix}/:objectId", update, idempotent=True)
        router.add("DELETE", f"{prefix}/:objectId", delete)
