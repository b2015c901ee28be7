"""A lean pool of asyncpg connections.

asyncpg's own pool pays, on every acquire and release, for a timeout scope, a shielded release
and an ``asyncio.Queue``: measured on a primary-key read, about an eighth of the request's CPU.
Bastion's statements are short and never hold a connection across requests, so this pool keeps
idle connections in a list: taking one is a ``pop``, giving it back an ``append`` (or a hand-over
to the first waiter). Connections are opened lazily up to ``max_size``; a broken one is dropped
and its slot reopened on demand.

A connection is only returned as idle when it is clean: outside a transaction, not cancelling a
statement, not closed, and its last error (if any) a statement's own. Anything else (a task cancelled
in the middle of a statement, as the request deadline does; a transaction left open by an error in its
rollback; a connection-level error, after which the protocol may still be consuming a fatal message)
terminates the connection instead of repairing it, which is rare and always safe.

A connection-level error (PostgreSQL down, restarting, refusing, out of connections) reaches the
caller as ``DatabaseUnavailable`` (503, retryable), and the log gets one line when the database goes
away and one when it is back, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg

from bastion.errors import DatabaseUnavailable

Connect = Callable[[], Awaitable[asyncpg.Connection]]
log = logging.getLogger("bastion")

# Errors that say the connection (or the server) is gone, not that a statement failed.
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                      asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError,
                      asyncpg.InternalClientError)


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    # "cannot perform operation: connection is closed / another operation is in progress"; not DataError
    # (a value it could not encode) nor an argument-count mistake, which are statements' own.
    return (isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, asyncpg.DataError)
            and ("connection" in str(exc) or "another operation" in str(exc)))


class PoolClosedError(RuntimeError):
    """The pool was closed while a caller waited for, or asked for, a connection."""


class ConnectionPool:
    """``fetch``/``fetchrow``/``fetchval``/``execute`` on a pooled connection, and ``acquire()`` for
    several statements on one (a transaction)."""

    def __init__(self, connect: Connect, *, min_size: int, max_size: int) -> None:
        if max_size < 1 or min_size > max_size:
            raise ValueError("pool sizes must satisfy 1 <= max_size and min_size <= max_size")
        self._connect = connect
        self._min_size = min_size
        self._max_size = max_size
        self._idle: list[asyncpg.Connection] = []
        # Waiters get a connection, or None: a slot was freed and they open their own.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._size = 0  # connections open, or being opened, that belong to the pool
        self._closed = False
        self._down_since: float | None = None  # when the database became unreachable, while it is

    async def open(self) -> None:
        connections = await asyncio.gather(*(self._connect() for _ in range(self._min_size)))
        self._size += len(connections)
        self._idle.extend(connections)

    @property
    def size(self) -> int:
        return self._size

    # --- taking and giving back -----------------------------------------------------------------

    async def _take(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise PoolClosedError("the connection pool is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._size -= 1
            if self._size < self._max_size:
                return await self._open_one()
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()  # handed over just as we were cancelled: pass it on
                    if handed is None:
                        self._slot_freed()
                    else:
                        self._give_back(handed)
                else:
                    self._remove_waiter(waiter)
                raise
            if conn is None:
                if self._size < self._max_size:
                    return await self._open_one()
                continue
            return conn

    async def _open_one(self) -> asyncpg.Connection:
        self._size += 1
        try:
            conn = await self._connect()
        except BaseException as exc:
            self._slot_freed()
            if is_connection_error(exc):
                raise self._unavailable(exc) from exc
            raise
        self._reachable()
        return conn

    # --- outages ----------------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """The error a caller gets for a connection-level failure; logged once per outage."""
        if self._down_since is None and not self._closed:
            self._down_since = time.monotonic()
            log.error("database unavailable: %s: %s", type(exc).__name__, str(exc)[:200] or "no detail")
        return DatabaseUnavailable()

    def _reachable(self) -> None:
        if self._down_since is not None:
            log.warning("database reachable again after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None

    def _remove_waiter(self, waiter: asyncio.Future[Any]) -> None:
        with suppress(ValueError):
            self._waiters.remove(waiter)

    def _slot_freed(self) -> None:
        """A connection left the pool: a waiter, if any, may open a new one."""
        self._size -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if self._closed or conn.is_closed() or conn.is_in_transaction() or conn._protocol._is_cancelling():
            if not conn.is_closed():
                conn.terminate()
            self._slot_freed()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _after_error(self, conn: asyncpg.Connection, exc: BaseException) -> BaseException:
        """After an error, the connection goes back if it is clean; a cancelled task's is not
        trusted (its statement may still be running), nor one that failed at the connection level
        (its protocol may be mid-message), so those are closed. Returns what the caller raises."""
        lost = isinstance(exc, Exception) and is_connection_error(exc)
        if (lost or not isinstance(exc, Exception)) and not conn.is_closed():
            conn.terminate()
        self._give_back(conn)
        return self._unavailable(exc) if lost else exc

    # --- statements -----------------------------------------------------------------------------

    async def _statement(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        """One statement through ``Connection.<method>``, on an idle connection when there is one."""
        conn = self._idle.pop() if self._idle and not self._idle[-1].is_closed() else await self._take()
        try:
            result = await getattr(conn, method)(sql, *args)
        except BaseException as exc:
            raised = self._after_error(conn, exc)
            if raised is exc:
                raise
            raise raised from exc
        if self._down_since is not None:
            self._reachable()
        self._give_back(conn)
        return result

    # Plain functions returning the coroutine: no second coroutine frame per statement.
    def fetch(self, sql: str, *args: Any) -> Awaitable[list[Any]]:
        return self._statement("fetch", sql, args)

    def fetchrow(self, sql: str, *args: Any) -> Awaitable[Any]:
        return self._statement("fetchrow", sql, args)

    def fetchval(self, sql: str, *args: Any) -> Awaitable[Any]:
        return self._statement("fetchval", sql, args)

    def execute(self, sql: str, *args: Any) -> Awaitable[str]:
        return self._statement("execute", sql, args)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._take()
        try:
            yield conn
        except BaseException as exc:
            raised = self._after_error(conn, exc)
            if raised is exc:
                raise
            raise raised from exc
        if self._down_since is not None:
            self._reachable()
        self._give_back(conn)

    async def close(self) -> None:
        """Close idle connections now; those in use close when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(PoolClosedError("the connection pool is closed"))
        self._waiters.clear()
        self._size -= len(idle)
        await asyncio.gather(*(conn.close(timeout=5) for conn in idle), return_exceptions=True)
