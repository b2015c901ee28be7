"""Cache invalidation between Bastion processes, through the pub/sub adapter.

Each process caches what it reads on every request: the schemas (SchemaRegistry), the role names of
each user (Roles), resolved session tokens (Sessions) and the webhooks (Webhooks). Without a shared
pub/sub (``--pubsub`` unset: the in-process adapter) another process's change is seen when the entry
expires (5 s) or when a miss re-reads it, as before. With Redis, a process that changes one of them
publishes a small JSON message on ``bastion:<app id>:invalidate`` and every other process drops or
re-reads the cache at once:

    {"from": "<process>", "kind": "schema", "class": "Post"}   re-read every schema
    {"from": "<process>", "kind": "roles"}                      forget every user's role names
    {"from": "<process>", "kind": "sessions", "user": "<id>"}   forget that user's cached sessions
    {"from": "<process>", "kind": "sessions"}                   forget every cached session
    {"from": "<process>", "kind": "webhooks"}                   re-read the webhooks

Session tokens never travel: a revocation names the user. A process ignores its own messages
(``from``). Messages published while Redis is away are lost; when the reader reconnects, the process
drops all of these caches, since it may have missed some. Messages are published after the change
is stored; a role or session write inside a batch transaction is told (as it is to this process's
own caches) when the write is made, before the transaction commits, so a process that re-reads in
between keeps the old value until the entry expires (5 s), as without Redis.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from bastion.adapters.pubsub.base import PubSub
    from bastion.app import Bastion

log = logging.getLogger("bastion.pubsub")


def channel_name(app_id: str) -> str:
    return f"bastion:{app_id}:invalidate"


class Invalidation:
    def __init__(self, app: Bastion) -> None:
        self.app = app
        self.channel = channel_name(app.settings.app_id or "")
        self.origin = secrets.token_hex(8)  # this process, in the messages it sends
        self.pubsub: PubSub | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.received = 0  # messages from other processes applied (for tests and logs)

    @property
    def active(self) -> bool:
        return self.pubsub is not None

    async def start(self, pubsub: PubSub | None) -> None:
        """Listens and tells, when ``pubsub`` reaches other processes (not the in-process adapter)."""
        if pubsub is None or pubsub.name == "memory" or self.pubsub is not None:
            return
        self.pubsub = pubsub
        await pubsub.subscribe(self.channel, self._received)
        on_reconnect = getattr(pubsub, "on_reconnect", None)
        if isinstance(on_reconnect, list):
            on_reconnect.append(self.forget_everything)
        self.app.schemas.listeners.append(self._schema_changed)
        self.app.sessions.listeners.append(self._sessions_revoked)
        self.app.cloud.webhooks.listeners.append(self._webhooks_changed)

    async def stop(self) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is None:
            return
        _remove(self.app.schemas.listeners, self._schema_changed)
        _remove(self.app.sessions.listeners, self._sessions_revoked)
        _remove(self.app.cloud.webhooks.listeners, self._webhooks_changed)
        on_reconnect = getattr(pubsub, "on_reconnect", None)
        if isinstance(on_reconnect, list):
            _remove(on_reconnect, self.forget_everything)
        await pubsub.unsubscribe(self.channel, self._received)
        for task in [*self._tasks, *self._running.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._running.values(), return_exceptions=True)

    # --- telling ----------------------------------------------------------------------------------

    async def publish(self, kind: str, **fields: Any) -> None:
        pubsub = self.pubsub
        if pubsub is None:
            return
        await pubsub.publish(self.channel, orjson.dumps({"from": self.origin, "kind": kind, **fields}))

    def publish_soon(self, kind: str, **fields: Any) -> None:
        """``publish`` from synchronous code (the writer's listeners): in a task of its own."""
        if self.pubsub is None:
            return
        task = asyncio.get_running_loop().create_task(self.publish(kind, **fields))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def written(self, class_name: str) -> None:
        """A write to ``class_name`` was stored here (Bastion._written, after the local invalidation)."""
        if class_name == "_Role":
            self.publish_soon("roles")
        elif class_name == "_Session":
            self.publish_soon("sessions")

    async def _schema_changed(self, class_name: str) -> None:
        await self.publish("schema", **{"class": class_name})

    async def _sessions_revoked(self, user_id: str) -> None:
        await self.publish("sessions", user=user_id)

    async def _webhooks_changed(self) -> None:
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
            self._rerun("schema", self.app.schemas.invalidate)
        elif kind == "roles":
            self.app.roles.invalidate()
        elif kind == "sessions":
            user = message.get("user")
            if isinstance(user, str):
                self.app.sessions.forget_user(user)
            else:
                self.app.sessions.forget()
        elif kind == "webhooks":
            self._rerun("webhooks", self.app.cloud.webhooks.load)
        else:
            self.received -= 1
            log.debug("unknown invalidation message kind %r", kind)

    def forget_everything(self) -> None:
        """After messages may have been lost (pub/sub reconnected): drop every cache."""
        self.app.roles.invalidate()
        self.app.sessions.forget()
        self._rerun("schema", self.app.schemas.invalidate)
        self._rerun("webhooks", self.app.cloud.webhooks.load)

    def _rerun(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Runs ``job`` in the background; asked again while it runs, it runs once more after (a
        re-read that began before the change was told may not see it). The reader never waits."""
        task = self._running.get(name)
        if task is not None and not task.done():
            self._again.add(name)
            return
        self._running[name] = asyncio.get_running_loop().create_task(self._run(name, job))

    async def _run(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            self._again.discard(name)
            try:
                await job()
            except Exception:  # noqa: BLE001 - the TTL re-read remains
                log.exception("re-reading after an invalidation (%s) failed", name)
            if name not in self._again:
                return


def _remove(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)
