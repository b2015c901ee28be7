"""Routes Parse Server 9 has and Bastion does not serve: a Parse error that says so, not a 404 page.

Each answers 108 (Parse's "command unavailable") after the same key check as every route, so a
client learns what is missing and why instead of guessing from a missing route.
"""

from __future__ import annotations

from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Handler, Router

# (method, path, why) for each Parse Server 9 route Bastion leaves out.
UNAVAILABLE: tuple[tuple[str, str, str], ...] = (
    ("GET", "/security", "Bastion has no security check report (Parse Server's security.enableCheck)"),
    ("POST", "/validate_purchase", "Bastion does not validate in-app purchases"),
    ("GET", "/graphql-config", "Bastion does not serve Parse's GraphQL API yet"),
    ("PUT", "/graphql-config", "Bastion does not serve Parse's GraphQL API yet"),
)


def _unavailable(method: str, path: str, why: str) -> Handler:
    async def handler(req: RequestContext) -> Response:
        raise ParseError(Code.COMMAND_UNAVAILABLE, f"{method} {path} is not available: {why}.")

    return handler


def register(router: Router) -> None:
    for method, path, why in UNAVAILABLE:
        router.add(method, path, _unavailable(method, path, why))
