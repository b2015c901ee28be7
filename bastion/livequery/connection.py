"""One WebSocket client's state: its send queue, and its subscriptions (one per ``requestId``).

A message to an idle socket is written straight to its transport (``direct.py``); otherwise it
waits in the socket's bounded send queue, drained by its own task: a client that falls too far
behind is told so and closed, and never slows the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from bastion.core.auth import CallInfo
from bastion.livequery.access import Principal, Viewer
from bastion.livequery.direct import DirectWriter
from bastion.livequery.index import QueryGroup
from bastion.livequery.protocol import SCHEMA_ERROR, error_message, event_ident

log = logging.getLogger("bastion.livequery")

MAX_QUEUED_MESSAGES = 2000  # per socket: a client further behind is closed
MAX_QUEUED_BYTES = 16 << 20
CLOSE_TIMEOUT = 5.0  # seconds to deliver the last error and close frame of a socket being closed


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

    def viewer(self) -> Viewer:
        """Who the subscription acts as: the master key, or its own session (else the connection's),
        plus the connection's session, whose ACL access counts too (as in Parse Server)."""
        conn = self.conn
        effective = self.principal or conn.principal
        other = conn.principal if self.principal is not None and conn.principal is not self.principal else None
        return conn.master, effective, other
