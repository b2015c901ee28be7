"""The LiveQuery server: Parse's LiveQuery protocol over WebSocket, on the REST API's port.

Writes reach it as the ``Writer``'s after-commit ``ChangeCommitted`` events (``on_change``), published
as JSON on the pub/sub channel ``bastion:<app id>:livequery``; every process (this one included)
consumes that channel (``on_message``) and fans each event out to its own sockets. So with the
in-process adapter a write reaches this process's subscribers, and with Redis every process's.

Per event, matching is done once per query group (``index.py``) and the access decision (CLP,
pointer permissions, ACL, the event's type, the filtered object) once per distinct (query, viewer)
pair; a viewer is who a subscription acts as (master key, or a session's user and roles, which are
resolved when it subscribes and again when roles or sessions change). A message to an idle socket
is written straight to its transport (``direct.py``); otherwise it waits in the socket's bounded
send queue, drained by its own task: a client that falls too far behind is told so and closed, and
never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.auth import Auth, CallInfo
from bastion.core.events import ChangeCommitted, Hook, InterestChanged, ObjectWritten, SessionsRevoked
from bastion.core.js import js_string
from bastion.core.names import INTERNAL_CLASSES, check_class_name
from bastion.core.query import ir
from bastion.core.query.matcher import json_equal
from bastion.core.query.parse import parse_where
from bastion.core.schema import ClassSchema
from bastion.errors import Code, ParseError, Unauthorized
from bastion.keys import Keys, authenticate
from bastion.livequery.direct import DirectWriter, direct_writer
from bastion.livequery.index import ClassIndex, QueryGroup, canonical, check_supported
from bastion.livequery.protocol import (
    INVALID_KEYS,
    NOT_CONNECTED,
    SCHEMA_ERROR,
    error_message,
    event_head,
    event_ident,
    event_tail,
    message,
    request_error,
)

if TYPE_CHECKING:
    from bastion.app import Bastion

log = logging.getLogger("bastion.livequery")

MAX_MESSAGE_BYTES = 1 << 20  # a larger client frame is refused (uvicorn's ws_max_size is set to it too)
MAX_QUEUED_MESSAGES = 2000  # per socket: a client further behind is closed
MAX_QUEUED_BYTES = 16 << 20
CLOSE_TIMEOUT = 5.0  # seconds to deliver the last error and close frame of a socket being closed
ACCESS_REFRESH_INTERVAL = 60.0  # sessions and roles of live subscribers are resolved again this often
MAX_OUTBOX = 100_000  # events waiting for the pub/sub transport; more are dropped (and logged)
DEFAULT_FIELDS = ("className", "objectId", "updatedAt", "createdAt", "ACL")  # always sent with `keys`
_MISSING = object()

# Events of writes inside a transaction (a transactional batch) wait here for its commit.
_DEFERRED: ContextVar[list[bytes] | None] = ContextVar("bastion_livequery_deferred", default=None)


def channel_name(app_id: str | None) -> str:
    return f"bastion:{app_id}:livequery"


def parse_class_list(value: str | None) -> frozenset[str] | None:
    """``--live-query-classes A,B``: None (every class) when unset or empty."""
    if not value:
        return None
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    return names or None


class Interest:
    """Whether a write's class may have a LiveQuery subscriber in some process: the Writer asks
    before it reads an object's original state, so writes nobody watches cost nothing.

    ``local`` counts this process's subscribed classes; a cross-process adapter keeps ``remote``
    (classes other processes subscribe to) or sets ``everything``; ``changed`` tells when a class
    gains its first or loses its last local subscription."""

    def __init__(self, allowed: frozenset[str] | None = None) -> None:
        self.allowed = allowed
        self.local: dict[str, int] = {}
        self.remote: set[str] = set()
        self.everything = False
        # A handler's failure is logged: it must not fail a subscribe.
        self.changed: Hook[InterestChanged] = Hook("LiveQuery interest changed", contain=True)

    def __call__(self, class_name: str) -> bool:
        if self.allowed is not None and class_name not in self.allowed:
            return False
        return self.everything or class_name in self.local or class_name in self.remote

    def enabled(self, class_name: str) -> bool:
        """Whether LiveQuery serves the class at all (``--live-query-classes``)."""
        return self.allowed is None or class_name in self.allowed

    def add(self, class_name: str) -> None:
        count = self.local.get(class_name, 0)
        self.local[class_name] = count + 1
        if count == 0:
            self._tell(class_name, True)

    def remove(self, class_name: str) -> None:
        count = self.local.get(class_name, 0) - 1
        if count > 0:
            self.local[class_name] = count
            return
        if self.local.pop(class_name, None) is not None:
            self._tell(class_name, False)

    def _tell(self, class_name: str, present: bool) -> None:
        if self.changed:
            self.changed.emit(InterestChanged(class_name, present))


class Principal:
    """Who a session token acts as: its user and roles (public when the token is no live session).
    Shared by every connection and subscription using the token."""

    __slots__ = ("token", "auth", "entries", "refs", "ready")

    def __init__(self, token: str) -> None:
        self.token = token
        self.auth = Auth()
        self.entries: frozenset[str] = frozenset({"*"})
        self.refs = 0
        self.ready: asyncio.Future[None] | None = None

    async def resolve(self, app: Bastion) -> None:
        try:
            auth = await app.users.authenticate(Auth(), self.token)
        except ParseError:
            auth = Auth()
        except Exception:  # noqa: BLE001 - the database failing: keep what was known
            log.exception("LiveQuery could not resolve a session")
            return
        self.auth = auth
        self.entries = frozenset(auth.acting_as() or ())


class Connection:
    """One WebSocket client.

    A message goes straight to the socket (``direct``) when nothing is queued or being sent and
    the socket takes it now; otherwise it waits in ``queue`` for ``write_loop``, which keeps the
    order and waits for a slow reader."""

    __slots__ = ("num", "send", "direct", "sending", "info", "client_id", "connected", "master", "principal",
                 "installation_id", "subs", "queue", "queued_bytes", "wakeup", "closing", "close_code")

    def __init__(self, num: int, send: Any, info: CallInfo, direct: DirectWriter | None = None) -> None:
        self.num = num
        self.send = send
        self.direct = direct
        self.sending = False  # write_loop holds a message it took from the queue but has not sent yet
        self.info = info
        self.client_id = ""
        self.connected = False
        self.master = False
        self.principal: Principal | None = None
        self.installation_id: str | None = None
        self.subs: dict[Any, Subscription] = {}
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.wakeup = asyncio.Event()
        self.closing = False
        self.close_code: int | None = None

    def push(self, data: bytes) -> bool:
        """Send or queue a message (UTF-8 JSON); False when the socket is closing or fell too far
        behind (then closed)."""
        if self.closing:
            return False
        # Straight to the socket only when that cannot overtake a message still on its way.
        if not self.queue and not self.sending and self.direct is not None and self.direct.write(data):
            return True
        if len(self.queue) >= MAX_QUEUED_MESSAGES or self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            log.warning("LiveQuery: closing a client %d messages behind", len(self.queue))
            self.fail(error_message(SCHEMA_ERROR, "Client is too slow: too many events are waiting to be sent.",
                                    True), 1013)
            return False
        self.queue.append(data)
        self.queued_bytes += len(data)
        self.wakeup.set()
        return True

    def fail(self, last: bytes | None, code: int) -> None:
        """Drop what waits, send ``last`` and close with ``code``."""
        if self.closing:
            return
        self.queue.clear()
        self.queued_bytes = 0
        if last is not None:
            self.queue.append(last)
        self.closing = True
        self.close_code = code
        self.wakeup.set()

    async def write_loop(self) -> None:
        """Drains the queue into the socket, one message at a time (a slow reader only waits here)."""
        send = self.send
        queue = self.queue
        try:
            while True:
                while not queue:
                    if self.close_code is not None:
                        await asyncio.wait_for(send({"type": "websocket.close", "code": self.close_code}),
                                               CLOSE_TIMEOUT)
                        return
                    self.wakeup.clear()
                    await self.wakeup.wait()
                data = queue.popleft()
                self.queued_bytes -= len(data)
                self.sending = True
                sent = send({"type": "websocket.send", "text": data.decode()})
                if self.closing:
                    await asyncio.wait_for(sent, CLOSE_TIMEOUT)
                else:
                    await sent
                self.sending = False
        except (OSError, RuntimeError, TimeoutError):
            self.closing = True  # the client is gone (or never read its last messages)


class Subscription:
    """One ``requestId`` of one connection."""

    __slots__ = ("conn", "request_id", "group", "principal", "keys", "watch", "ident")

    def __init__(self, conn: Connection, request_id: Any, group: QueryGroup, principal: Principal | None,
                 keys: tuple[str, ...] | None, watch: tuple[str, ...] | None) -> None:
        self.conn = conn
        self.request_id = request_id
        self.group = group
        self.principal = principal
        self.keys = keys
        self.watch = watch
        # The middle of its events (protocol.event_ident), encoded once: a new connect on the
        # socket drops its subscriptions, so the ids stay true.
        self.ident = event_ident(conn.client_id, conn.installation_id, request_id)

    def viewer(self) -> tuple[bool, Principal | None, Principal | None]:
        """Who the subscription acts as: the master key, or its own session (else the connection's),
        plus the connection's session, whose ACL access counts too (as in Parse Server)."""
        conn = self.conn
        effective = self.principal or conn.principal
        other = conn.principal if self.principal is not None and conn.principal is not self.principal else None
        return conn.master, effective, other


class _Decision:
    """What one viewer gets of one event for one query: the event type, the object and original
    (filtered for the viewer), encoded once per ``keys`` as the message's end (``event_tail``)."""

    __slots__ = ("event", "obj", "original", "auth", "filtered", "head", "encoded")

    def __init__(self, event: str, obj: dict[str, Any], original: dict[str, Any] | None, auth: Auth) -> None:
        self.event = event
        self.obj = obj
        self.original = original
        self.auth = auth
        self.filtered: tuple[dict[str, Any], dict[str, Any] | None] | None = None
        self.head = event_head(event)
        self.encoded: dict[tuple[str, ...] | None, bytes] = {}


def project(obj: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    """Parse Server's Client._toJSONWithFields: the default fields and the listed keys."""
    if keys is None:
        return obj
    out = {name: obj[name] for name in DEFAULT_FIELDS if name in obj}
    for name in keys:
        if name in obj:
            out[name] = obj[name]
    return out


def watch_changed(watch: tuple[str, ...], current: dict[str, Any], original: dict[str, Any] | None) -> bool:
    before = original or {}
    return any(not json_equal(current.get(name), before.get(name)) for name in watch)


class LiveQuery:
    def __init__(self, app: Bastion) -> None:
        self.app = app
        settings = app.settings
        self.interest = Interest(parse_class_list(getattr(settings, "live_query_classes", None)))
        self.channel = channel_name(settings.app_id)
        self.connections: dict[int, Connection] = {}
        self.classes: dict[str, ClassIndex] = {}
        self.principals: dict[str, Principal] = {}
        self._next = 0
        self._outbox: asyncio.Queue[bytes] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshing: asyncio.Task[None] | None = None
        self._refresh_again = False
        self.running = False
        app.writer.committed.bind(self.on_change)
        app.writer.wants_changes = self.interest
        app.writer.written.bind(self._written)
        app.sessions.revoked.bind(self._sessions_revoked)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._outbox = asyncio.Queue()
        await self.app.pubsub.subscribe(self.channel, self.on_message)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publish_loop(), name="livequery-publish"),
                       loop.create_task(self._refresh_loop(), name="livequery-access-refresh")]
        self.running = True

    async def stop(self) -> None:
        """Tell every client to reconnect (close code 1012, service restart) and stop."""
        self.running = False
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
            await self.app.pubsub.unsubscribe(self.channel, self.on_message)

    # --- publishing writes ----------------------------------------------------------------------

    def on_change(self, event: ChangeCommitted) -> None:
        """The Writer's after-commit hook: the change as JSON on the channel (after the transaction
        commits, inside one)."""
        class_name = event.class_name
        if not self.interest(class_name):
            return
        schema = self.app.schemas.get(class_name)
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
        obj = self.app.reader.encode(schema, visible)
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
                await self.app.pubsub.publish(self.channel, payload)
            except Exception:  # noqa: BLE001 - the transport failing must not stop later events
                log.exception("LiveQuery could not publish an event")
            finally:
                outbox.task_done()

    # --- access: sessions and roles -------------------------------------------------------------

    def _written(self, event: ObjectWritten) -> None:
        if event.class_name in ("_Role", "_Session") and self.principals:
            self.access_changed()

    async def _sessions_revoked(self, _event: SessionsRevoked) -> None:
        if self.principals:
            self.access_changed()

    def access_changed(self) -> None:
        """Roles or sessions changed (here, or in another process): resolve every subscriber's
        access again; events wait for it, so none goes out with access that was just revoked."""
        if self._refreshing is not None:
            self._refresh_again = True
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh_all())

    async def _refresh_all(self) -> None:
        try:
            while True:
                self._refresh_again = False
                await self._resolve_all()
                if not self._refresh_again:
                    break
        finally:
            self._refreshing = None

    async def _resolve_all(self) -> None:
        principals = list(self.principals.values())
        for start in range(0, len(principals), 50):
            await asyncio.gather(*(p.resolve(self.app) for p in principals[start:start + 50]))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(ACCESS_REFRESH_INTERVAL)
            try:
                await self._resolve_all()  # sessions that expired, roles changed by other processes
            except Exception:  # noqa: BLE001
                log.exception("LiveQuery access refresh failed")

    async def _acquire(self, token: str) -> Principal:
        principal = self.principals.get(token)
        if principal is None:
            principal = self.principals[token] = Principal(token)
            principal.ready = asyncio.ensure_future(principal.resolve(self.app))
        principal.refs += 1
        try:
            assert principal.ready is not None
            await asyncio.shield(principal.ready)
        except BaseException:
            self._release(principal)
            raise
        return principal

    def _release(self, principal: Principal | None) -> None:
        if principal is None:
            return
        principal.refs -= 1
        if principal.refs <= 0 and self.principals.get(principal.token) is principal:
            del self.principals[principal.token]

    @staticmethod
    def _auth(master: bool, principal: Principal | None, installation_id: str | None = None) -> Auth:
        if master:
            return Auth(is_master=True, installation_id=installation_id)
        if principal is None:
            return Auth(installation_id=installation_id)
        auth = principal.auth
        return Auth(user=auth.user, roles=list(auth.roles), installation_id=installation_id,
                    session_token=auth.session_token)

    # --- the WebSocket endpoint -----------------------------------------------------------------

    def serves_path(self, path: str) -> bool:
        mount = self.app.settings.mount
        return path in ("/", "") or (bool(mount) and path in (mount, mount + "/"))

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """One WebSocket connection (an ASGI ``websocket`` scope), from handshake to close."""
        first = await receive()
        if first.get("type") != "websocket.connect":
            return
        if not self.running or not self.serves_path(scope.get("path", "")):
            await send({"type": "websocket.close", "code": 1008})  # the handshake is refused (403)
            return
        await send({"type": "websocket.accept"})
        direct = direct_writer(send)  # None: every message takes the ASGI path
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        self._next += 1
        conn = Connection(self._next, send, CallInfo(headers, client[0] if client else None, {}), direct)
        self.connections[conn.num] = conn
        writer = asyncio.get_running_loop().create_task(conn.write_loop())
        try:
            while True:
                event = await receive()
                kind = event.get("type")
                if kind == "websocket.disconnect":
                    break
                if kind != "websocket.receive" or conn.closing:
                    continue
                text = event.get("text")
                if text is None:
                    text = event.get("bytes") or b""
                if len(text) > MAX_MESSAGE_BYTES:
                    conn.fail(error_message(SCHEMA_ERROR, "Message too large.", False), 1009)
                    continue
                try:
                    await self._frame(conn, text)
                except Exception:  # noqa: BLE001 - a bug answers this frame, the socket lives on
                    log.exception("LiveQuery request failed")
                    conn.push(error_message(Code.INTERNAL_SERVER_ERROR, "Internal server error.", False))
        finally:
            # The client is gone (or this task is being cancelled): nothing more can be sent.
            self._disconnect(conn)
            if not writer.done():
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer

    def _disconnect(self, conn: Connection) -> None:
        conn.closing = True
        conn.queue.clear()
        self.connections.pop(conn.num, None)
        for sub in list(conn.subs.values()):
            self._remove(sub)
        conn.subs.clear()
        self._release(conn.principal)
        conn.principal = None

    async def _frame(self, conn: Connection, text: str | bytes) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.push(error_message(SCHEMA_ERROR, "Invalid JSON.", False))
            return
        error = request_error(request)
        if error:
            conn.push(error_message(SCHEMA_ERROR, error))  # reconnect: true, as Parse Server answers it
            return
        op = request["op"]
        if op == "connect":
            await self._connect(conn, request)
        elif op == "subscribe":
            await self._subscribe(conn, request)
        elif op == "update":
            self._unsubscribe(conn, request, notify=False)
            await self._subscribe(conn, request)
        else:
            self._unsubscribe(conn, request)

    async def _connect(self, conn: Connection, request: dict[str, Any]) -> None:
        keys = Keys(app_id=request["applicationId"], master_key=request.get("masterKey"),
                    javascript_key=request.get("javascriptKey"), rest_key=request.get("restAPIKey"),
                    client_key=request.get("clientKey"), session_token=request.get("sessionToken"),
                    installation_id=request.get("installationId"))
        try:
            auth = authenticate(keys, self.app.settings)
        except Unauthorized:
            conn.push(error_message(INVALID_KEYS, "Key in request is not valid"))
            return
        token = request.get("sessionToken") or None
        principal = await self._acquire(token) if token else None
        cloud = self.app.cloud
        if cloud.has("beforeConnect", "@Connect"):
            try:
                await cloud.before_connect(self._auth(auth.is_master, principal, keys.installation_id),
                                           conn.info, clients=len(self.connections),
                                           subscriptions=self._subscription_count())
            except ParseError as exc:
                self._release(principal)
                conn.push(error_message(exc.code, exc.message, False))
                return
        if conn.connected:  # connected again on the same socket: a fresh client
            for sub in list(conn.subs.values()):
                self._remove(sub)
            conn.subs.clear()
            self._release(conn.principal)
        conn.connected = True
        conn.client_id = str(uuid.uuid4())
        conn.master = auth.is_master
        conn.principal = principal
        conn.installation_id = keys.installation_id
        conn.push(message("connected", conn.client_id, conn.installation_id))

    def _subscription_count(self) -> int:
        return sum(len(index.groups) for index in self.classes.values())

    def _parser(self, class_name: str) -> Callable[[ClassSchema | None, dict[str, Any]], ir.Node]:
        schemas = self.app.schemas
        limits = self.app.reader.options.query_limits

        def parse(schema: ClassSchema | None, where: dict[str, Any]) -> ir.Node:
            return parse_where(where, schema, class_name, schemas.get, limits)
        return parse

    async def _subscribe(self, conn: Connection, request: dict[str, Any]) -> None:
        if not conn.connected:
            conn.push(error_message(NOT_CONNECTED, "Can not find this client, make sure you connect to server "
                                                   "before subscribing"))
            return
        request_id = request["requestId"]
        query = request["query"]
        class_name: str = query["className"]
        where: dict[str, Any] = query["where"]
        keys = query.get("keys") or query.get("fields")
        watch = query.get("watch")
        token = request.get("sessionToken") or None
        principal = await self._acquire(token) if token else None
        try:
            auth = self._auth(conn.master, principal or conn.principal, conn.installation_id)
            cloud = self.app.cloud
            if cloud.has("beforeSubscribe", class_name):
                where, keys, watch = await cloud.before_subscribe(class_name, where, keys, watch, auth, conn.info,
                                                                  request_id=request_id)
            schema = self._check_query(class_name, where, watch, auth)
            if class_name == "_Session" and not auth.is_master:
                # As Parse Server: a client watches its own sessions only.
                where = {**where, "user": {"__type": "Pointer", "className": "_User", "objectId": auth.user_id}}
            parse = self._parser(class_name)
            check_supported(parse(schema, where))
        except ParseError as exc:
            self._release(principal)
            conn.push(error_message(exc.code, exc.message, False, request_id))
            return
        previous = conn.subs.pop(request_id, None)
        if previous is not None:
            self._remove(previous)
        index = self.classes.get(class_name)
        if index is None:
            index = self.classes[class_name] = ClassIndex(class_name)
        group = index.group(where, parse, schema)
        sub = Subscription(conn, request_id, group, principal,
                           tuple(keys) if keys else None, tuple(watch) if watch else None)
        group.subs[(conn.num, request_id)] = sub
        conn.subs[request_id] = sub
        self.interest.add(class_name)
        conn.push(message("subscribed", conn.client_id, conn.installation_id, request_id))

    def _check_query(self, class_name: str, where: Any, watch: Any, auth: Auth) -> ClassSchema | None:
        """The checks of a subscription's query, as of a find: readable class, CLP, no query on or
        watch of a protected field. Returns the class's schema (None when it does not exist yet)."""
        check_class_name(class_name)
        if class_name in INTERNAL_CLASSES or class_name.startswith("_Join:"):
            raise ParseError(Code.OPERATION_FORBIDDEN, f"Class {class_name} is not readable.")
        if class_name.startswith("_") and class_name not in ("_User", "_Role", "_Session") and not auth.is_master:
            raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
        if not self.interest.enabled(class_name):
            raise ParseError(Code.OPERATION_FORBIDDEN, f"LiveQuery is not enabled for class {class_name}.")
        if not isinstance(where, dict):
            raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
        if class_name == "_Session" and not auth.is_master and not auth.user_id:
            raise ParseError(Code.INVALID_SESSION_TOKEN, "Invalid session token")
        schema = self.app.schemas.get(class_name)
        if auth.is_master:
            return schema
        permissions = self.app.permissions
        op = "get" if len(where) == 1 and isinstance(where.get("objectId"), str) else "find"
        permissions.require(schema, auth, op)
        protection = permissions.protection(schema, auth, where)
        permissions.deny_query(protection, where, None)
        if protection is not None and watch:
            for name in watch:
                if name in protection.fields or name.split(".")[0] in protection.fields:
                    raise ParseError(Code.OPERATION_FORBIDDEN, "Permission denied")
        return schema

    def _unsubscribe(self, conn: Connection, request: dict[str, Any], notify: bool = True) -> None:
        if not conn.connected:
            conn.push(error_message(NOT_CONNECTED, "Can not find this client, make sure you connect to server "
                                                   "before unsubscribing"))
            return
        request_id = request["requestId"]
        sub = conn.subs.pop(request_id, None)
        if sub is None:
            conn.push(error_message(
                NOT_CONNECTED, f"Cannot find subscription with clientId {conn.client_id} subscriptionId "
                               f"{js_string(request_id)}. Make sure you subscribe to live query server before "
                               "unsubscribing."))
            return
        self._remove(sub)
        if notify:
            conn.push(message("unsubscribed", conn.client_id, conn.installation_id, request_id))

    def _remove(self, sub: Subscription) -> None:
        group = sub.group
        if group.subs.pop((sub.conn.num, sub.request_id), None) is None:
            return
        index = self.classes.get(group.class_name)
        if index is not None:
            index.drop_if_empty(group)
            if not len(index):
                del self.classes[group.class_name]
        self.interest.remove(group.class_name)
        self._release(sub.principal)
        sub.principal = None

    # --- events ---------------------------------------------------------------------------------

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
        if class_name not in self.classes:
            return
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)  # roles or sessions just changed
        index = self.classes.get(class_name)
        if index is None or not isinstance(current_json, dict):
            return
        schema = self.app.schemas.get(class_name)
        index.sync_schema(self._parser(class_name), schema)
        current = canonical(schema, current_json)
        original = canonical(schema, original_json) if isinstance(original_json, dict) else None
        if op == "delete":
            original, original_json = None, None
        hooked = self.app.cloud.has("afterEvent", class_name)
        for group in index.candidates(current, original):
            current_match = group.matches(current)
            original_match = group.matches(original)
            if not current_match and not original_match:
                continue
            decisions: dict[tuple[Any, ...], _Decision | None] = {}
            for sub in list(group.subs.values()):
                if sub.conn.closing:
                    continue
                viewer = sub.viewer()
                decision = decisions.get(viewer, _MISSING)
                if decision is _MISSING:
                    decision = decisions[viewer] = self._decide(
                        op, schema, group, viewer, current, current_json, current_match,
                        original, original_json, original_match)
                if decision is None:
                    continue
                assert isinstance(decision, _Decision)
                if (sub.watch and decision.event in ("update", "create")
                        and not watch_changed(sub.watch, current_json, original_json)):
                    continue
                if hooked:
                    await self._send_hooked(sub, decision, schema, class_name)
                else:
                    self._send(sub, decision, schema, class_name)

    def _decide(self, op: str, schema: ClassSchema | None, group: QueryGroup,
                viewer: tuple[bool, Principal | None, Principal | None],
                current: dict[str, Any] | None, current_json: dict[str, Any], current_match: bool,
                original: dict[str, Any] | None, original_json: dict[str, Any] | None,
                original_match: bool) -> _Decision | None:
        """Parse Server's _onAfterSave/_onAfterDelete decision for one viewer: CLP (with pointer
        permissions) on the current object, ACL of the original and of the current object, and from
        them the event type and what the viewer may see of each state."""
        master, effective, other = viewer
        auth = self._auth(master, effective)
        if not master and not self._clp_allows(schema, auth, group.op, current):
            return None
        entries: frozenset[str] = frozenset({"*"})
        if effective is not None:
            entries = effective.entries
        if other is not None:
            entries = entries | other.entries

        def readable(record: dict[str, Any] | None) -> bool:
            if record is None:
                return False
            if master:
                return True
            perms = record.get("_rperm")
            return perms is None or not entries.isdisjoint(perms)

        if op == "delete":
            return _Decision("delete", current_json, None, auth) if current_match and readable(current) else None
        was = original_match and readable(original)
        now = current_match and readable(current)
        if was and now:
            return _Decision("update", current_json, original_json, auth)
        if was:
            # A leave caused by lost access shows the last state the viewer could read.
            shown = current_json if not current_match and readable(current) else original_json
            assert shown is not None
            return _Decision("leave", shown, original_json, auth)
        if now:
            if original_json is None:
                return _Decision("create", current_json, None, auth)
            seen = original_json if not original_match and readable(original) else None
            return _Decision("enter", current_json, seen, auth)
        return None

    def _clp_allows(self, schema: ClassSchema | None, auth: Auth, op: str, record: dict[str, Any] | None) -> bool:
        if schema is None:
            return True
        permissions = self.app.permissions
        try:
            permissions.require(schema, auth, op)
            where = permissions.pointer_where(schema, auth, op)
        except ParseError:
            return False
        if where is None:
            return False
        if not where:
            return True
        if record is None:
            return False
        try:
            node = parse_where(where, schema, schema.class_name, self.app.schemas.get)
        except ParseError:
            return False
        return _matches(node, record)

    def _filter(self, class_name: str, schema: ClassSchema | None, auth: Auth, where: dict[str, Any],
                obj: dict[str, Any] | None) -> dict[str, Any] | None:
        """What the viewer may see of an object: _User's secrets and protected fields removed."""
        if obj is None:
            return None
        obj = dict(obj)
        sanitize = self.app.reader.sanitizers.get(class_name)
        if sanitize is not None:
            obj = sanitize(obj, auth)
        if not auth.is_master:
            protection = self.app.permissions.protection(schema, auth, where)
            if protection is not None:
                obj = protection.apply(obj)
        return obj

    def _send(self, sub: Subscription, decision: _Decision, schema: ClassSchema | None, class_name: str) -> None:
        tail = decision.encoded.get(sub.keys)
        if tail is None:
            if decision.filtered is None:
                decision.filtered = (
                    self._filter(class_name, schema, decision.auth, sub.group.where, decision.obj) or {},
                    self._filter(class_name, schema, decision.auth, sub.group.where, decision.original))
            obj, original = decision.filtered
            tail = decision.encoded[sub.keys] = event_tail(
                project(obj, sub.keys), project(original, sub.keys) if original is not None else None)
        sub.conn.push(decision.head + sub.ident + tail)

    async def _send_hooked(self, sub: Subscription, decision: _Decision, schema: ClassSchema | None,
                           class_name: str) -> None:
        """With an after_event trigger: it sees (and may change or drop) each subscriber's event,
        before the viewer's filtering, as in Parse Server."""
        conn = sub.conn
        try:
            result = await self.app.cloud.after_event(
                class_name, decision.event, orjson.loads(orjson.dumps(decision.obj)),
                orjson.loads(orjson.dumps(decision.original)) if decision.original is not None else None,
                self._auth(conn.master, sub.principal or conn.principal, conn.installation_id), conn.info,
                clients=len(self.connections), subscriptions=self._subscription_count())
        except ParseError as exc:
            conn.push(error_message(exc.code, exc.message, False, sub.request_id))
            return
        if result is None:
            return
        obj, original = result
        where = sub.group.where
        obj = self._filter(class_name, schema, decision.auth, where, obj) or {}
        original = self._filter(class_name, schema, decision.auth, where, original)
        conn.push(decision.head + sub.ident + event_tail(
            project(obj, sub.keys), project(original, sub.keys) if original is not None else None))


def _matches(node: ir.Node, record: dict[str, Any]) -> bool:
    from bastion.core.query.matcher import matches

    try:
        return matches(node, record)
    except Exception:  # noqa: BLE001
        return False
