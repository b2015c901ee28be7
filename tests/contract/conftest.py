"""Fixtures for the storage contract suite: one fresh store per test, on every backend.

PostgreSQL runs in a database with a random name, created for the session and dropped after it;
when nothing answers on BASTION_TEST_PG (default 127.0.0.1:5432) its parameters skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bastion.adapters.storage.postgres import PostgresStorage
from bastion.adapters.storage.sql import quote
from bastion.adapters.storage.sqlite import SqliteStorage
from bastion.ports.files import FilesAdapter
from bastion.ports.storage import StorageAdapter
from tests.contract.s3_server import FAKE_CREDENTIALS, MotoS3

PG_ADMIN_URL = os.environ.get("BASTION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class PgDatabase:
    def __init__(self, url: str | None, reason: str = "") -> None:
        self.url = url
        self.reason = reason


@pytest.fixture(scope="session")
async def pg_database() -> AsyncIterator[PgDatabase]:
    try:
        admin = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        yield PgDatabase(None, f"no PostgreSQL at {PG_ADMIN_URL}: {exc}")
        return
    name = "bastion_contract_" + uuid.uuid4().hex[:12]
    await admin.execute(f"CREATE DATABASE {quote(name)}")
    try:
        yield PgDatabase(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
        await admin.close()


class Raw:
    """Backend-specific peeks for what the contract cannot read back (tables, join rows)."""

    def __init__(self, storage: StorageAdapter) -> None:
        self.storage = storage

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if isinstance(self.storage, SqliteStorage):
            return await self.storage._read(lambda c: c.execute(sql).fetchall())
        assert isinstance(self.storage, PostgresStorage)
        return [tuple(row) for row in await self.storage.pool.fetch(sql)]

    async def tables(self) -> set[str]:
        if isinstance(self.storage, SqliteStorage):
            rows = await self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = await self.rows("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")
        return {row[0] for row in rows}

    async def join_rows(self, table: str) -> set[tuple[str, str]]:
        return {(r, o) for r, o in await self.rows(f'SELECT "relatedId", "owningId" FROM {quote(table)}')}


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path,
                  pg_database: PgDatabase) -> AsyncIterator[StorageAdapter]:
    store: StorageAdapter
    if request.param == "sqlite":
        store = SqliteStorage(tmp_path / "contract.sqlite3")
    else:
        if pg_database.url is None:
            pytest.skip(pg_database.reason)
        conn = await asyncpg.connect(pg_database.url)
        try:  # a clean slate: every table of the previous test goes
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
        store = PostgresStorage(pg_database.url, min_size=1, max_size=8,
                                server_settings={"statement_timeout": "10s"})
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def raw(storage: StorageAdapter) -> Raw:
    return Raw(storage)


@pytest.fixture(params=["local", "postgres", "s3"])
async def files_backend(request: pytest.FixtureRequest, tmp_path: Path, pg_database: PgDatabase,
                        moto_s3: MotoS3 | str) -> AsyncIterator[FilesAdapter]:
    """One empty files backend per test: a directory, PostgreSQL, or a fresh bucket on moto over HTTP
    (``moto_s3``, in tests/conftest.py)."""
    files: FilesAdapter
    if request.param == "local":
        from bastion.adapters.files.local import LocalFiles

        files = LocalFiles(tmp_path / "files")
    elif request.param == "postgres":
        from bastion.adapters.files.postgres import PostgresFiles

        if pg_database.url is None:
            pytest.skip(pg_database.reason)
        conn = await asyncpg.connect(pg_database.url)
        try:  # a clean slate: the previous test's files go
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
        files = PostgresFiles(pg_database.url)
    else:
        from bastion.adapters.files.s3 import S3Files

        if isinstance(moto_s3, str):
            pytest.skip(moto_s3)
        files = S3Files(moto_s3.new_bucket(), "app-files", endpoint_url=moto_s3.endpoint, region="us-east-1",
                        access_key=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        secret_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], presigned_urls=True)
    await files.open()
    try:
        yield files
    finally:
        await files.close()
