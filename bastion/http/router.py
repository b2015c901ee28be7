"""A small router: method and path pattern to an async handler, matched after the mount path."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bastion.http.context import RequestContext
from bastion.http.responses import Response

Handler = Callable[[RequestContext], Awaitable[Response]]
_PARAM = re.compile(r":([A-Za-z_]+)")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    public: bool = False  # answered without keys (health)
    # The handler reads the request body itself from ``req.receive`` (file uploads stream it).
    streams_body: bool = False
    # Takes part in --idempotency-paths (where Parse's routers place promiseEnsureIdempotency).
    idempotent: bool = False
    # Sign-up and log-in: an invalid session token sent along is ignored, not refused (209).
    new_identity: bool = False


class Router:
    """Routes are tried in the order they were added, among those whose first path segment is the
    request's (so a request tests a handful of patterns, not every route)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._by_segment: dict[str, list[Route]] = {}

    def add(self, method: str, path: str, handler: Handler, public: bool = False, streams_body: bool = False,
            idempotent: bool = False, new_identity: bool = False) -> None:
        regex = "^" + _PARAM.sub(r"(?P<\1>[^/]+)", path) + "$"
        route = Route(method, re.compile(regex), handler, public, streams_body, idempotent, new_identity)
        self.routes.append(route)
        first = _first_segment(path)
        if first.startswith(":"):
            raise ValueError(f"a route must start with a literal segment: {path}")
        self._by_segment.setdefault(first, []).append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
        """The route and its path parameters; False when the path exists with another method.

        One trailing slash means the same route (Express's non-strict routing, which Parse Server
        uses: the JS SDK asks for ``/schemas/``)."""
        if len(path) > 1 and path[-1] == "/" and path[-2] != "/":
            path = path[:-1]
        candidates = self._by_segment.get(_first_segment(path), ())
        for route in candidates:
            if route.method == method:
                found = route.pattern.match(path)
                if found is not None:
                    return route, found.groupdict()
        if any(route.pattern.match(path) for route in candidates):
            return False
        return None


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") and len(path) > 1 else path
