"""The read pipeline: find, get, count and distinct, with keys, excludeKeys and include.

schema -> where IR (+ the caller's access) -> one SQL statement -> include (one statement per
included field and level) -> REST encoding -> keys/excludeKeys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import orjson

from bastion.core import jsonb_order
from bastion.core.acl import perms_to_acl
from bastion.core.auth import Auth, CallInfo
from bastion.core.codec import iso_or_none, to_rest, value_encoder
from bastion.core.names import check_class_name
from bastion.core.permissions import Permissions, Protection
from bastion.core.query import ir
from bastion.core.query.geo_parse import distance_order
from bastion.core.query.index_order import index_order
from bastion.core.query.parse import QueryLimits, parse_field, parse_order, parse_where
from bastion.core.query.text_parse import first_text_search
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import CLIENT_GET_ONLY, CLIENT_READABLE, INTERNAL_CLASSES, JOIN_PREFIX
from bastion.core.text_search import score_value
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.triggers import NO_TRIGGERS, Triggers
from bastion.errors import Code, ParseError
from bastion.ports.storage import BASE_COLUMNS, SCORE_COLUMN, FindQuery, Record, StorageAdapter

FileUrl = Callable[[str], str]
# What a caller may see of an object of one class (its secrets and others' private fields removed).
Sanitizer = Callable[[dict[str, Any], Auth], dict[str, Any]]
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
                 file_url: FileUrl, permissions: Permissions | None = None,
                 triggers: Triggers = NO_TRIGGERS, sanitizers: dict[str, Sanitizer] | None = None) -> None:
        self.storage = storage
        self.schemas = schemas
        self.options = options
        self.file_url = file_url
        # Class-level permissions and protected fields (shared with the Writer).
        self.permissions = permissions or Permissions()
        # Per class, what a caller may see of an object (``users.sanitize`` for _User).
        self.sanitizers: dict[str, Sanitizer] = dict(sanitizers or {})
        # Cloud code's find triggers.
        self.triggers = triggers

    def _check_class(self, class_name: str, auth: Auth) -> None:
        check_class_name(class_name)
        if class_name in INTERNAL_CLASSES or class_name.startswith(JOIN_PREFIX):  # inlined is_internal
            raise ParseError(Code.OPERATION_FORBIDDEN, f"Class {class_name} is not readable.")
        if class_name.startswith("_") and not auth.is_master and class_name not in CLIENT_READABLE:
            # System classes clients may read: core/system_classes.py. Sanitized as Parse Server 9
            # does ("Clients aren't allowed to perform the find ...").
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")

    def _check_missing_class(self, auth: Auth) -> None:
        """Parse Server refuses clients any query on a class that does not exist, unless clients may
        create classes (119, sanitized from "This user is not allowed to access non-existent class")."""
        if not auth.is_master and not self.options.allow_client_class_creation:
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")

    def where_ir(self, schema: ClassSchema | None, class_name: str, where: Any) -> ir.Node:
        return parse_where(where, schema, class_name, self.schemas.get, self.options.query_limits)

    def redirect_class_name(self, class_name: str, key: Any) -> str:
        """``redirectClassNameForKey``: the target class when ``key`` is a Relation field of the class."""
        schema = self.schemas.get(class_name)
        ft = schema.fields.get(key) if schema is not None and isinstance(key, str) else None
        return ft.target_class if ft is not None and ft.type == "Relation" and ft.target_class else class_name

    # --- what triggers see --------------------------------------------------------------------

    async def load(self, class_name: str, object_id: str, auth: Auth) -> dict[str, Any] | None:
        """The object as ``auth`` may read it, for a trigger's ``original`` (None when not found)."""
        try:
            found = await self.get(class_name, object_id, auth)
        except ParseError as exc:
            if exc.code == Code.OBJECT_NOT_FOUND:
                return None
            raise
        return found if isinstance(found, dict) else None

    def encode_record(self, class_name: str, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as REST JSON for a trigger: hidden columns (a password's hash, email and
        reset tokens) are no fields, so, as Parse Server's sanitizedData, cloud code never sees them."""
        schema = self.schemas.get(class_name)
        if schema is None:
            return {}
        visible = {key: value for key, value in record.items()
                   if not key.startswith("_") or key in ("_rperm", "_wperm")}
        return self.encode(schema, visible)

    # --- find -----------------------------------------------------------------------------------

    async def find(self, class_name: str, request: FindRequest, auth: Auth, raw: bool = False,
                   info: CallInfo | None = None) -> dict[str, Any]:
        """The REST answer of a query. With ``raw``, ``results`` may be an ``orjson.Fragment`` of
        JSON the database wrote (see ``_raw_ok``), for callers that only serialise it. ``info`` is
        what cloud code's find triggers see of the request."""
        response, texts = await self._find(class_name, request, auth, raw, info=info)
        if texts is not None:
            response["results"] = orjson.Fragment("[" + ",".join(texts) + "]")
        return response

    async def _find(self, class_name: str, request: FindRequest, auth: Auth, raw: bool, is_get: bool = False,
                    info: CallInfo | None = None) -> tuple[dict[str, Any], list[str] | None]:
        """The answer, and with ``raw`` maybe the objects as JSON texts instead of its ``results``."""
        self._check_class(class_name, auth)
        if not is_get and class_name in CLIENT_GET_ONLY and not auth.is_master:
            # Clients may get an installation, never query them (sanitized, as Parse Server 9).
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
        triggers = self.triggers
        if triggers.has("beforeFind", class_name):
            request = await triggers.before_find(class_name, request, auth, info, is_get)
        after_find = triggers.has("afterFind", class_name)
        schema = await self.schemas.get_or_reload(class_name, force=auth.is_master)
        where = request.where
        protection: Protection | None = None
        if not auth.is_master:
            # Subqueries obey their own class's CLP; a query or sort may not use a hidden field.
            where, owner_checks = self.permissions.secure_subqueries(where, auth, self.schemas.get)
            for check in owner_checks:  # $relatedTo owners behind pointer permissions
                owner = self.where_ir(check.schema, check.schema.class_name, check.where)
                if not await self.storage.count(check.schema, owner, auth.access()):
                    check.deny()
            self.permissions.deny_auth_data_query(class_name, auth, where, request.order)
            protection = self.permissions.protection(schema, auth, where)
            self.permissions.deny_query(protection, where, request.order)
        where_node = self.where_ir(schema, class_name, where)
        search = first_text_search(where_node)  # what $score ranks by, in order and keys
        order: list[ir.Order] = list(parse_order(request.order, schema, search))
        # As Parse Server on PostgreSQL: a top-level $nearSphere sorts nearest first, whatever `order` says.
        order = distance_order(request.where, schema) or order
        if not order and schema is not None and schema.indexes:
            order = index_order(where_node, schema.indexes)  # let the database walk an index it has
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
            return response, None
        include_tree = self._include_tree(schema, request.include, request.keys)
        node: ir.Node | None = where_node
        count_node: ir.Node | None = where_node
        # As Parse Server: a where of just one objectId is a get; count checks its own permission.
        op = "get" if is_get or _is_get_where(where) else "find"
        if not auth.is_master:
            if limit != 0:
                node = self._permitted(schema, where_node, auth, op)
            if request.count:
                count_node = self._permitted(schema, where_node, auth, "count")
        results: list[dict[str, Any]] = []
        if limit != 0 and node is not None:
            keys = request.keys
            if keys is not None and protection is not None and protection.extra_columns():
                keys = [*keys, *protection.extra_columns()]  # the userField: rules read them
            columns = self._columns(schema, keys)
            score = search if columns is not None and SCORE_COLUMN in (request.keys or ()) else None
            if score is not None and columns is not None:
                columns = (*columns, SCORE_COLUMN)
            query = FindQuery(node, tuple(order), limit, skip, columns, score)
            texts = None
            if raw and not include_tree and protection is None and not after_find and self._raw_ok(schema, request):
                texts = await self.storage.find_json(schema, query, auth.access())
            if texts is not None:
                response["results"] = None  # filled by the caller; keeps "results" before "count"
                if request.count:
                    response["count"] = await self._count(schema, count_node, auth)
                return response, texts
            records = await self.storage.find(schema, query, auth.access())
            results = self._visible(schema, records, auth, protection)
            if include_tree:
                await self._include(schema, results, include_tree, auth, 0,
                                    _Projection(request.keys, request.exclude_keys))
            self._project(results, request.keys, request.exclude_keys)
            if score is not None:
                _show_score(results)
            if after_find:
                results = await triggers.after_find(class_name, results, auth, info, is_get)
        elif node is None and op == "get":
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        response["results"] = results
        if request.count:
            response["count"] = await self._count(schema, count_node, auth)
        return response, None

    def _permitted(self, schema: ClassSchema, node: ir.Node, auth: Auth, op: str) -> ir.Node | None:
        """``node`` narrowed to what the class's CLP lets ``auth`` ``op`` (119/101 when it may not);
        None when pointer permissions leave nothing (the caller is no user)."""
        self.permissions.require(schema, auth, op)
        extra = self.permissions.pointer_where(schema, auth, op)
        if extra is None:
            return None
        if not extra:
            return node
        return ir.conjoin([node, self.where_ir(schema, schema.class_name, extra)])

    async def _count(self, schema: ClassSchema, node: ir.Node | None, auth: Auth) -> Any:
        if node is None:
            return []  # sic: Parse Server counts "no query" as an empty list
        return await self.storage.count(schema, node, auth.access())

    async def get(self, class_name: str, object_id: str, auth: Auth, keys: list[str] | None = None,
                  include: list[str] | None = None, exclude_keys: list[str] | None = None,
                  raw: bool = False, info: CallInfo | None = None) -> Any:
        """One object's REST JSON (with ``raw``, possibly as an ``orjson.Fragment``)."""
        if not isinstance(object_id, str) or len(object_id) > 120:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        request = FindRequest(where={"objectId": object_id}, limit=1, keys=keys, include=include or [],
                              exclude_keys=exclude_keys or [])
        response, texts = await self._find(class_name, request, auth, raw, is_get=True, info=info)
        if texts is not None:
            if not texts:
                raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
            return orjson.Fragment(texts[0])
        results = response["results"]
        if not results:
            raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
        return results[0]

    @staticmethod
    def _raw_ok(schema: ClassSchema, request: FindRequest) -> bool:
        """Whether objects may go out exactly as stored, so the database may write their JSON: no
        excludeKeys and no system class (their hidden fields are Python's business). Anything that
        changes objects after the read (triggers, protected fields) must make this False."""
        return (not request.exclude_keys and not schema.class_name.startswith("_")
                and SCORE_COLUMN not in (request.keys or ()))

    async def distinct(self, class_name: str, field_name: str, where: Any, auth: Auth) -> list[Any]:
        check_class_name(class_name)
        schema = await self.schemas.get_or_reload(class_name, force=auth.is_master)
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
        values = distinct_order(ft.type, bool(path), values)
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
        bounded: int = limit if self.options.max_limit is None else min(limit, self.options.max_limit)
        return min(bounded, MAX_ROWS)

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

    def _visible(self, schema: ClassSchema, records: list[Record], auth: Auth,
                 protection: Protection | None) -> list[dict[str, Any]]:
        """Records as REST JSON, with what ``auth`` may not see of them removed (the class's
        sanitizer, then protected fields)."""
        encode = self.encoder(schema)
        objects = [encode(r) for r in records]
        sanitize = self.sanitizers.get(schema.class_name)
        if sanitize is not None:
            objects = [sanitize(obj, auth) for obj in objects]
        if protection is not None:
            objects = [protection.apply(obj) for obj in objects]
        return objects

    def encode(self, schema: ClassSchema, record: Record) -> dict[str, Any]:
        return self.encoder(schema)(record)

    def encoder(self, schema: ClassSchema) -> Callable[[Record], dict[str, Any]]:
        """A function encoding records of ``schema`` as REST JSON. Built once per statement so that
        each row costs one call per column, not a schema lookup and a type dispatch per value."""
        return RecordEncoder(schema, self.file_url)

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
                if target.startswith("_") and not auth.is_master and target not in CLIENT_READABLE:
                    continue  # left unincluded, as an unreadable object is
                node: ir.Node = ir.In(ir.Field("objectId", "String"), tuple(sorted(ids)))
                protection = None
                if not auth.is_master:
                    # Parse Server includes through a get of the target class: its CLP refuses the
                    # whole query (119, or 101 when pointer permissions leave no user to match).
                    permitted = self._permitted(target_schema, node, auth, "get")
                    if permitted is None:
                        raise ParseError(Code.OBJECT_NOT_FOUND, "Object not found.")
                    node = permitted
                    where = {"objectId": next(iter(ids))} if len(ids) == 1 else None
                    protection = self.permissions.protection(target_schema, auth, where)
                records = await self.storage.find(target_schema, FindQuery(node), auth.access())
                included = self._visible(target_schema, records, auth, protection)
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


class RecordEncoder:
    """Canonical records of one class -> REST JSON objects.

    Per column it picks the value encoder once (identity for strings, numbers' JavaScript form,
    dates' ISO form ...), and remembers the Relation fields, which every object shows."""

    __slots__ = ("_plans", "_relations", "_schema", "_file_url")

    def __init__(self, schema: ClassSchema, file_url: FileUrl) -> None:
        self._schema = schema
        self._file_url = file_url
        self._plans: dict[tuple[str, ...], list[tuple[str, Callable[[Any], Any] | None]]] = {}
        self._relations = [(name, {"__type": "Relation", "className": ft.target_class})
                           for name, ft in schema.fields.items() if ft.type == "Relation"]

    def _plan(self, columns: tuple[str, ...]) -> list[tuple[str, Callable[[Any], Any] | None]]:
        plan: list[tuple[str, Callable[[Any], Any] | None]] = []
        fields = self._schema.fields
        for column in columns:
            if column in ("_rperm", "_wperm"):
                continue
            if column in ("createdAt", "updatedAt"):
                plan.append((column, iso_or_none))
                continue
            ft = fields.get(column)
            plan.append((column, value_encoder(ft, self._file_url) if ft is not None else None))
        return plan

    def __call__(self, record: Record) -> dict[str, Any]:
        columns = tuple(record)
        plan = self._plans.get(columns)
        if plan is None:
            plan = self._plans[columns] = self._plan(columns)
        out: dict[str, Any] = {}
        for column, encode in plan:
            value = record[column]
            if value is not None:
                out[column] = encode(value) if encode is not None else value
        for name, relation in self._relations:
            out[name] = dict(relation)
        if "_rperm" in record or "_wperm" in record:
            acl = perms_to_acl(record.get("_rperm"), record.get("_wperm"))
            if acl is not None:
                out["ACL"] = acl
        return out


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


def _show_score(results: list[dict[str, Any]]) -> None:
    """``keys=$score``: the rank goes out as ``score``, printed as PostgreSQL prints a float4."""
    for obj in results:
        value = obj.pop(SCORE_COLUMN, None)
        if value is not None:
            obj["score"] = score_value(value)


def _is_get_where(where: Any) -> bool:
    return isinstance(where, dict) and len(where) == 1 and isinstance(where.get("objectId"), str)


def _is_relation(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type") == "Relation"


def _is_pointer(value: object) -> TypeGuard[dict[str, Any]]:
    return (isinstance(value, dict) and value.get("__type") == "Pointer"
            and isinstance(value.get("className"), str) and isinstance(value.get("objectId"), str))


def _pointers_at(value: Any) -> list[dict[str, Any]]:
    if _is_pointer(value):
        return [value]
    if isinstance(value, list):
        return [v for v in value if _is_pointer(v)]
    return []


def distinct_order(kind: str, nested: bool, values: list[Any]) -> list[Any]:
    """Distinct values in the order Parse Server on PostgreSQL answers them: its ``SELECT DISTINCT
    ON (column)`` sorts, so a column's values come in its type's order (text by code point) and JSON
    values in jsonb's. Of an Array field it answers the elements in the order of PostgreSQL's hash
    aggregation, which nothing defines; Bastion sorts them as jsonb too, and leaves nulls out as
    Parse Server does."""
    values = [value for value in values if value is not None]
    if kind in ("Array", "Object") or nested:
        return sorted(values, key=jsonb_order.sort_key)
    if kind in ("GeoPoint", "Polygon"):
        return values  # PostgreSQL has no order for geometric types (Parse Server fails on them)
    return sorted(values)
