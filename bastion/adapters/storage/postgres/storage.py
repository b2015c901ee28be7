"""PostgreSQL storage: Parse Server's table layout, served through an asyncpg pool.

A database written by Parse Server is served as it is: a table per class with typed columns
(``point`` for GeoPoints, ``polygon``, ``jsonb`` for objects, arrays and bytes, ``text[]`` for
``_rperm``/``_wperm``), the ``_SCHEMA`` table, ``_Join:<field>:<class>`` tables and ``_GlobalConfig``.

Every call is one statement with bound parameters, textually stable per query shape so asyncpg's
per-connection prepared statement cache serves it. Pooled connections are not reset on release
(one round trip saved per request), so nothing here may leave session state behind: no SET, no
LISTEN, no temporary objects; transactions are always closed by ``async with``.

PostgreSQL cannot hold the NUL character in ``text`` or ``jsonb``. Strings are therefore escaped on
their way in and out (by the connection's text and jsonb codecs): U+0001 becomes U+0001 U+0002 and
U+0000 becomes U+0001 U+0001. The escape preserves code point order, so equality, ``$in``, ranges and
sorting still mean what the matcher means; only a regular expression sees the escaped form, and
only for strings holding U+0000 or U+0001. Other strings are stored unchanged, as Parse Server
stores them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, cast

import asyncpg

from bastion.adapters.storage.aggregate_sql import AggregateCompiler
from bastion.adapters.storage.postgres.aggregate import PostgresAggregateHooks
from bastion.adapters.storage.postgres.codecs import DECODERS, encode_text, init_connection
from bastion.adapters.storage.postgres.dialect import (
    BASE_TYPES,
    CASTS,
    COLUMN_TYPES,
    INDEX_NAME,
    USER_INTERNAL_COLUMNS,
    PostgresDialect,
    jsonb_elements,
)
from bastion.adapters.storage.postgres.errors import (
    MissingTable,
    check_identifier,
    missing_table,
    parse_errors,
)
from bastion.adapters.storage.postgres.json_reads import JsonReads
from bastion.adapters.storage.postgres.pool import ConnectionPool
from bastion.adapters.storage.postgres.transaction import CURRENT_TRANSACTION, Transaction
from bastion.adapters.storage.sql import Params, quote
from bastion.adapters.storage.system_tables import SystemTables
from bastion.core.aggregate import Plan
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError
from bastion.ports.storage import (
    AUTH_PROVIDER,
    BASE_COLUMNS,
    MASTER,
    Access,
    FindQuery,
    Record,
    StorageAdapter,
    UpdateOp,
)

# What CREATE … IF NOT EXISTS raises when another process creates the same thing at the same
# moment: the catalog's unique indexes (on the relation, or on the table's row type) catch it.
_CREATED_CONCURRENTLY = (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError, asyncpg.DuplicateObjectError)
_SAVE_SCHEMA = 'UPDATE "_SCHEMA" SET "schema" = $1::jsonb WHERE "className" = $2::text'


CONNECT_TIMEOUT = 10.0  # seconds


def _changed(status: str) -> int:
    """How many rows a statement changed, from its command status ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStorage(StorageAdapter):
    name = "postgres"

    def __init__(self, url: str, min_size: int = 2, max_size: int = 10, statement_cache_size: int = 1024,
                 server_settings: dict[str, str] | None = None) -> None:
        self.url = url
        self.dialect = PostgresDialect()
        self._system = SystemTables(self.dialect)
        self._min_size = min_size
        self._max_size = max_size
        self._statement_cache_size = statement_cache_size
        # Set once per connection at start-up (e.g. statement_timeout), so never left over by a request.
        self._server_settings = server_settings
        self._pool: ConnectionPool | None = None
        self._json_reads = JsonReads(self)

    @property
    def pool(self) -> ConnectionPool:
        """The pool, or inside this task's transaction its connection (with the pool's methods)."""
        current = CURRENT_TRANSACTION.get()
        if current is not None and current.storage is self:
            return cast(ConnectionPool, current)
        assert self._pool is not None, "storage is not open"
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One pooled connection in one transaction, used by every call of this task inside."""
        current = CURRENT_TRANSACTION.get()
        if current is not None and current.storage is self:
            yield
            return
        async with self.pool.acquire() as conn, conn.transaction():
            token = CURRENT_TRANSACTION.set(Transaction(self, conn))
            try:
                yield
            finally:
                CURRENT_TRANSACTION.reset(token)

    async def open(self) -> None:
        async def connect() -> asyncpg.Connection:
            # A server that accepts but never answers fails the connect in bounded time.
            conn = await asyncpg.connect(self.url, statement_cache_size=self._statement_cache_size,
                                         server_settings=self._server_settings, timeout=CONNECT_TIMEOUT)
            try:
                await init_connection(conn)
            except BaseException:
                conn.terminate()
                raise
            return conn

        pool = ConnectionPool(connect, min_size=self._min_size, max_size=self._max_size)
        await pool.open()
        self._pool = pool
        async with self.pool.acquire() as conn:
            collation = await conn.fetchval(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()")
            self.dialect.collate = "" if collation in ("C", "POSIX") else ' COLLATE "C"'
            for ddl in ('CREATE TABLE IF NOT EXISTS "_SCHEMA" ("className" varchar(120), "schema" jsonb, '
                        '"isParseClass" bool, PRIMARY KEY ("className"))',
                        *self._system.ddl,
                        'CREATE TABLE IF NOT EXISTS "_ScriptLog" ("id" bigserial PRIMARY KEY, "time" bigint NOT NULL, '
                        '"level" text NOT NULL, "entry" text NOT NULL)',
                        'CREATE INDEX IF NOT EXISTS "_ScriptLog_time" ON "_ScriptLog" ("time")'):
                # Another process may create it at the same moment.
                with suppress(*_CREATED_CONCURRENTLY):
                    await conn.execute(ddl)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # --- columns and values ---------------------------------------------------------------------

    @staticmethod
    def _kind(schema: ClassSchema, column: str) -> str:
        kind = BASE_TYPES.get(column)
        if kind:
            return kind
        ft = schema.fields.get(column)
        if ft is not None:
            return ft.type
        if schema.class_name == "_User" and column in USER_INTERNAL_COLUMNS:
            return USER_INTERNAL_COLUMNS[column]
        return "String"

    def _columns(self, schema: ClassSchema) -> list[str]:
        return list(schema.derive("columns", lambda: (*BASE_COLUMNS, *(
            name for name, ft in schema.fields.items() if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL")))))

    def _decoder(self, schema: ClassSchema, columns: list[str]) -> Callable[[Any], Record]:
        return schema.derive(("decoder", tuple(columns)), lambda: self._new_decoder(schema, columns))

    def _new_decoder(self, schema: ClassSchema, columns: list[str]) -> Callable[[Any], Record]:
        decoders = [(column, DECODERS.get(self._kind(schema, column))) for column in columns]

        def decode(row: Any) -> Record:
            record: Record = {}
            for (column, fn), value in zip(decoders, row, strict=True):
                record[column] = fn(value) if fn is not None and value is not None else value
            return record

        return decode

    @staticmethod
    def _column_ddl(name: str, kind: str) -> str:
        return f"{quote(name)} {COLUMN_TYPES.get(kind, 'text')}"

    @staticmethod
    def _join_ddl(class_name: str, key: str) -> str:
        table = quote(f"_Join:{key}:{class_name}")
        return (f'CREATE TABLE IF NOT EXISTS {table} ("relatedId" varchar(120), "owningId" varchar(120), '
                f'PRIMARY KEY ("relatedId", "owningId"))')

    # --- schema ---------------------------------------------------------------------------------

    async def load_schemas(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch('SELECT "schema" FROM "_SCHEMA"')
        return [row[0] for row in rows]

    async def create_class(self, schema: ClassSchema) -> None:
        schema.derived.clear()  # statements built for the old columns
        name = schema.class_name
        check_identifier(name, Code.INVALID_CLASS_NAME)
        columns = ['"objectId" text', '"createdAt" timestamp with time zone',
                   '"updatedAt" timestamp with time zone', '"_rperm" text[]', '"_wperm" text[]']
        for field, ft in schema.fields.items():
            if field in BASE_COLUMNS or ft.type in ("Relation", "ACL"):
                continue
            check_identifier(field, Code.INVALID_KEY_NAME)
            columns.append(self._column_ddl(field, ft.type))
        if name == "_User":
            columns.extend(self._column_ddl(c, kind) for c, kind in USER_INTERNAL_COLUMNS.items()
                           if c not in schema.fields)
        columns.append('PRIMARY KEY ("objectId")')
        relations = list(schema.relation_fields())
        for key in relations:
            check_identifier(f"_Join:{key}:{name}", Code.INVALID_KEY_NAME)
        exists = ParseError(Code.INVALID_CLASS_NAME, f"Class {name} already exists.")
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if await conn.fetchval('SELECT 1 FROM "_SCHEMA" WHERE "className" = $1::text', name):
                    raise exists
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(columns)})")
                for key in relations:
                    await conn.execute(self._join_ddl(name, key))
                await conn.execute('INSERT INTO "_SCHEMA" ("className", "schema", "isParseClass") '
                                   'VALUES ($1::text, $2::jsonb, TRUE)', name, schema.to_storage())
        except _CREATED_CONCURRENTLY:
            raise exists from None  # a concurrent create of the same class won

    async def add_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        table = quote(schema.class_name)

        def add(name: str, ft: FieldType) -> str:
            if ft.type == "Relation":
                check_identifier(f"_Join:{name}:{schema.class_name}", Code.INVALID_KEY_NAME)
                return self._join_ddl(schema.class_name, name)
            check_identifier(name, Code.INVALID_KEY_NAME)
            return f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {self._column_ddl(name, ft.type)}"

        await self._alter_columns(schema, fields, add)

    async def delete_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        table = quote(schema.class_name)

        def drop(name: str, ft: FieldType) -> str:
            if ft.type == "Relation":
                return f"DROP TABLE IF EXISTS {quote(f'_Join:{name}:{schema.class_name}')}"
            return f"ALTER TABLE {table} DROP COLUMN IF EXISTS {quote(name)}"  # its indexes go too, as in SQLite

        await self._alter_columns(schema, fields, drop)

    async def _alter_columns(self, schema: ClassSchema, fields: dict[str, FieldType],
                             ddl: Callable[[str, FieldType], str]) -> None:
        """``ddl``'s statement for each field that has a column or a join table, then the schema's new
        document, in one transaction."""
        schema.derived.clear()  # statements built for the old columns
        with parse_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                for name, ft in fields.items():
                    if ft.type == "Relation" or (ft.type != "ACL" and name not in BASE_COLUMNS):
                        await conn.execute(ddl(name, ft))
                await conn.execute(_SAVE_SCHEMA, schema.to_storage(), schema.class_name)

    async def save_schema(self, schema: ClassSchema) -> None:
        await self.pool.execute(_SAVE_SCHEMA, schema.to_storage(), schema.class_name)

    @staticmethod
    def _index_name(class_name: str, name: str) -> str:
        if not INDEX_NAME.match(name):
            raise ParseError(Code.INVALID_QUERY, f"Invalid index name: {name[:64]}")
        full = f"{class_name}_{name}"  # index names are per schema, not per table
        check_identifier(full, Code.INVALID_QUERY)
        return full

    async def create_index(self, class_name: str, name: str, spec: dict[str, Any], unique: bool = False) -> None:
        index = self._index_name(class_name, name)
        terms = [f"{quote(column)} {'DESC' if direction == -1 else 'ASC'}"
                 for column, direction in spec.items() if direction != "text"]
        if not terms:
            return
        kind = "UNIQUE INDEX" if unique else "INDEX"
        sql = f"CREATE {kind} IF NOT EXISTS {quote(index)} ON {quote(class_name)} ({', '.join(terms)})"
        try:
            await self.pool.execute(sql)
        except asyncpg.UniqueViolationError:
            raise ParseError(Code.DUPLICATE_VALUE,
                             "A duplicate value for a field with unique values was provided") from None
        except asyncpg.UndefinedColumnError as exc:
            raise ParseError(Code.INVALID_QUERY, f"{exc}, cannot add index.") from None
        except asyncpg.UndefinedTableError:
            raise ParseError(Code.INVALID_CLASS_NAME, f"Class {class_name} does not exist.") from None

    async def drop_index(self, class_name: str, name: str) -> None:
        index = self._index_name(class_name, name)
        async with self.pool.acquire() as conn, conn.transaction():
            # Ours carry the class prefix; Parse Server names indexes as given. Only this table's.
            found = await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = $1::text AND indexname = ANY($2::text[])", class_name, [index, name])
            for row in found:
                try:
                    await conn.execute(f"DROP INDEX IF EXISTS {quote(row[0])}")
                except asyncpg.DependentObjectsStillExistError:
                    raise ParseError(Code.INVALID_QUERY, f"Index {name} cannot be dropped.") from None

    async def ensure_auth_data_uniqueness(self, provider: str) -> None:
        if not AUTH_PROVIDER.fullmatch(provider):
            raise ValueError(f"invalid auth provider name {provider!r}")
        # Parse Server's own index, expression for expression, so both servers share it. DDL takes
        # no parameters: the provider is a checked identifier-like literal.
        key = f"((\"authData\" -> '{provider}'::text) ->> 'id'::text)"
        index = quote(f"_User_unique_authData_{provider}_id")
        with suppress(*_CREATED_CONCURRENTLY):
            await self.pool.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS {index} ON "_User" ({key}) '
                                    f"WHERE {key} IS NOT NULL")

    async def delete_class(self, class_name: str) -> None:
        suffix = ":" + class_name
        async with self.pool.acquire() as conn, conn.transaction():
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND starts_with(tablename::text, '_Join:')")
            await conn.execute(f"DROP TABLE IF EXISTS {quote(class_name)}")
            for (table,) in tables:
                if table.endswith(suffix):
                    await conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            await conn.execute('DELETE FROM "_SCHEMA" WHERE "className" = $1::text', class_name)

    async def purge(self, class_name: str) -> None:
        with suppress(asyncpg.UndefinedTableError):
            await self.pool.execute(f"DELETE FROM {quote(class_name)}")

    # --- objects --------------------------------------------------------------------------------

    async def insert(self, schema: ClassSchema, record: Record) -> None:
        kinds = tuple(self._kind(schema, column) for column in record)
        encode = self.dialect.encode
        values = [encode(kind, value) for kind, value in zip(kinds, record.values(), strict=True)]

        def make() -> str:
            marks = [f"${i}::{CASTS.get(kind, 'text')}" for i, kind in enumerate(kinds, 1)]
            return (f"INSERT INTO {quote(schema.class_name)} ({', '.join(quote(c) for c in record)}) "
                    f"VALUES ({', '.join(marks)})")

        # The statement's text depends on the columns and their types only: built once per schema.
        sql = schema.derive(("insert", tuple(record), kinds), make)
        with parse_errors(lambda: ParseError(Code.INVALID_CLASS_NAME, f"Class {schema.class_name} does not exist.")):
            await self.pool.execute(sql, *values)

    async def update(self, schema: ClassSchema, object_id: str, ops: list[UpdateOp], access: Access,
                     where: ir.Node = ir.TRUE) -> Record | None:
        columns = self._columns(schema)
        params = Params(self.dialect)
        object_mark = params.add(object_id)
        assignments: dict[str, str] = {}
        for op in ops:
            current = assignments.get(op.column, quote(op.column))
            assignments[op.column] = self.dialect.op_sql(self._kind(schema, op.column), op, current, params)
        predicate = self.dialect.where(where, params, access)
        acl = self.dialect.write_access(access, params)
        table = quote(schema.class_name)
        condition = f'"objectId" = {object_mark}::text AND {predicate} AND {acl}'
        returning = ", ".join(quote(c) for c in columns)
        if assignments:
            sets = ", ".join(f"{quote(c)} = {expr}" for c, expr in assignments.items())
            sql = f"UPDATE {table} SET {sets} WHERE {condition} RETURNING {returning}"
        else:
            sql = f"SELECT {returning} FROM {table} WHERE {condition}"
        try:
            with parse_errors(missing_table):
                row = await self.pool.fetchrow(sql, *params.values)
        except MissingTable:
            return None
        return None if row is None else self._decoder(schema, columns)(row)

    async def delete(self, schema: ClassSchema, object_id: str, access: Access, where: ir.Node = ir.TRUE) -> bool:
        params = Params(self.dialect)
        mark = params.add(object_id)
        predicate = self.dialect.where(where, params, access)
        acl = self.dialect.write_access(access, params)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE "objectId" = {mark}::text AND {predicate} AND {acl}'
        try:
            with parse_errors(missing_table):
                status = await self.pool.execute(sql, *params.values)
        except MissingTable:
            return False
        return status != "DELETE 0"

    async def delete_matching(self, schema: ClassSchema, where: ir.Node) -> int:
        params = Params(self.dialect)
        predicate = self.dialect.where(where, params, MASTER)
        sql = f'DELETE FROM {quote(schema.class_name)} WHERE {predicate}'
        try:
            with parse_errors(missing_table):
                status = await self.pool.execute(sql, *params.values)
        except MissingTable:
            return 0
        return _changed(status)

    async def find(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[Record]:
        columns = self._columns(schema) if query.columns is None else list(query.columns)
        sql, values = self.dialect.select(schema, query, access, columns)
        rows = await self._class_rows(sql, *values)
        decode = self._decoder(schema, columns)
        return [decode(row) for row in rows]

    def find_json(self, schema: ClassSchema, query: FindQuery,
                  access: Access) -> Coroutine[Any, Any, list[str] | None]:
        # The reads' own coroutine, handed back unawaited: the hottest read pays no extra frame.
        return self._json_reads.find_json(schema, query, access)

    async def _class_rows(self, sql: str, *values: Any) -> list[asyncpg.Record]:
        """A read's rows; none when the class's table does not exist (an empty class)."""
        try:
            with parse_errors(missing_table):
                return await self.pool.fetch(sql, *values)
        except MissingTable:
            return []

    async def count(self, schema: ClassSchema, where: ir.Node, access: Access) -> int:
        sql, values = self.dialect.count(schema, where, access)
        try:
            with parse_errors(missing_table):
                return int(await self.pool.fetchval(sql, *values))
        except MissingTable:
            return 0

    async def distinct(self, schema: ClassSchema, field: ir.Field, where: ir.Node, access: Access) -> list[Any]:
        params = Params(self.dialect)
        predicate = self.dialect.where(where, params, access)
        acl = self.dialect.read_access(access, params)
        table = quote(schema.class_name)
        col = f"{table}.{quote(field.column)}"
        decode: Callable[[Any], Any] | None = None
        if field.type == "Array" and not field.path:
            sql = (f"SELECT DISTINCT _e._v FROM {table} CROSS JOIN LATERAL {jsonb_elements(col)} AS _e(_v) "
                   f"WHERE {predicate} AND {acl}")
        elif field.path:
            expr = self.dialect.json_expr(field, table)
            sql = (f"SELECT DISTINCT {expr} FROM {table} WHERE {predicate} AND {acl} "
                   f"AND COALESCE(jsonb_typeof({expr}), 'null') <> 'null'")
        else:
            kind = self._kind(schema, field.column)
            decode = DECODERS.get(kind)
            # Geometric types have no equality operator; their exact text stands in for DISTINCT.
            distinct = f"DISTINCT ON (({col})::text)" if kind in ("GeoPoint", "Polygon") else "DISTINCT"
            sql = f"SELECT {distinct} {col} FROM {table} WHERE {predicate} AND {acl} AND {col} IS NOT NULL"
        rows = await self._class_rows(sql, *params.values)
        return [decode(row[0]) if decode else row[0] for row in rows]

    # --- relations ------------------------------------------------------------------------------

    async def add_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                            related_ids: list[str]) -> None:
        if not related_ids:
            return
        sql = (f'INSERT INTO {quote(f"_Join:{key}:{owning_class}")} ("relatedId", "owningId") '
               'SELECT unnest($1::text[]), $2::text ON CONFLICT DO NOTHING')
        ids = [encode_text(i) for i in related_ids]  # text[] elements bypass the text codec
        with parse_errors():
            try:
                await self.pool.execute(sql, ids, owning_id)
            except asyncpg.UndefinedTableError:
                # The join table goes with the relation field; create it when data came first.
                async with self.pool.acquire() as conn:
                    await conn.execute(self._join_ddl(owning_class, key))
                    await conn.execute(sql, ids, owning_id)

    async def remove_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                               related_ids: list[str]) -> None:
        if not related_ids:
            return
        sql = (f'DELETE FROM {quote(f"_Join:{key}:{owning_class}")} '
               'WHERE "owningId" = $1::text AND "relatedId" = ANY($2::text[])')
        try:
            with parse_errors(missing_table):
                await self.pool.execute(sql, owning_id, [encode_text(i) for i in related_ids])
        except MissingTable:
            pass

    # --- config, webhooks, the push queue: system_tables.py's statements -------------------------

    async def get_config(self) -> dict[str, Any] | None:
        sql, values = self._system.config_select()
        return self._system.config(await self.pool.fetchrow(sql, *values))

    async def set_config(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> None:
        sql, values = self._system.config_upsert(params, master_key_only)
        with parse_errors():
            await self.pool.execute(sql, *values)

    async def delete_config(self) -> bool:
        sql, values = self._system.config_delete()
        with parse_errors():
            return _changed(await self.pool.execute(sql, *values)) > 0

    async def load_hooks(self) -> list[dict[str, Any]]:
        sql, values = self._system.hooks_select()
        return self._system.hooks(await self.pool.fetch(sql, *values))

    async def save_hook(self, hook: dict[str, str]) -> None:
        (update, update_values), (insert, insert_values) = self._system.hook_save(hook)
        async with self.pool.acquire() as conn, conn.transaction():
            if _changed(await conn.execute(update, *update_values)) == 0:
                await conn.execute(insert, *insert_values)

    async def delete_hooks(self, hook: dict[str, str]) -> int:
        sql, values = self._system.hooks_delete(hook)
        return _changed(await self.pool.execute(sql, *values))

    async def push_enqueue(self, rows: list[dict[str, Any]]) -> None:
        sql, values = self._system.queue_insert(rows)
        async with self.pool.acquire() as conn:  # inside a transaction: its connection
            await conn.executemany(sql, values)

    async def push_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
        sql, values = self._system.queue_claim(worker, now, lease_ms, limit)
        return self._system.claimed(await self.pool.fetch(sql, *values))

    async def push_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> bool:
        sql, values = self._system.queue_reschedule(row_id, worker, body, attempts, not_before)
        return _changed(await self.pool.execute(sql, *values)) > 0

    async def push_done(self, row_id: str, worker: str) -> bool:
        sql, values = self._system.queue_done(row_id, worker)
        return _changed(await self.pool.execute(sql, *values)) > 0

    async def push_rows(self, push_id: str | None = None) -> list[dict[str, Any]]:
        sql, values = self._system.queue_select(push_id)
        return self._system.queue_rows(await self.pool.fetch(sql, *values))

    # --- the script log ---------------------------------------------------------------------------

    async def log_append(self, rows: list[tuple[int, str, str]]) -> None:
        async with self.pool.acquire() as conn:
            await conn.executemany('INSERT INTO "_ScriptLog" ("time", "level", "entry") VALUES ($1, $2, $3)', rows)

    async def log_read(self, since: int, until: int, level: str | None, limit: int, descending: bool) -> list[str]:
        direction = "DESC" if descending else "ASC"
        where, values = ('AND "level" = $4', (level,)) if level is not None else ("", ())
        rows = await self.pool.fetch(
            f'SELECT "entry" FROM "_ScriptLog" WHERE "time" >= $1 AND "time" <= $2 {where} '
            f'ORDER BY "time" {direction}, "id" {direction} LIMIT $3', since, until, limit, *values)
        return [row[0] for row in rows]

    async def log_trim(self, before: int, keep: int) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute('DELETE FROM "_ScriptLog" WHERE "time" < $1', before)
            await conn.execute('DELETE FROM "_ScriptLog" WHERE "id" <= (SELECT "id" FROM "_ScriptLog" '
                               'ORDER BY "id" DESC LIMIT 1 OFFSET $1)', keep)

    # --- aggregation pipelines ------------------------------------------------------------------

    async def aggregate(self, schema: ClassSchema, plan: Plan, access: Access) -> list[Record]:
        hooks = PostgresAggregateHooks(self.dialect.collate)
        sql, values = AggregateCompiler(self.dialect, hooks).compile(plan, schema, access)
        rows = await self._class_rows(sql, *values)
        decoders = [(c.name, DECODERS.get(c.type.type)) for c in plan.columns]
        return [{name: fn(value) if fn is not None and value is not None else value
                 for (name, fn), value in zip(decoders, row, strict=True)} for row in rows]
