"""/classes: create, read, update, delete and query objects."""

from __future__ import annotations

from bastion.core.query.relation_parse import js_truthy
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import check_get_options, find_request, list_param


async def find(req: RequestContext) -> Response:
    class_name = req.path_params["className"]
    redirect_key = req.param("redirectClassNameForKey")
    if not js_truthy(redirect_key):
        result = await req.services.reader.find(class_name, find_request(req), req.auth, raw=True,
                                                info=req.call_info())
        return Response(result)
    # The SDK's relation.query() when it does not know the relation's class: the query runs on the
    # relation's target class, and every object says which class it is, as Parse Server answers.
    class_name = req.services.reader.redirect_class_name(class_name, redirect_key)
    result = await req.services.reader.find(class_name, find_request(req), req.auth, info=req.call_info())
    for obj in result["results"]:
        obj["className"] = class_name
    return Response(result)


async def get(req: RequestContext) -> Response:
    p = req.path_params
    check_get_options(req)
    obj = await req.services.reader.get(p["className"], p["objectId"], req.auth, keys=list_param(req, "keys"),
                                        include=list_param(req, "include"), exclude_keys=list_param(req, "excludeKeys"),
                                        raw=True, info=req.call_info())
    return Response(obj)


async def create(req: RequestContext) -> Response:
    class_name = req.path_params["className"]
    result = await req.services.writer.create(class_name, req.data, req.auth, info=req.call_info())
    location = f"{req.services.settings.public_url}/classes/{class_name}/{result.object_id}"
    return Response(result.response, status=201, headers=[(b"location", location.encode())])


async def update(req: RequestContext) -> Response:
    p = req.path_params
    result = await req.services.writer.update(p["className"], p["objectId"], req.data, req.auth,
                                              info=req.call_info())
    return Response(result.response)


async def delete(req: RequestContext) -> Response:
    p = req.path_params
    await req.services.writer.delete(p["className"], p["objectId"], req.auth, info=req.call_info())
    return Response({})


def register(router: Router) -> None:
    router.add("GET", "/classes/:className", find)
    router.add("POST", "/classes/:className", create, idempotent=True)
    router.add("GET", "/classes/:className/:objectId", get)
    router.add("PUT", "/classes/:className/:objectId", update, idempotent=True)
    router.add("DELETE", "/classes/:className/:objectId", delete)
