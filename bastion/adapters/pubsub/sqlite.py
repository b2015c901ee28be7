"""SQLite pub/sub: the default on a SQLite database (``--pubsub`` unset), for processes on one file.

A message is a row of the ``_PubSub`` table in the database file itself; every process polls the
table every POLL seconds. A poll first asks ``PRAGMA data_version``, which changes only when another
connection committed something, so an idle poll reads no table (a few microseconds on a thread).
This process's own messages are handed to its handlers at once, as the in-process adapter does.

The insert runs on a thread of its own and ``publish`` does not wait for it: a change made inside a
storage transaction holds SQLite's write lock, which the insert would wait for. Rows are deleted
KEEP seconds after they were written; a process that finds a gap in the sequence (it did not poll
for that long) emits ``reconnected``, so its caches are dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bastion.core.events import PubSubReconnected
from bastion.ports.pubsub import Handler, PubSub

log = logging.getLogger("bastion.pubsub")

POLL = 0.02  # seconds between polls: the bound on how late another process learns of a message
KEEP = 60.0  # seconds a message row is kept
_TABLE = '"_PubSub"'


class SqlitePubSub(PubSub):
    name = "sqlite"

    def __init__(self, path: str | Path, poll: float = POLL) -> None:
        super().__init__()
        self.path = str(path)
        self.poll = poll
        self.origin = secrets.token_hex(8)
        self._handlers: dict[str, list[Handler]] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._last = 0  # the last sequence number seen
        self._version: int | None = None
        self._pruned = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failing = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _setup(self) -> None:
        conn = self._write_conn = self._connect()
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "origin TEXT NOT NULL, channel TEXT NOT NULL, payload BLOB NOT NULL, at REAL NOT NULL)")
        self._read_conn = self._connect()
        self._last = self._read_conn.execute(f"SELECT coalesce(max(seq), 0) FROM {_TABLE}").fetchone()[0]
        self._version = self._read_conn.execute("PRAGMA data_version").fetchone()[0]

    async def open(self) -> None:
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="bastion-pubsub-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="bastion-pubsub-poll")
        try:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._setup)
        except sqlite3.Error as exc:
            await self.close()
            raise ConnectionError(f"cannot use the SQLite database for pub/sub: {exc}") from None
        self._task = asyncio.get_running_loop().create_task(self._poll_forever(), name="bastion-pubsub-poll")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        loop = asyncio.get_running_loop()
        for pool, conn in ((self._writer, self._write_conn), (self._reader, self._read_conn)):
            if pool is not None:
                if conn is not None:
                    await loop.run_in_executor(pool, conn.close)
                pool.shutdown(wait=False)
        self._writer = self._reader = None
        self._write_conn = self._read_conn = None
        self._handlers.clear()

    # --- the contract ----------------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> None:
        if self._closed or self._writer is None:
            return
        future = self._writer.submit(self._insert, channel, message)
        future.add_done_callback(self._inserted)
        await self._deliver(channel, message)

    def _insert(self, channel: str, message: bytes) -> None:
        conn = self._write_conn
        assert conn is not None
        now = time.time()
        conn.execute(f"INSERT INTO {_TABLE} (origin, channel, payload, at) VALUES (?, ?, ?, ?)",
                     (self.origin, channel, message, now))
        if now - self._pruned > KEEP:
            self._pruned = now
            conn.execute(f"DELETE FROM {_TABLE} WHERE at < ?", (now - KEEP,))

    def _inserted(self, future: Future[None]) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is not None and not self._failing:
            self._failing = True
            log.warning("SQLite pub/sub: publishing failed (%s); messages are dropped until it works again",
                        error.__class__.__name__)
        elif error is None and self._failing:
            self._failing = False
            log.warning("SQLite pub/sub: publishing works again")

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)

    # --- receiving -------------------------------------------------------------------------------

    def _fetch(self) -> tuple[list[tuple[str, bytes]], bool]:
        """Other processes' new messages, and whether some were missed (a gap in the sequence)."""
        conn = self._read_conn
        assert conn is not None
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return [], False
        self._version = version
        rows = conn.execute(f"SELECT seq, origin, channel, payload FROM {_TABLE} WHERE seq > ? ORDER BY seq",
                            (self._last,)).fetchall()
        if not rows:
            return [], False
        missed = rows[0][0] > self._last + 1
        self._last = rows[-1][0]
        return [(channel, bytes(payload)) for _seq, origin, channel, payload in rows if origin != self.origin], missed

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            await asyncio.sleep(self.poll)
            assert self._reader is not None
            try:
                messages, missed = await loop.run_in_executor(self._reader, self._fetch)
            except sqlite3.Error as exc:
                if not failing:
                    failing = True
                    log.warning("SQLite pub/sub: polling failed (%s); retrying", exc)
                continue
            if failing or missed:
                failing = False
                log.warning("SQLite pub/sub: messages may have been missed; caches are dropped")
                await self.reconnected.emit_async(PubSubReconnected())
            for channel, message in messages:
                await self._deliver(channel, message)

    async def _deliver(self, channel: str, message: bytes) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                result = handler(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - one failing subscriber must not stop the others
                log.exception("pubsub handler on %s failed", channel)
