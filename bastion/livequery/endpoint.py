"""The WebSocket endpoint: a socket from handshake to close, and its frames, handled one after
another: ``connect`` (keys, the session token, cloud ``before_connect``), ``subscribe``,
``update`` and ``unsubscribe`` (``subscriptions.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from bastion.cloud._runtime.runtime import CloudRuntime
from bastion.core.auth import Auth, CallInfo
from bastion.errors import Code, ParseError, Unauthorized
from bastion.keys import Keys
from bastion.livequery.access import PrincipalCache, acting_auth
from bastion.livequery.connection import Connection
from bastion.livequery.direct import direct_writer
from bastion.livequery.protocol import INVALID_KEYS, SCHEMA_ERROR, error_message, message, request_error
from bastion.livequery.subscriptions import Subscriptions

log = logging.getLogger("bastion.livequery")

MAX_MESSAGE_BYTES = 1 << 20  # a larger client frame is refused (uvicorn's ws_max_size is set to it too)


class Endpoint:
    """This process's WebSocket clients. ``authenticate`` gives what a ``connect``'s keys grant
    (``keys.authenticate`` with the app's keys); it raises Unauthorized for wrong ones."""

    def __init__(self, mount: str, authenticate: Callable[[Keys, str | None], Auth],
                 principals: PrincipalCache, subscriptions: Subscriptions, cloud: CloudRuntime) -> None:
        self.mount = mount
        self.authenticate = authenticate
        self.principals = principals
        self.subscriptions = subscriptions
        self.cloud = cloud
        self.connections: dict[int, Connection] = {}
        self.running = False  # sockets are accepted (between LiveQuery's start and stop)
        self._next = 0

    def serves_path(self, path: str) -> bool:
        mount = self.mount
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
        self.subscriptions.remove_all(conn)
        self.principals.release(conn.principal)
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
        subscriptions = self.subscriptions
        if op == "connect":
            await self._connect(conn, request)
        elif op == "subscribe":
            await subscriptions.subscribe(conn, request)
        elif op == "update":
            subscriptions.unsubscribe(conn, request, notify=False)
            await subscriptions.subscribe(conn, request)
        else:
            subscriptions.unsubscribe(conn, request)

    async def _connect(self, conn: Connection, request: dict[str, Any]) -> None:
        keys = Keys(app_id=request["applicationId"], master_key=request.get("masterKey"),
                    javascript_key=request.get("javascriptKey"), rest_key=request.get("restAPIKey"),
                    client_key=request.get("clientKey"), session_token=request.get("sessionToken"),
                    installation_id=request.get("installationId"))
        try:
            auth = self.authenticate(keys, conn.info.ip)
        except Unauthorized:
            conn.push(error_message(INVALID_KEYS, "Key in request is not valid"))
            return
        token = request.get("sessionToken") or None
        principal = await self.principals.acquire(token) if token else None
        cloud = self.cloud
        if cloud.has("beforeConnect", "@Connect"):
            try:
                await cloud.before_connect(acting_auth(auth.is_master, principal, keys.installation_id),
                                           conn.info, clients=len(self.connections),
                                           subscriptions=self.subscriptions.count())
            except ParseError as exc:
                self.principals.release(principal)
                conn.push(error_message(exc.code, exc.message, False))
                return
        if conn.connected:  # connected again on the same socket: a fresh client
            self.subscriptions.remove_all(conn)
            self.principals.release(conn.principal)
        conn.connected = True
        conn.client_id = str(uuid.uuid4())
        conn.master = auth.is_master
        conn.principal = principal
        conn.installation_id = keys.installation_id
        conn.push(message("connected", conn.client_id, conn.installation_id))
