"""Redis pub/sub (``--pubsub redis://host:port/db``): messages reach every Bastion process subscribed.

Two connections per process: one publishes (a command connection that reconnects on its own), one is
subscribed and read by a single reader task, which calls the handlers of each message in the order
Redis delivered the messages. Redis pub/sub does not keep messages: while the subscribed connection
is down (Redis restarted, the connection killed) messages published are lost for this process. The
reader logs the outage, reconnects with a growing delay (RECONNECT_MIN up to RECONNECT_MAX seconds),
subscribes again to every channel and then emits the ``reconnected`` hook, so that users of the
adapter can make up for what was lost (the cache invalidation drops every cache). A publish that
fails (Redis unreachable) is logged and dropped: the write it reports has already been made.

Redis pub/sub is server-wide, whatever the database number; so that the number in the URL still
separates deployments, the adapter puts it in front of every channel name (``db3:bastion:<app id>:…``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisClientPubSub
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from bastion.core.events import PubSubReconnected
from bastion.ports.pubsub import Handler, PubSub

log = logging.getLogger("bastion.pubsub")

RECONNECT_MIN = 0.1  # seconds before the first reconnection attempt
RECONNECT_MAX = 5.0  # the longest wait between attempts
SUBSCRIBE_TIMEOUT = 5.0  # how long subscribe() waits for Redis to confirm a new channel
PUBLISH_TIMEOUT = 5.0  # a publish (socket reads and writes) gives up after this
CONNECT_TIMEOUT = 3.0

def safe_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _database_number(url: str) -> int:
    """The database number of a redis:// URL (its path, or ``?db=``); 0 when it names none."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if path.isdigit():
        return int(path)
    for key, value in parse_qsl(parts.query):
        if key == "db" and value.isdigit():
            return int(value)
    return 0


