"""Pub/sub adapters: in-process (default) and Redis (``--pubsub redis://…``)."""

from __future__ import annotations

from bastion.adapters.pubsub.memory import MemoryPubSub
from bastion.ports.pubsub import Handler, PubSub

__all__ = ["Handler", "MemoryPubSub", "PubSub", "open_pubsub"]


def open_pubsub(url: str | None) -> PubSub:
    """The adapter a ``--pubsub`` URL names: unset or ``memory`` for in-process, ``redis://…``."""
    if not url or url == "memory":
        return MemoryPubSub()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from bastion.adapters.pubsub.redis import RedisPubSub  # noqa: PLC0415 - optional until used

        return RedisPubSub(url)
    raise ValueError(f"unsupported --pubsub URL: {url.split(':', 1)[0]}:// (use redis://host:port/db)")
