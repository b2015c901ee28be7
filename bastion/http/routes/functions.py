"""/functions: cloud functions, called with their parameters as the JSON body."""

from __future__ import annotations

from bastion.core.names import check_no_denylisted_keys
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router


async def call(req: RequestContext) -> Response:
    # As Parse Server: the parameters are the body's fields and the URL's query parameters.
    params = {**req.query, **req.data}
    check_no_denylisted_keys(params)
    # {"result": …}, or {} for a function that returns nothing (as Parse's undefined result).
    answer = await req.services.cloud.run_function(req.path_params["functionName"], params, req.auth,
                                                   req.call_info())
    return Response(answer)


def register(router: Router) -> None:
    router.add("POST", "/functions/:functionName", call, idempotent=True)
