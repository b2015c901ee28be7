"""/scriptlog: Parse Dashboard's Logs page, this deployment's recent log lines (master key)."""

from __future__ import annotations

import orjson

from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_master


async def script_log(req: RequestContext) -> Response:
    # As Parse Server's LogsRouter: the master key (the read-only one too), options from the URL only.
    require_master(req)
    entries = await req.services.script_log.read(req.query)
    # The entries are stored as JSON text; the answer is their array, as Parse Server answers it.
    return Response([orjson.Fragment(entry) for entry in entries])


def register(router: Router) -> None:
    router.add("GET", "/scriptlog", script_log)
