"""The read pipeline: find, get, count and distinct, with keys, excludeKeys and include.

schema -> where IR (+ the caller's access) -> one SQL statement -> include (one statement per
included field and level) -> REST encoding -> keys/excludeKeys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.adapters.storage.base import BASE_COLUMNS, FindQuery, Record, StorageAdapter
from bastion.domain.acl import perms_to_acl
from bastion.domain.auth import Auth
from bastion.domain.codec import iso_or_none, to_rest
from bastion.domain.names import INTERNAL_CLASSES, check_class_name
from bastion.domain.query import ir
from bastion.domain.query.parse import QueryLimits, parse_field, parse_order, parse_where
from bastion.domain.schema import ClassSchema
from bastion.domain.schema_registry import SchemaRegistry
from bastion.errors import Code, ParseError

FileUrl = Callable[[str], str]
MAX_ROWS = 2**63 - 1  # what SQL's LIMIT and OFFSET hold; larger values mean the same


@dataclass(slots=True)
class ReadOptions:
    default_limit: int = 100
    max_limit: int | None = None
    max_include_depth: int = 5
    query_limits: QueryLimits = field(default_factory=QueryLimits)
    allow_client_class_creation: bool = False


@dataclass(slots=True)
class FindRequest:
    where: Any = None
    order: str | None = None
    limit: int | None = None
    skip: int = 0
    keys: list[str] | None = None
    exclude_keys: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    count: bool = False


class Reader:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, options: ReadOptions,
                 file_url: FileUrl) -> None:
        self.storage = storage
        self.schemas = schemas
        self.options = options
        self.file_url = file_url

    def _check_class(self, class_name: str, auth: Auth) -> None:
        check_class_name(class_name)
        if class_name in INTERNAL_CLASSES or class_name.startswith("_Join:"):
            raise ParseError(Code.OPERATION_FORBIDDEN, f"Class {class_name} is not readable.")
        if class_name.startswith("_") and not auth.is_master:
            # User, session, role and installation rules arrive with their own behaviours.
            # Sanitized as Parse Server 9 does ("Clients aren't allowed to perform the find ...").
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")

    def _check_missing_class(self, auth: Auth) -> None:
        """Parse Server refuses clients any query on a class that does not exist, unless clients may
        create classes (119, sanitized from "This user is not allowed to access non-existent class")."""
        if not auth.is_master and not self.options.allow_client_class_creation:
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")

    def where_ir(self, schema: ClassSchema | None, class_name: str, where: Any) -> ir.Node:
        return parse_where(where, schema, class_name, self.schemas.get, self.options.query_limits)

    # --- find -----------------------------------------------------------------------------------

    async def find(self, class_name: str, request: FindRequest, auth: Auth) -> dict[str, Any]:
        self._check_class(class_name, auth)
        schema = self.schemas.get(class_name)
        node = self.where_ir(schema, class_name, request.where)
        order = parse_order(request.order, schema)
        limit = self._limit(request.limit)
        skip = request.skip
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
            raise ParseError(Code.INVALID_QUERY, "Invalid skip value.")
        skip = min(skip, MAX_ROWS)
        response: dict[str, Any] = {}
        if schema is None:
            self._check_missing_class(auth)
            response["results"] = []
            if request.count:
                response["count"] = 0
            return response
        include_tree = self._include_tree(schema, request.include, request.keys)
        results: list[dict[str, Any]] = []
        if limit != 0:
            columns = self._columns(schema, request.keys)
            query = FindQuery(node, tuple(order), limit, skip, columns)
            records = await self.storage.find(schema, query, auth.access())
            results = [self.encode(schema, r) for r in records]
            if include_tree:
                await self._include(schema, results, include_tree, auth, 0,
                                    _Projection(request.keys, request.exclude_keys))
            self._project(results, request.keys, request.exclude_keys)
        response["results"] = results
        if request.count:
            response["count"] = await self.storage.count(schema, node, auth.access())
        return response

    async def get(self, class_name: str, object_id: str, auth: Auth, keys: list[str] | None = None,
                  include: list[str] | None = None, exclude_keys: list[str] | None = None) -> dict[str, Any]:
        if not isinstance(object_id, str) or len(object_id) > 120:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        request = FindRequest(where={"objectId": object_id}, limit=1, keys=keys, include=include or [],
                              exclude_keys=exclude_keys or [])
        found = await self.find(class_name, request, auth)
        if not found["results"]:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        return found["results"][0]

    async def distinct(self, class_name: str, field_name: str, where: Any, auth: Auth) -> list[Any]:
        check_class_name(class_name)
        schema = self.schemas.get(class_name)
        if schema is None:
            return []
        if parse_field(field_name, schema) is None:  # 105 for a name Parse would refuse in a where
            return []
        node = self.where_ir(schema, class_name, where)
        head = field_name.split(".")[0]
        ft = schema.fields[head]
        path = tuple(field_name.split(".")[1:])
        if path and ft.type != "Object":
            raise ParseError(Code.INVALID_QUERY, f"Invalid field for distinct: {field_name}")
        values = await self.storage.distinct(schema, ir.Field(head, ft.type, path), node, auth.access())
        if ft.type in ("Array", "Object") or path:
            return values
        if ft.type == "Date":
            # Parse Server on PostgreSQL answers distinct dates as bare ISO strings.
            return [iso_or_none(v) for v in values]
        return [to_rest(ft, v, self.file_url) for v in values]

    def _limit(self, limit: Any) -> int | None:
        if limit is None:
            limit = self.options.default_limit
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ParseError(Code.INVALID_QUERY, "Invalid limit value.")
        if limit < 0:
            return None if limit == -1 else self._invalid_limit()
        if self.options.max_limit is not None:
            limit = min(limit, self.options.max_limit)
        return min(limit, MAX_ROWS)

    @staticmethod
    def _invalid_limit() -> int:
        raise ParseError(Code.INVALID_QUERY, "Invalid limit value.")

    # --- columns and projection -----------------------------------------------------------------

    @staticmethod
    def _columns(schema: ClassSchema, keys: list[str] | None) -> tuple[str, ...] | None:
        if keys is None:
            return None
        columns = list(BASE_COLUMNS)
        for key in keys:
            head = key.split(".")[0]
            ft = schema.fields.get(head)
            if ft is not None and head not in columns and ft.type not in ("Relation", "ACL"):
                columns.append(head)
        return tuple(columns)

    @staticmethod
    def _project(results: list[dict[str, Any]], keys: list[str] | None, exclude: list[str]) -> None:
        # Relation fields stay whatever keys and excludeKeys say, as in Parse Server.
        if keys is not None:
            allowed = {k.split(".")[0] for k in keys} | {"objectId", "createdAt", "updatedAt", "ACL"}
            for obj in results:
                for name in [n for n in obj if n not in allowed and not _is_relation(obj[n])]:
                    del obj[name]
        for name in exclude:
            if name in ("objectId", "createdAt", "updatedAt"):
                continue
            for obj in results:
                if name in obj and not _is_relation(obj[name]):
                    del obj[name]

    # --- encoding -------------------------------------------------------------------------------

    def encode(self, schema: ClassSchema, record: Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = schema.fields
        for column, value in record.items():
            if column in ("_rperm", "_wperm"):
                continue
            if column in ("createdAt", "updatedAt"):
                if value is not None:
                    out[column] = iso_or_none(value)
                continue
            if value is None:
                continue
            ft = fields.get(column)
            out[column] = to_rest(ft, value, self.file_url) if ft is not None else value
        for name, ft in fields.items():
            if ft.type == "Relation":
                out[name] = {"__type": "Relation", "className": ft.target_class}
        if "_rperm" in record or "_wperm" in record:
            acl = perms_to_acl(record.get("_rperm"), record.get("_wperm"))
            if acl is not None:
                out["ACL"] = acl
        return out

    # --- include --------------------------------------------------------------------------------

    def _include_tree(self, schema: ClassSchema, include: list[str], keys: list[str] | None) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for path in include:
            if path == "*":
                # As Parse Server: every Pointer field, and every Array field (its pointers).
                for name, ft in schema.fields.items():
                    if ft.type in ("Pointer", "Array"):
                        tree.setdefault(name, {})
                continue
            parts = path.split(".")
            if len(parts) > self.options.max_include_depth:
                raise ParseError(Code.INVALID_QUERY, "include is nested too deeply.")
            node = tree
            for part in parts:
                if not part:
                    raise ParseError(Code.INVALID_QUERY, f"Invalid include: {path[:100]}")
                node = node.setdefault(part, {})
        return tree

    async def _include(self, schema: ClassSchema, objects: list[dict[str, Any]], tree: dict[str, Any],
                       auth: Auth, depth: int, projection: _Projection | None = None,
                       prefix: tuple[str, ...] = ()) -> None:
        if depth > self.options.max_include_depth:
            raise ParseError(Code.INVALID_QUERY, "include is nested too deeply.")
        for key, subtree in tree.items():
            pointers: dict[str, set[str]] = {}
            for obj in objects:
                for pointer in _pointers_at(obj.get(key)):
                    pointers.setdefault(pointer["className"], set()).add(pointer["objectId"])
            fetched: dict[tuple[str, str], dict[str, Any]] = {}
            for target, ids in pointers.items():
                target_schema = self.schemas.get(target)
                if target_schema is None or target in INTERNAL_CLASSES:
                    continue
                node = ir.In(ir.Field("objectId", "String"), tuple(sorted(ids)))
                records = await self.storage.find(target_schema, FindQuery(node), auth.access())
                included = [self.encode(target_schema, r) for r in records]
                if subtree:
                    await self._include(target_schema, included, subtree, auth, depth + 1, projection,
                                        (*prefix, key))
                if projection is not None:
                    projection.apply(self, included, (*prefix, key))
                for item in included:
                    item["__type"] = "Object"
                    item["className"] = target
                    fetched[(target, item["objectId"])] = item
            # As Parse Server: a pointer whose object is missing (or unreadable) disappears, from
            # the object and from arrays alike.
            for obj in objects:
                obj_value = obj.get(key)
                if isinstance(obj_value, list):
                    if any(_is_pointer(v) for v in obj_value):
                        obj[key] = [fetched[(v["className"], v["objectId"])] if _is_pointer(v) else v
                                    for v in obj_value
                                    if not _is_pointer(v) or (v["className"], v["objectId"]) in fetched]
                elif _is_pointer(obj_value):
                    found = fetched.get((obj_value["className"], obj_value["objectId"]))
                    if found is None:
                        del obj[key]
                    else:
                        obj[key] = found


@dataclass(slots=True)
class _Projection:
    """``keys`` and ``excludeKeys`` of a query, as they reach included objects: Parse Server gives
    the objects included at ``a`` the keys ``a.x`` names (``x``) and drops those ``a.y`` excludes."""

    keys: list[str] | None
    exclude: list[str]

    def apply(self, reader: Reader, objects: list[dict[str, Any]], path: tuple[str, ...]) -> None:
        depth = len(path)
        keys: list[str] | None = None
        if self.keys is not None:
            below = [parts[depth] for parts in (k.split(".") for k in self.keys)
                     if len(parts) > depth and tuple(parts[:depth]) == path]
            keys = below or None
        exclude = [parts[depth] for parts in (k.split(".") for k in self.exclude)
                   if len(parts) == depth + 1 and tuple(parts[:depth]) == path]
        if keys is not None or exclude:
            reader._project(objects, keys, exclude)


def _is_relation(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type") == "Relation"


def _is_pointer(value: Any) -> bool:
    return (isinstance(value, dict) and value.get("__type") == "Pointer"
            and isinstance(value.get("className"), str) and isinstance(value.get("objectId"), str))


def _pointers_at(value: Any) -> list[dict[str, Any]]:
    if _is_pointer(value):
        return [value]
    if isinstance(value, list):
        return [v for v in value if _is_pointer(v)]
    return []
