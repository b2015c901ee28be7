"""A transaction's connection, standing in for the pool inside ``PostgresStorage.transaction``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

import asyncpg

if TYPE_CHECKING:
    from bastion.adapters.storage.postgres.storage import PostgresStorage


class Transaction:
    """A transaction's connection behind the pool's methods. Statements run one at a time (asyncpg
    allows one per connection), each in a savepoint: an error the adapter handles (a table not there
    yet) is undone alone instead of aborting the whole transaction."""

    def __init__(self, storage: PostgresStorage, conn: asyncpg.Connection) -> None:
        self.storage = storage
        self.conn = conn
        self.lock = asyncio.Lock()

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.lock, self.conn.transaction():
            return cast(str, await self.conn.execute(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.lock, self.conn.transaction():
            return cast(list[Any], await self.conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        async with self.lock, self.conn.transaction():
            return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.lock, self.conn.transaction():
            return await self.conn.fetchval(sql, *args)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.lock:
            yield self.conn


# The transaction the current task is inside (see PostgresStorage.transaction).
CURRENT_TRANSACTION: ContextVar[Transaction | None] = ContextVar("bastion_pg_transaction", default=None)