class RedisPubSub(PubSub):
    name = "redis"

    def __init__(self, url: str, client_name: str | None = None) -> None:
        super().__init__()
        self.url = url
        # Names the connections in CLIENT LIST (the tests find and kill the subscribed one by it).
        self.client_name = client_name or f"bastion-{secrets.token_hex(6)}"
        self._handlers: dict[str, list[Handler]] = {}
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: RedisClientPubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        # A channel every reader connection subscribes to first, so that it is always in the
        # subscribed state (a connection with no channel cannot be read).
        self._own_channel = f"bastion:pubsub:{self.client_name}"
        # Redis pub/sub channels are server-wide, whatever the database number: the number in the
        # URL becomes part of every channel's name, so deployments on other numbers never meet.
        self.namespace = f"db{_database_number(url)}:"
        self._connected = asyncio.Event()
        self._closed = False
        self._publish_failing = False
        self.reconnects = 0  # how many times the subscribed connection was re-established

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connects both connections; raises ConnectionError when Redis does not answer."""
        common: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_keepalive": True}
        self._publisher = Redis.from_url(
            self.url, client_name=f"{self.client_name}-pub", socket_timeout=PUBLISH_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), **common)
        # The reader handles reconnection itself (it must know about outages): no retries inside.
        self._subscriber = Redis.from_url(self.url, client_name=f"{self.client_name}-sub",
                                          retry=Retry(NoBackoff(), 0), **common)
        try:
            await self._publisher.ping()
        except (RedisError, OSError) as exc:
            await self._close_clients()
            raise ConnectionError(f"cannot reach Redis at {safe_url(self.url)}: {exc}") from None
        self._reader = asyncio.get_running_loop().create_task(self._read_forever(), name="bastion-pubsub-reader")
        try:
            await asyncio.wait_for(self._connected.wait(), SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            log.warning("Redis pub/sub at %s: no subscription confirmed yet; still trying", safe_url(self.url))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connected.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing anyway
                await self._reader
            self._reader = None
        for future in self._confirmed.values():
            if not future.done():
                future.cancel()
        self._confirmed.clear()
        self._handlers.clear()
        await self._close_clients()

    async def _close_clients(self) -> None:
        for client in (self._publisher, self._subscriber):
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
        self._publisher = self._subscriber = None

    # --- the contract ----------------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> None:
        if self._closed or self._publisher is None:
            return
        try:
            await self._publisher.publish(self.namespace + channel, message)
        except (RedisError, OSError) as exc:
            if not self._publish_failing:
                self._publish_failing = True
                log.warning("Redis pub/sub at %s: publishing failed (%s); messages are dropped until it "
                            "answers again", safe_url(self.url), exc.__class__.__name__)
            return
        if self._publish_failing:
            self._publish_failing = False
            log.warning("Redis pub/sub at %s: publishing works again", safe_url(self.url))

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Adds ``handler``; for a new channel, returns once Redis confirmed the subscription (or
        after SUBSCRIBE_TIMEOUT while Redis is away: the reader subscribes when it is back)."""
        if self._closed:
            return
        channel = self.namespace + channel  # the handlers are kept under the names Redis knows
        handlers = self._handlers.setdefault(channel, [])
        handlers.append(handler)
        if len(handlers) > 1:
            return
        pubsub = self._pubsub
        if pubsub is None or not self._connected.is_set():
            return  # subscribed by the reader as soon as it is connected again
        future = self._confirmation(channel)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("Redis pub/sub: subscribing to %s not confirmed (%s); retried on reconnection",
                        channel, exc.__class__.__name__)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        channel = self.namespace + channel
        handlers = self._handlers.get(channel)
        if not handlers or handler not in handlers:
            return
        handlers.remove(handler)
        if handlers:
            return
        del self._handlers[channel]
        pubsub = self._pubsub
        if pubsub is not None and self._connected.is_set():
            # On failure the connection is going: the next one will not subscribe to it.
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe(channel)

    # --- the reader ------------------------------------------------------------------------------

    def _confirmation(self, channel: str) -> asyncio.Future[None]:
        future = self._confirmed.get(channel)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._confirmed[channel] = future
        return future

    async def _read_forever(self) -> None:
        delay = RECONNECT_MIN
        lost_at: float | None = None
        while not self._closed:
            assert self._subscriber is not None
            pubsub = self._subscriber.pubsub()
            try:
                channels = [self._own_channel, *self._handlers]
                own = self._confirmation(self._own_channel)
                await pubsub.subscribe(*channels)
                self._pubsub = pubsub
                while not own.done():
                    await self._handle(await pubsub.get_message(timeout=None))
                # Channels added while this connection was being set up (subscribe() left them to us).
                subscribed = set(channels)
                while missing := [name for name in self._handlers if name not in subscribed]:
                    await pubsub.subscribe(*missing)
                    subscribed.update(missing)
                self._connected.set()
                if lost_at is not None:
                    self.reconnects += 1
                    log.warning("Redis pub/sub at %s: reconnected after %.1f s (messages published meanwhile "
                                "were lost)", safe_url(self.url), time.monotonic() - lost_at)
                    lost_at = None
                    await self._reconnected()
                delay = RECONNECT_MIN
                while True:
                    await self._handle(await pubsub.get_message(timeout=None))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if lost_at is None:
                    lost_at = time.monotonic()
                    if self._connected.is_set():
                        log.warning("Redis pub/sub at %s: connection lost (%s); reconnecting, messages "
                                    "published until then are lost", safe_url(self.url), exc.__class__.__name__)
                    else:
                        log.warning("Redis pub/sub at %s: cannot subscribe (%s); retrying",
                                    safe_url(self.url), exc.__class__.__name__)
                else:
                    log.debug("Redis pub/sub: reconnection failed (%s)", exc)
            except Exception:  # noqa: BLE001 - the reader must survive whatever happens
                log.exception("Redis pub/sub reader failed; restarting it")
                if lost_at is None:
                    lost_at = time.monotonic()
            finally:
                self._connected.clear()
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            if self._closed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _handle(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        kind = message.get("type")
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if not isinstance(channel, str):  # a pong or other message of no channel of ours
            return
        if kind == "subscribe":
            future = self._confirmed.pop(channel, None)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if kind != "message":
            return
        data = message.get("data")
        if not isinstance(data, bytes):
            data = str(data).encode()
        for handler in list(self._handlers.get(channel, ())):
            try:
                result = handler(data)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - one failing handler must not stop the reader
                log.exception("pubsub handler on %s failed", channel)

    async def _reconnected(self) -> None:
        await self.reconnected.emit_async(PubSubReconnected())
