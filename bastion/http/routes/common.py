"""Helpers shared by route modules: reading query options and requiring the master key."""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.names import check_no_denylisted_keys
from bastion.domain.read import FindRequest
from bastion.errors import Code, ParseError, Unauthorized
from bastion.http.context import RequestContext

# Parse Server 9 answers refusals with a generic "Permission denied" (its enableSanitizedErrorResponse
# option defaults to true); the detailed reasons only reach its log.
PERMISSION_DENIED = "Permission denied"


def require_master(req: RequestContext) -> None:
    # The maintenance key is not the master key on master-only routes (Parse Server's isMaster).
    if not req.auth.is_master or req.auth.is_maintenance:
        # Parse Server: 403 {"error": "Permission denied"} (unsanitized: "unauthorized: master key is required").
        raise Unauthorized(PERMISSION_DENIED)


def require_writable_master(req: RequestContext) -> None:
    require_master(req)
    if req.auth.is_read_only:
        # Unsanitized: "read-only masterKey isn't allowed to ...".
        raise ParseError(Code.OPERATION_FORBIDDEN, PERMISSION_DENIED)


def json_param(req: RequestContext, name: str) -> Any:
    value = req.param(name)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ParseError(Code.INVALID_JSON, f"{name} parameter is not valid JSON") from None
        check_no_denylisted_keys(value)  # a body was checked as it was decoded; a URL's JSON is here
    return value


# The options Parse Server accepts on a query and on a get; any other is refused with 102.
FIND_OPTIONS = frozenset({
    "skip", "limit", "order", "count", "keys", "excludeKeys", "include", "includeAll", "redirectClassNameForKey",
    "where", "readPreference", "includeReadPreference", "subqueryReadPreference", "hint", "explain", "comment",
})
GET_OPTIONS = frozenset({"keys", "include", "excludeKeys", "readPreference", "includeReadPreference",
                         "subqueryReadPreference"})


def option_names(req: RequestContext) -> set[str]:
    names = set(req.query)
    if isinstance(req.body, dict):
        names.update(req.body)
    return names


def check_find_options(req: RequestContext) -> None:
    for name in sorted(option_names(req) - FIND_OPTIONS):
        raise ParseError(Code.INVALID_QUERY, f"Invalid parameter for query: {name[:100]}")


def check_get_options(req: RequestContext) -> None:
    if option_names(req) - GET_OPTIONS:
        raise ParseError(Code.INVALID_QUERY, "Improper encode of parameter")


def int_param(req: RequestContext, name: str) -> int | None:
    value = req.param(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(Code.INVALID_QUERY, f"Invalid {name} value.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ParseError(Code.INVALID_QUERY, f"Invalid {name} value.")


def list_param(req: RequestContext, name: str) -> list[str] | None:
    value = req.param(name)
    if value is None:
        return None
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ParseError(Code.INVALID_QUERY, f"Invalid {name} value.")
        return [v for v in value if v]
    if not isinstance(value, str):
        raise ParseError(Code.INVALID_QUERY, f"Invalid {name} value.")
    return [part.strip() for part in value.split(",") if part.strip()]


def bool_param(req: RequestContext, name: str) -> bool:
    value = req.param(name)
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def order_param(req: RequestContext) -> str | None:
    value = req.param("order")
    if value is None:
        return None
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ParseError(Code.INVALID_QUERY, "Invalid order value.")
    return value


def find_request(req: RequestContext) -> FindRequest:
    check_find_options(req)
    where = json_param(req, "where")
    if isinstance(where, str):
        # Parse Server decodes a where that is still a string once more (``where="{\"a\":1}"``).
        try:
            where = orjson.loads(where)
        except orjson.JSONDecodeError:
            raise ParseError(Code.INVALID_JSON, "where parameter is not valid JSON") from None
    if where is not None and not isinstance(where, dict):
        raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
    keys = list_param(req, "keys")
    return FindRequest(
        where=where,
        order=order_param(req),
        limit=int_param(req, "limit"),
        skip=int_param(req, "skip") or 0,
        keys=keys,
        exclude_keys=list_param(req, "excludeKeys") or [],
        include=list_param(req, "include") or [],
        count=bool_param(req, "count"),
    )
