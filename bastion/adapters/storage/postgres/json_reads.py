"""The fast read path of PostgreSQL: objects selected as REST JSON text (object_json.py), gets and
queries in flight together answered by one statement (batched_reads.py, lateral.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from bastion.adapters.storage.postgres import lateral, object_json
from bastion.adapters.storage.postgres.batched_reads import BatchedReads
from bastion.adapters.storage.postgres.codecs import ARRAY_ENCODERS, decode_perms
from bastion.adapters.storage.postgres.transaction import CURRENT_TRANSACTION
from bastion.core.acl import perms_to_acl
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.ports.storage import Access, FindQuery

if TYPE_CHECKING:
    from bastion.adapters.storage.postgres.storage import PostgresStorage


class JsonReads:
    """``find_json`` of a PostgreSQL storage: objects read as REST JSON text, concurrent reads that one
    statement can answer sharing it."""

    def __init__(self, storage: PostgresStorage) -> None:
        self.storage = storage
        self._acl_suffixes: dict[tuple[tuple[str, ...] | None, tuple[str, ...] | None], str] = {}
        # Concurrent reads that one statement can answer share it (batched_reads.py).
        self._gets: BatchedReads[str, list[str] | None] = BatchedReads(max_batch=256)
        self._queries: BatchedReads[list[Any], list[str] | None] = BatchedReads(max_batch=64)

    async def find_json(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[str] | None:
        columns = self.storage._columns(schema) if query.columns is None else list(query.columns)
        expr = self._object_json(schema, columns)
        if expr is None:
            return None
        select_list = f'{expr}, "_rperm", "_wperm"'
        batching = CURRENT_TRANSACTION.get() is None  # a transaction's reads use its one connection, in turn
        object_id = _point_read(query)
        if object_id is not None and batching:
            # Concurrent gets of this class, for this reader, share one statement (batched_reads.py).
            key = (id(schema), tuple(columns), None if access.is_master else tuple(access.acting_as or ()))
            return await self._gets.read(
                key, object_id,
                lambda: self._json_rows(*self.storage.dialect.select(schema, query, access, columns, select_list)),
                lambda ids: self._json_by_ids(schema, ids, access, columns, expr))
        sql, values = self.storage.dialect.select(schema, query, access, columns, select_list)
        plan = lateral.lateral_plan(sql, len(values)) if batching else None
        shared = plan.shared_key(values) if plan is not None else None
        if plan is None or shared is None:
            return await self._json_rows(sql, values)
        # Concurrent queries of this statement, for this reader, run as one (lateral.py).
        return await self._queries.read((sql, shared), values, lambda: self._json_rows(sql, values),
                                        lambda runs: self._json_rows_lateral(plan, runs))

    async def _json_rows_lateral(self, plan: lateral.LateralPlan,
                                 runs: list[list[Any]]) -> list[list[str] | None]:
        """What ``_json_rows`` answers for each run's values, by one statement."""
        rows = await self.storage._class_rows(plan.sql, *plan.arguments(runs, ARRAY_ENCODERS))
        grouped: list[list[Any]] = [[] for _ in runs]
        for row in rows:
            grouped[row[0] - 1].append(row[1:])
        return [self._texts(group) for group in grouped]

    async def _json_rows(self, sql: str, values: list[Any]) -> list[str] | None:
        """The objects' JSON of a find_json statement (None: only the ordinary path can decode one)."""
        rows = await self.storage._class_rows(sql, *values)
        return self._texts(rows)

    async def _json_by_ids(self, schema: ClassSchema, ids: list[str], access: Access, columns: list[str],
                           expr: str) -> list[list[str] | None]:
        """The answer of a get of each of ``ids`` (an id may come twice), by one statement."""
        query = FindQuery(ir.In(ir.Field("objectId", "String"), tuple(dict.fromkeys(ids))))
        sql, values = self.storage.dialect.select(schema, query, access, columns,
                                          select_list=f'"objectId", {expr}, "_rperm", "_wperm"')
        rows = await self.storage._class_rows(sql, *values)
        found = {row[0]: self._texts([row[1:]]) for row in rows}
        return [found.get(object_id, []) for object_id in ids]

    def _texts(self, rows: Sequence[Sequence[Any]]) -> list[str] | None:
        """Rows of (object JSON, _rperm, _wperm) as the objects' JSON texts (None: one holds what
        only the ordinary path can decode)."""
        out = []
        for text, rperm, wperm in rows:
            text = self._object_text(text, rperm, wperm)
            if text is None:
                return None
            out.append(text)
        return out

    def _object_text(self, text: str, rperm: list[str] | None, wperm: list[str] | None) -> str | None:
        """A row's object JSON with its ACL (None: only the ordinary path can decode it)."""
        if "\\u0001" in text:  # an escaped U+0000/U+0001 inside
            return None
        if rperm is not None or wperm is not None:
            suffix = self._acl_suffix(rperm, wperm)
            if suffix:
                return text[:-1] + suffix
        return text

    def _acl_suffix(self, rperm: list[str] | None, wperm: list[str] | None) -> str:
        """``,"ACL":{...}}``, the end of an object's JSON with these permissions ("" for no ACL).
        Objects share few distinct permissions, so the text is kept per pair."""
        key = (tuple(rperm) if rperm is not None else None, tuple(wperm) if wperm is not None else None)
        suffix = self._acl_suffixes.get(key)
        if suffix is None:
            acl = perms_to_acl(rperm and decode_perms(rperm), wperm and decode_perms(wperm))
            suffix = "" if acl is None else ',"ACL":' + orjson.dumps(acl).decode() + "}"
            if len(self._acl_suffixes) >= 4096:
                self._acl_suffixes.clear()
            self._acl_suffixes[key] = suffix
        return suffix

    def _object_json(self, schema: ClassSchema, columns: list[str]) -> str | None:
        """The select-list expression writing these columns as REST JSON (None: not expressible)."""
        def make() -> str | None:
            described = [(c, self.storage._kind(schema, c), self._target(schema, c)) for c in columns
                         if c not in ("_rperm", "_wperm")]
            relations = [(name, ft.target_class or "") for name, ft in schema.fields.items()
                         if ft.type == "Relation"]
            return object_json.object_json(described, relations)

        return schema.derive(("object_json", tuple(columns)), make)

    @staticmethod
    def _target(schema: ClassSchema, column: str) -> str | None:
        ft = schema.fields.get(column)
        return ft.target_class if ft is not None else None


def _point_read(query: FindQuery) -> str | None:
    """The id a query reads when it is a plain read of one object by id (a get), else None."""
    where = query.where
    if (type(where) is ir.Compare and where.op == ir.EQ and type(where.value) is str
            and where.field.column == "objectId" and not where.field.path and not query.order
            and not query.skip and query.score is None and (query.limit is None or query.limit > 0)):
        return where.value
    return None
