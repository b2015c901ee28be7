"""The SQL of Bastion's own tables, written once for both databases: ``_GlobalConfig`` (Parse Config),
``_Hooks`` (webhook registrations) and ``_PushQueue`` (the durable push queue).

``SystemTables`` builds the statements as ``(sql, values)`` and turns the rows they return into the
contract's dicts; each storage runs them through its own connections and transactions. Where the
databases differ (placeholders, column types, JSON values, the claim's row locks, the order of
``_Hooks`` rows) the dialect says how (``SystemTablesDialect``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from bastion.ports.storage import HOOK_COLUMNS, PUSH_QUEUE_COLUMNS, hook_key

Statement = tuple[str, tuple[Any, ...]]
Row = Iterable[Any]

_QUEUE_NAMES = ", ".join(f'"{c}"' for c in PUSH_QUEUE_COLUMNS)
_HOOK_NAMES = ", ".join(f'"{c}"' for c in HOOK_COLUMNS)
_CONFIG_ROW = '"_GlobalConfig" WHERE "objectId" = \'1\''  # Parse Config is one row


class SystemTablesDialect(Protocol):
    """What these tables' SQL needs of a dialect: the few places PostgreSQL and SQLite differ."""

    @property
    def system_column_types(self) -> Mapping[str, str]:
        """The column types of these tables by kind: "text", "json", "integer", "bigint"."""

    @property
    def claim_lock(self) -> str:
        """What a claim's row selection ends with so that concurrent claims never take one row."""

    @property
    def hooks_order(self) -> str:
        """The clause that lists ``_Hooks`` rows in the order they were stored ("" for none)."""

    def placeholder(self, index: int) -> str: ...

    def json_mark(self, mark: str) -> str:
        """A bound parameter's placeholder, as a JSON column takes it."""

    def column_value(self, type_name: str, value: Any) -> Any:
        """A value as the driver binds it for a column of that Parse type ("Object": JSON)."""

    def json_cell(self, cell: Any) -> Any:
        """A JSON column's value (not NULL) as read, decoded."""


