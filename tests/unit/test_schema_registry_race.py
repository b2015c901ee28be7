"""A class created by another process between this one's reload and its CREATE TABLE."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bastion.adapters.storage.sqlite import SqliteStorage
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.domain.schema_registry import SchemaRegistry


class RacingStorage(SqliteStorage):
    """Another process creates the class (with a field of its own) just before this one does."""

    async def create_class(self, schema: ClassSchema) -> None:
        if schema.class_name == "Raced" and not getattr(self, "raced", False):
            self.raced = True
            await super().create_class(ClassSchema.new("Raced", {"theirs": FieldType("String")}))
        await super().create_class(schema)


async def test_losing_the_race_adds_the_missing_fields_without_deadlock(tmp_path: Path) -> None:
    storage = RacingStorage(tmp_path / "race.sqlite3")
    await storage.open()
    try:
        registry = SchemaRegistry(storage)
        await registry.load()
        schema = await asyncio.wait_for(
            registry.ensure_fields("Raced", {"mine": FieldType("Number")}, may_create_class=True), timeout=10)
        assert {"theirs", "mine"} <= set(schema.fields)
        stored = {doc["className"]: doc for doc in await storage.load_schemas()}["Raced"]
        assert {"theirs", "mine"} <= set(stored["fields"])
    finally:
        await storage.close()
