"""/aggregate: ``distinct``, or a ``pipeline`` of stages (``core/aggregate.py``)."""

from __future__ import annotations

from typing import Any

from bastion.core.aggregate import NOT_STAGES
from bastion.domain.aggregate_results import run_pipeline
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
        services = req.services
        results = await run_pipeline(services.storage, services.schemas, class_name, _pipeline(req), where,
                                     req.auth, services.file_url, services.reader.options.query_limits)
        return Response({"results": results})
    if not isinstance(distinct, str) or not distinct:
        raise ParseError(Code.INVALID_QUERY, "Invalid distinct value.")
    values = await req.services.reader.distinct(class_name, distinct, where, req.auth)
    return Response({"results": values})


def _pipeline(req: RequestContext) -> Any:
    """``pipeline`` (an array or an object of stages), or, as Parse Server reads it, the options
    themselves: ``?$group={...}&$limit=2``."""
    pipeline = json_param(req, "pipeline")
    if pipeline is not None:
        return pipeline
    names = list(req.body) if isinstance(req.body, dict) else []
    names += [name for name in req.query if name not in names]  # in the order they were sent
    return {name: json_param(req, name) for name in names if name not in NOT_STAGES}


def register(router: Router) -> None:
    router.add("GET", "/aggregate/:className", aggregate)
