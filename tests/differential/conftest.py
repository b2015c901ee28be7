"""Fixtures of the differential tests: the storage adapters held to the in-memory matcher.

Each adapter is built by a factory in ``ADAPTERS``. SQLite needs nothing; PostgreSQL is included
once ``bastion.adapters.storage.postgres`` imports, against a throw-away database on
127.0.0.1:5432 (user ``postgres``) that is created here and dropped afterwards. Set
``BASTION_TEST_PG`` to another server URL (``postgresql://user@host:port``) to use that one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.ports.storage import StorageAdapter

PG_SERVER = os.environ.get("BASTION_TEST_PG", "postgresql://postgres@127.0.0.1:5432")

StorageFactory = Callable[[], Awaitable[StorageAdapter]]


def _postgres_class() -> tuple[Any, str]:
    """The PostgresStorage class, or None and why it cannot be used."""
    try:
        from bastion.adapters.storage.postgres import PostgresStorage
    except ImportError as exc:  # the adapter is not written yet, or its driver is missing
        return None, f"bastion.adapters.storage.postgres does not import: {exc}"
    return PostgresStorage, ""


class Runner:
    """An event loop of our own, so that synchronous hypothesis tests can drive async adapters."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, awaitable: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a fresh, uniquely named PostgreSQL database, dropped at the end of the session."""
    try:
        import asyncpg
    except ImportError:
        pytest.skip("asyncpg is not installed")
    name = "bastion_diff_" + secrets.token_hex(6)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_SERVER + "/postgres", timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    runner = Runner()
    try:
        # Byte-order collation, as SQLite and the matcher order strings; the C.UTF-8 ctype keeps
        # case-insensitive regular expressions working beyond ASCII.
        runner.run(admin(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                         f"LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        runner.close()
        pytest.skip(f"PostgreSQL does not answer at {PG_SERVER}: {type(exc).__name__}: {exc}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        try:
            runner.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        finally:
            runner.close()


def _sqlite_factory(request: pytest.FixtureRequest) -> StorageFactory:
    from bastion.adapters.storage.sqlite import SqliteStorage

    directory: Path = request.getfixturevalue("tmp_path_factory").mktemp("differential")

    async def make() -> StorageAdapter:
        storage = SqliteStorage(directory / "diff.db", readers=2)
        await storage.open()
        return storage

    return make


def _postgres_factory(request: pytest.FixtureRequest) -> StorageFactory:
    cls, why = _postgres_class()
    if cls is None:
        pytest.skip(why)
    url = request.getfixturevalue("postgres_database")

    async def make() -> StorageAdapter:
        storage = cls(url)
        await storage.open()
        return storage

    return make


# name -> how to build one adapter. Add an adapter here and every differential test runs on it.
ADAPTERS: dict[str, Callable[[pytest.FixtureRequest], StorageFactory]] = {
    "sqlite": _sqlite_factory,
    "postgres": _postgres_factory,
}


@pytest.fixture(scope="module", params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Iterator[tuple[Runner, StorageAdapter]]:
    """An open adapter and the loop it lives on, one per adapter per test module."""
    factory = ADAPTERS[request.param](request)
    runner = Runner()
    storage = runner.run(factory())
    try:
        yield runner, storage
    finally:
        try:
            runner.run(storage.close())
        finally:
            runner.close()


def with_classes(adapter: tuple[Runner, StorageAdapter], schemas: list[Any]) -> tuple[Runner, StorageAdapter]:
    """The module's adapter with its classes created afresh (a previous module may have left them;
    an adapter knows the classes it created, for subqueries)."""
    runner, store = adapter

    async def create() -> None:
        existing = {doc["className"] for doc in await store.load_schemas()}
        for schema in schemas:
            if schema.class_name in existing:
                await store.delete_class(schema.class_name)
            await store.create_class(schema)

    runner.run(create())
    return runner, store


async def refill(store: StorageAdapter, schema: Any, records: list[dict[str, Any]]) -> None:
    """Empty the class and insert ``records``, leaving out null fields as a REST create does."""
    await store.purge(schema.class_name)
    for record in records:
        await store.insert(schema, {k: v for k, v in record.items() if v is not None or k.startswith("_")})
