"""/health: answers once the server is ready, without keys."""

from __future__ import annotations

from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router


async def health(req: RequestContext) -> Response:
    return Response({"status": "ok"})


def register(router: Router) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):  # Parse Server answers any method here
        router.add(method, "/health", health, public=True)
