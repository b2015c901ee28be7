"""In-process pub/sub: the default, for one Bastion process (``--workers 1``, no Redis)."""

from __future__ import annotations

import inspect
import logging

from bastion.ports.pubsub import Handler, PubSub

log = logging.getLogger("bastion.pubsub")


class MemoryPubSub(PubSub):
    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[str, list[Handler]] = {}
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        self._handlers.clear()

    async def publish(self, channel: str, message: bytes) -> None:
        if self._closed:
            return
        for handler in list(self._handlers.get(channel, ())):
            try:
                result = handler(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - one failing subscriber must not stop the others
                log.exception("pubsub handler on %s failed", channel)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)
