"""/batch: several requests in one, each answered with ``success`` or ``error``."""

from __future__ import annotations

import posixpath
from typing import Any

from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router


async def batch(req: RequestContext) -> Response:
    requests = req.data.get("requests")
    if not isinstance(requests, list):
        raise ParseError(Code.INVALID_JSON, "requests must be an array")
    limit = req.app.settings.max_batch_requests
    if len(requests) > limit:
        raise ParseError(Code.INVALID_JSON, f"Batch request count exceeds the limit of {limit}.")
    if req.data.get("transaction"):
        raise ParseError(Code.COMMAND_UNAVAILABLE, "Transactional batches are not supported yet.")
    # As Parse Server does, every sub-request is checked before any runs: a path outside the mount
    # path, a nested batch or a route that does not exist fails the whole batch with 400.
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ParseError(Code.INVALID_JSON, "batch request path must be a string")
    planned: list[tuple[str, str, Any]] = []
    for item in requests:
        path = _routable_path(req.app.settings.mount, item["path"])
        raw_method = item.get("method")
        if (raw_method.upper() if isinstance(raw_method, str) else "GET") == "POST" and path == "/batch":
            raise ParseError(Code.INVALID_JSON, "nested batch requests are not allowed")
        # The method is matched as given, as Parse Server does ("post" does not route).
        method = raw_method if isinstance(raw_method, str) else "undefined"
        if not req.app.router.match(method, path):
            raise ParseError(Code.INVALID_JSON, f"cannot route {method[:20]} {path[:200]}")
        planned.append((method, path, item.get("body")))
    # Run one after another (Parse Server starts them all at once, so their order is not defined there).
    results: list[dict[str, Any]] = []
    for method, path, body in planned:
        results.append(await req.app.dispatch_internal(req, method, path, body))
    return Response(results)


def _routable_path(mount: str, path: str) -> str:
    """The path below the mount path, normalised; 107 when it is not below it."""
    if path[:len(mount)] != mount:
        raise ParseError(Code.INVALID_JSON, f"cannot route batch path {path}")
    return posixpath.normpath("/" + path[len(mount):].lstrip("/")) if path[len(mount):] else "/"


def register(router: Router) -> None:
    router.add("POST", "/batch", batch)
