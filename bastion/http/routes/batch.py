"""/batch: several requests in one, each answered with ``success`` or ``error``."""

from __future__ import annotations

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
    mount = req.app.settings.mount
    results: list[dict[str, Any]] = []
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not isinstance(item.get("method"), str):
            results.append({"error": {"code": Code.INVALID_JSON, "error": "Invalid batch request."}})
            continue
        path = item["path"]
        if mount and path.startswith(mount + "/"):
            path = path[len(mount):]
        if path.startswith("/batch"):
            results.append({"error": {"code": Code.INVALID_JSON, "error": "Nested batch requests are not allowed."}})
            continue
        response = await req.app.dispatch_internal(req, item["method"].upper(), path, item.get("body"))
        results.append(response)
    return Response(results)


def register(router: Router) -> None:
    router.add("POST", "/batch", batch)
