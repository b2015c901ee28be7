"""Files in PostgreSQL: a row per file in ``"_Files"`` and its bytes as ``bytea`` chunks in
``"_FileChunks"``, so every Bastion process on the database serves the same files.

A save runs in one transaction: the file row, then each chunk as soon as ``CHUNK_SIZE`` bytes have
arrived, then the final size. Until the commit nobody sees the file; a failure, a cancelled upload
or FileTooLarge rolls everything back. A read fetches only the chunks its range touches, one at a
time and already cut to the range by ``substring``, so no more than a chunk is ever in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from bastion.adapters.files.names import check_backend_name
from bastion.ports.files import CHUNK_SIZE, FileInfo, FilesAdapter, FileTooLarge

FILES_TABLE = '"_Files"'
CHUNKS_TABLE = '"_FileChunks"'
_DDL_LOCK = 0x62617374_66696c65  # pg_advisory_xact_lock key: processes starting together create tables once

_DDL = f"""
CREATE TABLE IF NOT EXISTS {FILES_TABLE} (
    "name" text PRIMARY KEY,
    "size" bigint NOT NULL,
    "chunkSize" integer NOT NULL,
    "contentType" text NOT NULL,
    "metadata" jsonb NOT NULL DEFAULT '{{}}',
    "tags" jsonb NOT NULL DEFAULT '{{}}',
    "createdAt" timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {CHUNKS_TABLE} (
    "name" text NOT NULL REFERENCES {FILES_TABLE} ("name") ON DELETE CASCADE,
    "n" integer NOT NULL,
    "data" bytea NOT NULL,
    PRIMARY KEY ("name", "n")
);
"""


class PostgresFiles(FilesAdapter):
    name = "postgres"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, chunk_size: int = CHUNK_SIZE) -> None:
        self.url = url
        self.chunk_size = chunk_size
        self._min_size, self._max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresFiles used before open()")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self._min_size, max_size=self._max_size)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
            await conn.execute(_DDL)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str, *,
                   metadata: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
                   max_bytes: int | None = None) -> FileInfo:
        check_backend_name(name)
        metadata, tags = dict(metadata or {}), dict(tags or {})
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f'INSERT INTO {FILES_TABLE} ("name", "size", "chunkSize", "contentType", "metadata", "tags") '
                "VALUES ($1, 0, $2, $3, $4::jsonb, $5::jsonb)",
                name, self.chunk_size, content_type, orjson.dumps(metadata).decode(), orjson.dumps(tags).decode())
            insert = await conn.prepare(f'INSERT INTO {CHUNKS_TABLE} ("name", "n", "data") VALUES ($1, $2, $3)')
            pending = bytearray()
            size = n = 0
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise FileTooLarge(name)  # leaving the block rolls the transaction back
                pending += chunk
                while len(pending) >= self.chunk_size:
                    await insert.fetch(name, n, bytes(pending[:self.chunk_size]))
                    del pending[:self.chunk_size]
                    n += 1
            if pending:
                await insert.fetch(name, n, bytes(pending))
            await conn.execute(f'UPDATE {FILES_TABLE} SET "size" = $2 WHERE "name" = $1', name, size)
        return FileInfo(name, size, content_type, metadata, tags)

    async def info(self, name: str) -> FileInfo | None:
        row = await self.pool.fetchrow(
            f'SELECT "size", "contentType", "metadata"::text, "tags"::text FROM {FILES_TABLE} WHERE "name" = $1',
            name)
        if row is None:
            return None
        return FileInfo(name, row[0], row[1], orjson.loads(row[2]), orjson.loads(row[3]))

    async def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        row = await self.pool.fetchrow(f'SELECT "size", "chunkSize" FROM {FILES_TABLE} WHERE "name" = $1', name)
        if row is None:
            return
        size, chunk_size = row[0], row[1]
        end = size if end is None else min(end, size)
        position = start
        while position < end:
            n, offset = divmod(position, chunk_size)
            length = min(chunk_size - offset, end - position)
            # substring counts from 1; only the part of the chunk the range needs leaves the database.
            data = await self.pool.fetchval(
                f'SELECT substring("data" FROM $3 FOR $4) FROM {CHUNKS_TABLE} WHERE "name" = $1 AND "n" = $2',
                name, n, offset + 1, length)
            if not data:
                return  # deleted meanwhile
            yield bytes(data)
            position += len(data)

    async def delete(self, name: str) -> bool:
        result: str = await self.pool.execute(f'DELETE FROM {FILES_TABLE} WHERE "name" = $1', name)  # its status
        return result.split()[-1] != "0"

    async def names(self, prefix: str = "") -> AsyncIterator[str]:
        # starts_with, not LIKE: a prefix holding % or _ means itself.
        async with self.pool.acquire() as conn, conn.transaction():
            async for row in conn.cursor(f'SELECT "name" FROM {FILES_TABLE} WHERE starts_with("name", $1)', prefix):
                yield row[0]
