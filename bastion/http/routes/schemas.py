"""/schemas and /purge: class definitions, with the master key."""

from __future__ import annotations

from typing import Any

from bastion.core.names import check_class_name, field_name_is_valid
from bastion.core.query import ir
from bastion.core.schema import DEFAULT_FIELDS, SYSTEM_CLASS_FIELDS, check_field_type_spec
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_master, require_writable_master
from bastion.ports.storage import MASTER


def _class_name(req: RequestContext) -> str:
    class_name = req.path_params["className"]
    body_name = req.data.get("className")
    if body_name is not None and body_name != class_name:
        raise ParseError(Code.INVALID_CLASS_NAME, f"Class name mismatch between {body_name} and {class_name}.")
    return check_class_name(class_name)


def _list_as_object(raw: Any) -> Any:
    """PHP encodes an empty object as ``[]``. Parse Server walks any array as an object keyed by
    its indexes: ``[]`` is ``{}``, and ``["a"]`` has a field (or index) named "0"."""
    return {str(i): item for i, item in enumerate(raw)} if isinstance(raw, list) else raw


def _fields(class_name: str, raw: Any, allow_delete: bool) -> tuple[dict[str, FieldType], list[str]]:
    raw = _list_as_object(raw)
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        raise ParseError(Code.INVALID_JSON, "fields must be an object")
    add: dict[str, FieldType] = {}
    delete: list[str] = []
    for name, spec in raw.items():
        if isinstance(spec, dict) and spec.get("__op") == "Delete":
            if not allow_delete:
                raise ParseError(Code.INVALID_JSON, f"Field {name} cannot be deleted when creating a class.")
            delete.append(name)
            continue
        if not field_name_is_valid(name, class_name):
            raise ParseError(Code.INVALID_KEY_NAME, f"invalid field name: {str(name)[:100]}")
        # Parse Server refuses default fields in a new class; in an update they name existing fields,
        # which the registry leaves alone when the type is the same (and refuses otherwise).
        if not allow_delete and (name in DEFAULT_FIELDS or name in SYSTEM_CLASS_FIELDS.get(class_name, {})):
            raise ParseError(136, f"field {name} cannot be added")
        add[name] = check_field_type_spec(class_name, name, spec)
    return add, delete


def _clp(raw: Any) -> dict[str, Any] | None:
    raw = _list_as_object(raw)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ParseError(Code.INVALID_JSON, "classLevelPermissions must be an object")
    return raw  # validated against the class's fields by the registry (domain/schema.validate_clp)


def _indexes(raw: Any) -> dict[str, Any] | None:
    raw = _list_as_object(raw)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ParseError(Code.INVALID_QUERY, "indexes must be an object")
    return raw


async def list_schemas(req: RequestContext) -> Response:
    require_master(req)
    return Response({"results": [s.to_api() for s in req.services.schemas.all()]})


async def get_schema(req: RequestContext) -> Response:
    require_master(req)
    class_name = check_class_name(req.path_params["className"])
    schema = await req.services.schemas.get_or_reload(class_name, force=True)
    if schema is None:
        raise ParseError(Code.INVALID_CLASS_NAME, f"Class {class_name} does not exist.")
    return Response(schema.to_api())


async def create_schema(req: RequestContext) -> Response:
    require_writable_master(req)
    class_name = _class_name(req)
    data = req.data
    add, _ = _fields(class_name, data.get("fields"), allow_delete=False)
    schema = await req.services.schemas.create_class(class_name, add, _clp(data.get("classLevelPermissions")),
                                                     _indexes(data.get("indexes")))
    return Response(schema.to_api(primary_index=False))  # as Parse Server: the indexes given, no _id_


async def create_schema_from_body(req: RequestContext) -> Response:
    name = req.data.get("className")
    if not isinstance(name, str):
        raise ParseError(135, "POST /schemas needs a class name.")  # Parse.Error.MISSING_REQUIRED_FIELD_ERROR
    req.path_params["className"] = name
    return await create_schema(req)


async def update_schema(req: RequestContext) -> Response:
    require_writable_master(req)
    class_name = _class_name(req)
    if await req.services.schemas.get_or_reload(class_name, force=True) is None:
        raise ParseError(Code.INVALID_CLASS_NAME, f"Class {class_name} does not exist.")
    data = req.data
    add, delete = _fields(class_name, data.get("fields"), allow_delete=True)
    schema = await req.services.schemas.update_class(class_name, add, delete, _clp(data.get("classLevelPermissions")),
                                                     _indexes(data.get("indexes")))
    return Response(schema.to_api())


async def delete_schema(req: RequestContext) -> Response:
    require_writable_master(req)
    class_name = check_class_name(req.path_params["className"])
    schema = await req.services.schemas.get_or_reload(class_name, force=True)
    if schema is None:
        return Response({})
    count = await req.services.storage.count(schema, ir.TRUE, MASTER)
    if count:
        raise ParseError(255, f"Class {class_name} is not empty, contains {count} objects, cannot drop schema.")
    await req.services.schemas.delete_class(class_name)
    return Response({})


async def purge(req: RequestContext) -> Response:
    require_writable_master(req)
    class_name = check_class_name(req.path_params["className"])
    if await req.services.schemas.get_or_reload(class_name, force=True) is not None:
        await req.services.storage.purge(class_name)
    return Response({})


def register(router: Router) -> None:
    router.add("GET", "/schemas", list_schemas)
    router.add("POST", "/schemas", create_schema_from_body)
    router.add("GET", "/schemas/:className", get_schema)
    router.add("POST", "/schemas/:className", create_schema)
    router.add("PUT", "/schemas/:className", update_schema)
    router.add("DELETE", "/schemas/:className", delete_schema)
    router.add("DELETE", "/purge/:className", purge)
