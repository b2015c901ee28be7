"""/classes: create, read, update, delete and query objects (through the class's object service:
``Objects.for_class``, its owner's for the system classes that have one)."""

from __future__ import annotations

from bastion.core.query.relation_parse import js_truthy
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import check_get_options, find_request, list_param


async def find(req: RequestContext) -> Response:
    class_name = req.path_params["className"]
    objects = req.services.objects
    redirect_key = req.param("redirectClassNameForKey")
    if not js_truthy(redirect_key):
        result = await objects.for_class(class_name).find(find_request(req), req.auth, req.call_info(), raw=True)
        return Response(result)
    # The SDK's relation.query() when it does not know the relation's class: the query runs on the
    # relation's target class, and every object says which class it is, as Parse Server answers.
    class_name = req.services.reader.redirect_class_name(class_name, redirect_key)
    result = await objects.for_class(class_name).find(find_request(req), req.auth, req.call_info())
    for obj in result["results"]:
        obj["className"] = class_name
    return Response(result)


async def get(req: RequestContext) -> Response:
    p = req.path_params
    check_get_options(req)
    obj = await req.services.objects.for_class(p["className"]).get(
        p["objectId"], req.auth, req.call_info(), keys=list_param(req, "keys"), include=list_param(req, "include"),
        exclude_keys=list_param(req, "excludeKeys"), raw=True)
    return Response(obj)


async def create(req: RequestContext) -> Response:
    class_name = req.path_params["className"]
    saved = await req.services.objects.for_class(class_name).create(req.data, req.auth, req.call_info())
    if not saved.created:
        return Response(saved.response)  # the create updated the object it matched
    location = f"{req.services.settings.public_url}/classes/{class_name}/{saved.object_id}"
    return Response(saved.response, status=201, headers=[(b"location", location.encode())])


async def update(req: RequestContext) -> Response:
    p = req.path_params
    response = await req.services.objects.for_class(p["className"]).update(p["objectId"], req.data, req.auth,
                                                                           req.call_info())
    return Response(response)


async def delete(req: RequestContext) -> Response:
    p = req.path_params
    await req.services.objects.for_class(p["className"]).delete(p["objectId"], req.auth, req.call_info())
    return Response({})


def register(router: Router) -> None:
    router.add("GET", "/classes/:className", find)
    router.add("POST", "/classes/:className", create, idempotent=True)
    router.add("GET", "/classes/:className/:objectId", get)
    router.add("PUT", "/classes/:className/:objectId", update, idempotent=True)
    router.add("DELETE", "/classes/:className/:objectId", delete)
