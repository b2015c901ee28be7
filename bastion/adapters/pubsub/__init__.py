"""Pub/sub adapters: the database's own (the default), in-process (``memory``) and Redis."""

from __future__ import annotations

from bastion.adapters.pubsub.memory import MemoryPubSub
from bastion.ports.pubsub import Handler, PubSub

__all__ = ["Handler", "MemoryPubSub", "PubSub", "describe_pubsub", "open_pubsub"]


def open_pubsub(url: str | None, database_url: str | None = None) -> PubSub:
    """The adapter a ``--pubsub`` URL names: ``memory`` for in-process, ``redis://…``; unset, the
    database's own channel (PostgreSQL's LISTEN/NOTIFY, or a table of the SQLite file), so that every
    process on one database hears the others; in-process when no database is named."""
    if url == "memory" or (not url and not database_url):
        return MemoryPubSub()
    if not url:
        assert database_url is not None
        if database_url.startswith(("postgresql://", "postgres://")):
            from bastion.adapters.pubsub.postgres import PostgresPubSub  # noqa: PLC0415 - only when used

            return PostgresPubSub(database_url)
        if database_url.startswith("sqlite:///"):
            from bastion.adapters.pubsub.sqlite import SqlitePubSub  # noqa: PLC0415

            return SqlitePubSub(database_url[len("sqlite:///"):])
        return MemoryPubSub()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from bastion.adapters.pubsub.redis import RedisPubSub  # noqa: PLC0415 - optional until used

        return RedisPubSub(url)
    raise ValueError(f"unsupported --pubsub URL: {url.split(':', 1)[0]}:// (use redis://host:port/db or memory)")


def describe_pubsub(url: str | None, database_url: str) -> str:
    """The channel ``open_pubsub`` picks, in words (the start-up banner)."""
    if url == "memory":
        return "in-process (one process only)"
    if url:
        from bastion.adapters.pubsub.redis import safe_url  # noqa: PLC0415

        return f"Redis {safe_url(url)}"
    if database_url.startswith(("postgresql://", "postgres://")):
        return "PostgreSQL LISTEN/NOTIFY (every process on this database)"
    return "SQLite table, polled every 20 ms (every process on this file)"
