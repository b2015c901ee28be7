"""The LiveQuery server: Parse's LiveQuery protocol over WebSocket, on the REST API's port.

Writes reach it as the ``Writer``'s after-commit ``ChangeCommitted`` events (``on_change``), published
as JSON on the pub/sub channel ``bastion:<app id>:livequery``; every process (this one included)
consumes that channel (``on_message``) and fans each event out to its own sockets. So with the
in-process adapter a write reaches this process's subscribers, and with Redis every process's.

Per event, matching is done once per query group (``index.py``) and the access decision
(``access.py``) once per distinct (query, viewer) pair. The sockets themselves are the endpoint's
(``endpoint.py``, ``connection.py``), the subscriptions ``subscriptions.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import orjson

from bastion.cloud._runtime.runtime import CloudRuntime
from bastion.core.auth import Auth
from bastion.core.events import ChangeCommitted, ObjectWritten, SessionsRevoked
from bastion.core.permissions import Permissions
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import cache_drops
from bastion.domain.read import Reader
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.sessions import Sessions
from bastion.domain.users import Users
from bastion.domain.write import Writer
from bastion.errors import ParseError
from bastion.keys import Keys
from bastion.livequery.access import (
    Access,
    Decision,
    Principal,
    PrincipalCache,
    acting_auth,
    project,
    watch_changed,
)
from bastion.livequery.connection import Connection, Subscription
from bastion.livequery.endpoint import Endpoint
from bastion.livequery.index import ClassIndex, canonical
from bastion.livequery.protocol import error_message, event_tail
from bastion.livequery.subscriptions import Interest, Subscriptions
from bastion.ports.pubsub import PubSub

log = logging.getLogger("bastion.livequery")

MAX_OUTBOX = 100_000  # events waiting for the pub/sub transport; more are dropped (and logged)
_MISSING = object()

# Events of writes inside a transaction (a transactional batch) wait here for its commit.
_DEFERRED: ContextVar[list[bytes] | None] = ContextVar("bastion_livequery_deferred", default=None)


def channel_name(app_id: str | None) -> str:
    return f"bastion:{app_id}:livequery"


class LiveQuery:
    """LiveQuery's parts, wired to the services it uses: ``interest`` (the classes subscribed to
    anywhere; the writer asks it before reading a write's original state), ``writer`` (its
    after-commit and written hooks), ``sessions`` (its
    revocations), ``users`` (resolves session tokens), ``reader`` (encodes records, its query
    limits and sanitizers), ``schemas``, ``permissions``, ``cloud`` (the LiveQuery triggers) and
    ``pubsub`` (the channel). ``authenticate`` gives what a ``connect``'s keys grant."""

    def __init__(self, *, app_id: str | None, mount: str, interest: Interest,
                 authenticate: Callable[[Keys, str | None], Auth], schemas: SchemaRegistry, reader: Reader,
                 writer: Writer, users: Users, sessions: Sessions, permissions: Permissions, cloud: CloudRuntime,
                 pubsub: PubSub) -> None:
        self.schemas = schemas
        self.reader = reader
        self.cloud = cloud
        self.pubsub = pubsub
        self.interest = interest
        self.channel = channel_name(app_id)
        self.principal_cache = PrincipalCache(users)
        self.subscriptions = Subscriptions(self.interest, self.principal_cache, schemas, reader, permissions, cloud)
        self.access = Access(schemas, permissions, reader.sanitizers)
        self.endpoint = Endpoint(mount, authenticate, self.principal_cache, self.subscriptions, cloud)
        self._outbox: asyncio.Queue[bytes] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        writer.committed.bind(self.on_change)
        writer.written.bind(self._written)
        sessions.revoked.bind(self._sessions_revoked)

    @property
    def connections(self) -> dict[int, Connection]:
        return self.endpoint.connections

    @property
    def classes(self) -> dict[str, ClassIndex]:
        return self.subscriptions.classes

    @property
    def principals(self) -> dict[str, Principal]:
        """The sessions subscribers act as, by token."""
        return self.principal_cache.by_token

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._outbox = asyncio.Queue()
        await self.pubsub.subscribe(self.channel, self.on_message)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publish_loop(), name="livequery-publish"),
                       loop.create_task(self.principal_cache.refresh_loop(), name="livequery-access-refresh")]
        self.endpoint.running = True

    async def stop(self) -> None:
        """Tell every client to reconnect (close code 1012, service restart) and stop."""
        self.endpoint.running = False
        for conn in list(self.connections.values()):
            conn.fail(None, 1012)
        deadline = asyncio.get_running_loop().time() + 2.0
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        outbox = self._outbox
        if outbox is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outbox.join(), 2.0)  # events of the last writes still go out
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.pubsub.unsubscribe(self.channel, self.on_message)

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """One WebSocket connection (an ASGI ``websocket`` scope), from handshake to close."""
        await self.endpoint.serve(scope, receive, send)

    # --- publishing writes ----------------------------------------------------------------------

    def on_change(self, event: ChangeCommitted) -> None:
        """The Writer's after-commit hook: the change as JSON on the channel (after the transaction
        commits, inside one)."""
        class_name = event.class_name
        if not self.interest(class_name):
            return
        schema = self.schemas.get(class_name)
        if schema is None:
            return
        payload = orjson.dumps({"c": class_name, "op": event.op, "o": self._encode(schema, event.record),
                                "p": self._encode(schema, event.original)})
        deferred = _DEFERRED.get()
        if deferred is not None:
            deferred.append(payload)
        else:
            self._enqueue(payload)

    def _encode(self, schema: ClassSchema, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None:
            return None
        visible = {key: value for key, value in record.items()
                   if not key.startswith("_") or key in ("_rperm", "_wperm")}
        obj = self.reader.encode(schema, visible)
        obj["className"] = schema.class_name
        return obj

    def _enqueue(self, payload: bytes) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        if outbox.qsize() >= MAX_OUTBOX:
            log.warning("LiveQuery: %d events wait for the pub/sub transport; dropping one", outbox.qsize())
            return
        outbox.put_nowait(payload)

    @asynccontextmanager
    async def deferred(self) -> AsyncIterator[None]:
        """Events of the writes made inside go out when the block ends without an error (a
        transaction's commit); an error drops them (its rollback)."""
        if _DEFERRED.get() is not None:
            yield
            return
        events: list[bytes] = []
        token = _DEFERRED.set(events)
        try:
            yield
        finally:
            _DEFERRED.reset(token)
        for payload in events:
            self._enqueue(payload)

    async def _publish_loop(self) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        while True:
            payload = await outbox.get()
            try:
                await self.pubsub.publish(self.channel, payload)
            except Exception:  # noqa: BLE001 - the transport failing must not stop later events
                log.exception("LiveQuery could not publish an event")
            finally:
                outbox.task_done()

    # --- access: sessions and roles -------------------------------------------------------------

    def _written(self, event: ObjectWritten) -> None:
        # A write to _Role or _Session drops cached roles or sessions: subscribers' access may change.
        if self.principals and cache_drops(event.class_name):
            self.access_changed()

    async def _sessions_revoked(self, _event: SessionsRevoked) -> None:
        if self.principals:
            self.access_changed()

    def access_changed(self) -> None:
        """Roles or sessions changed (here, or in another process): resolve every subscriber's
        access again; events wait for it, so none goes out with access that was just revoked."""
        self.principal_cache.changed()

    # --- fan-out --------------------------------------------------------------------------------

    async def on_message(self, raw: bytes) -> None:
        """One change from the channel, fanned out to this process's subscribers."""
        try:
            msg = orjson.loads(raw)
            class_name: str = msg["c"]
            op: str = msg["op"]
            current_json: dict[str, Any] = msg["o"]
            original_json: dict[str, Any] | None = msg.get("p")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("LiveQuery: an unreadable message on %s", self.channel)
            return
        classes = self.subscriptions.classes
        if class_name not in classes:
            return
        refreshing = self.principal_cache.refreshing
        if refreshing is not None:
            await asyncio.shield(refreshing)  # roles or sessions just changed
        index = classes.get(class_name)
        if index is None or not isinstance(current_json, dict):
            return
        schema = self.schemas.get(class_name)
        index.sync_schema(self.subscriptions.parser(class_name), schema)
        current = canonical(schema, current_json)
        original = canonical(schema, original_json) if isinstance(original_json, dict) else None
        if op == "delete":
            original, original_json = None, None
        hooked = self.cloud.has("afterEvent", class_name)
        decide = self.access.decide
        for group in index.candidates(current, original):
            current_match = group.matches(current)
            original_match = group.matches(original)
            if not current_match and not original_match:
                continue
            decisions: dict[tuple[Any, ...], Decision | None] = {}
            for sub in list(group.subs.values()):
                if sub.conn.closing:
                    continue
                viewer = sub.viewer()
                decision = decisions.get(viewer, _MISSING)
                if decision is _MISSING:
                    decision = decisions[viewer] = decide(
                        op, schema, group, viewer, current, current_json, current_match,
                        original, original_json, original_match)
                if decision is None:
                    continue
                assert isinstance(decision, Decision)
                if (sub.watch and decision.event in ("update", "create")
                        and not watch_changed(sub.watch, current_json, original_json)):
                    continue
                if hooked:
                    await self._send_hooked(sub, decision, schema, class_name)
                else:
                    self._send(sub, decision, schema, class_name)

    def _send(self, sub: Subscription, decision: Decision, schema: ClassSchema | None, class_name: str) -> None:
        tail = decision.encoded.get(sub.keys)
        if tail is None:
            if decision.filtered is None:
                access = self.access
                decision.filtered = (
                    access.filter(class_name, schema, decision.auth, sub.group.where, decision.obj) or {},
                    access.filter(class_name, schema, decision.auth, sub.group.where, decision.original))
            obj, original = decision.filtered
            tail = decision.encoded[sub.keys] = event_tail(
                project(obj, sub.keys), project(original, sub.keys) if original is not None else None)
        sub.conn.push(decision.head + sub.ident + tail)

    async def _send_hooked(self, sub: Subscription, decision: Decision, schema: ClassSchema | None,
                           class_name: str) -> None:
        """With an after_event trigger: it sees (and may change or drop) each subscriber's event,
        before the viewer's filtering, as in Parse Server."""
        conn = sub.conn
        try:
            result = await self.cloud.after_event(
                class_name, decision.event, orjson.loads(orjson.dumps(decision.obj)),
                orjson.loads(orjson.dumps(decision.original)) if decision.original is not None else None,
                acting_auth(conn.master, sub.principal or conn.principal, conn.installation_id), conn.info,
                clients=len(self.connections), subscriptions=self.subscriptions.count())
        except ParseError as exc:
            conn.push(error_message(exc.code, exc.message, False, sub.request_id))
            return
        if result is None:
            return
        obj, original = result
        where = sub.group.where
        obj = self.access.filter(class_name, schema, decision.auth, where, obj) or {}
        original = self.access.filter(class_name, schema, decision.auth, where, original)
        conn.push(decision.head + sub.ident + event_tail(
            project(obj, sub.keys), project(original, sub.keys) if original is not None else None))
