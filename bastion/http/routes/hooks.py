"""/hooks/functions and /hooks/triggers: webhooks (master key), as Parse Server's HooksRouter.

GET lists or reads them; POST (on either path) registers a function ``{functionName, url}`` or a
trigger ``{className, triggerName, url}``; PUT changes a URL, or with ``{"__op": "Delete"}``
removes the webhook. Errors are Parse Server's: 143 for a bad or duplicate declaration and for an
unknown name, 101 when removing one that does not exist.
"""

from __future__ import annotations

from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_master, require_writable_master


async def list_functions(req: RequestContext) -> Response:
    require_master(req)
    return Response([hook.to_json() for hook in await req.services.cloud.webhooks.functions_list()])


async def get_function(req: RequestContext) -> Response:
    require_master(req)
    name = req.path_params["functionName"]
    hook = await req.services.cloud.webhooks.get_function(name)
    if hook is None:
        raise ParseError(Code.INVALID_IMAGE_DATA, f"no function named: {name} is defined")
    return Response(hook.to_json())


async def list_triggers(req: RequestContext) -> Response:
    require_master(req)
    return Response([hook.to_json() for hook in await req.services.cloud.webhooks.triggers_list()])


async def get_trigger(req: RequestContext) -> Response:
    require_master(req)
    class_name, trigger_name = req.path_params["className"], req.path_params["triggerName"]
    hook = await req.services.cloud.webhooks.get_trigger(class_name, trigger_name)
    if hook is None:
        raise ParseError(Code.INVALID_IMAGE_DATA, f"class {class_name} does not exist")
    return Response(hook.to_json())


async def create(req: RequestContext) -> Response:
    """Either path takes either kind of declaration, as in Parse Server."""
    require_writable_master(req)
    return Response((await req.services.cloud.webhooks.create(req.data)).to_json())


def _deleting(req: RequestContext) -> bool:
    return isinstance(req.body, dict) and req.body.get("__op") == "Delete"


def _url(req: RequestContext) -> object:
    return req.body.get("url") if isinstance(req.body, dict) else None


async def put_function(req: RequestContext) -> Response:
    require_writable_master(req)
    webhooks, name = req.services.cloud.webhooks, req.path_params["functionName"]
    if _deleting(req):
        await webhooks.delete_function(name)
        return Response({})
    return Response((await webhooks.update_function(name, _url(req))).to_json())


async def put_trigger(req: RequestContext) -> Response:
    require_writable_master(req)
    webhooks = req.services.cloud.webhooks
    class_name, trigger_name = req.path_params["className"], req.path_params["triggerName"]
    if _deleting(req):
        await webhooks.delete_trigger(class_name, trigger_name)
        return Response({})
    return Response((await webhooks.update_trigger(class_name, trigger_name, _url(req))).to_json())


def register(router: Router) -> None:
    router.add("GET", "/hooks/functions", list_functions)
    router.add("GET", "/hooks/triggers", list_triggers)
    router.add("GET", "/hooks/functions/:functionName", get_function)
    router.add("GET", "/hooks/triggers/:className/:triggerName", get_trigger)
    router.add("POST", "/hooks/functions", create)
    router.add("POST", "/hooks/triggers", create)
    router.add("PUT", "/hooks/functions/:functionName", put_function)
    router.add("PUT", "/hooks/triggers/:className/:triggerName", put_trigger)
