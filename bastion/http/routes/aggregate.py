"""/aggregate: ``distinct`` for now (pipelines arrive with the aggregate issue)."""

from __future__ import annotations

from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import json_param, require_master


async def aggregate(req: RequestContext) -> Response:
    require_master(req)
    class_name = req.path_params["className"]
    distinct = req.param("distinct")
    where = json_param(req, "where")
    if where is not None and not isinstance(where, dict):
        raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
    if distinct is None:
        raise ParseError(Code.COMMAND_UNAVAILABLE, "Aggregation pipelines are not supported yet; use distinct.")
    if not isinstance(distinct, str) or not distinct:
        raise ParseError(Code.INVALID_QUERY, "Invalid distinct value.")
    values = await req.app.reader.distinct(class_name, distinct, where, req.auth)
    return Response({"results": values})


def register(router: Router) -> None:
    router.add("GET", "/aggregate/:className", aggregate)
