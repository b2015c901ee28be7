"""Typed hooks: how one part of Bastion hears of a fact another part owns, without importing it.

A ``Hook[T]`` holds handlers of one event type ``T``, a small frozen dataclass per fact (below).
The owner emits; whoever cares binds. ``emit`` calls synchronous handlers and is for hot paths
(a hook with no handlers is falsy, so ``if hook: hook.emit(Event(...))`` builds no event at all);
``emit_async`` also awaits handlers that return an awaitable.

A hook either lets a handler's exception propagate to the emitter (the default: the emitter's
caller sees the failure) or, made with ``contain=True``, logs it and goes on with the next handler
(for facts whose emitter has already committed and must not fail, or must not stop a reader).
This module imports nothing of Bastion's: every layer may use it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Handler = Callable[[T], Awaitable[None] | None]

log = logging.getLogger("bastion.core.events")


class Hook(Generic[T]):
    """Handlers of one event type. Binding and unbinding replace the tuple of handlers, so an
    emission in progress keeps the handlers it started with and never copies them."""

    __slots__ = ("name", "contain", "_handlers")

    def __init__(self, name: str, *, contain: bool = False) -> None:
        self.name = name
        self.contain = contain
        self._handlers: tuple[Handler[T], ...] = ()

    def bind(self, handler: Handler[T]) -> Callable[[], None]:
        """Calls ``handler`` with each event from now on; returns what unbinds it."""
        self._handlers = (*self._handlers, handler)
        return lambda: self.unbind(handler)

    def unbind(self, handler: Handler[T]) -> None:
        """Stops calling ``handler`` (once per bind; a handler not bound is ignored)."""
        handlers = list(self._handlers)
        if handler in handlers:
            handlers.remove(handler)
            self._handlers = tuple(handlers)

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    def emit(self, event: T) -> None:
        """Calls each handler in the order bound. Handlers must be synchronous: one that returns an
        awaitable is a programming error (its work would silently never run)."""
        for handler in self._handlers:
            try:
                result = handler(event)
            except Exception:
                if not self.contain:
                    raise
                log.exception("%s handler failed", self.name)
                continue
            if result is not None and inspect.isawaitable(result):
                _discard(result)
                raise TypeError(f"{self.name}: an async handler needs emit_async")

    async def emit_async(self, event: T) -> None:
        """Calls each handler in the order bound, awaiting those that return an awaitable."""
        for handler in self._handlers:
            try:
                result = handler(event)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                if not self.contain:
                    raise
                log.exception("%s handler failed", self.name)


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)  # a coroutine never awaited would warn
    if callable(close):
        close()


# --- the facts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectWritten:
    """A write to ``class_name`` was stored here (caches of roles and sessions drop entries)."""

    class_name: str


@dataclass(frozen=True, slots=True)
class ChangeCommitted:
    """A committed write, for LiveQuery: the stored record after it (for a delete, the object as
    it was) and, for updates, the record before it. Records are canonical and include hidden
    columns; handlers encode what they publish."""

    class_name: str
    op: str  # "create", "update" or "delete"
    record: dict[str, Any]
    original: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SchemaChanged:
    """This process changed the schema of ``class_name``, and the change is committed."""

    class_name: str


@dataclass(frozen=True, slots=True)
class SessionsRevoked:
    """This process revoked sessions of the user ``user_id``."""

    user_id: str


@dataclass(frozen=True, slots=True)
class WebhooksChanged:
    """This process changed the stored webhooks."""


@dataclass(frozen=True, slots=True)
class PubSubReconnected:
    """The pub/sub adapter reconnected: messages published meanwhile may have been lost."""


@dataclass(frozen=True, slots=True)
class InterestChanged:
    """A LiveQuery class gained its first (``present``) or lost its last local subscription."""

    class_name: str
    present: bool
