"""Several processes starting at once on a new PostgreSQL database all come up (each creates
Bastion's tables if they are missing; the losers of that race carry on)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bastion.adapters.storage.postgres import PostgresStorage
from tests.contract.conftest import PgDatabase


async def test_concurrent_start_ups_on_a_new_database(pg_database: PgDatabase) -> None:
    if pg_database.url is None:
        pytest.skip(pg_database.reason)
    for _ in range(3):
        conn = await asyncpg.connect(pg_database.url)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
        stores = [PostgresStorage(pg_database.url, min_size=1, max_size=2) for _ in range(6)]
        try:
            await asyncio.gather(*(store.open() for store in stores))
            tables = {row[0] for row in await stores[0].pool.fetch(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")}
            assert {"_SCHEMA", "_GlobalConfig", "_Hooks", "_PushQueue", "_ScriptLog"} <= tables
        finally:
            await asyncio.gather(*(store.close() for store in stores))
