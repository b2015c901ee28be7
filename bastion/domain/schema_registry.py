"""The schemas of every class, cached in memory and changed only through here.

Reads never touch the database. A change takes a lock, re-reads the stored schema (another process
may have changed it), applies the change through the storage adapter and refreshes the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from bastion.core.events import Hook, SchemaChanged
from bastion.core.names import (
    check_class_name,
    check_field_name,
    class_name_is_valid,
    invalid_class_message,
)
from bastion.core.schema import DEFAULT_FIELDS, SYSTEM_CLASS_FIELDS, ClassSchema, validate_clp
from bastion.core.system_classes import IDEMPOTENCY, ROLE, USER
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError
from bastion.ports.storage import StorageAdapter

# The registry and schema copy of the transaction the current task is inside (see transaction()).
_TRANSACTION_VIEW: ContextVar[tuple[SchemaRegistry, dict[str, ClassSchema]] | None] = ContextVar(
    "bastion_schema_transaction", default=None)


MISS_RELOAD_INTERVAL = 0.5  # seconds between re-reads caused by a class this process does not know


class SchemaRegistry:
    def __init__(self, storage: StorageAdapter, ttl: float = 5.0) -> None:
        self.storage = storage
        self.ttl = ttl
        self._shared: dict[str, ClassSchema] = {}  # what every request sees (see _classes)
        self._lock = asyncio.Lock()
        self._loaded_at = 0.0
        self._load_started = 0.0
        self._refreshing = False
        self._changes = 0  # bumped by every change, so that a refresh begun before it is dropped
        # After each change, once it is committed (other processes reload).
        self.changed: Hook[SchemaChanged] = Hook("schema changed")
        self._deferred: set[str] = set()  # classes changed inside the transaction() in progress

    @property
    def _classes(self) -> dict[str, ClassSchema]:
        """The schemas as this task sees them: inside transaction(), its own copy."""
        view = _TRANSACTION_VIEW.get()
        return view[1] if view is not None and view[0] is self else self._shared

    @_classes.setter
    def _classes(self, classes: dict[str, ClassSchema]) -> None:
        view = _TRANSACTION_VIEW.get()
        if view is not None and view[0] is self:
            view[1].clear()
            view[1].update(classes)
        else:
            self._shared = classes

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Schema changes for a storage transaction opened inside this block.

        The schema lock is held throughout: another task's DDL would wait on the transaction's table
        locks while the transaction waited on this lock. Changes go to a copy only this task sees;
        after a commit the schemas are re-read, after a rollback the copy is dropped, so no request
        ever sees a field the database does not have.
        """
        if _TRANSACTION_VIEW.get() is not None:
            raise RuntimeError("schema transactions do not nest")
        async with self._lock:
            token = _TRANSACTION_VIEW.set((self, dict(self._shared)))
            try:
                yield
            finally:
                _TRANSACTION_VIEW.reset(token)
                changed, self._deferred = self._deferred, set()  # a rollback changed nothing
            self._changes += 1
            await self.load()
        for class_name in sorted(changed):
            await self._changed(class_name)

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """The schema lock, unless this task's transaction() holds it already. Every change to a
        schema happens under it, so leaving it drops what was derived from the schemas."""
        view = _TRANSACTION_VIEW.get()
        try:
            if view is not None and view[0] is self:
                yield
                return
            async with self._lock:
                yield
        finally:
            for schema in self._classes.values():
                schema.derived.clear()

    async def load(self) -> None:
        self._load_started = time.monotonic()
        docs = await self.storage.load_schemas()
        self._classes = {doc["className"]: ClassSchema.from_storage(doc) for doc in docs}
        self._loaded_at = time.monotonic()

    async def ensure_classes(self, class_names: tuple[str, ...]) -> None:
        """Creates the classes that are missing (several processes starting at once may race: the
        loser finds the winner's class)."""
        for class_name in class_names:
            if class_name not in self._classes:
                await self.ensure_fields(class_name, {}, may_create_class=True)

    async def refresh_if_stale(self) -> None:
        """Re-read the schemas when the cache is older than ``ttl``: other processes sharing the
        database may have changed them."""
        if self._refreshing or self._lock.locked() or time.monotonic() - self._loaded_at < self.ttl:
            return
        self._refreshing = True
        try:
            changes = self._changes
            docs = await self.storage.load_schemas()
            # A change made here while the documents were read is newer than they are: keep it.
            if changes == self._changes and not self._lock.locked():
                self._classes = {doc["className"]: ClassSchema.from_storage(doc) for doc in docs}
                self._loaded_at = time.monotonic()
        finally:
            self._refreshing = False

    def get(self, class_name: str) -> ClassSchema | None:
        return self._classes.get(class_name)

    async def get_or_reload(self, class_name: str, force: bool = False) -> ClassSchema | None:
        """The schema; on a miss, re-read from the database first (another process may have just
        created the class). Without ``force`` (clients), at most every MISS_RELOAD_INTERVAL, so
        that misses cannot flood the database; the master key always re-reads."""
        schema = self._classes.get(class_name)
        if schema is not None or _TRANSACTION_VIEW.get() is not None:
            return schema
        arrived = time.monotonic()
        if not force and arrived - self._loaded_at < MISS_RELOAD_INTERVAL:
            return None
        async with self._locked():
            # Forced misses arriving together share one read: one begun after this call arrived.
            if (force and self._load_started < arrived) or time.monotonic() - self._loaded_at >= MISS_RELOAD_INTERVAL:
                self._changes += 1
                await self.load()
        return self._classes.get(class_name)

    def all(self) -> list[ClassSchema]:
        return list(self._classes.values())

    async def _changed(self, class_name: str) -> None:
        view = _TRANSACTION_VIEW.get()
        if view is not None and view[0] is self:
            self._deferred.add(class_name)  # told once the transaction is over (the lock is ours)
            return
        if self.changed:
            await self.changed.emit_async(SchemaChanged(class_name))

    async def invalidate(self) -> None:
        """Another process changed a schema: re-read them all (after any change in progress here)."""
        async with self._lock:
            self._changes += 1
            await self.load()

    # --- changes made by writes -----------------------------------------------------------------

    async def _unique_system_fields(self, class_name: str) -> None:
        """Unique indexes of a new system class: they close the race between two sign-ups with one
        username (or two roles with one name) that a check before the insert leaves open."""
        for name in UNIQUE_SYSTEM_FIELDS.get(class_name, ()):
            await self.storage.create_index(class_name, f"unique_{name}", {name: 1}, unique=True)

    async def ensure_fields(self, class_name: str, wanted: dict[str, FieldType], *, may_create_class: bool,
                            may_add_fields: bool = True) -> ClassSchema:
        """The class schema with every field in ``wanted``, adding what is missing.

        Raises 111 when a field exists with another type, 119 when the class is missing and may not
        be created.
        """
        schema = self._classes.get(class_name)
        if schema is not None and not self._missing(schema, wanted):
            return schema
        async with self._locked():
            self._changes += 1
            await self.load()
            schema = self._classes.get(class_name)
            if schema is None:
                if not may_create_class:
                    # Parse Server 9 sanitizes this message ("This user is not allowed to access
                    # non-existent class: X") to "Permission denied".
                    raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
                check_class_name(class_name)
                schema = ClassSchema.new(class_name)
                self._check_types(schema, wanted)
                schema.fields.update(wanted)
                _check_one_geopoint(schema)
                try:
                    await self.storage.create_class(schema)
                except ParseError:
                    # Created meanwhile by another process: add to its schema what is missing
                    # (still under the lock, which a retry through ensure_fields would wait on).
                    await self.load()
                    existing = self._classes.get(class_name)
                    if existing is None:
                        raise
                    schema = existing
                    await self._add_missing(schema, wanted, may_add_fields)
                else:
                    await self._unique_system_fields(class_name)
            else:
                await self._add_missing(schema, wanted, may_add_fields)
            self._classes[class_name] = schema
        await self._changed(class_name)
        return schema

    async def _add_missing(self, schema: ClassSchema, wanted: dict[str, FieldType], may_add_fields: bool) -> None:
        missing = self._missing(schema, wanted)
        if missing:
            if not may_add_fields:
                # Sanitized as Parse Server 9 does ("Permission denied for action addField ...").
                raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
            schema.fields.update(missing)
            _check_one_geopoint(schema)
            await self.storage.add_fields(schema, missing)

    def _missing(self, schema: ClassSchema, wanted: dict[str, FieldType]) -> dict[str, FieldType]:
        self._check_types(schema, wanted)
        return {name: ft for name, ft in wanted.items() if name not in schema.fields}

    @staticmethod
    def _check_types(schema: ClassSchema, wanted: dict[str, FieldType]) -> None:
        for name, ft in wanted.items():
            if ft.target_class is not None and not class_name_is_valid(ft.target_class):
                # A pointer or relation in a body names its class: as in the schemas API, 103.
                raise ParseError(Code.INVALID_CLASS_NAME, invalid_class_message(ft.target_class[:200]))
            existing = schema.fields.get(name)
            if existing is not None and not existing.same_type(ft):
                raise ParseError(
                    Code.INCORRECT_TYPE,
                    f"schema mismatch for {schema.class_name}.{name}; expected {existing.describe()} "
                    f"but got {ft.describe()}",
                )

    # --- the schemas API ------------------------------------------------------------------------

    async def create_class(self, class_name: str, fields: dict[str, FieldType], clp: dict[str, Any] | None,
                           indexes: dict[str, Any] | None) -> ClassSchema:
        check_class_name(class_name)
        if class_name.startswith("_Join:"):  # relation tables belong to their relation field
            raise ParseError(Code.INVALID_CLASS_NAME, invalid_class_message(class_name))
        async with self._locked():
            self._changes += 1
            await self.load()
            if class_name in self._classes:
                raise ParseError(Code.INVALID_CLASS_NAME, f"Class {class_name} already exists.")
            schema = ClassSchema.new(class_name)
            for name, ft in fields.items():
                if name in DEFAULT_FIELDS or name in SYSTEM_CLASS_FIELDS.get(class_name, {}):
                    continue
                schema.fields[name] = ft
            _check_one_geopoint(schema)
            validate_clp(clp, schema.fields)
            if indexes:
                _check_indexes(schema.fields, {}, indexes)  # before the class exists, as Parse Server
            if clp is not None:
                schema.clp = clp
            await self.storage.create_class(schema)
            await self._unique_system_fields(class_name)
            if indexes:
                await self._apply_indexes(schema, indexes)
                await self.storage.save_schema(schema)
            self._classes[class_name] = schema
        await self._changed(class_name)
        return schema

    async def update_class(self, class_name: str, add: dict[str, FieldType], delete: list[str],
                           clp: dict[str, Any] | None, indexes: dict[str, Any] | None) -> ClassSchema:
        async with self._locked():
            self._changes += 1
            await self.load()
            schema = self._classes.get(class_name)
            if schema is None:
                raise ParseError(Code.INVALID_CLASS_NAME, f"Class {class_name} does not exist.")
            for name in delete:
                if name not in schema.fields:
                    raise ParseError(255, f"Field {name} does not exist, cannot delete.")
                if name in DEFAULT_FIELDS or name in SYSTEM_CLASS_FIELDS.get(class_name, {}):
                    raise ParseError(136, f"field {name} cannot be changed")
            # As Parse Server 9: a field given again with its own type keeps its column and takes the
            # new options (required, defaultValue); another type is refused.
            changed: dict[str, FieldType] = {}
            for name, ft in add.items():
                existing = schema.fields.get(name)
                if existing is None or name in delete:
                    continue
                if existing.type != ft.type:
                    raise ParseError(255, f"Field {name} exists, cannot update.")
                if existing.target_class != ft.target_class:
                    raise ParseError(Code.INCORRECT_TYPE, f"schema mismatch for {class_name}.{name}; expected "
                                                          f"{existing.describe()} but got {ft.describe()}")
                changed[name] = ft
            add = {name: ft for name, ft in add.items() if name not in changed}
            # Everything is checked before anything changes.
            merged = {name: ft for name, ft in schema.fields.items() if name not in delete}
            merged.update(add)
            validate_clp(clp, merged)
            if indexes:
                remaining = {name: spec for name, spec in schema.indexes.items()
                             if not any(key in delete for key in spec)}
                _check_indexes(merged, remaining, indexes)
            for name, ft in changed.items():
                if name not in DEFAULT_FIELDS and name not in SYSTEM_CLASS_FIELDS.get(class_name, {}):
                    schema.fields[name] = ft
            removed = {name: schema.fields.pop(name) for name in delete}
            if removed:
                for index_name, spec in list(schema.indexes.items()):
                    if any(key in removed for key in spec):
                        await self.storage.drop_index(class_name, index_name)
                        del schema.indexes[index_name]
                await self.storage.delete_fields(schema, removed)
            if add:
                schema.fields.update(add)
                _check_one_geopoint(schema)
                await self.storage.add_fields(schema, add)
            if clp is not None:
                schema.clp = clp
            if indexes is not None:
                await self._apply_indexes(schema, indexes)
            await self.storage.save_schema(schema)
            self._classes[class_name] = schema
        await self._changed(class_name)
        return schema

    async def _apply_indexes(self, schema: ClassSchema, indexes: dict[str, Any]) -> None:
        schema.indexed = True  # set once, even to nothing: Parse Server then keeps the document
        for name, spec in indexes.items():
            if isinstance(spec, dict) and spec.get("__op") == "Delete":
                if name not in schema.indexes:
                    raise ParseError(Code.INVALID_QUERY, f"Index {name} does not exist, cannot delete.")
                await self.storage.drop_index(schema.class_name, name)
                del schema.indexes[name]
                continue
            if name in schema.indexes:
                raise ParseError(Code.INVALID_QUERY, f"Index {name} exists, cannot update.")
            if not isinstance(spec, dict) or not spec:
                raise ParseError(Code.INVALID_QUERY, f"Invalid index {name}.")
            for key, direction in spec.items():
                check_field_name(key) if key not in DEFAULT_FIELDS else None
                if key not in schema.fields:
                    raise ParseError(Code.INVALID_QUERY, f"Field {key} does not exist, cannot add index.")
                if direction not in (1, -1, "text"):
                    raise ParseError(Code.INVALID_QUERY, f"Invalid index direction for {key}.")
            await self.storage.create_index(schema.class_name, name, spec)
            schema.indexes[name] = spec

    async def delete_class(self, class_name: str) -> None:
        async with self._locked():
            self._changes += 1
            await self.storage.delete_class(class_name)
            self._classes.pop(class_name, None)
        await self._changed(class_name)


