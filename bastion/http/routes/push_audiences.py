"""/push_audiences: saved push audiences in ``_Audience`` (master key), as Parse Server's
AudiencesRouter: a class route whose ``query`` (stored as JSON text) is answered decoded."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from bastion.core.system_classes import AUDIENCE
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import check_get_options, find_request, list_param, require_master


def _decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """JSON.parse(query), as Parse Server answers it (a query that is no JSON text: an error there)."""
    query = obj.get("query")
    if isinstance(query, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            obj["query"] = orjson.loads(query)
    return obj


async def find(req: RequestContext) -> Response:
    require_master(req)
    result = await req.services.reader.find(AUDIENCE, find_request(req), req.auth, info=req.call_info())
    result["results"] = [_decoded(obj) for obj in result["results"]]
    return Response(result)


async def get(req: RequestContext) -> Response:
    require_master(req)
    check_get_options(req)
    obj = await req.services.reader.get(AUDIENCE, req.path_params["objectId"], req.auth, keys=list_param(req, "keys"),
                                        include=list_param(req, "include"), exclude_keys=list_param(req, "excludeKeys"),
                                        info=req.call_info())
    return Response(_decoded(obj))


async def create(req: RequestContext) -> Response:
    require_master(req)
    result = await req.services.writer.create(AUDIENCE, req.data, req.auth, info=req.call_info())
    location = f"{req.services.settings.public_url}/classes/{AUDIENCE}/{result.object_id}"
    return Response(result.response, status=201, headers=[(b"location", location.encode())])


async def update(req: RequestContext) -> Response:
    require_master(req)
    result = await req.services.writer.update(AUDIENCE, req.path_params["objectId"], req.data, req.auth,
                                              info=req.call_info())
    return Response(result.response)


async def delete(req: RequestContext) -> Response:
    require_master(req)
    await req.services.writer.delete(AUDIENCE, req.path_params["objectId"], req.auth, info=req.call_info())
    return Response({})


def register(router: Router) -> None:
    router.add("GET", "/push_audiences", find)
    router.add("GET", "/push_audiences/:objectId", get)
    router.add("POST", "/push_audiences", create)
    router.add("PUT", "/push_audiences/:objectId", update)
    router.add("DELETE", "/push_audiences/:objectId", delete)
