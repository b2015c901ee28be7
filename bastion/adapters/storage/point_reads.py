"""Concurrent reads of single objects by id, answered together by one statement.

Under load many gets of the same class, for the same reader, arrive in one turn of the event
loop. Each would cost a round trip to the database: a statement to bind and execute on both
sides and two system calls on each. Here the first such read waits one turn of the loop; reads
of the same kind that start during that turn join it, and the first one fetches all their ids
with one statement and hands each its row. A read alone in its turn runs as it would have.

Nothing is held across turns, so no read waits for a later request, and a read that joins a
batch sees the database as it is when the batch's statement runs, which is after the read began.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# A follower's answer when the leader could not read for it (cancelled, or the batch failed): read alone.
_ALONE: Any = object()

MAX_BATCH = 256  # ids in one statement; the next read starts a new batch


class PointReads(Generic[T]):
    """Batches of reads by id, one open batch per key (the statement's shape: class, columns, reader)."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._open: dict[Hashable, list[tuple[str, asyncio.Future[Any]]]] = {}
        self._max_batch = max_batch

    async def read(self, key: Hashable, object_id: str, read_one: Callable[[], Awaitable[T]],
                   read_many: Callable[[list[str]], Awaitable[dict[str, T]]], missing: T) -> T:
        """The object ``object_id``'s row as ``read_one`` answers it. ``read_many`` answers several
        ids at once (an id it leaves out reads as ``missing``)."""
        followers = self._open.get(key)
        if followers is not None:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            followers.append((object_id, future))
            if len(followers) + 1 >= self._max_batch:
                del self._open[key]
            result = await future
            return await read_one() if result is _ALONE else result
        followers = self._open[key] = []
        try:
            await asyncio.sleep(0)  # one turn of the loop: the reads started in it join
        except BaseException:
            self._close(key, followers)
            _release(followers)
            raise
        self._close(key, followers)
        if not followers:
            return await read_one()
        ids = list(dict.fromkeys([object_id, *(oid for oid, _ in followers)]))
        try:
            found = await read_many(ids)
        except Exception:  # noqa: BLE001 - each reads alone, and meets its own error or result
            _release(followers)
            return await read_one()
        except BaseException:
            _release(followers)
            raise
        for oid, future in followers:
            if not future.done():
                future.set_result(found.get(oid, missing))
        return found.get(object_id, missing)

    def _close(self, key: Hashable, followers: list[Any]) -> None:
        if self._open.get(key) is followers:
            del self._open[key]


def _release(followers: list[tuple[str, asyncio.Future[Any]]]) -> None:
    for _, future in followers:
        if not future.done():
            future.set_result(_ALONE)
