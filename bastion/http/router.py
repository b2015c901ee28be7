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


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, public: bool = False) -> None:
        regex = "^" + _PARAM.sub(r"(?P<\1>[^/]+)", path) + "$"
        self.routes.append(Route(method, re.compile(regex), handler, public))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
        """The route and its path parameters; False when the path exists with another method."""
        path_matched = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            path_matched = True
        return False if path_matched else None
