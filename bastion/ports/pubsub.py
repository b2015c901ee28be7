"""The pub/sub contract: after-commit events (LiveQuery) and cache invalidation between processes.

A message is bytes on a named channel. ``publish`` returns once the message is handed to the
transport; handlers of every process subscribed to the channel (this one included) receive it once.
A handler must not block: it runs on the subscriber's event loop, in publication order per channel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from bastion.core.events import Hook, PubSubReconnected

Handler = Callable[[bytes], Awaitable[None] | None]


class PubSub(ABC):
    name: str = ""

    def __init__(self) -> None:
        # Emitted when the transport reconnected after an outage: messages published meanwhile may
        # have been lost (users make up for it: the cache invalidation drops every cache). A
        # handler's failure is logged; the reader goes on.
        self.reconnected: Hook[PubSubReconnected] = Hook("pubsub reconnected", contain=True)

    async def open(self) -> None:  # noqa: B027 - most adapters have nothing to connect
        """Connect (called at server start-up)."""

    async def close(self) -> None:  # noqa: B027
        """Disconnect (called at shutdown); publishing afterwards is a no-op."""

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abstractmethod
    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Calls ``handler`` with each message published on ``channel`` from now on."""

    @abstractmethod
    async def unsubscribe(self, channel: str, handler: Handler) -> None: ...