def _check_indexes(fields: dict[str, FieldType], existing: dict[str, Any], indexes: Any) -> None:
    """Refuse index changes as Parse Server does (102), without applying any."""
    if not isinstance(indexes, dict):
        raise ParseError(Code.INVALID_QUERY, "indexes must be an object")
    for name, spec in indexes.items():
        if isinstance(spec, dict) and spec.get("__op") == "Delete":
            if name not in existing:
                raise ParseError(Code.INVALID_QUERY, f"Index {name} does not exist, cannot delete.")
            continue
        if name in existing:
            raise ParseError(Code.INVALID_QUERY, f"Index {name} exists, cannot update.")
        if not isinstance(spec, dict) or not spec:
            raise ParseError(Code.INVALID_QUERY, f"Invalid index {name}.")
        for key in spec:
            if key not in fields:
                raise ParseError(Code.INVALID_QUERY, f"Field {key} does not exist, cannot add index.")


# Fields Parse Server keeps unique with a database index (its ensureUniqueness at start-up).
UNIQUE_SYSTEM_FIELDS = {USER: ("username", "email"), ROLE: ("name",), IDEMPOTENCY: ("reqId",)}


def _check_one_geopoint(schema: ClassSchema) -> None:
    geo = [name for name, ft in schema.fields.items() if ft.type == "GeoPoint"]
    if len(geo) > 1:
        raise ParseError(
            Code.INCORRECT_TYPE,
            f"currently, only one GeoPoint field may exist in an object. Adding {geo[1]} when {geo[0]} already exists.",
        )
