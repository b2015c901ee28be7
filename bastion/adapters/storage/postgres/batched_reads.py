"""Concurrent reads of the same shape, answered together by one statement.

Under load many reads of the same kind (gets of one class for one reader; queries that compile to
the same statement, with other values) are under way at once. Each would cost a round trip to the
database: a statement to bind and execute on both sides, and system calls on each.

Here a read runs at once, alone, as it would have, while fewer than ``in_flight`` statements of its
key are running: at low concurrency nothing waits. Past that, the reads that start in one turn of
the event loop gather, and at the end of the turn run as one statement, each getting its own
answer. They wait for nothing but the turn, never for the database, and share its work. When a
shared statement fails, each of its reads runs alone and meets its own result or error.

A read that joins a batch sees the database as it is when the batch's statement runs, which is
after the read began.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - what one read asks for (an object's id, a statement's values)
T = TypeVar("T")  # its answer

log = logging.getLogger("bastion")

# A waiting read's answer when its batch could not read for it (it failed): read alone.
_ALONE: Any = object()


@dataclass(slots=True)
class _Waiting(Generic[I, T]):
    item: I
    future: asyncio.Future[Any]
    read_many: Callable[[list[I]], Awaitable[list[T]]]


class BatchedReads(Generic[I, T]):
    """Reads by key (what the statement that answers them depends on): alone while fewer than
    ``in_flight`` statements of the key run, else gathered per loop turn into batches of at most
    ``max_batch``."""

    def __init__(self, max_batch: int, in_flight: int = 2) -> None:
        self.max_batch = max_batch
        self.in_flight = in_flight
        self._running: dict[Hashable, int] = {}
        self._open: dict[Hashable, list[_Waiting[I, T]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: Hashable, item: I, read_one: Callable[[], Awaitable[T]],
                   read_many: Callable[[list[I]], Awaitable[list[T]]]) -> T:
        """``read_one()``'s answer, perhaps got by ``read_many`` (the answers of several reads'
        items, in their order) with the reads of this key that start in the same loop turn."""
        if self._running.get(key, 0) < self.in_flight:
            self._started(key)
            try:
                return await read_one()
            finally:
                self._ended(key)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = []
            asyncio.get_running_loop().call_soon(self._close, key, batch)  # at the end of this turn
        batch.append(_Waiting(item, future, read_many))
        if len(batch) >= self.max_batch:
            self._close(key, batch)
        result = await future
        return await read_one() if result is _ALONE else result

    def _started(self, key: Hashable) -> None:
        self._running[key] = self._running.get(key, 0) + 1

    def _ended(self, key: Hashable) -> None:
        running = self._running[key] - 1
        if running:
            self._running[key] = running
        else:
            del self._running[key]

    def _close(self, key: Hashable, batch: list[_Waiting[I, T]]) -> None:
        """The batch takes no more reads; it runs."""
        if self._open.get(key) is not batch:
            return  # closed already (it was full)
        del self._open[key]
        self._started(key)
        task = asyncio.get_running_loop().create_task(self._run(key, batch))
        self._tasks.add(task)  # held until done, so that it is not collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: Hashable, batch: list[_Waiting[I, T]]) -> None:
        try:
            live = [w for w in batch if not w.future.done()]  # a cancelled read needs no answer
            if len(live) < 2:
                return  # one read: its own statement, as if unbatched (finally answers it)
            try:
                answers = await live[0].read_many([w.item for w in live])
            except Exception:  # noqa: BLE001 - each reads alone, and meets its own error or result
                log.debug("a batched read failed; its reads run alone", exc_info=True)
                return
            for waiting, answer in zip(live, answers, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(answer)
        finally:
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_result(_ALONE)
            self._ended(key)
