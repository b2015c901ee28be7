"""The lean asyncpg pool: bounded size, hand-over to waiters, and no dirty connection reused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bastion.adapters.storage.postgres.pool import ConnectionPool, PoolClosedError
from tests.conftest import PG_ADMIN_URL, postgres_available


@pytest.fixture
async def opened() -> AsyncIterator[tuple[ConnectionPool, list[asyncpg.Connection]]]:
    reason = postgres_available()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    made: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        made.append(conn)
        return conn

    pool = ConnectionPool(connect, min_size=1, max_size=3)
    await pool.open()
    try:
        yield pool, made
    finally:
        await pool.close()
        for conn in made:
            if not conn.is_closed():
                await conn.close()


async def test_statements_reuse_connections(opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, made = opened
    for i in range(20):
        assert await pool.fetchval("SELECT $1::int + 1", i) == i + 1
    assert (await pool.fetchrow("SELECT 2 AS x"))["x"] == 2
    assert [r["g"] for r in await pool.fetch("SELECT generate_series(1, 3) AS g")] == [1, 2, 3]
    assert await pool.execute("SELECT 1") == "SELECT 1"
    assert len(made) == 1 and pool.size == 1


async def test_never_more_than_max_size(opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, made = opened
    pids = await asyncio.gather(*(pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)") for _ in range(12)))
    assert len(made) == 3 and pool.size == 3
    assert len(set(pids)) == 3  # the waiters were handed the connections as they came back


async def test_errors_leave_a_usable_connection(opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, made = opened
    with pytest.raises(asyncpg.UndefinedTableError):
        await pool.fetch('SELECT * FROM "no_such_table_here"')
    assert await pool.fetchval("SELECT 7") == 7
    assert len(made) == 1


async def test_a_cancelled_statement_closes_its_connection(
        opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, made = opened
    task = asyncio.ensure_future(pool.fetchval("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made[0].is_closed()
    assert pool.size == 0
    assert await pool.fetchval("SELECT 3") == 3  # a new connection takes the slot
    assert pool.size == 1


async def test_a_transaction_left_open_is_not_reused(opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, made = opened
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
    assert made[0].is_closed() and pool.size == 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1")
    assert not made[1].is_closed() and pool.size == 1


async def held_and_waiting(pool: ConnectionPool, sql: str) -> tuple[list[asyncpg.Connection], asyncio.Future[Any]]:
    """Every connection of the pool taken, and a statement waiting for one."""
    held = [await pool._take() for _ in range(3)]
    waiter = asyncio.ensure_future(pool.fetchval(sql))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    return held, waiter


async def test_a_dead_connection_frees_its_slot_for_a_waiter(
        opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, _made = opened
    held, waiter = await held_and_waiting(pool, "SELECT 11")
    held[0].terminate()
    pool._give_back(held[0])
    assert await asyncio.wait_for(waiter, 5) == 11
    for conn in held[1:]:
        pool._give_back(conn)


async def test_closing_refuses_waiters_and_new_callers(
        opened: tuple[ConnectionPool, list[asyncpg.Connection]]) -> None:
    pool, _made = opened
    held, waiter = await held_and_waiting(pool, "SELECT 1")
    await pool.close()
    with pytest.raises(PoolClosedError):
        await waiter
    with pytest.raises(PoolClosedError):
        await pool.fetchval("SELECT 1")
    for conn in held:
        pool._give_back(conn)  # closed as they come back
    assert all(conn.is_closed() for conn in held)
