"""Running a planned pipeline and encoding its results as Parse Server on PostgreSQL answers them:
``objectId`` for Mongo's ``_id`` (null when a result has none), null values left out, dates as
``{"__type": "Date"}`` except a top-level ``createdAt``/``updatedAt``, pointers grouped on as bare
object ids, whole objects as ``find`` encodes them (relations included, no ACL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.core.aggregate import Column, Plan, plan_pipeline, raw_stages
from bastion.core.auth import Auth
from bastion.core.codec import FileUrl, iso_or_none, number_out, to_rest
from bastion.core.names import check_class_name
from bastion.core.query.parse import QueryLimits
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import is_internal
from bastion.core.types import FieldType, encode_date, parse_iso
from bastion.domain.schema_registry import SchemaRegistry
from bastion.errors import Code, ParseError
from bastion.ports.storage import StorageAdapter


async def run_pipeline(storage: StorageAdapter, schemas: SchemaRegistry, class_name: str, pipeline: Any,
                       where: Any, auth: Auth, file_url: FileUrl,
                       limits: QueryLimits | None = None) -> list[dict[str, Any]]:
    """The results of ``GET /aggregate/:className`` with a pipeline (the master key was checked)."""
    check_class_name(class_name)
    if is_internal(class_name):
        raise ParseError(Code.OPERATION_FORBIDDEN, f"Class {class_name} is not readable.")
    if where is not None and not isinstance(where, dict):
        raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
    schema = schemas.get(class_name)
    if schema is None:
        raw_stages(pipeline)  # a malformed pipeline is refused all the same
        return []  # as Parse Server: a class that does not exist has no objects
    plan = plan_pipeline(pipeline, schema, schemas.get, limits, where)
    rows = await storage.aggregate(schema, plan, auth.access())
    return encode_results(plan, schema, rows, file_url)


def encode_results(plan: Plan, schema: ClassSchema, rows: list[dict[str, Any]],
                   file_url: FileUrl) -> list[dict[str, Any]]:
    columns = plan.columns
    encoders = [(c, _encoder(c, file_url)) for c in columns]
    relations = ({name: {"__type": "Relation", "className": ft.target_class}
                  for name, ft in schema.fields.items() if ft.type == "Relation"}
                 if plan.whole_documents else {})
    composite = any(c.key is not None for c in columns)
    results: list[dict[str, Any]] = []
    for row in rows:
        out: dict[str, Any] = {}
        key: dict[str, Any] = {}
        for column, encode in encoders:
            value = row.get(column.name)
            if value is None:
                continue
            if column.key is not None:
                key[column.key] = encode(value)
            else:
                out[column.name] = encode(value)
        if composite:
            out["objectId"] = key
        out.setdefault("objectId", None)
        out.update(relations)
        results.append(out)
    return results


def _encoder(column: Column, file_url: FileUrl) -> Callable[[Any], Any]:
    ft = column.type
    if ft.type == "Date" and column.name in ("createdAt", "updatedAt") and column.key is None:
        return lambda v: iso_or_none(v)
    if ft.type == "Array" and column.element is not None:
        item = _item_decoder(column.element, file_url)
        return lambda v: [item(x) for x in v if x is not None] if isinstance(v, list) else v
    if ft.type == "Json":
        return lambda v: v
    return lambda v: to_rest(ft, v, file_url)


def _item_decoder(ft: FieldType, file_url: FileUrl) -> Callable[[Any], Any]:
    """Items of a collected array arrive as JSON (dates as ISO text, booleans maybe as 0/1)."""
    kind = ft.type
    if kind == "Date":
        return lambda v: encode_date(parse_iso(v)) if isinstance(v, str) else v
    if kind == "Boolean":
        return lambda v: bool(v) if isinstance(v, (int, float)) else v
    if kind == "Number":
        return lambda v: number_out(v) if isinstance(v, (int, float)) else v
    if kind in ("Pointer", "File"):
        return lambda v: to_rest(ft, v, file_url) if isinstance(v, str) else v
    return lambda v: v
