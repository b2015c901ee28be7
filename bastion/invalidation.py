"""Cache invalidation between Bastion processes, through the pub/sub adapter.

Each process caches what it reads on every request: the schemas (SchemaRegistry), the role names of
each user (Roles), resolved session tokens (Sessions) and the webhooks (Webhooks). A process that
changes one of them publishes a small JSON message on ``bastion:<app id>:invalidate`` through the
pub/sub adapter (by default the database's own channel: PostgreSQL's LISTEN/NOTIFY or SQLite's
polled table; or Redis) and every other process drops or re-reads the cache at once; requests that
arrive while such a re-read runs wait for it (``settled``), so they are answered from the new state.
Only with ``--pubsub memory`` (one process) is another process's change seen when the entry expires
(5 s) or when a miss re-reads it:

    {"from": "<process>", "kind": "schema", "class": "Post"}   re-read every schema
    {"from": "<process>", "kind": "roles"}                      forget every user's role names
    {"from": "<process>", "kind": "sessions", "user": "<id>"}   forget that user's cached sessions
    {"from": "<process>", "kind": "sessions"}                   forget every cached session
    {"from": "<process>", "kind": "webhooks"}                   re-read the webhooks

Role and session messages also make LiveQuery resolve its subscribers' access again. The same
channel tells which classes have LiveQuery subscribers where (``SharedInterest``): a process writes
an object's original state and publishes a change only for classes some process watches.

Session tokens never travel: a revocation names the user. A process ignores its own messages
(``from``). It listens before it first reads the schemas, so a change made while it starts is not
missed. Messages published while the transport is away are lost; when it reconnects, the process
drops all of these caches, since it may have missed some. Messages are published after the change
is stored; those of a batch transaction's writes are held until it ends (``deferred``), so that no
process re-reads the old value in between and keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.events import (
    InterestChanged,
    ObjectWritten,
    PubSubReconnected,
    SchemaChanged,
    SessionsRevoked,
    WebhooksChanged,
)
from bastion.core.system_classes import ROLES_CACHE, SESSIONS_CACHE, cache_drops

if TYPE_CHECKING:
    from bastion.cloud._runtime.webhooks import Webhooks
    from bastion.domain.roles import Roles
    from bastion.domain.schema_registry import SchemaRegistry
    from bastion.domain.sessions import Sessions
    from bastion.livequery import LiveQuery
    from bastion.ports.pubsub import PubSub

log = logging.getLogger("bastion.pubsub")

class _Held:
    """The messages held by a deferred() block (a batch transaction's) until it ends."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.open = True  # a task the block started may outlive it: then its messages go out at once


_HELD: ContextVar[_Held | None] = ContextVar("bastion_invalidation_held", default=None)

SETTLE_TIMEOUT = 1.0  # seconds a request waits for the re-reads another process's change asked for


def channel_name(app_id: str) -> str:
    return f"bastion:{app_id}:invalidate"


class Invalidation:
    def __init__(self, app_id: str, schemas: SchemaRegistry, sessions: Sessions, roles: Roles,
                 webhooks: Webhooks, livequery: LiveQuery | None = None) -> None:
        self.schemas = schemas
        self.sessions = sessions
        self.roles = roles
        self.webhooks = webhooks
        self.livequery = livequery
        self.channel = channel_name(app_id)
        self.origin = secrets.token_hex(8)  # this process, in the messages it sends
        self.pubsub: PubSub | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.received = 0  # messages from other processes applied (for tests and logs)
        self.interest: SharedInterest | None = None
        self._unbind: list[Callable[[], None]] = []  # undoes start()'s binding to the hooks
        # The caches of this process a write may make stale, by the names the table gives them.
        self._drop_here: dict[str, Callable[[], None]] = {ROLES_CACHE: roles.invalidate,
                                                           SESSIONS_CACHE: sessions.forget}

    @property
    def active(self) -> bool:
        return self.pubsub is not None

    async def start(self, pubsub: PubSub | None) -> None:
        """Listens and tells, when ``pubsub`` reaches other processes (not the in-process adapter)."""
        if pubsub is None or pubsub.name == "memory" or self.pubsub is not None:
            return
        self.pubsub = pubsub
        await pubsub.subscribe(self.channel, self._received)
        self._unbind = [
            pubsub.reconnected.bind(self._reconnected),
            self.schemas.changed.bind(self._schema_changed),
            self.sessions.revoked.bind(self._sessions_revoked),
            self.webhooks.changed.bind(self._webhooks_changed),
        ]

    def watch_interest(self) -> None:
        """Shares which classes LiveQuery watches here (once LiveQuery started)."""
        livequery = self.livequery
        if self.pubsub is not None and livequery is not None and self.interest is None:
            self.interest = SharedInterest(self, livequery.interest)
            self.interest.start()

    async def stop(self) -> None:
        if self.interest is not None:
            await self.interest.stop()
            self.interest = None
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is None:
            return
        for unbind in self._unbind:
            unbind()
        self._unbind = []
        await pubsub.unsubscribe(self.channel, self._received)
        for task in [*self._tasks, *self._running.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._running.values(), return_exceptions=True)

    # --- telling ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def deferred(self) -> AsyncIterator[None]:
        """Messages of the changes made inside go out when the block ends (a transaction's commit or
        rollback: telling of a change that was rolled back only costs a re-read)."""
        if _HELD.get() is not None or self.pubsub is None:
            yield
            return
        held = _Held()
        token = _HELD.set(held)
        try:
            yield
        finally:
            _HELD.reset(token)
            held.open = False
            for kind, fields in held.messages:
                await self.publish(kind, **fields)

    async def publish(self, kind: str, **fields: Any) -> None:
        pubsub = self.pubsub
        if pubsub is None:
            return
        held = _HELD.get()
        if held is not None and held.open:
            held.messages.append((kind, fields))
            return
        await pubsub.publish(self.channel, orjson.dumps({"from": self.origin, "kind": kind, **fields}))

    def publish_soon(self, kind: str, **fields: Any) -> None:
        """``publish`` from synchronous code (the writer's ``written`` hook): in a task of its own."""
        if self.pubsub is None:
            return
        held = _HELD.get()
        if held is not None and held.open:
            held.messages.append((kind, fields))
            return
        task = asyncio.get_running_loop().create_task(self.publish(kind, **fields))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def written(self, event: ObjectWritten) -> None:
        """A write was stored here (the writer's ``written`` hook): the caches that may hold what it
        changed (a system class's ``drops``, core/system_classes.py) are dropped here at once, and
        other processes are told to drop theirs."""
        for cache in cache_drops(event.class_name):
            self._drop_here[cache]()
            self.publish_soon(cache)

    async def _schema_changed(self, event: SchemaChanged) -> None:
        await self.publish("schema", **{"class": event.class_name})

    async def _sessions_revoked(self, event: SessionsRevoked) -> None:
        await self.publish(SESSIONS_CACHE, user=event.user_id)

    async def _webhooks_changed(self, _event: WebhooksChanged) -> None:
        await self.publish("webhooks")

    # --- being told -------------------------------------------------------------------------------

    async def _received(self, raw: bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("invalidation message that is not JSON dropped")
            return
        if not isinstance(message, dict) or message.get("from") == self.origin:
            return
        kind = message.get("kind")
        self.received += 1
        if kind == "schema":
            self._rerun("schema", self.schemas.invalidate)
        elif kind == ROLES_CACHE:
            self.roles.invalidate()
            self._access_changed()
        elif kind == SESSIONS_CACHE:
            user = message.get("user")
            if isinstance(user, str):
                self.sessions.forget_user(user)
            else:
                self.sessions.forget()
            self._access_changed()
        elif kind in ("interest", "hello", "goodbye"):
            if self.interest is not None:
                self.interest.received(kind, str(message.get("from")), message.get("classes"))
        elif kind == "webhooks":
            self._rerun("webhooks", self.webhooks.load)
        else:
            self.received -= 1
            log.debug("unknown invalidation message kind %r", kind)

    def _reconnected(self, _event: PubSubReconnected) -> None:
        self.forget_everything()

    def forget_everything(self) -> None:
        """After messages may have been lost (pub/sub reconnected): drop every cache."""
        self.roles.invalidate()
        self.sessions.forget()
        self._access_changed()
        self._rerun("schema", self.schemas.invalidate)
        self._rerun("webhooks", self.webhooks.load)
        if self.interest is not None:
            self.interest.warm_up()

    def _access_changed(self) -> None:
        """LiveQuery resolves its subscribers' sessions and roles again (when it has any)."""
        livequery = self.livequery
        if livequery is not None and livequery.principals:
            livequery.access_changed()

    def _rerun(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Runs ``job`` in the background; asked again while it runs, it runs once more after (a
        re-read that began before the change was told may not see it). The reader never waits;
        requests that arrive meanwhile do (``settled``)."""
        task = self._running.get(name)
        if task is not None and not task.done():
            self._again.add(name)
            return
        task = asyncio.get_running_loop().create_task(self._run(name, job))
        self._running[name] = task
        task.add_done_callback(lambda done: self._running.pop(name) if self._running.get(name) is done else None)

    @property
    def rereading(self) -> bool:
        """Whether a re-read another process's message asked for is still running."""
        return bool(self._running)

    async def settled(self) -> None:
        """Waits (at most SETTLE_TIMEOUT) for the re-reads in progress: a request that arrives after
        another process's change was told is answered from the new state, not the old one."""
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=SETTLE_TIMEOUT)

    async def _run(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            self._again.discard(name)
            try:
                await job()
            except Exception:  # noqa: BLE001 - the TTL re-read remains
                log.exception("re-reading after an invalidation (%s) failed", name)
            if name not in self._again:
                return


HEARTBEAT = 5.0  # seconds between a process's announcements of its watched classes
EXPIRY = 3 * HEARTBEAT  # a process not heard from for this long watches nothing any more
TICK = 0.5


class SharedInterest:
    """Which classes have LiveQuery subscribers in other processes, kept in LiveQuery's ``Interest``
    (``remote``), so that a write's change event is made when some process may want it.

    A process announces its own classes (``interest``) when a class gains its first or loses its
    last local subscription, and every HEARTBEAT seconds while it has any; at shutdown it says
    ``goodbye``. A process that starts, or whose pub/sub reconnected (it may have missed
    announcements), asks the others to announce (``hello``) and treats every class as watched
    (``everything``) until a heartbeat has passed. An announcement made as a client subscribes
    travels beside the client's own traffic: a write made in another process in the millisecond
    between the two may go unseen by that subscription.
    """

    def __init__(self, invalidation: Invalidation, interest: Any) -> None:
        self.invalidation = invalidation
        self.interest = interest
        self.others: dict[str, tuple[float, frozenset[str]]] = {}  # origin -> (expires, classes)
        self._warm_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self._unbind: Callable[[], None] | None = None

    def start(self) -> None:
        self._unbind = self.interest.changed.bind(self._local_changed)
        self.warm_up()
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="bastion-livequery-interest")

    async def stop(self) -> None:
        if self._unbind is not None:
            self._unbind()
            self._unbind = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.interest.local:
            with contextlib.suppress(Exception):
                await self.invalidation.publish("goodbye")
        self.others.clear()
        self.interest.remote = set()
        self.interest.everything = False

    def warm_up(self) -> None:
        self.interest.everything = True
        self._warm_until = time.monotonic() + HEARTBEAT + 2 * TICK
        self.invalidation.publish_soon("hello")
        if self.interest.local:
            self._announce_soon()

    def _announce_soon(self) -> None:
        self.invalidation.publish_soon("interest", classes=sorted(self.interest.local))

    def _local_changed(self, _event: InterestChanged) -> None:
        self._announce_soon()

    def received(self, kind: str, origin: str, classes: Any) -> None:
        if kind == "hello":
            if self.interest.local:
                self._announce_soon()
            return
        if kind == "goodbye" or not isinstance(classes, list) or not classes:
            self.others.pop(origin, None)
        else:
            names = frozenset(name for name in classes if isinstance(name, str))
            self.others[origin] = (time.monotonic() + EXPIRY, names)
        self._recompute()

    def _recompute(self) -> None:
        now = time.monotonic()
        for origin in [o for o, (expires, _) in self.others.items() if expires <= now]:
            del self.others[origin]
        remote: set[str] = set()
        for _expires, names in self.others.values():
            remote |= names
        self.interest.remote = remote

    async def _beat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            if self.interest.everything and now >= self._warm_until:
                self.interest.everything = False
            if now - last >= HEARTBEAT:
                last = now
                if self.interest.local:
                    with contextlib.suppress(Exception):
                        await self.invalidation.publish("interest", classes=sorted(self.interest.local))
            self._recompute()

