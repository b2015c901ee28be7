"""/batch: several requests in one, each answered with ``success`` or ``error``; with
``transaction: true``, all of them or none."""

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
    # Parse Server's requestComplexity.batchRequestLimit: -1 turns it off, the master key is exempt.
    limit = req.services.settings.max_batch_requests
    if -1 < limit < len(requests) and not req.auth.is_master:
        raise ParseError(Code.INVALID_JSON, f"Batch request contains {len(requests)} sub-requests, "
                                            f"which exceeds the limit of {limit}.")
    # As Parse Server does, every sub-request is checked before any runs: a path outside the mount
    # path, a nested batch or a route that does not exist fails the whole batch with 400.
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ParseError(Code.INVALID_JSON, "batch request path must be a string")
    planned: list[tuple[str, str, Any]] = []
    for item in requests:
        path = _routable_path(req.services.settings.mount, item["path"])
        raw_method = item.get("method")
        if (raw_method.upper() if isinstance(raw_method, str) else "GET") == "POST" and path == "/batch":
            raise ParseError(Code.INVALID_JSON, "nested batch requests are not allowed")
        # The method is matched as given, as Parse Server does ("post" does not route).
        method = raw_method if isinstance(raw_method, str) else "undefined"
        if not req.api.router.match(method, path):
            raise ParseError(Code.INVALID_JSON, f"cannot route {method[:20]} {path[:200]}")
        body = item.get("body")
        if isinstance(body, list) and not body:
            body = {}  # PHP encodes an empty object as [] (Parse Server reads it as one with no keys)
        planned.append((method, path, body))
    if req.data.get("transaction") is True:
        return await _in_transaction(req, planned)
    # Run one after another (Parse Server starts them all at once, so their order is not defined there).
    results: list[dict[str, Any]] = []
    for method, path, body in planned:
        results.append(await req.api.dispatch_internal(req, method, path, body))
    return Response(results)


class _RolledBack(Exception):
    """A request of a transactional batch failed: everything it did is undone."""


async def _in_transaction(req: RequestContext, planned: list[tuple[str, str, Any]]) -> Response:
    """All or nothing: the requests share one database transaction (and a private view of schema
    changes), committed only when every one succeeds."""
    results: list[dict[str, Any]] = []
    try:
        # LiveQuery events of the writes go out after the commit (and never after a rollback); other
        # processes are told of changed roles and sessions after it too (else they could re-read
        # and keep the old ones).
        async with req.services.invalidation.deferred(), req.services.livequery.deferred(), \
                req.services.schemas.transaction(), req.services.storage.transaction():
            for method, path, body in planned:
                result = await req.api.dispatch_internal(req, method, path, body)
                if "error" in result:
                    raise _RolledBack  # the rest would be rolled back too: Parse Server's answer is the same
                results.append(result)
    except _RolledBack:
        # Parse Server 9 rejects the batch with its results, which its error handler does not know:
        # the answer is a bare 500 (the JS SDK retries it, then reports "Internal server error.").
        return Response({"code": Code.INTERNAL_SERVER_ERROR, "message": "Internal server error."}, status=500)
    return Response(results)


def _routable_path(mount: str, path: str) -> str:
    """The path below the mount path, normalised; 107 when it is not below it."""
    if path[:len(mount)] != mount:
        raise ParseError(Code.INVALID_JSON, f"cannot route batch path {path}")
    return posixpath.normpath("/" + path[len(mount):].lstrip("/")) if path[len(mount):] else "/"


def register(router: Router) -> None:
    router.add("POST", "/batch", batch)