class SystemTables:
    """The statements of ``_GlobalConfig``, ``_Hooks`` and ``_PushQueue`` in one dialect's spelling."""

    def __init__(self, dialect: SystemTablesDialect) -> None:
        self.dialect = dialect
        types = dialect.system_column_types
        text, json, integer, bigint = types["text"], types["json"], types["integer"], types["bigint"]
        self.ddl = (
            f'CREATE TABLE IF NOT EXISTS "_GlobalConfig" ("objectId" {text}, "params" {json}, '
            f'"masterKeyOnly" {json}, PRIMARY KEY ("objectId"))',
            f'CREATE TABLE IF NOT EXISTS "_Hooks" ("functionName" {text}, "className" {text}, '
            f'"triggerName" {text}, "url" {text})',
            f'CREATE TABLE IF NOT EXISTS "_PushQueue" ("id" {text} PRIMARY KEY, "pushId" {text}, '
            f'"kind" {text}, "body" {text}, "attempts" {integer}, "notBefore" {bigint}, "claimedBy" {text}, '
            f'"claimedUntil" {bigint})',
            'CREATE INDEX IF NOT EXISTS "_PushQueue_due" ON "_PushQueue" ("notBefore")',
        )
        mark = dialect.placeholder
        self._config_select = f'SELECT "params", "masterKeyOnly" FROM {_CONFIG_ROW}'
        params, master_key_only = (dialect.json_mark(mark(i)) for i in (1, 2))
        self._config_upsert = (
            f'INSERT INTO "_GlobalConfig" ("objectId", "params", "masterKeyOnly") VALUES (\'1\', {params}, '
            f'{master_key_only}) ON CONFLICT ("objectId") DO UPDATE SET "params" = excluded."params", '
            '"masterKeyOnly" = excluded."masterKeyOnly"')
        self._config_delete = f"DELETE FROM {_CONFIG_ROW}"
        self._hooks_select = f'SELECT {_HOOK_NAMES} FROM "_Hooks"{dialect.hooks_order}'
        places = ", ".join(mark(i) for i in range(1, len(PUSH_QUEUE_COLUMNS) + 1))
        self._queue_insert = f'INSERT INTO "_PushQueue" ({_QUEUE_NAMES}) VALUES ({places})'
        worker, until, due, expired, limit = (mark(i) for i in range(1, 6))
        self._queue_claim = (
            f'UPDATE "_PushQueue" SET "claimedBy" = {worker}, "claimedUntil" = {until} WHERE "id" IN (SELECT "id" '
            f'FROM "_PushQueue" WHERE "notBefore" <= {due} AND ("claimedUntil" IS NULL OR "claimedUntil" < {expired}) '
            f'ORDER BY "notBefore", "id" LIMIT {limit}{dialect.claim_lock}) RETURNING {_QUEUE_NAMES}')
        body, attempts, not_before, row_id, holder = (mark(i) for i in range(1, 6))
        self._queue_reschedule = (
            f'UPDATE "_PushQueue" SET "body" = {body}, "attempts" = {attempts}, "notBefore" = {not_before}, '
            f'"claimedBy" = NULL, "claimedUntil" = NULL WHERE "id" = {row_id} AND "claimedBy" = {holder}')
        self._queue_done = f'DELETE FROM "_PushQueue" WHERE "id" = {mark(1)} AND "claimedBy" = {mark(2)}'
        self._queue_rows = f'SELECT {_QUEUE_NAMES} FROM "_PushQueue" ORDER BY "notBefore", "id"'
        self._queue_rows_of = (f'SELECT {_QUEUE_NAMES} FROM "_PushQueue" WHERE "pushId" = {mark(1)} '
                               'ORDER BY "notBefore", "id"')

    # --- _GlobalConfig ----------------------------------------------------------------------------

    def config_select(self) -> Statement:
        return self._config_select, ()

    def config(self, row: Row | None) -> dict[str, Any] | None:
        """The contract's config of the row ``config_select`` found (None: no row)."""
        if row is None:
            return None
        params, master_key_only = (self.dialect.json_cell(cell) if cell else None for cell in row)
        return {"params": params or {}, "masterKeyOnly": master_key_only or {}}

    def config_upsert(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> Statement:
        encode = self.dialect.column_value
        return self._config_upsert, (encode("Object", params), encode("Object", master_key_only))

    def config_delete(self) -> Statement:
        return self._config_delete, ()

    # --- _Hooks -----------------------------------------------------------------------------------

    def hooks_select(self) -> Statement:
        return self._hooks_select, ()

    @staticmethod
    def hooks(rows: Iterable[Row]) -> list[dict[str, Any]]:
        return [dict(zip(HOOK_COLUMNS, row, strict=True)) for row in rows]

    def hook_save(self, hook: dict[str, str]) -> tuple[Statement, Statement]:
        """The UPDATE of the url of the webhooks ``hook`` names, and the INSERT to run (in the same
        transaction) when it changed no row. ``_Hooks`` has no key to upsert on, as Parse Server's."""
        key = hook_key(hook)
        mark = self.dialect.placeholder
        match = " AND ".join(f'"{column}" = {mark(i)}' for i, column in enumerate(key, start=2))
        update = f'UPDATE "_Hooks" SET "url" = {mark(1)} WHERE {match}', (hook["url"], *(hook[c] for c in key))
        columns = (*key, "url")
        names = ", ".join(f'"{column}"' for column in columns)
        places = ", ".join(mark(i) for i in range(1, len(columns) + 1))
        insert = f'INSERT INTO "_Hooks" ({names}) VALUES ({places})', tuple(hook[c] for c in columns)
        return update, insert

    def hooks_delete(self, hook: dict[str, str]) -> Statement:
        key = hook_key(hook)
        mark = self.dialect.placeholder
        match = " AND ".join(f'"{column}" = {mark(i)}' for i, column in enumerate(key, start=1))
        return f'DELETE FROM "_Hooks" WHERE {match}', tuple(hook[c] for c in key)

    # --- _PushQueue -------------------------------------------------------------------------------

    def queue_insert(self, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
        """One INSERT and the values of each row (for executemany)."""
        return self._queue_insert, [tuple(row.get(c) for c in PUSH_QUEUE_COLUMNS) for row in rows]

    def queue_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> Statement:
        return self._queue_claim, (worker, now + lease_ms, now, now, limit)

    @classmethod
    def claimed(cls, rows: Iterable[Row]) -> list[dict[str, Any]]:
        """The rows ``queue_claim`` returned, oldest due first (RETURNING keeps no order)."""
        return sorted(cls.queue_rows(rows), key=lambda r: (r["notBefore"], r["id"]))

    def queue_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> Statement:
        return self._queue_reschedule, (body, attempts, not_before, row_id, worker)

    def queue_done(self, row_id: str, worker: str) -> Statement:
        return self._queue_done, (row_id, worker)

    def queue_select(self, push_id: str | None) -> Statement:
        if push_id is None:
            return self._queue_rows, ()
        return self._queue_rows_of, (push_id,)

    @staticmethod
    def queue_rows(rows: Iterable[Row]) -> list[dict[str, Any]]:
        return [dict(zip(PUSH_QUEUE_COLUMNS, row, strict=True)) for row in rows]
