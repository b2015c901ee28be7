"""/classes/_GlobalConfig: Parse Config's one row (objectId "1") seen as a class, as Parse Server
lets the master key see it: found and got, its params and masterKeyOnly replaced, the row deleted.
Anyone else is refused (119), and no object can be created there (103)."""

from __future__ import annotations

from typing import Any

from bastion.core.query.matcher import UnsupportedInMemory, matches
from bastion.core.query.parse import parse_where
from bastion.core.schema import DEFAULT_FIELDS, ClassSchema
from bastion.core.system_classes import GLOBAL_CONFIG
from bastion.core.types import FieldType, format_iso, infer_type, now_ms
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import PERMISSION_DENIED, check_get_options, find_request, list_param

ROW_ID = "1"
COLUMNS = ("params", "masterKeyOnly")
# The schema Parse Server shows for the class: the default fields and its two Object columns.
SCHEMA = ClassSchema(GLOBAL_CONFIG, {**DEFAULT_FIELDS, **{name: FieldType("Object") for name in COLUMNS}}, clp={})


def _require_master(req: RequestContext, writes: bool = False) -> None:
    if not req.auth.is_master or (writes and req.auth.is_read_only):
        raise ParseError(Code.OPERATION_FORBIDDEN, PERMISSION_DENIED)


async def _row(req: RequestContext) -> dict[str, Any] | None:
    stored = await req.services.storage.get_config()
    if stored is None:
        return None
    return {"objectId": ROW_ID, **{name: stored[name] for name in COLUMNS}}


def _only_keys(row: dict[str, Any], keys: list[str] | None) -> dict[str, Any]:
    if keys is None:
        return row
    wanted = {key.split(".")[0] for key in keys}
    return {name: value for name, value in row.items() if name == "objectId" or name in wanted}


async def find(req: RequestContext) -> Response:
    _require_master(req)
    request = find_request(req)
    node = parse_where(request.where or {}, SCHEMA, GLOBAL_CONFIG, req.services.schemas.get)
    row = await _row(req)
    try:
        found = [row] if row is not None and matches(node, row) else []
    except UnsupportedInMemory:
        raise ParseError(Code.INVALID_QUERY, "This query is not supported on _GlobalConfig.") from None
    limit = 100 if request.limit is None else request.limit
    page = found[request.skip:][:max(limit, 0)] if limit != -1 else found[request.skip:]
    out: dict[str, Any] = {"results": [_only_keys(r, request.keys) for r in page]}
    if request.count:
        out["count"] = len(found)
    return Response(out)


async def get(req: RequestContext) -> Response:
    _require_master(req)
    check_get_options(req)
    row = await _row(req)
    if row is None or req.path_params["objectId"] != ROW_ID:
        raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
    return Response(_only_keys(row, list_param(req, "keys")))


async def create(req: RequestContext) -> Response:
    _require_master(req, writes=True)
    raise ParseError(Code.INVALID_CLASS_NAME, f"invalid className: {GLOBAL_CONFIG}")


async def update(req: RequestContext) -> Response:
    """As Parse Server's generic update of the row: each column given replaces the stored one."""
    _require_master(req, writes=True)
    body = req.data
    if not isinstance(body, dict):
        raise ParseError(Code.INVALID_JSON, "This object must be a JSON object.")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key in DEFAULT_FIELDS:
            continue
        if key not in COLUMNS:
            raise ParseError(Code.INVALID_JSON, f"Could not add field {key[:120]}")
        if value is None or (isinstance(value, dict) and value.get("__op") == "Delete"):
            changes[key] = {}
            continue
        given = infer_type(value)
        if given is None or given.type != "Object":
            got = given.describe() if given is not None else type(value).__name__
            raise ParseError(Code.INCORRECT_TYPE, f"schema mismatch for {GLOBAL_CONFIG}.{key}; expected Object but got {got}")
        changes[key] = value
    row = await _row(req)
    if row is None or req.path_params["objectId"] != ROW_ID:
        raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
    row.update(changes)
    await req.services.storage.set_config(row["params"] or {}, row["masterKeyOnly"] or {})
    return Response({"updatedAt": format_iso(now_ms())})


async def delete(req: RequestContext) -> Response:
    _require_master(req, writes=True)
    if req.path_params["objectId"] != ROW_ID or not await req.services.storage.delete_config():
        raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
    return Response({})


def register(router: Router) -> None:
    """Before the generic /classes routes, which refuse the internal class by its name."""
    router.add("GET", f"/classes/{GLOBAL_CONFIG}", find)
    router.add("POST", f"/classes/{GLOBAL_CONFIG}", create)
    router.add("GET", f"/classes/{GLOBAL_CONFIG}/:objectId", get)
    router.add("PUT", f"/classes/{GLOBAL_CONFIG}/:objectId", update)
    router.add("DELETE", f"/classes/{GLOBAL_CONFIG}/:objectId", delete)
