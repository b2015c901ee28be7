"""SQLite on threads: readers in a pool, every write on one writer thread, a task's transaction held
on the writer; errors of a call (a refused regex, a statement too complex, a table gone) as Parse's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

from bastion.adapters.storage.sqlite.functions import TOO_COMPLEX, regex_clock, register_functions
from bastion.errors import Code, DatabaseUnavailable, ParseError

T = TypeVar("T")
# What SQLite says when another process holds the database past the busy timeout, or the file
# cannot be reached: the database is unavailable (503, retryable), not a bug.
_UNAVAILABLE = ("database is locked", "database is busy", "database table is locked", "unable to open database",
                "disk I/O error")

def _private_database(path: Path) -> None:
    """The database file readable by its owner only (0600), before SQLite opens it: SQLite gives its
    -wal and -shm files the database file's mode. A new directory is made 0700; a file an older
    version left open to others is tightened (it is Bastion's own)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Failures are left to SQLite's own open, whose error says more (an unwritable directory, say).
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        with contextlib.suppress(OSError):
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)


def _run_guarded(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """Run one storage call; a regex refused or a statement SQLite finds too complex is a 102."""
    regex_clock.spent = 0.0
    regex_clock.refused = None
    try:
        return fn(conn)
    except sqlite3.OperationalError as exc:
        if regex_clock.refused:
            raise ParseError(Code.INVALID_QUERY, regex_clock.refused) from None
        if TOO_COMPLEX.search(str(exc)):
            raise ParseError(Code.INVALID_QUERY, "The query is too complex.") from None
        if str(exc).startswith("no such table"):
            raise MissingTable(str(exc)) from None
        if str(exc).startswith(_UNAVAILABLE):
            raise DatabaseUnavailable() from exc
        raise
    except OverflowError:  # an integer beyond 64 bits reached a parameter
        raise ParseError(Code.INVALID_QUERY, "A number in the query is out of range.") from None


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE: waits for other processes' writes up to the busy timeout, then 503."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if str(exc).startswith(_UNAVAILABLE):
            raise DatabaseUnavailable() from exc
        raise


class MissingTable(Exception):
    """The class's table is gone (dropped by another process after this one cached the schema):
    reads find nothing and writes touch nothing, as on PostgreSQL."""


async def or_missing(call: Awaitable[T], default: T) -> T:
    try:
        return await call
    except MissingTable:
        return default

# The SQLite storage whose transaction the current task is inside (see SqliteThreads.transaction).
_TRANSACTION: ContextVar[SqliteThreads | None] = ContextVar("bastion_sqlite_transaction", default=None)


def _in_savepoint(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """One storage call inside a transaction: undone alone when it fails, as outside one."""
    conn.execute('SAVEPOINT "bastion_call"')
    try:
        result = _run_guarded(fn, conn)
    except BaseException:
        conn.execute('ROLLBACK TO "bastion_call"')
        conn.execute('RELEASE "bastion_call"')
        raise
    conn.execute('RELEASE "bastion_call"')
    return result


class SqliteThreads:
    """A pool of reader threads and one writer thread, each with its own connection: the event loop
    never waits on SQLite and writers never contend (WAL lets readers go on meanwhile)."""

    def __init__(self, path: str | Path, readers: int = 4, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        # Seconds a statement waits for another process's write lock before "database is locked" (503).
        self._busy_timeout = busy_timeout
        self._readers = readers
        self._read_pool: ThreadPoolExecutor | None = None
        self._write_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._tx_lock = asyncio.Lock()  # held by a transaction for its whole life (see transaction())

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            register_functions(conn)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._read_pool is not None, "storage is not open"
        loop = asyncio.get_running_loop()
        if _TRANSACTION.get() is self:  # on the transaction's connection, to see its own writes
            return await self._on_writer(lambda conn: _run_guarded(fn, conn))
        return await loop.run_in_executor(self._read_pool, lambda: _run_guarded(fn, self._connection()))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._write_pool is not None, "storage is not open"
        if _TRANSACTION.get() is self:
            return await self._on_writer(lambda conn: _in_savepoint(fn, conn))
        if self._tx_lock.locked():
            # Another task's transaction holds the writer: wait for its end. Nothing awaits between
            # the release and the submission below, so no new transaction can begin in between.
            async with self._tx_lock:
                pass

        def run() -> T:
            conn = self._connection()
            _begin(conn)
            try:
                result = _run_guarded(fn, conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, run)

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._write_pool is not None, "storage is not open"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, lambda: fn(self._connection()))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One SQLite transaction on the writer thread (BEGIN IMMEDIATE ... COMMIT), held across this
        task's calls; other tasks' writes wait for it to end, their reads see the last commit."""
        if _TRANSACTION.get() is self:
            yield
            return
        async with self._tx_lock:
            await self._on_writer(_begin)
            token = _TRANSACTION.set(self)
            try:
                yield
            except BaseException:
                _TRANSACTION.reset(token)
                await self._on_writer(lambda conn: conn.execute("ROLLBACK"))
                raise
            _TRANSACTION.reset(token)
            try:
                await self._on_writer(lambda conn: conn.execute("COMMIT"))
            except BaseException:
                await self._on_writer(lambda conn: conn.execute("ROLLBACK") if conn.in_transaction else None)
                raise

    def _open_threads(self) -> None:
        _private_database(Path(self.path))
        self._read_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="sqlite-read")
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")

    async def close(self) -> None:
        for pool in (self._read_pool, self._write_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
