"""/config: Parse Config parameters, readable by clients, writable with the master key."""

from __future__ import annotations

from typing import Any

from bastion.core.names import check_no_denylisted_keys
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_writable_master


async def get_config(req: RequestContext) -> Response:
    stored = await req.services.storage.get_config()
    if stored is None:
        return Response({"params": {}})
    params: dict[str, Any] = dict(stored["params"] or {})
    master_only: dict[str, Any] = dict(stored["masterKeyOnly"] or {})
    if not req.auth.is_master:
        # As Parse Server: a client sees the other parameters and their (false) masterKeyOnly flags.
        hidden = {k for k in params if master_only.get(k)}
        params = {k: v for k, v in params.items() if k not in hidden}
        master_only = {k: v for k, v in master_only.items() if k not in hidden}
    return Response({"params": params, "masterKeyOnly": master_only})


async def put_config(req: RequestContext) -> Response:
    require_writable_master(req)
    data = req.data
    updates = data.get("params")
    if not isinstance(updates, dict):
        raise ParseError(Code.INVALID_JSON, "params must be an object")
    master_updates = data.get("masterKeyOnly") or {}
    if not isinstance(master_updates, dict):
        raise ParseError(Code.INVALID_JSON, "masterKeyOnly must be an object")
    check_no_denylisted_keys(updates)
    stored = await req.services.storage.get_config() or {"params": {}, "masterKeyOnly": {}}
    params = dict(stored["params"])
    master_only = dict(stored["masterKeyOnly"])
    for key, value in updates.items():
        if isinstance(value, dict) and value.get("__op") == "Delete":
            params.pop(key, None)
        else:
            params[key] = value
        # As Parse Server: every parameter written gets its flag again (false unless given), a
        # deleted one too; flags for parameters not written are ignored.
        master_only[key] = bool(master_updates.get(key))
    await req.services.storage.set_config(params, master_only)
    return Response({"result": True})


def register(router: Router) -> None:
    router.add("GET", "/config", get_config)
    router.add("PUT", "/config", put_config)
