"""SQLite storage: the embedded default. Parse Server's PostgreSQL layout, mirrored.

Tables are one per class with the same column names; arrays, objects and ``_rperm``/``_wperm`` are
JSON text, dates ISO-8601 text (which sorts as time does), booleans 0/1. Queries run on a small pool
of reader threads and every write on one writer thread, so the event loop never waits on SQLite
and writers never contend (WAL lets readers go on meanwhile).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bastion.adapters.storage.aggregate_sql import AggregateCompiler
from bastion.adapters.storage.sql import Params, quote
from bastion.adapters.storage.sqlite.aggregate import SqliteAggregateHooks
from bastion.adapters.storage.sqlite.columns import (
    NO_RENAMES,
    case_column,
    column_of,
    has_subquery,
    rename_fields,
    renamed_columns,
)
from bastion.adapters.storage.sqlite.dialect import (
    COLUMN_TYPES,
    INDEX_NAME,
    JSON_TYPES,
    SqliteDialect,
    json_path,
)
from bastion.adapters.storage.sqlite.functions import dumps
from bastion.adapters.storage.sqlite.threads import SqliteThreads, or_missing
from bastion.adapters.storage.system_tables import SystemTables
from bastion.core.aggregate import Plan
from bastion.core.query import ir
from bastion.core.schema import HIDDEN_COLUMNS, ClassSchema
from bastion.core.types import FieldType, parse_iso
from bastion.errors import Code, ParseError
from bastion.ports.storage import (
    AUTH_PROVIDER,
    BASE_COLUMNS,
    MASTER,
    Access,
    DuplicateValue,
    FindQuery,
    Record,
    StorageAdapter,
    UpdateOp,
    apply_op,
)


def _hidden_type(schema: ClassSchema, column: str) -> FieldType | None:
    kind = HIDDEN_COLUMNS.get(schema.class_name, {}).get(column)
    return FieldType(kind) if kind else None


class SqliteStorage(SqliteThreads, StorageAdapter):
    name = "sqlite"

    def __init__(self, path: str | Path, readers: int = 4, busy_timeout: float = 30.0) -> None:
        super().__init__(path, readers, busy_timeout)
        self.dialect = SqliteDialect()
        self._system = SystemTables(self.dialect)
        # The schemas this storage last read or wrote, per class: a subquery's columns, and an
        # index's, depend on its class's fields equal but for case (see ``columns.py``).
        self._schemas: dict[str, ClassSchema] = {}

    async def open(self) -> None:
        self._open_threads()

        def init(conn: sqlite3.Connection) -> None:
            conn.execute('CREATE TABLE IF NOT EXISTS "_SCHEMA" ("className" TEXT PRIMARY KEY, '
                         '"schema" TEXT, "isParseClass" INTEGER)')
            for ddl in self._system.ddl:
                conn.execute(ddl)
            conn.execute('CREATE TABLE IF NOT EXISTS "_ScriptLog" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, '
                         '"time" INTEGER NOT NULL, "level" TEXT NOT NULL, "entry" TEXT NOT NULL)')
            conn.execute('CREATE INDEX IF NOT EXISTS "_ScriptLog_time" ON "_ScriptLog" ("time")')

        await self._write(init)

    # --- encoding -------------------------------------------------------------------------------

    def _encode_record(self, schema: ClassSchema, record: Record) -> dict[str, Any]:
        """Column -> SQLite value of a record's fields."""
        out: dict[str, Any] = {}
        renames = renamed_columns(schema)
        for column, value in record.items():
            if column in ("_rperm", "_wperm"):
                out[column] = dumps(value) if value is not None else None
            elif column in ("createdAt", "updatedAt"):
                out[column] = self.dialect.column_value("Date", value)
            else:
                ft = schema.fields.get(column) or _hidden_type(schema, column)
                out[column_of(renames, column)] = self.dialect.column_value(ft.type if ft else "String", value)
        return out

    def _decode_row(self, schema: ClassSchema, columns: list[str], row: tuple[Any, ...]) -> Record:
        record: Record = {}
        for column, value in zip(columns, row, strict=True):
            if value is None:
                record[column] = None
            elif column in ("_rperm", "_wperm"):
                record[column] = orjson.loads(value)
            elif column in ("createdAt", "updatedAt"):
                record[column] = parse_iso(value)
            else:
                ft = schema.fields.get(column) or _hidden_type(schema, column)
                record[column] = self._decode_value(ft, value)
        return record

    @staticmethod
    def _decode_value(ft: FieldType | None, value: Any) -> Any:
        kind = ft.type if ft else "String"
        if kind == "Date":
            return parse_iso(value)
        if kind == "Boolean":
            return bool(value)
        if kind == "GeoPoint":
            lat, lng = orjson.loads(value)
            return (lat, lng)
        if kind in JSON_TYPES:
            return orjson.loads(value)
        return value

    def _columns(self, schema: ClassSchema) -> list[str]:
        cols = list(BASE_COLUMNS)
        cols.extend(name for name, ft in schema.fields.items()
                    if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL"))
        return cols

    # --- fields equal but for case (sqlite_columns) ---------------------------------------------

    def _renamed(self, schema: ClassSchema, node: Any) -> Any:
        """An IR node or order with its fields naming their columns (mostly: ``node`` itself)."""
        renames = renamed_columns(schema)
        if not renames and not (isinstance(node, ir.Node) and has_subquery(node)):
            return node
        return rename_fields(node, renames, self._schemas.get)

    def _query_renamed(self, schema: ClassSchema, query: FindQuery) -> FindQuery:
        where, order = self._renamed(schema, query.where), self._renamed(schema, query.order)
        if where is query.where and order is query.order:
            return query
        score = self._renamed(schema, query.score) if query.score is not None else None
        return replace(query, where=where, order=order, score=score)

    @staticmethod
    def _reconcile_columns(conn: sqlite3.Connection, schema: ClassSchema) -> None:
        """Rename the columns whose field's column changed as a case sibling came or went."""
        renames = renamed_columns(schema)
        actual = {row[1] for row in conn.execute(f"PRAGMA table_info({quote(schema.class_name)})")}
        stored = [name for name, ft in schema.fields.items()
                  if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL")]
        # Plain names are given up before any is taken, so no two columns are ever equal but for case.
        for name in sorted(stored, key=lambda n: n not in renames):
            wanted = column_of(renames, name)
            other = case_column(name) if wanted == name else name
            if wanted not in actual and other in actual:
                conn.execute(f"ALTER TABLE {quote(schema.class_name)} RENAME COLUMN {quote(other)} TO {quote(wanted)}")

    # --- schema ---------------------------------------------------------------------------------

    async def load_schemas(self) -> list[dict[str, Any]]:
        rows = await self._read(lambda c: c.execute('SELECT "schema" FROM "_SCHEMA"').fetchall())
        docs = [orjson.loads(row[0]) for row in rows]
        self._schemas = {doc["className"]: ClassSchema.from_storage(doc) for doc in docs}
        return docs

    @staticmethod
    def _column_ddl(name: str, ft: FieldType) -> str:
        return f"{quote(name)} {COLUMN_TYPES.get(ft.type, 'TEXT')}"

    @staticmethod
    def _join_ddl(class_name: str, key: str, target: str | None) -> str:
        table = quote(f"_Join:{key}:{class_name}")
        return (f'CREATE TABLE IF NOT EXISTS {table} ("relatedId" TEXT NOT NULL, "owningId" TEXT NOT NULL, '
                f'PRIMARY KEY ("relatedId", "owningId"))')

    async def create_class(self, schema: ClassSchema) -> None:
        columns = ['"objectId" TEXT PRIMARY KEY', '"createdAt" TEXT', '"updatedAt" TEXT',
                   '"_rperm" TEXT', '"_wperm" TEXT']
        renames = renamed_columns(schema)
        for name, ft in schema.fields.items():
            if name in BASE_COLUMNS or ft.type in ("Relation", "ACL"):
                continue
            columns.append(self._column_ddl(column_of(renames, name), ft))
        for name, kind in HIDDEN_COLUMNS.get(schema.class_name, {}).items():
            if name not in schema.fields:
                columns.append(self._column_ddl(name, FieldType(kind)))
        doc = dumps(schema.to_storage())

        def run(conn: sqlite3.Connection) -> None:
            exists = conn.execute('SELECT 1 FROM "_SCHEMA" WHERE "className" = ?', (schema.class_name,)).fetchone()
            if exists:
                raise ParseError(Code.INVALID_CLASS_NAME, f"Class {schema.class_name} already exists.")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(schema.class_name)} ({', '.join(columns)})")
            for name, ft in schema.relation_fields().items():
                conn.execute(self._join_ddl(schema.class_name, name, ft.target_class))
            conn.execute('INSERT INTO "_SCHEMA" ("className", "schema", "isParseClass") VALUES (?, ?, 1)',
                         (schema.class_name, doc))

        await self._write(run)
        self._schemas[schema.class_name] = schema

    async def add_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        doc = dumps(schema.to_storage())

        renames = renamed_columns(schema)

        def run(conn: sqlite3.Connection) -> None:
            self._reconcile_columns(conn, schema)  # a sibling that sorts first takes the plain name
            existing = {row[1] for row in conn.execute(f"PRAGMA table_info({quote(schema.class_name)})")}
            for name, ft in fields.items():
                column = column_of(renames, name)
                if ft.type == "Relation":
                    conn.execute(self._join_ddl(schema.class_name, name, ft.target_class))
                elif ft.type != "ACL" and column not in existing:
                    conn.execute(f"ALTER TABLE {quote(schema.class_name)} ADD COLUMN {self._column_ddl(column, ft)}")
            conn.execute('UPDATE "_SCHEMA" SET "schema" = ? WHERE "className" = ?', (doc, schema.class_name))

        await self._write(run)
        self._schemas[schema.class_name] = schema

    async def delete_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        doc = dumps(schema.to_storage())

        def run(conn: sqlite3.Connection) -> None:
            table = quote(schema.class_name)
            actual = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, ft in fields.items():
                if ft.type == "Relation":
                    conn.execute(f"DROP TABLE IF EXISTS {quote(f'_Join:{name}:{schema.class_name}')}")
                    continue
                # The field's column is its name, or its case column when a sibling came first.
                column = name if name in actual else case_column(name)
                for (index_name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND instr(sql, ?) > 0",
                    (schema.class_name, quote(column)),
                ).fetchall():
                    conn.execute(f"DROP INDEX IF EXISTS {quote(index_name)}")
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {quote(column)}")
            self._reconcile_columns(conn, schema)
            conn.execute('UPDATE "_SCHEMA" SET "schema" = ? WHERE "className" = ?', (doc, schema.class_name))

        await self._write(run)
        self._schemas[schema.class_name] = schema

    async def save_schema(self, schema: ClassSchema) -> None:
        doc = dumps(schema.to_storage())
        await self._write(lambda c: c.execute('UPDATE "_SCHEMA" SET "schema" = ? WHERE "className" = ?',
                                              (doc, schema.class_name)))
        self._schemas[schema.class_name] = schema

    async def create_index(self, class_name: str, name: str, spec: dict[str, Any], unique: bool = False) -> None:
        if not INDEX_NAME.match(name):
            raise ParseError(Code.INVALID_QUERY, f"Invalid index name: {name[:64]}")
        terms = []
        schema = self._schemas.get(class_name)
        renames = renamed_columns(schema) if schema is not None else NO_RENAMES
        for column, direction in spec.items():
            if direction == "text":
                continue
            terms.append(f"{quote(column_of(renames, column))} {'DESC' if direction == -1 else 'ASC'}")
        if not terms:
            return
        kind = "UNIQUE INDEX" if unique else "INDEX"
        sql = (f"CREATE {kind} IF NOT EXISTS {quote(class_name + '_' + name)} "
               f"ON {quote(class_name)} ({', '.join(terms)})")

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql)
            except sqlite3.IntegrityError:
                raise ParseError(Code.DUPLICATE_VALUE,
                                 "A duplicate value for a field with unique values was provided") from None

        await self._write(run)

    async def drop_index(self, class_name: str, name: str) -> None:
        await self._write(lambda c: c.execute(f"DROP INDEX IF EXISTS {quote(class_name + '_' + name)}"))

    async def ensure_auth_data_uniqueness(self, provider: str) -> None:
        if not AUTH_PROVIDER.fullmatch(provider):
            raise ValueError(f"invalid auth provider name {provider!r}")
        # DDL takes no parameters: the provider is a checked identifier-like literal.
        key = f"json_extract(\"authData\", '$.\"{provider}\".id')"
        index = quote(f"_User_unique_authData_{provider}_id")

        def run(conn: sqlite3.Connection) -> None:
            with suppress(sqlite3.IntegrityError):  # ids already duplicated: no index, as Parse
                conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS {index} ON "_User" ({key}) WHERE {key} IS NOT NULL')

        await self._write(run)

    async def delete_class(self, class_name: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f"DROP TABLE IF EXISTS {quote(class_name)}")
            prefix = "_Join:"
            suffix = ":" + class_name
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                if table.startswith(prefix) and table.endswith(suffix):
                    conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            conn.execute('DELETE FROM "_SCHEMA" WHERE "className" = ?', (class_name,))

        await self._write(run)
        self._schemas.pop(class_name, None)

    async def purge(self, class_name: str) -> None:
        await or_missing(self._write(lambda c: c.execute(f"DELETE FROM {quote(class_name)}")), None)

    # --- objects --------------------------------------------------------------------------------

    async def insert(self, schema: ClassSchema, record: Record) -> None:
        row = self._encode_record(schema, record)
        cols = list(row)
        sql = (f"INSERT INTO {quote(schema.class_name)} ({', '.join(quote(c) for c in cols)}) "
               f"VALUES ({', '.join('?' for _ in cols)})")
        values = tuple(row.values())

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql, values)
            except sqlite3.IntegrityError as exc:
                raise DuplicateValue(str(exc)) from None

        await self._write(run)

    async def update(self, schema: ClassSchema, object_id: str, ops: list[UpdateOp], access: Access,
                     where: ir.Node = ir.TRUE) -> Record | None:
        columns = self._columns(schema)
        renames = renamed_columns(schema)
        params = Params(self.dialect)
        object_mark = params.add(object_id)
        predicate = self.dialect.where(self._renamed(schema, where), params, access)
        acl = self.dialect.write_access(access, params)
        select = (f"SELECT {', '.join(quote(column_of(renames, c)) for c in columns)} FROM {quote(schema.class_name)} "
                  f'WHERE "objectId" = {object_mark} AND {predicate} AND {acl}')
        select_params = tuple(params.values)

        def run(conn: sqlite3.Connection) -> Record | None:
            row = conn.execute(select, select_params).fetchone()
            if row is None:
                return None
            record = self._decode_row(schema, columns, row)
            changed: dict[str, Any] = {}
            for op in ops:
                record[op.column] = apply_op(record.get(op.column), op)
                changed[op.column] = record[op.column]
            if changed:
                encoded = self._encode_record(schema, changed)
                sets = ", ".join(f"{quote(c)} = ?" for c in encoded)
                try:
                    conn.execute(f'UPDATE {quote(schema.class_name)} SET {sets} WHERE "objectId" = ?',
                                 (*encoded.values(), object_id))
                except sqlite3.IntegrityError as exc:
                    raise DuplicateValue(str(exc)) from None
            return record

        return await or_missing(self._write(run), None)

    async def delete(self, schema: ClassSchema, object_id: str, access: Access, where: ir.Node = ir.TRUE) -> bool:
        params = Params(self.dialect)
        mark = params.add(object_id)
        predicate = self.dialect.where(self._renamed(schema, where), params, access)
        acl = self.dialect.write_access(access, params)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE "objectId" = {mark} AND {predicate} AND {acl}'
        values = tuple(params.values)
        return bool(await or_missing(self._write(lambda c: c.execute(sql, values).rowcount), 0))

    async def delete_matching(self, schema: ClassSchema, where: ir.Node) -> int:
        params = Params(self.dialect)
        predicate = self.dialect.where(where, params, MASTER)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE {predicate}'
        values = tuple(params.values)
        return int(await or_missing(self._write(lambda c: c.execute(sql, values).rowcount), 0))

    async def find(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[Record]:
        columns = self._columns(schema) if query.columns is None else list(query.columns)
        renames = renamed_columns(schema)
        selected = [column_of(renames, c) for c in columns] if renames else columns
        sql, values = self.dialect.select(schema, self._query_renamed(schema, query), access, selected)
        rows = await or_missing(self._read(lambda c: c.execute(sql, values).fetchall()), [])
        return [self._decode_row(schema, columns, row) for row in rows]

    async def count(self, schema: ClassSchema, where: ir.Node, access: Access) -> int:
        sql, values = self.dialect.count(schema, self._renamed(schema, where), access)
        row = await or_missing(self._read(lambda c: c.execute(sql, values).fetchone()), (0,))
        return int(row[0])

    async def distinct(self, schema: ClassSchema, field: ir.Field, where: ir.Node, access: Access) -> list[Any]:
        params = Params(self.dialect)
        predicate = self.dialect.where(self._renamed(schema, where), params, access)
        acl = self.dialect.read_access(access, params)
        table = quote(schema.class_name)
        ft = schema.fields.get(field.column)
        field = self._renamed(schema, field)
        expr = self.dialect.value_expr(field)
        if field.type == "Array" and not field.path:
            sql = (f"SELECT DISTINCT j.value, j.type FROM {table}, json_each({table}.{quote(field.column)}) j "
                   f"WHERE {predicate} AND {acl}")
        elif field.path:
            sql = (f"SELECT DISTINCT {expr}, json_type({quote(field.column)}, '{json_path(field.path)}') "
                   f"FROM {table} WHERE {predicate} AND {acl} AND {expr} IS NOT NULL")
        else:
            sql = f"SELECT DISTINCT {expr} FROM {table} WHERE {predicate} AND {acl} AND {expr} IS NOT NULL"
        values = params.values
        rows = await or_missing(self._read(lambda c: c.execute(sql, values).fetchall()), [])
        if field.type == "Array" or field.path:
            return [_json_cell(value, kind) for value, kind in rows]
        return [self._decode_value(ft, row[0]) for row in rows]

    # --- relations ------------------------------------------------------------------------------

    async def add_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                            related_ids: list[str]) -> None:
        table = quote(f"_Join:{key}:{owning_class}")
        rows = [(related, owning_id) for related in related_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(self._join_ddl(owning_class, key, target_class))
            conn.executemany(f'INSERT OR IGNORE INTO {table} ("relatedId", "owningId") VALUES (?, ?)', rows)

        await self._write(run)

    async def remove_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                               related_ids: list[str]) -> None:
        table = quote(f"_Join:{key}:{owning_class}")
        rows = [(related, owning_id) for related in related_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(self._join_ddl(owning_class, key, target_class))
            conn.executemany(f'DELETE FROM {table} WHERE "relatedId" = ? AND "owningId" = ?', rows)

        await self._write(run)

    # --- config, webhooks, the push queue: system_tables.py's statements -------------------------

    async def get_config(self) -> dict[str, Any] | None:
        sql, values = self._system.config_select()
        return self._system.config(await self._read(lambda c: c.execute(sql, values).fetchone()))

    async def set_config(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> None:
        sql, values = self._system.config_upsert(params, master_key_only)
        await self._write(lambda c: c.execute(sql, values))

    async def delete_config(self) -> bool:
        sql, values = self._system.config_delete()
        return bool(await self._write(lambda c: c.execute(sql, values).rowcount))

    async def load_hooks(self) -> list[dict[str, Any]]:
        sql, values = self._system.hooks_select()
        return self._system.hooks(await self._read(lambda c: c.execute(sql, values).fetchall()))

    async def save_hook(self, hook: dict[str, str]) -> None:
        (update, update_values), (insert, insert_values) = self._system.hook_save(hook)

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute(update, update_values).rowcount == 0:
                conn.execute(insert, insert_values)

        await self._write(run)

    async def delete_hooks(self, hook: dict[str, str]) -> int:
        sql, values = self._system.hooks_delete(hook)
        return await self._write(lambda c: c.execute(sql, values).rowcount)

    async def push_enqueue(self, rows: list[dict[str, Any]]) -> None:
        sql, values = self._system.queue_insert(rows)
        await self._write(lambda c: c.executemany(sql, values))

    async def push_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
        sql, values = self._system.queue_claim(worker, now, lease_ms, limit)
        return self._system.claimed(await self._write(lambda c: c.execute(sql, values).fetchall()))

    async def push_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> bool:
        sql, values = self._system.queue_reschedule(row_id, worker, body, attempts, not_before)
        return bool(await self._write(lambda c: c.execute(sql, values).rowcount))

    async def push_done(self, row_id: str, worker: str) -> bool:
        sql, values = self._system.queue_done(row_id, worker)
        return bool(await self._write(lambda c: c.execute(sql, values).rowcount))

    async def push_rows(self, push_id: str | None = None) -> list[dict[str, Any]]:
        sql, values = self._system.queue_select(push_id)
        return self._system.queue_rows(await self._read(lambda c: c.execute(sql, values).fetchall()))

    # --- the script log ---------------------------------------------------------------------------

    async def log_append(self, rows: list[tuple[int, str, str]]) -> None:
        await self._write(lambda c: c.executemany(
            'INSERT INTO "_ScriptLog" ("time", "level", "entry") VALUES (?, ?, ?)', rows))

    async def log_read(self, since: int, until: int, level: str | None, limit: int, descending: bool) -> list[str]:
        direction = "DESC" if descending else "ASC"
        where, values = ('AND "level" = ?', (level,)) if level is not None else ("", ())
        rows = await self._read(lambda c: c.execute(
            f'SELECT "entry" FROM "_ScriptLog" WHERE "time" >= ? AND "time" <= ? {where} '
            f'ORDER BY "time" {direction}, "id" {direction} LIMIT ?', (since, until, *values, limit)).fetchall())
        return [row[0] for row in rows]

    async def log_trim(self, before: int, keep: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute('DELETE FROM "_ScriptLog" WHERE "time" < ?', (before,))
            conn.execute('DELETE FROM "_ScriptLog" WHERE "id" <= (SELECT "id" FROM "_ScriptLog" '
                         'ORDER BY "id" DESC LIMIT 1 OFFSET ?)', (keep,))

        await self._write(run)

    # --- aggregation pipelines ------------------------------------------------------------------

    async def aggregate(self, schema: ClassSchema, plan: Plan, access: Access) -> list[Record]:
        compiler = AggregateCompiler(self.dialect, SqliteAggregateHooks())
        renames = renamed_columns(schema)
        sql, values = compiler.compile(plan, schema, access, renames,
                                       lambda node: self._renamed(schema, node))
        rows = await self._read(lambda c: c.execute(sql, values).fetchall())
        decoders = [(c.name, self._aggregate_decoder(c.type)) for c in plan.columns]
        return [{name: None if value is None else decode(value) for (name, decode), value in zip(decoders, row,
                                                                                               strict=True)}
                for row in rows]

    def _aggregate_decoder(self, ft: FieldType) -> Callable[[Any], Any]:
        if ft.type == "Json":
            return orjson.loads
        if ft.type == "Number":
            return lambda v: v
        return lambda v: self._decode_value(ft, v)


def _json_cell(value: Any, kind: str) -> Any:
    if kind in ("object", "array"):
        return orjson.loads(value)
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind == "integer" or kind == "real":
        return value
    return value
