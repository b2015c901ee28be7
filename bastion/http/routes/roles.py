"""/roles and /roles/:objectId: the _Role class under Parse Server's own path (its RolesRouter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bastion.core.system_classes import ROLE
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes import classes


def _as_role(handler: Callable[[RequestContext], Awaitable[Response]]) -> Callable[[RequestContext], Awaitable[Response]]:
    async def run(req: RequestContext) -> Response:
        req.path_params = {**req.path_params, "className": ROLE}
        return await handler(req)

    return run


def register(router: Router) -> None:
    router.add("GET", "/roles", _as_role(classes.find))
    router.add("POST", "/roles", _as_role(classes.create))
    router.add("GET", "/roles/:objectId", _as_role(classes.get))
    router.add("PUT", "/roles/:objectId", _as_role(classes.update))
    router.add("DELETE", "/roles/:objectId", _as_role(classes.delete))
