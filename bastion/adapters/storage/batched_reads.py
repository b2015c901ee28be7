"""Concurrent reads of the same shape, answered together by one statement.

Under load many reads of the same kind (gets of one class for one reader; queries that compile to
the same statement, with other values) arrive in one turn of the event loop. Each would cost a
round trip to the database: a statement to bind and execute on both sides, and system calls on
each. Here the first such read waits one turn of the loop; reads with the same key that start
during that turn join it, and the first one runs one statement for all of them and hands each its
own answer. A read alone in its turn runs as it would have, and when the shared statement fails,
each read runs alone and meets its own result or error.

Nothing is held across turns, so no read waits for a later request, and a read that joins a batch
sees the database as it is when the batch's statement runs, which is after the read began.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - what one read asks for (an object's id, a statement's values)
T = TypeVar("T")  # its answer

# A follower's answer when the leader could not read for it (cancelled, or the batch failed): read alone.
_ALONE: Any = object()


class BatchedReads(Generic[I, T]):
    """Batches of reads, one open batch per key (what the statement that answers them depends on)."""

    def __init__(self, max_batch: int) -> None:
        self._open: dict[Hashable, list[tuple[I, asyncio.Future[Any]]]] = {}
        self.max_batch = max_batch

    async def read(self, key: Hashable, item: I, read_one: Callable[[], Awaitable[T]],
                   read_many: Callable[[list[I]], Awaitable[list[T]]], max_batch: int | None = None) -> T:
        """``read_one()``'s answer, perhaps got by ``read_many`` (the answers of several reads' items,
        in their order) from the leader of a batch. ``max_batch`` lowers the batch size for this key."""
        followers = self._open.get(key)
        if followers is not None:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            followers.append((item, future))
            if len(followers) + 1 >= min(self.max_batch, max_batch or self.max_batch):
                del self._open[key]  # full: the next read starts a new batch
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
        try:
            answers = await read_many([item, *(i for i, _ in followers)])
        except Exception:  # noqa: BLE001 - each reads alone, and meets its own error or result
            _release(followers)
            return await read_one()
        except BaseException:
            _release(followers)
            raise
        for (_, future), answer in zip(followers, answers[1:], strict=True):
            if not future.done():
                future.set_result(answer)
        return answers[0]

    def _close(self, key: Hashable, followers: list[Any]) -> None:
        if self._open.get(key) is followers:
            del self._open[key]


def _release(followers: list[tuple[Any, asyncio.Future[Any]]]) -> None:
    for _, future in followers:
        if not future.done():
            future.set_result(_ALONE)
