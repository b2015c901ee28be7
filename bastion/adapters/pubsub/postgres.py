"""PostgreSQL pub/sub by LISTEN/NOTIFY: the default on a PostgreSQL database (``--pubsub`` unset).

Every Bastion process on one database reaches the others with no further service. One dedicated
connection LISTENs on every subscribed channel; a small pool of its own publishes (``pg_notify``).
PostgreSQL delivers a notification to every listening connection, this process's included, once the
statement commits, in the order they were sent from one connection.

A NOTIFY payload holds under 8000 bytes. Larger messages (LiveQuery events of big objects) are
stored in an unlogged table, ``_PubSubPayload``, and the notification carries only the row's id; the
receivers read the row, which is deleted a minute later. Payloads are tagged by their first
character: ``j`` JSON text as is, ``b`` other bytes in base64, ``r`` the id of a stored payload.

NOTIFY does not keep messages: while the listening connection is down they are lost for this
process. A watchdog pings it every KEEPALIVE seconds; when it is lost the adapter reconnects with a
growing delay (RECONNECT_MIN up to RECONNECT_MAX seconds), LISTENs again and emits ``reconnected``
(the cache invalidation then drops every cache). A failing publish is logged and dropped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import logging
import time
from typing import Any

import asyncpg

from bastion.core.events import PubSubReconnected
from bastion.ports.pubsub import Handler, PubSub

log = logging.getLogger("bastion.pubsub")

MAX_INLINE = 7900  # bytes of payload sent in the notification itself (PostgreSQL's limit: 8000)
KEEP_STORED = 60.0  # seconds a stored large payload is kept for its receivers
RECONNECT_MIN = 0.1
RECONNECT_MAX = 5.0
KEEPALIVE = 5.0  # seconds between pings of the listening connection
TIMEOUT = 5.0  # connecting, pinging, publishing
TABLE = '"_PubSubPayload"'


def pg_channel(channel: str) -> str:
    """A channel name PostgreSQL keeps whole (identifiers stop at 63 bytes)."""
    if len(channel.encode()) <= 63:
        return channel
    return "bastion_" + hashlib.sha256(channel.encode()).hexdigest()[:48]


def encode_inline(message: bytes) -> str | None:
    """The notification text of ``message``, or None when it must be stored."""
    try:
        text = "j" + message.decode()
    except UnicodeDecodeError:
        text = "b" + base64.b64encode(message).decode()
    if "\x00" in text or len(text.encode()) > MAX_INLINE:
        return None
    return text


class PostgresPubSub(PubSub):
    name = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._handlers: dict[str, list[Handler]] = {}
        self._names: dict[str, str] = {}  # PostgreSQL's channel name -> ours
        self._listener: asyncpg.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._lost = asyncio.Event()
        self._closed = False
        self._publish_failing = False
        self._table_ready = False
        self._pruned = 0.0
        self.reconnects = 0

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connects; raises ConnectionError when PostgreSQL does not answer."""
        try:
            # No floor of idle connections: during an outage asyncpg would log a traceback each
            # time it failed to restore one.
            self._pool = await asyncpg.create_pool(self.url, min_size=0, max_size=2, timeout=TIMEOUT,
                                                   statement_cache_size=0)
            await self._listen()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            await self.close()
            raise ConnectionError(f"cannot LISTEN on PostgreSQL: {exc}") from None
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._deliver_forever(), name="bastion-pubsub-notify"),
                       loop.create_task(self._watch_forever(), name="bastion-pubsub-watchdog")]

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
        self._handlers.clear()

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=TIMEOUT, statement_cache_size=0)
        conn.add_termination_listener(self._terminated)
        try:
            for name in self._handlers:
                await conn.add_listener(pg_channel(name), self._notified)
        except BaseException:
            conn.terminate()
            raise
        self._lost.clear()
        self._listener = conn

    def _terminated(self, conn: Any) -> None:
        if conn is self._listener:  # not one the watchdog already replaced
            self._lost.set()

    # --- the contract ----------------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> None:
        pool = self._pool
        if self._closed or pool is None:
            return
        try:
            text = encode_inline(message)
            async with pool.acquire(timeout=TIMEOUT) as conn:
                if text is None:
                    text = "r" + str(await self._store(conn, message))
                await conn.execute("SELECT pg_notify($1, $2)", pg_channel(channel), text, timeout=TIMEOUT)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            if not self._publish_failing:
                self._publish_failing = True
                log.warning("PostgreSQL pub/sub: publishing failed (%s); messages are dropped until it "
                            "works again", exc.__class__.__name__)
            return
        if self._publish_failing:
            self._publish_failing = False
            log.warning("PostgreSQL pub/sub: publishing works again")

    async def _store(self, conn: asyncpg.Connection, message: bytes) -> int:
        if not self._table_ready:
            with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
                await conn.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, "
                                   "payload bytea NOT NULL, at timestamptz NOT NULL DEFAULT now())")
            self._table_ready = True
        now = time.monotonic()
        if now - self._pruned > KEEP_STORED:
            self._pruned = now
            await conn.execute(f"DELETE FROM {TABLE} WHERE at < now() - interval '{int(KEEP_STORED)} seconds'")
        stored: int = await conn.fetchval(f"INSERT INTO {TABLE} (payload) VALUES ($1) RETURNING id", message)
        return stored

    async def subscribe(self, channel: str, handler: Handler) -> None:
        if self._closed:
            return
        handlers = self._handlers.setdefault(channel, [])
        handlers.append(handler)
        self._names[pg_channel(channel)] = channel
        listener = self._listener
        if len(handlers) == 1 and listener is not None and not listener.is_closed():
            try:
                await listener.add_listener(pg_channel(channel), self._notified)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("PostgreSQL pub/sub: LISTEN %s failed (%s); retried on reconnection",
                            channel, exc.__class__.__name__)
                self._lost.set()

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if not handlers or handler not in handlers:
            return
        handlers.remove(handler)
        if handlers:
            return
        del self._handlers[channel]
        listener = self._listener
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await listener.remove_listener(pg_channel(channel), self._notified)

    # --- receiving -------------------------------------------------------------------------------

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self._queue.put_nowait((channel, payload))

    async def _deliver_forever(self) -> None:
        """One task calls the handlers, in the order PostgreSQL delivered the notifications."""
        while True:
            channel, payload = await self._queue.get()
            name = self._names.get(channel, channel)
            message = await self._decode(payload)
            if message is None:
                continue
            for handler in list(self._handlers.get(name, ())):
                try:
                    result = handler(message)
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # noqa: BLE001 - one failing handler must not stop the others
                    log.exception("pubsub handler on %s failed", name)

    async def _decode(self, payload: str) -> bytes | None:
        tag, body = payload[:1], payload[1:]
        if tag == "j":
            return body.encode()
        if tag == "b":
            return base64.b64decode(body)
        if tag == "r" and body.isdigit() and self._pool is not None:
            try:
                async with self._pool.acquire(timeout=TIMEOUT) as conn:
                    stored: bytes | None = await conn.fetchval(f"SELECT payload FROM {TABLE} WHERE id = $1",
                                                               int(body), timeout=TIMEOUT)
                    return stored
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("PostgreSQL pub/sub: a stored message could not be read (%s)", exc.__class__.__name__)
                return None
        log.debug("PostgreSQL pub/sub: notification of unknown form dropped")
        return None

    async def _watch_forever(self) -> None:
        """Pings the listening connection; when it is lost, reconnects and tells ``reconnected``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), KEEPALIVE)
            listener = self._listener
            if not self._lost.is_set() and listener is not None:
                try:
                    await listener.execute("SELECT 1", timeout=TIMEOUT)
                    continue
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    pass
            await self._reconnect()

    async def _reconnect(self) -> None:
        old, self._listener = self._listener, None
        if old is not None:
            old.terminate()
        lost_at = time.monotonic()
        log.warning("PostgreSQL pub/sub: the listening connection was lost; reconnecting, notifications "
                    "sent until then are lost")
        delay = RECONNECT_MIN
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.debug("PostgreSQL pub/sub: reconnection failed (%s)", exc)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            self.reconnects += 1
            log.warning("PostgreSQL pub/sub: listening again after %.1f s", time.monotonic() - lost_at)
            await self.reconnected.emit_async(PubSubReconnected())
            return
