"""The storage contract: what the domain asks of a database, in canonical values.

Adapters turn these calls into one SQL statement each (bound parameters only). Names reaching an
adapter were already validated by ``core/names.py``; adapters quote them all the same.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from bastion.core.acl import MASTER as MASTER  # the storage contract speaks in Access
from bastion.core.acl import Access as Access
from bastion.core.aggregate import Plan
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType

# Columns every class table has, besides its fields.
BASE_COLUMNS = ("objectId", "createdAt", "updatedAt", "_rperm", "_wperm")

Record = dict[str, Any]


# --- update operations, applied atomically inside one UPDATE -------------------------------------


@dataclass(frozen=True, slots=True)
class Set:
    column: str
    value: Any  # canonical; None clears the field


@dataclass(frozen=True, slots=True)
class SetPath:
    """Set (or, with ``delete``, remove) a key inside an Object column: ``{"a.b": 1}``."""

    column: str
    path: tuple[str, ...]
    value: Any = None
    delete: bool = False


@dataclass(frozen=True, slots=True)
class Increment:
    column: str
    amount: float | int
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AddItems:
    column: str
    items: tuple[Any, ...]
    unique: bool = False


@dataclass(frozen=True, slots=True)
class RemoveItems:
    column: str
    items: tuple[Any, ...]


UpdateOp = Set | SetPath | Increment | AddItems | RemoveItems


@dataclass(frozen=True, slots=True)
class FindQuery:
    where: ir.Node = ir.TRUE
    order: tuple[ir.Order, ...] = ()
    limit: int | None = None
    skip: int = 0
    columns: tuple[str, ...] | None = None  # None: every column
    # With SCORE_COLUMN among the columns: the search whose ts_rank_cd fills it (Parse's $score).
    score: ir.TextSearch | None = None


SCORE_COLUMN = "$score"  # not a field name any class can have




# The columns of Parse Server's _Hooks table; a webhook is named by its function, or by its class and trigger.
HOOK_COLUMNS = ("functionName", "className", "triggerName", "url")


def hook_key(hook: dict[str, str]) -> tuple[str, ...]:
    """The columns that name the webhook ``hook``."""
    return ("functionName",) if hook.get("functionName") else ("className", "triggerName")


# The columns of the push queue's "_PushQueue" table (bastion/domain/push_queue.py): a row is a unit
# of push work (``kind`` "query": find the audience; "batch": send to listed installations) for the
# ``_PushStatus`` ``pushId``, due at ``notBefore`` (ms since the epoch), held by the worker
# ``claimedBy`` until ``claimedUntil`` (ms), its ``body`` JSON text.
PUSH_QUEUE_COLUMNS = ("id", "pushId", "kind", "body", "attempts", "notBefore", "claimedBy", "claimedUntil")


# An authData provider name, as it appears in SQL (JSON keys, index names).
AUTH_PROVIDER = re.compile(r"[A-Za-z0-9_]{1,64}")


class DuplicateValue(Exception):
    """A unique index refused the write."""


class StorageAdapter(ABC):
    """One database. Every method is a coroutine and never blocks the event loop."""

    name: str = "storage"

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """``async with storage.transaction():`` every call this task makes inside is part of one
        database transaction, committed when the block ends and rolled back when it raises. Reads
        inside see the transaction's own writes; a call that fails inside leaves the transaction
        usable (it is undone alone). Nested scopes join the enclosing one."""

    # --- schema ---------------------------------------------------------------------------------

    @abstractmethod
    async def load_schemas(self) -> list[dict[str, Any]]:
        """Every ``_SCHEMA`` document."""

    @abstractmethod
    async def create_class(self, schema: ClassSchema) -> None:
        """Create the class table (and join tables of its relations) and its ``_SCHEMA`` row."""

    @abstractmethod
    async def add_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        """Add columns for new fields (join tables for relations) and store the new schema."""

    @abstractmethod
    async def delete_fields(self, schema: ClassSchema, fields: dict[str, FieldType]) -> None:
        """Drop the columns of deleted fields and store the new schema."""

    @abstractmethod
    async def save_schema(self, schema: ClassSchema) -> None:
        """Store the schema document (permissions, index list) without touching tables."""

    @abstractmethod
    async def create_index(self, class_name: str, name: str, spec: dict[str, Any], unique: bool = False) -> None: ...

    @abstractmethod
    async def drop_index(self, class_name: str, name: str) -> None: ...

    @abstractmethod
    async def ensure_auth_data_uniqueness(self, provider: str) -> None:
        """Parse Server's unique index ``_User_unique_authData_<provider>_id`` on
        ``authData.<provider>.id`` (provider: letters, digits and _; the _User table exists). It
        closes the race of two sign-ups with one provider id; already duplicated ids leave it out."""

    @abstractmethod
    async def delete_class(self, class_name: str) -> None:
        """Drop the table, its join tables and its ``_SCHEMA`` row."""

    @abstractmethod
    async def purge(self, class_name: str) -> None:
        """Delete every object of the class, keeping its schema."""

    # --- objects --------------------------------------------------------------------------------

    @abstractmethod
    async def insert(self, schema: ClassSchema, record: Record) -> None:
        """Insert one object (canonical values). Raises DuplicateValue on a unique index."""

    @abstractmethod
    async def update(self, schema: ClassSchema, object_id: str, ops: list[UpdateOp], access: Access,
                     where: ir.Node = ir.TRUE) -> Record | None:
        """Apply ops to one object the access may write (and that matches ``where``), atomically.

        Returns the whole record after the update, or None when no such object may be written.
        """

    @abstractmethod
    async def delete(self, schema: ClassSchema, object_id: str, access: Access, where: ir.Node = ir.TRUE) -> bool:
        """Delete one object the access may write (and that matches ``where``); whether it did."""

    @abstractmethod
    async def delete_matching(self, schema: ClassSchema, where: ir.Node) -> int:
        """Delete every object matching ``where`` (the server's own housekeeping, no ACL); how many."""

    @abstractmethod
    async def find(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[Record]: ...

    async def find_json(self, schema: ClassSchema, query: FindQuery, access: Access) -> list[str] | None:
        """``find``, with each object already encoded as REST JSON text (``read.RecordEncoder``'s
        output, ACL included). Optional: None means "use ``find``" (unsupported column types, or
        values this path cannot spell)."""
        return None

    @abstractmethod
    async def count(self, schema: ClassSchema, where: ir.Node, access: Access) -> int: ...

    @abstractmethod
    async def distinct(self, schema: ClassSchema, field: ir.Field, where: ir.Node, access: Access) -> list[Any]: ...

    # --- relations ------------------------------------------------------------------------------

    @abstractmethod
    async def add_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                            related_ids: list[str]) -> None: ...

    @abstractmethod
    async def remove_relations(self, owning_class: str, key: str, target_class: str, owning_id: str,
                               related_ids: list[str]) -> None: ...

    # --- key/value rows of internal classes (config) ---------------------------------------------

    @abstractmethod
    async def get_config(self) -> dict[str, Any] | None:
        """The ``_GlobalConfig`` row's ``params`` and ``masterKeyOnly`` (None when unset)."""

    @abstractmethod
    async def set_config(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> None: ...

    @abstractmethod
    async def delete_config(self) -> bool:
        """Remove the ``_GlobalConfig`` row; whether there was one."""

    # --- webhooks: Parse Server's _Hooks table (its four text columns, no objectId) ---------------

    @abstractmethod
    async def load_hooks(self) -> list[dict[str, Any]]:
        """Every ``_Hooks`` row, as a dict of HOOK_COLUMNS."""

    @abstractmethod
    async def save_hook(self, hook: dict[str, str]) -> None:
        """Set the url of the webhook ``hook`` names (``hook_key``), inserting it when there is none."""

    @abstractmethod
    async def delete_hooks(self, hook: dict[str, str]) -> int:
        """Delete the webhooks ``hook`` names; how many there were."""

    # --- the push queue: "_PushQueue" rows (PUSH_QUEUE_COLUMNS), shared by every process ----------

    @abstractmethod
    async def push_enqueue(self, rows: list[dict[str, Any]]) -> None:
        """Insert queue rows (dicts of PUSH_QUEUE_COLUMNS; claimedBy/claimedUntil None)."""

    @abstractmethod
    async def push_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` rows due by ``now`` that nobody holds (or whose holder's lease ran
        out), oldest due first, for ``worker`` until ``now + lease_ms``: one statement, so that two
        processes never claim one row (PostgreSQL: FOR UPDATE SKIP LOCKED). The rows as claimed."""

    @abstractmethod
    async def push_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> bool:
        """Give a row ``worker`` holds back to the queue with a new body, attempts and due time;
        whether the worker still held it."""

    @abstractmethod
    async def push_done(self, row_id: str, worker: str) -> bool:
        """Delete a row ``worker`` holds; whether it did (False: its lease ran out and another took it)."""

    @abstractmethod
    async def push_rows(self, push_id: str | None = None) -> list[dict[str, Any]]:
        """The queue's rows (of one push when ``push_id`` is given), oldest due first."""

    # --- the script log: "_ScriptLog" rows (time, level, entry), Parse Dashboard's Logs page ---------

    @abstractmethod
    async def log_append(self, rows: list[tuple[int, str, str]]) -> None:
        """Insert log entries: (time in epoch milliseconds, level, the entry as JSON text)."""

    @abstractmethod
    async def log_read(self, since: int, until: int, level: str | None, limit: int, descending: bool) -> list[str]:
        """The entries (JSON text) logged from ``since`` to ``until`` (milliseconds, both included), of
        ``level`` only when given, newest first when ``descending``, at most ``limit``."""

    @abstractmethod
    async def log_trim(self, before: int, keep: int) -> None:
        """Delete the entries older than ``before`` (milliseconds) and all but the ``keep`` newest."""

    # --- aggregation pipelines ------------------------------------------------------------------

    @abstractmethod
    async def aggregate(self, schema: ClassSchema, plan: Plan, access: Access) -> list[Record]:
        """Run a planned pipeline (``core/aggregate.py``) as one statement: one record per result,
        keyed by the plan's column names, values canonical (Json columns as decoded JSON)."""


# --- the meaning of update operations, for adapters that apply them in Python ---------------------


def _json_contains(items: list[Any], value: Any) -> bool:
    from bastion.core.query.matcher import json_equal

    return any(json_equal(item, value) for item in items)


def apply_op(current: Any, op: UpdateOp) -> Any:
    """The column's new value after ``op``; the SQL adapters must compute exactly this."""
    if isinstance(op, Set):
        return op.value
    if isinstance(op, Increment):
        if not op.path:
            base_value = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 0
            return base_value + op.amount
        doc = dict(current) if isinstance(current, dict) else {}
        return _set_path(doc, op.path, lambda old: (old if isinstance(old, (int, float))
                                                      and not isinstance(old, bool) else 0) + op.amount)
    if isinstance(op, SetPath):
        doc = dict(current) if isinstance(current, dict) else {}
        if op.delete:
            return _delete_path(doc, op.path)
        return _set_path(doc, op.path, lambda _old: op.value)
    items = list(current) if isinstance(current, list) else []
    if isinstance(op, AddItems):
        if not op.unique:
            return items + list(op.items)
        for item in op.items:
            if not _json_contains(items, item):
                items.append(item)
        return items
    if isinstance(op, RemoveItems):
        return [item for item in items if not _json_contains(list(op.items), item)]
    raise TypeError(f"unknown update op {op!r}")


def _set_path(doc: dict[str, Any], path: tuple[str, ...], compute: Any) -> dict[str, Any]:
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        child = dict(child) if isinstance(child, dict) else {}
        node[key] = child
        node = child
    node[path[-1]] = compute(node.get(path[-1]))
    return doc


def _delete_path(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return doc
        child = dict(child)
        node[key] = child
        node = child
    node.pop(path[-1], None)
    return doc
