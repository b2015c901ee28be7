"""/installations, and /classes/_Installation as Parse Server routes it (same rules on both).

Clients may create, get and update installations (their ACLs apply); finding and deleting them
takes the master key. A create that matches an existing installation updates it (200). The rules
are the installations object service's (``Objects.for_class``, through the /classes handlers).
"""

from __future__ import annotations

from bastion.core.system_classes import INSTALLATION
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes


async def find(req: RequestContext) -> Response:
    req.services.installations.check_find(req.auth)  # before the query options are read
    req.path_params = {"className": INSTALLATION}
    return await classes.find(req)


async def get(req: RequestContext) -> Response:
    req.path_params = {"className": INSTALLATION, "objectId": req.path_params["objectId"]}
    return await classes.get(req)


async def create(req: RequestContext) -> Response:
    # Parse Server's Location names the class route, whichever route created the object.
    req.path_params = {"className": INSTALLATION}
    return await classes.create(req)


async def update(req: RequestContext) -> Response:
    req.path_params = {"className": INSTALLATION, "objectId": req.path_params["objectId"]}
    return await classes.update(req)


async def delete(req: RequestContext) -> Response:
    req.path_params = {"className": INSTALLATION, "objectId": req.path_params["objectId"]}
    return await classes.delete(req)


def register(router: Router) -> None:
    for prefix in ("/installations", f"/classes/{INSTALLATION}"):
        router.add("GET", prefix, find)
        router.add("POST", prefix, create, idempotent=True)
        router.add("GET", f"{prefix}/:objectId", get)
        router.add("PUT", f"{prefix}/:objectId", update, idempotent=True)
        router.add("DELETE", f"{prefix}/:objectId", delete)
