"""The storage contract's transaction(): one database transaction for every call of the task inside
it, committed at the end, rolled back on an exception; nested scopes join; a failed call inside is
undone alone; other tasks see only committed data and their writes wait or go on, never deadlock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter
from bastion.ports.storage import Set as SetOp

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def schema(name: str = "TxThing") -> ClassSchema:
    return ClassSchema.new(name, {"n": FieldType("Number"), "rel": FieldType("Relation", "TxThing")})


def record(object_id: str, n: float) -> dict[str, object]:
    return {"objectId": object_id, "createdAt": NOW, "updatedAt": NOW, "_rperm": None, "_wperm": None, "n": n}


async def ids(storage: StorageAdapter, s: ClassSchema) -> list[str]:
    return sorted(r["objectId"] for r in await storage.find(s, FindQuery(), MASTER))


class Boom(Exception):
    pass


async def test_commit_and_rollback(storage: StorageAdapter) -> None:
    s = schema()
    await storage.create_class(s)
    await storage.insert(s, record("a", 1))
    async with storage.transaction():
        await storage.insert(s, record("b", 2))
        await storage.update(s, "a", [SetOp("n", 5.0)], MASTER)
        assert await ids(storage, s) == ["a", "b"]  # the transaction reads its own writes
    assert await ids(storage, s) == ["a", "b"]
    with pytest.raises(Boom):
        async with storage.transaction():
            await storage.insert(s, record("c", 3))
            await storage.delete(s, "a", MASTER)
            await storage.add_relations(s.class_name, "rel", "TxThing", "b", ["a"])
            await storage.add_fields(s, {"extra": FieldType("String")})
            raise Boom
    assert await ids(storage, s) == ["a", "b"]
    assert (await storage.find(s, FindQuery(where=ir.Compare(ir.Field("objectId", "String"), ir.EQ, "a")),
                               MASTER))[0]["n"] == 5.0
    related = ir.RelatedTo(s.class_name, "b", "rel")
    assert await storage.find(s, FindQuery(where=related), MASTER) == []
    stored = {doc["className"]: doc for doc in await storage.load_schemas()}
    assert "extra" not in stored[s.class_name]["fields"]


async def test_nested_scope_joins_and_failed_call_is_undone_alone(storage: StorageAdapter) -> None:
    s = schema()
    await storage.create_class(s)
    async with storage.transaction():
        await storage.insert(s, record("a", 1))
        async with storage.transaction():
            await storage.insert(s, record("b", 2))
        with pytest.raises(Exception):  # noqa: B017 - a duplicate key, whatever the backend calls it
            await storage.insert(s, record("a", 9))
        # The failed insert left the transaction usable.
        await storage.insert(s, record("c", 3))
    assert await ids(storage, s) == ["a", "b", "c"]


async def test_other_tasks_see_committed_data_and_do_not_deadlock(storage: StorageAdapter) -> None:
    s = schema()
    await storage.create_class(s)
    inside = asyncio.Event()
    release = asyncio.Event()

    async def batch() -> None:
        async with storage.transaction():
            await storage.insert(s, record("t", 1))
            inside.set()
            await release.wait()
            await storage.insert(s, record("u", 2))

    async def other() -> list[str]:
        await inside.wait()
        seen = await ids(storage, s)  # not the transaction's uncommitted row
        writing = asyncio.create_task(storage.insert(s, record("w", 3)))
        await asyncio.sleep(0.2)
        release.set()
        await asyncio.wait_for(writing, 10)
        return seen

    _, seen = await asyncio.wait_for(asyncio.gather(batch(), other()), 20)
    assert seen == []
    assert await ids(storage, s) == ["t", "u", "w"]
